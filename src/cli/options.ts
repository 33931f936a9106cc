import type { Command } from 'commander';

/** Options every command takes. */
export interface GlobalOptions {
  config: string;
  debug?: boolean;
}

export function addGlobalOptions(program: Command): Command {
  return program
    .option('-c, --config <path>', 'cluster config file', process.env.OTTO_CONFIG ?? 'otto.yaml')
    .option('--debug', 'print stack traces of errors');
}

/** The command's own options merged with the global ones; commander has checked required options. */
export const globals = <T extends object = object>(command: Command) => command.optsWithGlobals() as GlobalOptions & T;
