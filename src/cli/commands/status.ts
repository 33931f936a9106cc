/**
 * `otto cluster status`: the running control plane's answer, or what is known while it is not running
 * (status-while-down.ts). Kept apart from the other cluster commands, which load the config: this one is
 * run all the time and needs only `.otto/` (control-plane.json, token) while the cluster runs.
 */
import { UsageError } from '../../errors.js';
import { answers } from '../../http/answers.js';
import { ApiClient } from '../../http/client.js';
import type { ClusterStatus } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { ago, nodeStateLabel, percent, printJson, table } from '../format.js';
import { VIOLATION_HEADERS, migrationLabel, violationRow } from '../migration-labels.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

/** The running control plane's status; undefined when none runs. */
export async function fetchStatus(workspace: Workspace): Promise<ClusterStatus | undefined> {
  const client = await ApiClient.connect(workspace);
  return client?.get('/api/v1/status', answers.clusterStatus);
}

export async function status(options: GlobalOptions & { json?: boolean }): Promise<void> {
  // The control plane says everything: otto.yaml is read only when it does not answer.
  const workspace = new Workspace(options.config);
  const live = await fetchStatus(workspace);
  if (live) {
    if (options.json) printJson({ running: true, ...live });
    else printStatus(live);
    return;
  }
  if (!workspace.isInitialized()) {
    throw new UsageError(`cluster not initialized (no ${workspace.dir})`, 'run `otto cluster init`');
  }
  const { statusWhileDown } = await import('../status-while-down.js');
  await statusWhileDown(workspace, Boolean(options.json));
}

export function printStatus(live: ClusterStatus, header?: string): void {
  const { cluster } = live;
  const online = live.nodes.filter((n) => n.online).length;
  const away = ['unreachable', 'lost'].map((state) => [state, live.nodes.filter((n) => n.state === state).length] as const).filter(([, n]) => n > 0);
  say(
    header ??
      `cluster "${cluster.name}" running (control plane pid ${cluster.pid}, since ${ago(cluster.started_at)}), ${online}/${live.nodes.length} nodes online${away.map(([state, n]) => `, ${n} ${state}`).join('')}`,
  );
  say(`MQTT ${cluster.mqtt_url}${cluster.embedded_broker ? ' (embedded)' : ''}`);
  say();
  say(
    table(
      ['NODE', 'STATE', 'LAST SEEN', 'CPU', 'MEMORY', 'DISK', 'DOCKER'],
      live.nodes.map((n) => [
        n.id,
        nodeStateLabel(n),
        ago(n.last_seen),
        percent(n.metrics?.cpu_percent),
        percent(n.metrics?.memory_percent),
        percent(n.metrics?.disk_percent),
        n.docker ? (n.docker.reachable ? `yes (${n.docker.version ?? '?'})` : 'unreachable') : '-',
      ]),
    ),
  );
  say();
  say(
    table(
      ['SERVICE', 'DESIRED', 'RUNNING', 'NODE', 'STATE', 'HEALTH', 'PORTS'],
      live.services.map((s) => [
        s.name,
        s.desired,
        s.stale > 0 ? `${s.running} (${s.stale} stale)` : s.running,
        s.nodes.join(',') || '-',
        withMigration(s.state, migrationLabel(s, live.operation)),
        s.health,
        s.ports.join(',') || '-',
      ]),
    ),
  );
  const violations = live.services.flatMap((s) => s.violations.map((v) => violationRow(s.name, v)));
  if (violations.length) {
    say();
    say(table(VIOLATION_HEADERS, violations));
  }
  if (live.operation) {
    const op = live.operation;
    const progress = op.progress ? ` ${op.progress.done}/${op.progress.total}` : '';
    const moves = op.moves?.length ? `: ${op.moves.map((m) => `${m.service}#${m.replica} ${m.from} -> ${m.to} ${m.state}`).join(', ')}` : '';
    say();
    say(`operation: ${op.kind} ${op.service}${op.kind === 'scale' ? `=${op.replicas}` : ''}${progress} (${op.state})${moves}`);
  }
  if (live.queue.length) say(`queue: ${live.queue.map((op) => `${op.kind} ${op.service}${op.kind === 'scale' ? `=${op.replicas}` : ''}`).join(', ')}`);
  if (live.drift.length) {
    say(`drift: ${live.drift.map((d) => `${d.service} ${d.running}/${d.desired} running since ${ago(d.since)}`).join('; ')}`);
  }
  const problems = [
    ...(live.cluster.config_error ? [`otto.yaml edit rejected, previous config still running: ${live.cluster.config_error}`] : []),
    ...live.nodes.filter((n) => n.docker && !n.docker.reachable).map((n) => `node ${n.id}: Docker unreachable: ${n.docker?.error}`),
    ...live.services.filter((s) => s.hold).map((s) => `${s.name}: ${s.hold} (otto.yaml's spec is not rolled out again until you change it)`),
    ...live.services.flatMap((s) => s.errors),
  ];
  if (problems.length) {
    say();
    for (const problem of problems) say(`! ${problem}`);
  }
}

const withMigration = (state: string, migration: string | undefined) => (migration ? `${state} (${migration})` : state);
