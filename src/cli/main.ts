#!/usr/bin/env node
/**
 * The `otto` command. Only commander loads at start-up; each command imports what it needs when it runs,
 * because start-up time is felt on every command. Errors become output here and nowhere else.
 */
import { Command } from 'commander';
import { addAgentCommand } from './agent-command.js';
import { addGlobalOptions, globals } from './options.js';
import { runProgram } from './run.js';
import { OTTO_VERSION } from '../version.js';

const program = addGlobalOptions(new Command('otto'))
  .description('Otto: container orchestration for small edge fleets')
  .version(OTTO_VERSION, '-v, --version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();


const cluster = program.command('cluster').description('initialize, start, stop and inspect the cluster');
cluster
  .command('init')
  .description('validate otto.yaml and prepare .otto/ (config snapshot, API token)')
  .action(async (_opts, cmd: Command) => (await import('./commands/cluster.js')).init(globals(cmd)));
cluster
  .command('start')
  .description('start the control plane and the agents of local nodes')
  .option('-d, --detach', 'run in the background and return once the control plane is ready')
  .action(async (_opts, cmd: Command) => (await import('./commands/cluster.js')).start(globals(cmd)));
cluster
  .command('stop')
  .description('stop agents and control plane (containers keep running)')
  .option('--down', "also stop and remove the services' containers")
  .action(async (_opts, cmd: Command) => (await import('./commands/cluster.js')).stop(globals(cmd)));
cluster
  .command('status')
  .description('show nodes and services')
  .option('--json', 'print JSON')
  .action(async (_opts, cmd: Command) => (await import('./commands/cluster.js')).status(globals(cmd)));

cluster
  .command('events')
  .description('show the cluster events (nodes, replicas, drift, config, operations)')
  .option('-f, --follow', 'keep printing new events until Ctrl-C')
  .option('-n, --tail <count>', 'only the last COUNT events')
  .option('--json', 'one JSON object per line')
  .action(async (_opts, cmd: Command) => (await import('./commands/events.js')).events(globals(cmd)));

const service = program.command('service').description('list, scale, restart services and read their logs');
service
  .command('ls')
  .alias('list')
  .description('list services with running/desired replicas')
  .option('--json', 'print JSON')
  .action(async (_opts, cmd: Command) => (await import('./commands/service.js')).ls(globals(cmd)));
service
  .command('ps')
  .description("list a service's replicas (containers, nodes, state)")
  .argument('<service>')
  .option('--json', 'print JSON')
  .action(async (name: string, _opts, cmd: Command) => (await import('./commands/service.js')).ps(globals(cmd), name));
service
  .command('scale')
  .description('scale one or more services: otto service scale web=3 api=2')
  .argument('<service=replicas...>')
  .option('-d, --detach', 'queue the change and return at once')
  .action(async (args: string[], _opts, cmd: Command) => (await import('./commands/service.js')).scale(globals(cmd), args));
service
  .command('restart')
  .description('restart the replicas of a service, all at once or one batch at a time')
  .argument('<service>')
  .option('--rolling', 'replace update.parallelism replicas at a time, waiting for each to be healthy')
  .option('-d, --detach', 'queue the restart and return at once')
  .action(async (name: string, _opts, cmd: Command) => (await import('./commands/service.js')).restart(globals(cmd), name));
service
  .command('rollback')
  .description('return a service to its previous spec, one batch at a time (like `docker service rollback`)')
  .argument('<service>')
  .option('-d, --detach', 'queue the rollback and return at once')
  .action(async (name: string, _opts, cmd: Command) => (await import('./commands/service.js')).rollback(globals(cmd), name));
service
  .command('logs')
  .description("print a service's logs, streamed from the agents that run its replicas")
  .argument('<service>')
  .option('-f, --follow', 'follow the logs until Ctrl-C')
  .option('-n, --tail <lines>', 'the last LINES lines of each replica, or "all" for every line (default: 100)')
  .option('--replica <index>', 'only this replica')
  .action(async (name: string, _opts, cmd: Command) => (await import('./commands/service.js')).logs(globals(cmd), name));

const node = program.command('node').description('inspect nodes');
node
  .command('list')
  .alias('ls')
  .description('list nodes with their state')
  .option('--json', 'print JSON')
  .action(async (_opts, cmd: Command) => (await import('./commands/node.js')).list(globals(cmd)));
node
  .command('metrics')
  .description('show live node and container metrics')
  .argument('[node]', 'only this node')
  .option('-w, --watch', 'refresh every metrics interval until Ctrl-C')
  .option('--json', 'print JSON')
  .action(async (nodeId: string | undefined, _opts, cmd: Command) =>
    (await import('./commands/node.js')).metrics(globals(cmd), nodeId),
  );

node
  .command('rotate-credentials')
  .description("give a node a new broker credential (the old one is refused from then on; other nodes are untouched)")
  .argument('<node>')
  .action(async (nodeId: string, _opts, cmd: Command) => (await import('./commands/node.js')).rotateCredentials(globals(cmd), nodeId));

node
  .command('join-command')
  .description('print the line to run on a device that joins by itself (a join: true node, or a node pool)')
  .argument('<node|pool>')
  .action(async (name: string, _opts, cmd: Command) => (await import('./commands/node.js')).joinCommand(globals(cmd), name));
node
  .command('remove')
  .alias('rm')
  .description('forget a node that joined through a pool: its credential is refused from then on')
  .argument('<node>')
  .action(async (nodeId: string, _opts, cmd: Command) => (await import('./commands/node.js')).remove(globals(cmd), nodeId));

// Remote nodes over SSH (src/remote, commands/remote.ts).
node
  .command('trust')
  .description("trust a remote node's SSH host key (adds it to .otto/known_hosts)")
  .argument('<node>')
  .option('-y, --yes', 'do not ask for confirmation')
  .option('--fingerprint <sha256>', 'trust the key only if its fingerprint is this one (SHA256:...)')
  .option('--replace', 'replace a key that CHANGED (only after checking the new one on the node)')
  .action(async (nodeId: string, _opts, cmd: Command) => (await import('./commands/remote.js')).trust(globals(cmd), nodeId));
node
  .command('install')
  .description("install a remote node's agent as a systemd service, so it survives a reboot")
  .argument('<node>')
  .option('--systemd', 'install a systemd unit (otto-agent-CLUSTER-NODE.service)')
  .option('--state-dir <dir>', 'on a device that joined by itself: its join folder (default ~/.otto/joined/CLUSTER)')
  .action(async (nodeId: string, _opts, cmd: Command) => (await import('./commands/remote.js')).install(globals(cmd), nodeId));
cluster
  .command('check')
  .description('check every node: SSH, key, host key, arch, Node.js, Docker, broker reachable from the node, clock')
  .option('--json', 'print JSON')
  .action(async (_opts, cmd: Command) => (await import('./commands/remote.js')).check(globals(cmd)));

const config = program.command('config').description('check otto.yaml; set up an external broker');
config
  .command('validate')
  .description('validate otto.yaml and report every problem with its line')
  .action(async (_opts, cmd: Command) => (await import('./commands/config.js')).validate(globals(cmd)));
config
  .command('schema')
  .description('print the JSON Schema of otto.yaml')
  .action(async () => (await import('./commands/config.js')).schema());
config
  .command('mosquitto')
  .description("write an external Mosquitto's config, password and ACL files that enforce the embedded broker's rules")
  .option('--out <dir>', 'folder for the files (default: .otto/mosquitto beside otto.yaml)')
  .action(async (_opts, cmd: Command) => (await import('./commands/config.js')).mosquitto(globals<{ out?: string }>(cmd)));

addAgentCommand(program);

program
  .addCommand(
    new Command('control-plane')
      .description('run the control plane in the foreground (used by `cluster start --detach`)')
      .action(async (_opts, cmd: Command) => (await import('./commands/cluster.js')).runControlPlane(globals(cmd))),
    { hidden: true },
  );

void runProgram(program);
