/** Runs a commander program; the one place where errors become output and exit codes. */
import { CommanderError, type Command } from 'commander';

export async function runProgram(program: Command): Promise<void> {
  // `otto node metrics --watch | head`: the reader is gone, which is no error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    // Exit now: a half-started component must not keep a failed command alive.
    process.exit(await reportError(err));
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
