/** `otto agent`, shared by the `otto` CLI and the one-file agent bundle that remote nodes run. */
import type { Command } from 'commander';
import { globals } from './options.js';

export function addAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the node agent of one node (otto cluster start runs it for you)')
    .option('--node <id>', 'node id (a node that joins gets it with its credential)')
    .option('--join [url]', 'join a cluster by dialing out (the line `otto node join-command` prints); without a URL, rejoin as saved')
    .option('--token <token>', 'the join token (needed the first time only)')
    .option('--node-id <id>', 'with a pool token: the node id to ask for (default: from the hostname)')
    .option('--cluster <name>', 'cluster name (default: from the config)')
    .option('--mqtt-url <url>', 'broker URL (default: from the config)')
    .option('--mqtt-credentials-file <path>', 'JSON file {"username","password"} for the broker (or env OTTO_MQTT_USERNAME / OTTO_MQTT_PASSWORD)')
    .option('--mqtt-ca-file <path>', "PEM of the CA the broker's certificate must be signed by (mqtts)")
    .option('--docker-url <url>', 'Docker engine (default: from the config)')
    .option('--state-dir <dir>', 'where the agent keeps its last desired state')
    .option('--interval <duration>', 'metrics interval until the control plane sends one')
    .action(async (_opts, cmd: Command) => (await import('./commands/agent.js')).agent(globals<{ node: string }>(cmd)));
}
