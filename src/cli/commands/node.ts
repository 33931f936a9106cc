/** `otto node list|metrics`. */
import { loadRunningConfig } from '../running-config.js';
import { isLocalNode } from '../../config/nodes.js';
import { parseDuration } from '../../config/units.js';
import { InfrastructureError, UsageError } from '../../errors.js';
import type { ClusterStatus } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { ago, bytes, nodeStateLabel, percent, printJson, table } from '../format.js';
import { fetchStatus } from './status.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

export async function list(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  const live = await fetchStatus(new Workspace(loaded.path));
  const rows = loaded.config.nodes.map((node) => {
    const view = live?.nodes.find((n) => n.id === node.id);
    return {
      id: node.id,
      host: node.host,
      connection: isLocalNode(node) ? 'local' : `ssh ${node.user}@${node.host}`,
      ssh_state: view?.ssh_state ?? null,
      state: !live ? 'stopped' : view ? nodeStateLabel(view) : 'unknown',
      last_seen: view?.last_seen ?? null,
      agent_version: view?.agent_version ?? null,
      arch: view?.arch ?? null,
      docker: view?.docker ?? null,
      labels: node.labels,
    };
  });
  if (options.json) return printJson(rows);
  say(
    table(
      ['NODE', 'HOST', 'CONNECTION', 'SSH', 'STATE', 'LAST SEEN', 'AGENT', 'ARCH', 'DOCKER'],
      rows.map((r) => [
        r.id,
        r.host,
        r.connection,
        r.ssh_state ?? '-',
        r.state,
        live ? ago(r.last_seen) : '-',
        r.agent_version ?? '-',
        r.arch ?? '-',
        r.docker ? (r.docker.reachable ? 'yes' : 'unreachable') : '-',
      ]),
    ),
  );
}

function renderMetrics(status: ClusterStatus, nodeId?: string): string {
  const nodes = status.nodes.filter((n) => !nodeId || n.id === nodeId);
  const lines = [
    table(
      ['NODE', 'STATE', 'CPU', 'MEMORY', 'MEM USED', 'DISK', 'NET TX', 'NET RX', 'UPDATED'],
      nodes.map((n) => {
        const m = n.metrics;
        return [
          n.id,
          nodeStateLabel(n),
          percent(m?.cpu_percent),
          percent(m?.memory_percent),
          m ? `${Math.round(m.memory_used_mb)}/${Math.round(m.memory_total_mb)} MB` : '-',
          percent(m?.disk_percent),
          m ? bytes(m.network_bytes_sent) : '-',
          m ? bytes(m.network_bytes_recv) : '-',
          m ? ago(m.timestamp) : 'never',
        ];
      }),
    ),
  ];
  const containers = nodes.flatMap((n) => n.containers.map((c) => ({ node: n.id, ...c })));
  if (containers.length) {
    lines.push(
      '',
      table(
        ['CONTAINER', 'NODE', 'SERVICE', 'CPU', 'MEM USAGE / LIMIT', 'MEM', 'NET RX / TX', 'BLOCK R / W'],
        containers.map((c) => [
          c.container_name,
          c.node,
          c.service ?? '-',
          percent(c.cpu_percent),
          `${c.memory_usage_mb.toFixed(1)}MB / ${c.memory_limit_mb.toFixed(0)}MB`,
          percent(c.memory_percent),
          `${bytes(c.network_rx_bytes)} / ${bytes(c.network_tx_bytes)}`,
          `${bytes(c.block_read_bytes)} / ${bytes(c.block_write_bytes)}`,
        ]),
      ),
    );
  }
  return lines.join('\n');
}

export async function metrics(options: GlobalOptions & { watch?: boolean; json?: boolean }, nodeId?: string): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  if (nodeId && !loaded.config.nodes.some((n) => n.id === nodeId)) {
    throw new UsageError(`unknown node "${nodeId}"`, `nodes: ${loaded.config.nodes.map((n) => n.id).join(', ')}`);
  }
  const workspace = new Workspace(loaded.path);
  const intervalMs = parseDuration(loaded.config.metrics.interval);
  for (;;) {
    const status = await fetchStatus(workspace);
    if (!status) throw new InfrastructureError('cluster is not running: no metrics to show', 'start it with `otto cluster start`');
    if (options.json) {
      const nodes = status.nodes.filter((n) => !nodeId || n.id === nodeId);
      printJson(nodes.map((n) => ({ node_id: n.id, online: n.online, metrics: n.metrics, containers: n.containers })));
    } else {
      // Like `docker stats`: redraw in place.
      if (options.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      say(renderMetrics(status, nodeId));
    }
    if (!options.watch) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    if (!process.stdout.isTTY && !options.json) say();
  }
}

/**
 * `otto node rotate-credentials NODE`: a new broker credential for one node. With the cluster running, the
 * control plane rotates it and the node's agent reconnects with it at once; stopped, the store is updated
 * and agents get the new one at the next start. The old one is refused from then on.
 */
export async function rotateCredentials(options: GlobalOptions, nodeId: string): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  if (!loaded.config.nodes.some((n) => n.id === nodeId)) {
    throw new UsageError(`no such node: ${nodeId}`, `nodes: ${loaded.config.nodes.map((n) => n.id).join(', ')}`);
  }
  const workspace = new Workspace(loaded.path);
  const [{ ApiClient }, { answers }] = await Promise.all([import('../../http/client.js'), import('../../http/answers.js')]);
  const client = await ApiClient.connect(workspace);
  if (client && (await client.healthy())) {
    await client.post(`/api/v1/nodes/${encodeURIComponent(nodeId)}/rotate-credentials`, {}, answers.rotation);
    say(`rotated the broker credential of node ${nodeId}; its agent reconnected with the new one (other nodes untouched)`);
    if (!loaded.config.mqtt.embedded) externalBrokerHint();
    return;
  }
  const { Credentials } = await import('../../security/credentials.js');
  await (await new Credentials(workspace.credentialsPath).load()).rotate(nodeId);
  say(`rotated the broker credential of node ${nodeId} in ${workspace.credentialsPath}; its agent gets it when the cluster starts`);
  if (!loaded.config.mqtt.embedded) externalBrokerHint();
}

/** An external broker checks passwords from its own file: it must be told. */
function externalBrokerHint(): void {
  say('the external broker (mqtt.embedded: false) still has the old password: run `otto config mosquitto` and send mosquitto a SIGHUP');
}
