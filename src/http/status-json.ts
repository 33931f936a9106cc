/**
 * The cluster status as validated JSON, for GET /api/v1/status, /nodes, /services and the SSE `status`
 * event. With thousands of nodes the node and service lists are megabytes: each list is validated against
 * its schema and serialized once (the control plane hands out the same array until it rebuilds it), and
 * the small rest of the status every time. The text is the one a validate-then-serialize of the whole
 * status gives.
 *
 * A status for a client that shows a few nodes (the dashboard's page of a fleet) has the others as a
 * summary: their metrics null and their containers left out, everything else as it is.
 */
import { z } from 'zod';
import { clusterStatusSchema, nodeListSchema, serviceListSchema, type ClusterStatus, type NodeView } from './schemas.js';

export type Checked = { ok: true; json: string } | { ok: false; error: z.ZodError };

const restSchema = clusterStatusSchema.omit({ nodes: true, services: true });

/** Validated JSON of one list, remembered for the array it was made from. */
class ListJson<T> {
  private source?: unknown[];
  private checked?: { ok: true; items: T[]; json?: string } | { ok: false; error: z.ZodError };

  constructor(private readonly schema: z.ZodType<T[]>) {}

  /** The validated items of this list (the same until the list is another array). */
  parse(list: unknown[]): { ok: true; items: T[] } | { ok: false; error: z.ZodError } {
    if (list !== this.source || !this.checked) {
      const parsed = this.schema.safeParse(list);
      this.checked = parsed.success ? { ok: true, items: parsed.data } : { ok: false, error: parsed.error };
      this.source = list;
      this.changed();
    }
    return this.checked;
  }

  json(list: unknown[]): Checked {
    const parsed = this.parse(list);
    if (!parsed.ok) return parsed;
    const checked = this.checked as { ok: true; items: T[]; json?: string };
    checked.json ??= JSON.stringify(parsed.items);
    return { ok: true, json: checked.json };
  }

  /** The list was rebuilt: whatever was derived from the previous one is dropped. */
  protected changed(): void {}
}

class NodeListJson extends ListJson<NodeView> {
  private full: (string | undefined)[] = [];
  private summary: (string | undefined)[] = [];

  /** Full views of the nodes in `shown`, summaries of the others. */
  filtered(list: NodeView[], shown: Set<string>): Checked {
    const parsed = this.parse(list);
    if (!parsed.ok) return parsed;
    const parts = parsed.items.map((node, i) => {
      if (shown.has(node.id)) return (this.full[i] ??= JSON.stringify(node));
      return (this.summary[i] ??= JSON.stringify({ ...node, metrics: null, containers: [] }));
    });
    return { ok: true, json: `[${parts.join(',')}]` };
  }

  protected override changed(): void {
    this.full = [];
    this.summary = [];
  }
}

export class StatusJson {
  private readonly nodeList = new NodeListJson(nodeListSchema);
  private readonly serviceList = new ListJson(serviceListSchema);

  nodes(nodes: ClusterStatus['nodes']): Checked {
    return this.nodeList.json(nodes);
  }

  services(services: ClusterStatus['services']): Checked {
    return this.serviceList.json(services);
  }

  /** The whole status; with `shown`, the nodes not in it as summaries. */
  status(status: ClusterStatus, shown?: Set<string>): Checked {
    const { nodes, services, ...rest } = status;
    const parsed = restSchema.safeParse(rest);
    if (!parsed.success) return { ok: false, error: parsed.error };
    const nodeJson = shown ? this.nodeList.filtered(nodes, shown) : this.nodes(nodes);
    if (!nodeJson.ok) return { ok: false, error: withPath(nodeJson.error, 'nodes') };
    const serviceJson = this.services(services);
    if (!serviceJson.ok) return { ok: false, error: withPath(serviceJson.error, 'services') };
    // In the schema's key order, as serializing the whole validated status would give.
    const { cluster, drift, operation, queue, counters } = parsed.data;
    const part = (value: unknown) => JSON.stringify(value);
    return {
      ok: true,
      json: `{"cluster":${part(cluster)},"nodes":${nodeJson.json},"services":${serviceJson.json},"drift":${part(drift)},"operation":${part(operation)},"queue":${part(queue)},"counters":${part(counters)}}`,
    };
  }
}

/** The same issues with the list's key in front of their paths (a new error: the remembered one stays as it is). */
function withPath(error: z.ZodError, key: string): z.ZodError {
  return new z.ZodError(error.issues.map((issue) => ({ ...issue, path: [key, ...issue.path] })));
}
