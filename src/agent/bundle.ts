/**
 * The one-file agent (scripts/bundle-agent.mjs): what remote nodes are sent, and what local agents run,
 * so every node runs the same program.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InfrastructureError } from '../errors.js';
import { OTTO_VERSION } from '../version.js';
import { zodFileOf } from './zod-beside.js';

/**
 * Node.js flags every agent runs with, however it is started (local supervisor, SSH start script and
 * systemd units, `otto node install --systemd` on a joined device): a 1 MB young generation and no
 * optimizing compiler. The agent does little work, so this costs no measurable CPU and saves a lot of RSS
 * (npm run bench:agent, 20 containers: about 105 MB without them when they were added). Lite mode has no
 * WebAssembly; saying so up front keeps V8 from printing a warning at every start. Local time (the log's
 * clock) comes from the C library instead of ICU's time zone data: 0.6 MB less. --expose-gc lets the agent
 * collect its garbage every minute (garbage-collection.ts). Measured and left out, no gain:
 * --optimize-for-size, --v8-pool-size=1, --single-threaded, --bytecode-old-age=1, --jitless.
 */
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=1', '--lite-mode', '--no-expose-wasm', '--no-icu-timezone-data', '--expose-gc'];

/**
 * Environment every agent runs with, beside AGENT_NODE_FLAGS: glibc's malloc hands blocks above 32 kB back
 * to the system at once (mmap) and trims its heap above 32 kB free, instead of keeping up to 32 MB for later.
 * 1.3 MB less RSS in npm run bench:agent, no measurable CPU. Other C libraries (musl) ignore them.
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '32768', MALLOC_TRIM_THRESHOLD_: '32768' };

/** The bundled agent this Otto ships (scripts/bundle-agent.mjs): the bundle and its zod file (zod-beside.ts). */
export interface AgentBundle {
  version: string;
  path: string;
  zodPath: string;
  /** Of the bundle and its zod file together (scripts/bundle-agent.mjs writes it to `<bundle>.sha256`). */
  sha256: string;
  /** What a node records as the running agent's version: `<version>+<sha256 prefix>`. */
  id: string;
}

export function loadAgentBundle(path: string, version: string): AgentBundle {
  const zodPath = zodFileOf(path);
  for (const file of [path, zodPath]) {
    if (!existsSync(file)) throw new InfrastructureError(`the agent bundle's file ${file} is missing`, 'build it: npm run build (or npm run bundle:agent)');
  }
  const sidecar = `${path}.sha256`;
  const sha256 = existsSync(sidecar) ? readFileSync(sidecar, 'utf8').trim() : agentBundleSha256(readFileSync(path), readFileSync(zodPath));
  return { version, path, zodPath, sha256, id: `${version}+${sha256.slice(0, 12)}` };
}

/** A stand-in for work on a node that uploads no bundle (check, stop, remove): the version names the paths. */
export function versionOnlyBundle(version: string): AgentBundle {
  return { version, path: '', zodPath: '', sha256: '', id: version };
}

/** One digest for the two files: a node with either one of another build uploads both again. */
export function agentBundleSha256(bundle: Uint8Array, zod: Uint8Array): string {
  return createHash('sha256').update(bundle).update(zod).digest('hex');
}

/** dist/agent/otto-agent-<version>.cjs, beside this module once compiled. */
export function localAgentBundle(version = OTTO_VERSION): AgentBundle {
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled: dist/agent. From sources (tests): src/agent -> dist/agent.
  const candidates = [join(here, `otto-agent-${version}.cjs`), join(here, '..', '..', 'dist', 'agent', `otto-agent-${version}.cjs`)];
  return loadAgentBundle(candidates.find((c) => existsSync(c)) ?? candidates[0]!, version);
}
