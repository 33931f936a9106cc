#!/usr/bin/env node
/**
 * The `otto` command. Only commander loads at start-up; each command imports what it needs when it runs,
 * because start-up time is felt on every command. Errors become output here and nowhere else.
 */
import { Command, CommanderError } from 'commander';
import { OTTO_VERSION } from '../version.js';

export interface GlobalOptions {
  config: string;
  debug?: boolean;
}

const program = new Command('otto')
  .description('Otto: container orchestration for small edge fleets')
  .version(OTTO_VERSION, '-v, --version')
  .option('-c, --config <path>', 'cluster config file', process.env.OTTO_CONFIG ?? 'otto.yaml')
  .option('--debug', 'print stack traces of errors')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

/** The command's own options merged with the global ones; commander has checked required options. */
const globals = <T extends object = object>(command: Command) => command.optsWithGlobals() as GlobalOptions & T;

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

const config = program.command('config').description('check otto.yaml');
config
  .command('validate')
  .description('validate otto.yaml and report every problem with its line')
  .action(async (_opts, cmd: Command) => (await import('./commands/config.js')).validate(globals(cmd)));
config
  .command('schema')
  .description('print the JSON Schema of otto.yaml')
  .action(async () => (await import('./commands/config.js')).schema());

program
  .command('agent')
  .description('run the node agent of one node (otto cluster start runs it for you)')
  .requiredOption('--node <id>', 'node id')
  .option('--cluster <name>', 'cluster name (default: from the config)')
  .option('--mqtt-url <url>', 'broker URL (default: from the config)')
  .option('--docker-url <url>', 'Docker engine (default: from the config)')
  .option('--state-dir <dir>', 'where the agent keeps its last desired state')
  .option('--interval <duration>', 'metrics interval until the control plane sends one')
  .action(async (_opts, cmd: Command) => (await import('./commands/agent.js')).agent(globals<{ node: string }>(cmd)));

program
  .addCommand(
    new Command('control-plane')
      .description('run the control plane in the foreground (used by `cluster start --detach`)')
      .action(async (_opts, cmd: Command) => (await import('./commands/cluster.js')).runControlPlane(globals(cmd))),
    { hidden: true },
  );

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    process.exitCode = await reportError(err);
  }
}

async function reportError(err: unknown): Promise<number> {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version are not failures.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 1;
  }
  const { OttoError, ConfigError } = await import('../errors.js');
  const debug = process.argv.includes('--debug');
  if (err instanceof OttoError) {
    const lines = err instanceof ConfigError ? err.issues : [err.message];
    for (const line of lines) process.stderr.write(`otto: ${line}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  process.stderr.write(`otto: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.stderr.write(debug && err instanceof Error ? `${err.stack}\n` : 'hint: this is a bug in Otto; run again with --debug and report the output\n');
  return 3;
}

void main();

