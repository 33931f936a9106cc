/**
 * In the one-file agent, zod comes from a file of its own beside the bundle (`otto-agent.zod.cjs` next to
 * `otto-agent.cjs`): the agent needs it only for an input its build-time checks refuse (inputs.ts) and for a
 * join token, so its 580 kB of source are not in every agent's heap. scripts/agent-bundle-plugins.mjs
 * turns the bundle's `import 'zod'` into requireZodBeside(the bundle's own file).
 */
import { createRequire } from 'node:module';
import { InfrastructureError } from '../errors.js';

export function zodFileOf(bundlePath: string): string {
  return bundlePath.replace(/\.cjs$/, '.zod.cjs');
}

export function requireZodBeside(bundlePath: string): unknown {
  const path = zodFileOf(bundlePath);
  try {
    return createRequire(bundlePath)(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw new InfrastructureError(`the agent's zod file ${path} is missing`, 'it goes beside the bundle: otto cluster start uploads both, or copy both by hand');
  }
}
