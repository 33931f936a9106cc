/** `otto service ls|ps|scale|restart|logs`, shaped after `docker service ...`. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { LoadedConfig } from '../../config/load.js';
import { InfrastructureError, UsageError } from '../../errors.js';
import { answers } from '../../http/answers.js';
import { ApiClient } from '../../http/client.js';
import type { ClusterStatus, Operation, ServiceView } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { age, errorLabel, printJson, replicaStateLabel, table } from '../format.js';
import { replicaNodeLabel } from '../migration-labels.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

/**
 * The running cluster's client and status. otto.yaml is read (with the values its variables had for the
 * control plane) only when it is not the config the control plane runs as it is: to warn about an edit
 * the control plane rejected, or to fail on a broken file as every command does. Loading it costs more
 * than the rest of the command (yaml, zod), and the answer already says which config runs.
 */
export async function connect(options: GlobalOptions): Promise<{ client: ApiClient; status: ClusterStatus; loaded?: LoadedConfig }> {
  const client = await ApiClient.connect(new Workspace(options.config));
  let status: ClusterStatus | undefined;
  let failure: unknown;
  try {
    status = await client?.get('/api/v1/status', answers.clusterStatus);
  } catch (err) {
    failure = err;
  }
  let loaded: LoadedConfig | undefined;
  if (!status || !(await runsAsItIs(options.config, status))) {
    const { loadRunningConfig } = await import('../running-config.js');
    loaded = await loadRunningConfig(options.config);
  }
  if (!client) throw new InfrastructureError('cluster is not running', 'start it with `otto cluster start`');
  if (!status) throw failure;
  return { client, status, loaded };
}

/** The control plane runs this very file, and took it without complaint. */
async function runsAsItIs(configPath: string, status: ClusterStatus): Promise<boolean> {
  if (status.cluster.config_error !== null) return false;
  const text = await readFile(configPath, 'utf8').catch(() => undefined);
  return text !== undefined && createHash('sha256').update(text).digest('hex') === status.cluster.config_hash;
}

export function findService(status: ClusterStatus, name: string): ServiceView {
  const service = status.services.find((s) => s.name === name);
  if (!service) throw new UsageError(`no such service: ${name}`, `services: ${status.services.map((s) => s.name).join(', ') || 'none'}`);
  return service;
}

export async function ls(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const { status } = await connect(options);
  if (options.json) return printJson(status.services);
  say(
    table(
      ['NAME', 'REPLICAS', 'IMAGE', 'NODES', 'STATE', 'HEALTH', 'PORTS'],
      status.services.map((s) => [s.name, `${s.running}/${s.desired}`, s.image, s.nodes.join(',') || '-', s.state, s.health, s.ports.join(',') || '-']),
    ),
  );
}

export async function ps(options: GlobalOptions & { json?: boolean }, name: string): Promise<void> {
  const { status } = await connect(options);
  const service = findService(status, name);
  if (options.json) return printJson(service.replicas);
  say(
    table(
      ['CONTAINER', 'NAME', 'NODE', 'STATE', 'HEALTH', 'ERROR'],
      service.replicas.map((r) => [r.container_id?.slice(0, 12) ?? '-', r.name, replicaNodeLabel(r, status.operation), replicaStateLabel(r), r.health, errorLabel(r)]),
    ),
  );
  if (service.hold) say(`! ${service.hold}`);
  for (const v of service.violations) {
    say(`! replica ${v.replica} on ${v.node} violates ${v.rule} (${v.value} for ${age(v.since)}${v.failing ? '' : ', back inside'}): action ${v.action}`);
  }
  for (const error of service.errors.filter((e) => e.includes('not placed'))) say(`! ${error}`);
}

function parseScaleArgs(args: string[]): { service: string; replicas: number }[] {
  if (args.length === 0) throw new UsageError('scale needs at least one NAME=REPLICAS', 'e.g. otto service scale web=3 api=2');
  return args.map((arg) => {
    const match = /^([^=]+)=(\d+)$/.exec(arg);
    if (!match) throw new UsageError(`invalid scale specifier "${arg}": expected NAME=REPLICAS`, 'e.g. otto service scale web=3');
    return { service: match[1]!, replicas: Number(match[2]) };
  });
}

const finished = (op: Operation) => !['queued', 'running'].includes(op.state);

