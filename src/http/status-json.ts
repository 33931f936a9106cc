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
import { clusterStatusSchema, nodeViewSchema, serviceListSchema, type ClusterStatus, type NodeView } from './schemas.js';

export type Checked = { ok: true; json: string } | { ok: false; error: z.ZodError };
export type Bytes = { ok: true; bytes: Buffer } | { ok: false; error: z.ZodError };

const restSchema = clusterStatusSchema.omit({ nodes: true, services: true });

/** Validated JSON of one list, remembered for the array it was made from. */
class ListJson<T> {
  private source?: unknown[];
  private checked?: { ok: true; items: T[]; json?: string; bytes?: Buffer } | { ok: false; error: z.ZodError };

  constructor(private readonly schema: z.ZodType<T[]>) {}

  /** The validated items of this list (the same until the list is another array). */
  parse(list: unknown[]): { ok: true; items: T[] } | { ok: false; error: z.ZodError } {
    if (list !== this.source || !this.checked) {
      const parsed = this.schema.safeParse(list);
      this.checked = parsed.success ? { ok: true, items: parsed.data } : { ok: false, error: parsed.error };
      this.source = list;
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

  /** The same JSON as UTF-8 bytes, encoded once per list. */
  bytes(list: unknown[]): Bytes {
    const json = this.json(list);
    if (!json.ok) return json;
    const checked = this.checked as { ok: true; bytes?: Buffer };
    checked.bytes ??= Buffer.from(json.json);
    return { ok: true, bytes: checked.bytes };
  }
}

type Built = { ok: true; full: string[]; heads: string[]; json?: string; bytes?: Buffer } | { ok: false; error: z.ZodError };

const headSchema = nodeViewSchema.omit({ metrics: true, containers: true });
const metricsSchema = nodeViewSchema.shape.metrics;
const containersSchema = nodeViewSchema.shape.containers;

/**
 * The node list, node by node: a node's metrics and containers (its last reports, the bulk of it) are
 * validated and serialized once per report, the small rest at every rebuild of the list. The text is that
 * of the whole list validated and serialized at once (metrics and containers are a node view's last keys).
 */
class NodeListJson {
  private source?: NodeView[];
  private result?: Built;
  private summaries: (string | undefined)[] = [];
  private readonly parts = new WeakMap<object, string | z.ZodError>();

  json(list: NodeView[]): Checked {
    const built = this.build(list);
    if (!built.ok) return built;
    built.json ??= `[${built.full.join(',')}]`;
    return { ok: true, json: built.json };
  }

  /** The same JSON as UTF-8 bytes, encoded once per rebuild of the list. */
  bytes(list: NodeView[]): Bytes {
    const built = this.build(list);
    if (!built.ok) return built;
    // The text is not kept: megabytes of heap for a fleet, only needed again by a stream client (json()).
    built.bytes ??= Buffer.from(built.json ?? `[${built.full.join(',')}]`);
    return { ok: true, bytes: built.bytes };
  }

  /** Full views of the nodes in `shown`, summaries of the others. */
  filtered(list: NodeView[], shown: Set<string>): Checked {
    const built = this.build(list);
    if (!built.ok) return built;
    const parts = list.map((node, i) => (shown.has(node.id) ? built.full[i]! : (this.summaries[i] ??= `${built.heads[i]!}"metrics":null,"containers":[]}`)));
    return { ok: true, json: `[${parts.join(',')}]` };
  }

  private build(list: NodeView[]): Built {
    if (list === this.source && this.result) return this.result;
    this.source = list;
    this.summaries = [];
    const full: string[] = [];
    const heads: string[] = [];
    for (let i = 0; i < list.length; i++) {
      const { metrics, containers, ...rest } = list[i]!;
      const parsed = headSchema.safeParse(rest);
      if (!parsed.success) return (this.result = { ok: false, error: withPath(parsed.error, 'nodes', i) });
      const metricsJson = this.part(metrics, metricsSchema);
      if (typeof metricsJson !== 'string') return (this.result = { ok: false, error: withPath(metricsJson, 'nodes', i, 'metrics') });
      const containersJson = this.part(containers, containersSchema);
      if (typeof containersJson !== 'string') return (this.result = { ok: false, error: withPath(containersJson, 'nodes', i, 'containers') });
      // `{...head fields,` : the metrics and containers follow.
      const headJson = JSON.stringify(parsed.data);
      const head = `${headJson.slice(0, -1)}${headJson.length > 2 ? ',' : ''}`;
      heads.push(head);
      full.push(`${head}"metrics":${metricsJson},"containers":${containersJson}}`);
    }
    return (this.result = { ok: true, full, heads });
  }

  /** A node's last report as validated JSON, remembered for the report (it changes once an interval). */
  private part(value: unknown, schema: z.ZodType): string | z.ZodError {
    const cacheable = value !== null && typeof value === 'object' && !(Array.isArray(value) && value.length === 0);
    const known = cacheable ? this.parts.get(value) : undefined;
    if (known !== undefined) return known;
    const parsed = schema.safeParse(value);
    const answer = parsed.success ? JSON.stringify(parsed.data) : parsed.error;
    if (cacheable) this.parts.set(value as object, answer);
    return answer;
  }
}

export class StatusJson {
  private readonly nodeList = new NodeListJson();
  private readonly serviceList = new ListJson(serviceListSchema);

  nodes(nodes: ClusterStatus['nodes']): Checked {
    return this.nodeList.json(nodes);
  }

  services(services: ClusterStatus['services']): Checked {
    return this.serviceList.json(services);
  }

  nodeBytes(nodes: ClusterStatus['nodes']): Bytes {
    return this.nodeList.bytes(nodes);
  }

  serviceBytes(services: ClusterStatus['services']): Bytes {
    return this.serviceList.bytes(services);
  }

  /**
   * The whole status as UTF-8 bytes, for the API: the megabytes of node and service lists are encoded once
   * per rebuild and copied, not encoded again for every request; the same text as `status(status)`.
   */
  statusBytes(status: ClusterStatus): Bytes {
    const { nodes, services, ...rest } = status;
    const parsed = restSchema.safeParse(rest);
    if (!parsed.success) return { ok: false, error: parsed.error };
    const nodeBytes = this.nodeList.bytes(nodes);
    if (!nodeBytes.ok) return nodeBytes;
    const serviceBytes = this.serviceList.bytes(services);
    if (!serviceBytes.ok) return { ok: false, error: withPath(serviceBytes.error, 'services') };
    const { cluster, drift, operation, queue, counters } = parsed.data;
    const part = (value: unknown) => JSON.stringify(value);
    return {
      ok: true,
      bytes: Buffer.concat([
        Buffer.from(`{"cluster":${part(cluster)},"nodes":`),
        nodeBytes.bytes,
        Buffer.from(',"services":'),
        serviceBytes.bytes,
        Buffer.from(`,"drift":${part(drift)},"operation":${part(operation)},"queue":${part(queue)},"counters":${part(counters)}}`),
      ]),
    };
  }

  /** The whole status; with `shown`, the nodes not in it as summaries. */
  status(status: ClusterStatus, shown?: Set<string>): Checked {
    const { nodes, services, ...rest } = status;
    const parsed = restSchema.safeParse(rest);
    if (!parsed.success) return { ok: false, error: parsed.error };
    const nodeJson = shown ? this.nodeList.filtered(nodes, shown) : this.nodes(nodes);
    if (!nodeJson.ok) return nodeJson;
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

/** The same issues with the keys of where they are in front of their paths (a new error: a remembered one stays as it is). */
function withPath(error: z.ZodError, ...where: PropertyKey[]): z.ZodError {
  return new z.ZodError(error.issues.map((issue) => ({ ...issue, path: [...where, ...issue.path] })));
}
