/** `otto service ls|ps|scale|restart|logs`, shaped after `docker service ...`. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { LoadedConfig } from '../../config/load.js';
import { loadRunningConfig } from '../running-config.js';
import { InfrastructureError, UsageError } from '../../errors.js';
import { ApiClient } from '../../http/client.js';
import { clusterStatusSchema, operationSchema, type ClusterStatus, type Operation, type ServiceView } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { errorLabel, printJson, replicaStateLabel, table } from '../format.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

async function connect(options: GlobalOptions): Promise<{ client: ApiClient; loaded: LoadedConfig }> {
  const loaded = await loadRunningConfig(options.config);
  const client = await ApiClient.connect(new Workspace(loaded.path));
  if (!client) throw new InfrastructureError('cluster is not running', 'start it with `otto cluster start`');
  return { client, loaded };
}

const fetchStatus = (client: ApiClient) => client.get('/api/v1/status', clusterStatusSchema);

function findService(status: ClusterStatus, name: string): ServiceView {
  const service = status.services.find((s) => s.name === name);
  if (!service) throw new UsageError(`no such service: ${name}`, `services: ${status.services.map((s) => s.name).join(', ') || 'none'}`);
  return service;
}

export async function ls(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const { client } = await connect(options);
  const status = await fetchStatus(client);
  if (options.json) return printJson(status.services);
  say(
    table(
      ['NAME', 'REPLICAS', 'IMAGE', 'NODES', 'STATE', 'HEALTH', 'PORTS'],
      status.services.map((s) => [s.name, `${s.running}/${s.desired}`, s.image, s.nodes.join(',') || '-', s.state, s.health, s.ports.join(',') || '-']),
    ),
  );
}

export async function ps(options: GlobalOptions & { json?: boolean }, name: string): Promise<void> {
  const { client } = await connect(options);
  const service = findService(await fetchStatus(client), name);
  if (options.json) return printJson(service.replicas);
  say(
    table(
      ['CONTAINER', 'NAME', 'NODE', 'STATE', 'HEALTH', 'ERROR'],
      service.replicas.map((r) => [r.container_id?.slice(0, 12) ?? '-', r.name, r.node, replicaStateLabel(r), r.health, errorLabel(r)]),
    ),
  );
  if (service.hold) say(`! ${service.hold}`);
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
async function follow(client: ApiClient, op: Operation, label: string): Promise<Operation> {
  let last = '';
  const tty = process.stdout.isTTY;
  for (;;) {
    const current = (await client.get('/api/v1/operations', z.array(operationSchema))).find((o) => o.id === op.id) ?? op;
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

function report(op: Operation): void {
  const failed = ['failed', 'paused', 'rolled-back'].includes(op.state);
  if (!failed) {
    say(op.message ?? `${op.service}: ${op.state}`);
    return;
  }
  throw new InfrastructureError(`${op.kind} ${op.service} ${op.state}: ${op.message ?? ''}`.trim(), 'see `otto service ps ' + op.service + '` and `otto cluster events`');
}

export async function scale(options: GlobalOptions & { detach?: boolean }, args: string[]): Promise<void> {
  const requests = parseScaleArgs(args);
  const { client } = await connect(options);
  const status = await fetchStatus(client);
  for (const request of requests) findService(status, request.service);
  // All are queued first, so they run in the order given whatever happens to the first.
  const operations = [];
  for (const request of requests) {
    operations.push(await client.post(`/api/v1/services/${encodeURIComponent(request.service)}/scale`, { replicas: request.replicas }, operationSchema));
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
  const { client } = await connect(options);
  findService(await fetchStatus(client), name);
  const op = await client.post(`/api/v1/services/${encodeURIComponent(name)}/restart`, { rolling: Boolean(options.rolling) }, operationSchema);
  if (options.detach) {
    say(`${name}: ${op.kind} queued (operation ${op.id})`);
    return;
  }
  report(await follow(client, op, `${name} ${options.rolling ? 'rolling restart' : 'restart'}`));
}

export async function rollback(options: GlobalOptions & { detach?: boolean }, name: string): Promise<void> {
  const { client } = await connect(options);
  findService(await fetchStatus(client), name);
  const op = await client.post(`/api/v1/services/${encodeURIComponent(name)}/rollback`, {}, operationSchema);
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
  const { client, loaded } = await connect(options);
  const service = findService(await fetchStatus(client), name);
  const replicas = service.replicas.filter((r) => options.replica === undefined || String(r.replica) === options.replica);
  if (replicas.length === 0) {
    throw new UsageError(
      options.replica ? `${name} has no replica ${options.replica}` : `${name} has no replicas`,
      `replicas: ${service.replicas.map((r) => r.replica).join(', ') || 'none'}`,
    );
  }
  const [{ streamLogs }, { brokerCaFile }] = await Promise.all([import('../logs-client.js'), import('../../config/transport.js')]);
  const workspace = new Workspace(loaded.path);
  const caFile = brokerCaFile(loaded.config, workspace.tlsDir);
  const ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  await streamLogs(loaded.config, await workspace.token(), replicas, { follow: Boolean(options.follow), tail, prefix: replicas.length > 1, ca });
}