/** Follows an operation until it ends, printing its progress (`2/5`), like `docker service update`. */
export async function follow(client: ApiClient, op: Operation, label: string): Promise<Operation> {
  let last = '';
  const tty = process.stdout.isTTY;
  for (;;) {
    const current = (await client.get('/api/v1/operations', answers.operationList)).find((o) => o.id === op.id) ?? op;
    const line = `${label}: ${current.state}${current.progress ? ` ${current.progress.done}/${current.progress.total}` : ''}`;
    if (line !== last) {
      if (tty) process.stdout.write(`\r\x1b[K${line}`);
      else say(line);
      last = line;
    }
    if (finished(current)) {
      if (tty) process.stdout.write('\n');
      return current;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

export function report(op: Operation, hint = `see \`otto service ps ${op.service}\` and \`otto cluster events\``): void {
  const failed = ['failed', 'paused', 'rolled-back'].includes(op.state);
  if (!failed) {
    say(op.message ?? `${op.service}: ${op.state}`);
    return;
  }
  throw new InfrastructureError(`${op.kind} ${op.service} ${op.state}: ${op.message ?? ''}`.trim(), hint);
}

export async function scale(options: GlobalOptions & { detach?: boolean }, args: string[]): Promise<void> {
  const requests = parseScaleArgs(args);
  const { client, status } = await connect(options);
  for (const request of requests) findService(status, request.service);
  // All are queued first, so they run in the order given whatever happens to the first.
  const operations = [];
  for (const request of requests) {
    operations.push(await client.post(`/api/v1/services/${encodeURIComponent(request.service)}/scale`, { replicas: request.replicas }, answers.operation));
  }
  for (const op of operations) {
    if (options.detach) {
      say(`${op.service}: scale to ${op.replicas} queued (operation ${op.id})`);
      continue;
    }
    report(await follow(client, op, `${op.service} scaling to ${op.replicas}`));
  }
}

export async function restart(options: GlobalOptions & { rolling?: boolean; detach?: boolean }, name: string): Promise<void> {
  const { client, status } = await connect(options);
  findService(status, name);
  const op = await client.post(`/api/v1/services/${encodeURIComponent(name)}/restart`, { rolling: Boolean(options.rolling) }, answers.operation);
  if (options.detach) {
    say(`${name}: ${op.kind} queued (operation ${op.id})`);
    return;
  }
  report(await follow(client, op, `${name} ${options.rolling ? 'rolling restart' : 'restart'}`));
}

export async function rollback(options: GlobalOptions & { detach?: boolean }, name: string): Promise<void> {
  const { client, status } = await connect(options);
  findService(status, name);
  const op = await client.post(`/api/v1/services/${encodeURIComponent(name)}/rollback`, {}, answers.operation);
  if (options.detach) {
    say(`${name}: rollback queued (operation ${op.id})`);
    return;
  }
  report(await follow(client, op, `${name} rollback`));
}

export async function logs(options: GlobalOptions & { follow?: boolean; tail?: string; replica?: string }, name: string): Promise<void> {
  // A bounded default, unlike `docker service logs`: months of a Pi's logs must not cross MQTT by accident.
  const DEFAULT_TAIL = 100;
  const tailText = options.tail ?? String(DEFAULT_TAIL);
  if (tailText !== 'all' && !/^\d{1,9}$/.test(tailText)) {
    throw new UsageError(`-n/--tail: expected a number of lines or "all", got "${tailText}"`, `e.g. otto service logs ${name} -n 20, or -n all for every line`);
  }
  const tail = tailText === 'all' ? undefined : Number(tailText);
  const connected = await connect(options);
  const service = findService(connected.status, name);
  const replicas = service.replicas.filter((r) => options.replica === undefined || String(r.replica) === options.replica);
  if (replicas.length === 0) {
    throw new UsageError(
      options.replica ? `${name} has no replica ${options.replica}` : `${name} has no replicas`,
      `replicas: ${service.replicas.map((r) => r.replica).join(', ') || 'none'}`,
    );
  }
  const [{ streamLogs }, { brokerCaFile }, { loadRunningConfig }] = await Promise.all([
    import('../logs-client.js'),
    import('../../config/transport.js'),
    import('../running-config.js'),
  ]);
  const loaded = connected.loaded ?? (await loadRunningConfig(options.config));
  const workspace = new Workspace(loaded.path);
  const caFile = brokerCaFile(loaded.config, workspace.tlsDir);
  const ca = caFile ? await readFile(caFile, 'utf8') : undefined;
  await streamLogs(loaded.config, await workspace.token(), replicas, { follow: Boolean(options.follow), tail, prefix: replicas.length > 1, ca });
}

