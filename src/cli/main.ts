#!/usr/bin/env node
/**
 * The `otto` command. Start-up time is felt on every command, so this file loads nothing a command does not
 * need: `otto --version` answers before commander loads; everything else goes through program.ts, where each
 * command imports its own modules when it runs. The build bundles this and the CLI's client side
 * (scripts/build-cli.mjs).
 */
import module from 'node:module';
import { OTTO_VERSION } from '../version.js';

// Node >= 22.1 keeps what V8 compiled of each module in its compile cache (os.tmpdir()), so the next run of
// a command skips compiling; Node 20 has none, a no-op there.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  // What commander prints for it, without loading commander.
  process.stdout.write(`${OTTO_VERSION}\n`);
} else {
  const { runOtto } = await import('./program.js');
  await runOtto();
}
