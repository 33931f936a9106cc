/** `otto node list|metrics|rotate-credentials|join-command|remove`. */
import { readFileSync } from 'node:fs';
import { loadRunningConfig } from '../running-config.js';
import { isLocalNode, nodeKind } from '../../config/nodes.js';
import type { NodeConfig } from '../../config/schema.js';
import { parseDuration } from '../../config/units.js';
import { InfrastructureError, UsageError } from '../../errors.js';
import type { ClusterStatus } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { ago, bytes, nodeStateLabel, percent, printJson, table } from '../format.js';
import { fetchStatus } from './cluster.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

export async function list(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  const live = await fetchStatus(new Workspace(loaded.path));
  // otto.yaml's nodes, then those that joined through a pool (the control plane knows them).
  const declared = new Set(loaded.config.nodes.map((n) => n.id));
  const joined: NodeConfig[] = (live?.nodes ?? [])
    .filter((n) => !declared.has(n.id))
    .map((n) => ({ id: n.id, join: true, labels: {}, docker_url: 'unix:///var/run/docker.sock' }));
  const rows = [...loaded.config.nodes, ...joined].map((node) => {
    const view = live?.nodes.find((n) => n.id === node.id);
    return {
      id: node.id,
      host: node.host ?? (view && view.host !== '-' ? view.host : '-'),
      connection: nodeKind(node) === 'joined' ? 'joins by itself' : isLocalNode(node) ? 'local' : `ssh ${node.user}@${node.host}`,
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
  const isPool = loaded.config.node_pools.some((p) => p.name === nodeId);
  if (!isPool && !loaded.config.nodes.some((n) => n.id === nodeId)) {
    const { Credentials } = await import('../../security/credentials.js');
    const joined = (await new Credentials(new Workspace(loaded.path).credentialsPath).load()).joinedNodes()[nodeId];
    if (!joined) throw new UsageError(`no such node or pool: ${nodeId}`, `nodes: ${loaded.config.nodes.map((n) => n.id).join(', ')}`);
  }
  const workspace = new Workspace(loaded.path);
  const [{ ApiClient }, { rotationSchema }] = await Promise.all([import('../../http/client.js'), import('../../http/schemas.js')]);
  const client = await ApiClient.connect(workspace);
  if (client && (await client.healthy())) {
    await client.post(`/api/v1/nodes/${encodeURIComponent(nodeId)}/rotate-credentials`, {}, rotationSchema);
    const node = loaded.config.nodes.find((n) => n.id === nodeId);
    say(
      isPool
        ? `rotated the join token of pool ${nodeId}: the old one is refused; \`otto node join-command ${nodeId}\` prints the new one`
        : node?.join
          ? `rotated the broker credential of node ${nodeId}: its old join token is refused; run the new one (\`otto node join-command ${nodeId}\`) on the device`
          : `rotated the broker credential of node ${nodeId}; its agent reconnected with the new one (other nodes untouched)`,
    );
    if (!loaded.config.mqtt.embedded) externalBrokerHint();
    return;
  }
  const { Credentials } = await import('../../security/credentials.js');
  const credentials = await new Credentials(workspace.credentialsPath).load();
  if (isPool) {
    await credentials.rotatePool(nodeId);
    say(`rotated the join token of pool ${nodeId}: the old one is refused; \`otto node join-command ${nodeId}\` prints the new one`);
    return;
  }
  await credentials.rotate(nodeId);
  say(`rotated the broker credential of node ${nodeId} in ${workspace.credentialsPath}; its agent gets it when the cluster starts`);
  if (!loaded.config.mqtt.embedded) externalBrokerHint();
}

/** An external broker checks passwords from its own file: it must be told. */
function externalBrokerHint(): void {
  say('the external broker (mqtt.embedded: false) still has the old password: run `otto config mosquitto` and send mosquitto a SIGHUP');
}

/**
 * `otto node join-command NODE|POOL`: the one line to run on a device that dials in (a `join: true` node, or
 * any device for a pool). The token names the cluster, carries the node's credential or the pool's
 * bootstrap secret, and the fingerprint of the cluster CA the device checks the broker against.
 */
export async function joinCommand(options: GlobalOptions, name: string): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  const { config } = loaded;
  const node = config.nodes.find((n) => n.id === name);
  const pool = config.node_pools.find((p) => p.name === name);
  if (!pool && !node?.join) {
    const joinable = [...config.nodes.filter((n) => n.join).map((n) => n.id), ...config.node_pools.map((p) => `pool ${p.name}`)];
    throw new UsageError(
      node ? `node ${name} does not join by itself (it is ${isLocalNode(node) ? 'local' : 'reached over SSH'})` : `no node or node pool ${name}`,
      joinable.length ? `nodes that join: ${joinable.join(', ')}` : 'declare a node with join: true, or a node pool (node_pools:) in otto.yaml',
    );
  }
  const [{ brokerTransport, brokerCaFile }, { remoteMqttUrl }, { Credentials }, { caFingerprint, formatJoinToken }] = await Promise.all([
    import('../../config/transport.js'),
    import('../../remote/mqtt-address.js'),
    import('../../security/credentials.js'),
    import('../../security/join-token.js'),
  ]);
  const transport = brokerTransport(config);
  if (!transport.tls) throw new UsageError('joining needs TLS, and mqtt.tls is off', 'remove mqtt.tls: off (auto makes the certificates)');
  const workspace = new Workspace(loaded.path);
  if (transport.ownCa) {
    const [{ ensureTlsMaterial }, { certificateNames }] = await Promise.all([import('../../security/tls.js'), import('../../control-plane/tls-setup.js')]);
    await ensureTlsMaterial(workspace.tlsDir, config.cluster.name, certificateNames(config));
  }
  const ca = readFileSync(brokerCaFile(config, workspace.tlsDir)!, 'utf8');
  const url = remoteMqttUrl(config);
  if (!url) throw new UsageError('no broker address a device can reach', 'set mqtt.advertise (or a routable mqtt.host) in otto.yaml');
  const credentials = await new Credentials(workspace.credentialsPath).load();
  let secret: string;
  if (pool) {
    await credentials.ensurePools([pool.name]);
    secret = credentials.poolSecret(pool.name)!;
  } else {
    await credentials.ensure([name]);
    secret = credentials.password(name)!;
  }
  const token = formatJoinToken({ cluster: config.cluster.name, kind: pool ? 'pool' : 'node', name, secret, ca: caFingerprint(ca) });
  say(`npx otto agent --join ${url} --token ${token}`);
  process.stderr.write(
    pool
      ? `run it on each device of pool ${name} (add --node-id ID to choose its id; by default it comes from its hostname); the token admits any device: keep it secret\n`
      : `run it on node ${name}: the token is its credential, keep it secret (\`otto node rotate-credentials ${name}\` makes it invalid)\n`,
  );
}

/** `otto node remove NODE`: forgets a node that joined through a pool; its credential is refused from then on. */
export async function remove(options: GlobalOptions, nodeId: string): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  if (loaded.config.nodes.some((n) => n.id === nodeId)) {
    throw new UsageError(`node ${nodeId} is declared in otto.yaml`, 'remove it from otto.yaml: its credential is revoked when the control plane reloads the file');
  }
  const workspace = new Workspace(loaded.path);
  const [{ ApiClient }, { removalSchema }] = await Promise.all([import('../../http/client.js'), import('../../http/schemas.js')]);
  const client = await ApiClient.connect(workspace);
  if (client && (await client.healthy())) {
    await client.post(`/api/v1/nodes/${encodeURIComponent(nodeId)}/remove`, {}, removalSchema);
  } else {
    const { Credentials } = await import('../../security/credentials.js');
    const credentials = await new Credentials(workspace.credentialsPath).load();
    if (!credentials.joinedNodes()[nodeId]) throw new UsageError(`no node ${nodeId} joined this cluster`, `joined: ${Object.keys(credentials.joinedNodes()).join(', ') || 'none'}`);
    await credentials.revoke(nodeId);
  }
  say(`removed node ${nodeId}: its credential is revoked, and its replicas go to other nodes`);
}
