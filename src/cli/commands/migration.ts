/**
 * `otto service move`, `otto cluster rebalance` and `otto cluster plan`: replicas moved between nodes by
 * hand, spread back evenly, and what the control plane would move now and why (NFR violations, balance).
 * Moves run start-first as `migrate` operations of the control plane's queue; these commands queue them and,
 * like `otto service scale`, follow them unless --detach.
 */
import { InfrastructureError, UsageError } from '../../errors.js';
import { answers } from '../../http/answers.js';
import { ApiClient } from '../../http/client.js';
import type { MigrationPlan } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { printJson, table } from '../format.js';
import { VIOLATION_HEADERS, violationRow } from '../migration-labels.js';
import { connect, findService, follow, report } from './service.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

type PlannedMove = MigrationPlan['rebalance'][number];

/** The running control plane's client; only `.otto/` is read (no otto.yaml): these commands need no more. */
async function runningClient(options: GlobalOptions): Promise<ApiClient> {
  const client = await ApiClient.connect(new Workspace(options.config));
  if (!client) throw new InfrastructureError('cluster is not running', 'start it with `otto cluster start`');
  return client;
}

function parseReplica(text: string, service: string): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) {
    throw new UsageError(`--replica: expected a replica number (1, 2, ...), got "${text}"`, `see \`otto service ps ${service}\` for its replicas`);
  }
  return Number(text);
}

export async function move(options: GlobalOptions & { replica: string; to: string; detach?: boolean }, name: string): Promise<void> {
  const replica = parseReplica(options.replica, name);
  const { client, status } = await connect(options);
  const service = findService(status, name);
  if (!service.replicas.some((r) => r.replica === replica)) {
    throw new UsageError(`${name} has no replica ${replica}`, `its replicas: ${service.replicas.map((r) => r.replica).join(', ') || 'none'} (see \`otto service ps ${name}\`)`);
  }
  let op;
  try {
    op = await client.post(`/api/v1/services/${encodeURIComponent(name)}/move`, { replica, to: options.to }, answers.operation);
  } catch (err) {
    // The control plane says why the node cannot take it (not online, constraints, a port, a rule); the hint says where to look.
    if (err instanceof UsageError && !err.hint) throw new UsageError(err.message, `see \`otto node ls\` and \`otto cluster plan\` for the nodes ${name} may go to`);
    throw err;
  }
  const key = `${name}#${replica}`;
  const from = op.moves?.[0]?.from ?? '?';
  if (options.detach) {
    say(`${key}: move from ${from} to ${options.to} queued (operation ${op.id})`);
    return;
  }
  report(await follow(client, op, `${key} moving from ${from} to ${options.to}`));
}

const moveRows = (moves: PlannedMove[]) => moves.map((m) => [m.service, String(m.replica), m.from, m.to ?? '-', m.reason]);
const MOVE_HEADERS = ['SERVICE', 'REPLICA', 'FROM', 'TO', 'REASON'];

export async function rebalance(options: GlobalOptions & { dryRun?: boolean; detach?: boolean }): Promise<void> {
  const client = await runningClient(options);
  const result = await client.post('/api/v1/rebalance', { dry_run: Boolean(options.dryRun) }, answers.rebalanceResult);
  if (result.moves.length === 0) {
    say("nothing to move: each service's replicas are spread evenly over the nodes that may run them");
    return;
  }
  say(table(MOVE_HEADERS, moveRows(result.moves)));
  if (options.dryRun || !result.operation) {
    say();
    say(`dry run: nothing moved; \`otto cluster rebalance\` makes ${result.moves.length === 1 ? 'this move' : `these ${result.moves.length} moves`}`);
    return;
  }
  const op = result.operation;
  if (options.detach) {
    say(`rebalance queued (operation ${op.id})`);
    return;
  }
  report(await follow(client, op, 'rebalance'), 'see `otto cluster status` and `otto cluster events`');
}

export async function plan(options: GlobalOptions & { json?: boolean }): Promise<void> {
  const client = await runningClient(options);
  const planned = await client.get('/api/v1/plan', answers.migrationPlan);
  if (options.json) return printJson(planned);
  say(`migration: mode ${planned.mode}, strategy ${planned.strategy}`);
  if (planned.violations.length) {
    say();
    say(table(VIOLATION_HEADERS, planned.violations.map((v) => violationRow(v.service, v))));
  }
  // Blocked and waiting decisions are shown too: they say why a violating replica stays where it is.
  const steps = [...planned.nfr, ...planned.rebalance];
  say();
  if (steps.length > 0) say(table(['ACTION', ...MOVE_HEADERS], steps.map((step, i) => [step.action, ...moveRows(steps.slice(i, i + 1))[0]!])));
  const nfrMoves = planned.nfr.filter((d) => d.action === 'move' || d.action === 'restart').length;
  if (nfrMoves === 0 && planned.rebalance.length === 0) {
    if (steps.length > 0) say();
    say('nothing to move');
    return;
  }
  if (nfrMoves > 0) {
    say();
    say(planned.mode === 'auto' ? 'the control plane makes the NFR moves itself (migration.mode: auto)' : 'migration.mode is advise: the NFR moves are only reported; `otto service move` makes one');
  }
  if (planned.rebalance.length > 0) {
    if (nfrMoves === 0) say();
    say('`otto cluster rebalance` makes the rebalance moves');
  }
}
