#!/usr/bin/env node
// Bundles the agent (dist/agent/main.js: `otto agent` and nothing else) into ONE self-contained file, dist/agent/otto-agent-<version>.cjs,
// which is what `otto cluster start` uploads to remote nodes: a node needs Node.js >= 18, Docker and SSH,
// nothing else (no npm install, no node_modules). zod goes into a file of its own beside it,
// otto-agent-<version>.zod.cjs, which the bundle loads only when it needs zod (src/agent/zod-beside.ts).
//
//   node scripts/bundle-agent.mjs [--outdir DIR] [--version V]
//
// --version (or OTTO_AGENT_VERSION) overrides the version baked into the bundle; tests use it to make an
// "older" agent. Writes <file>.sha256 beside the bundle, the digest of both files: the control plane compares
// it with the copy on a node to know whether to upload again.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { agentBundleSha256 } from '../dist/agent/bundle.js';
import { zodFileOf } from '../dist/agent/zod-beside.js';
import { withDebugOnlyWhenAsked, withLazyModules, withNodeStreams, withZodBeside, withoutUnusedModules } from './agent-bundle-plugins.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// tsc alone writes the stand-in of dist/agent/input-checks.js: a bundle made from it would load zod for every input.
const { inputChecks } = await import('../dist/agent/input-checks.js');
if (Object.keys(inputChecks).length === 0) {
  process.stderr.write('dist/agent/input-checks.js has no predicates (tsc wrote its stand-in): run npm run build\n');
  process.exit(1);
}
const { values } = parseArgs({
  options: { outdir: { type: 'string' }, version: { type: 'string' }, quiet: { type: 'boolean' } },
});
const version = values.version ?? process.env.OTTO_AGENT_VERSION ?? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
if (!/^[0-9A-Za-z][0-9A-Za-z.+-]*$/.test(version)) throw new Error(`invalid version "${version}"`);
const outdir = resolve(values.outdir ?? join(root, 'dist', 'agent'));
const outfile = join(outdir, `otto-agent-${version}.cjs`);
const entry = join(root, 'dist', 'agent', 'main.js');
mkdirSync(outdir, { recursive: true });

/** src/version.ts reads ../package.json at run time; the bundle has no package.json beside it. */
const bakeVersion = {
  name: 'otto-version',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]version\.js$/ }, () => ({
      contents: `export const OTTO_VERSION = ${JSON.stringify(version)};\n`,
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  // CommonJS, not ESM: Node's ESM loader costs a process about 1 MB of RSS (npm run bench:agent), and the
  // CommonJS dependencies (dockerode, mqtt.js...) get the require() and __dirname they expect.
  format: 'cjs',
  minifyWhitespace: true,
  minifySyntax: true,
  // keepNames would redefine `name` on every function, which puts each one's properties in dictionary
  // mode: 0.9 MB of the agent's heap. Identifiers are not minified, so names stay as written except
  // where esbuild renames one to avoid a clash (Foo2).
  keepNames: false,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
};

const zodFile = zodFileOf(outfile);
const zodBuild = await build({
  ...common,
  stdin: { contents: "module.exports = require('zod');", resolveDir: root, sourcefile: 'otto-agent-zod.js' },
  outfile: zodFile,
  banner: { js: `// zod, for the Otto agent ${version} beside this file (otto-agent.cjs), which loads it when it needs it` },
  plugins: [withoutUnusedModules],
});

const result = await build({
  ...common,
  entryPoints: [entry],
  outfile,
  banner: { js: `// Otto agent ${version}; run with Node.js >= 18: node otto-agent.cjs agent --help (it loads zod from otto-agent.zod.cjs beside it)` },
  // Native optional add-ons: ssh2 (pulled in by dockerode) loads both inside try/catch and falls back to
  // pure JavaScript, so the bundle leaves them out and runs without them.
  external: ['cpu-features', '*.node'],
  inject: [join(root, 'scripts', 'agent-bundle-performance.mjs')],
  plugins: [bakeVersion, withoutUnusedModules, withLazyModules, withNodeStreams, withDebugOnlyWhenAsked, withZodBeside],
});

const sha256 = agentBundleSha256(readFileSync(outfile), readFileSync(zodFile));
writeFileSync(`${outfile}.sha256`, `${sha256}\n`);
if (!values.quiet) {
  const kb = Math.round(statSync(outfile).size / 1024);
  const zodKb = Math.round(statSync(zodFile).size / 1024);
  process.stdout.write(`bundled agent ${version}: ${outfile} (${kb} kB, and zod beside it: ${zodKb} kB; sha256 ${sha256.slice(0, 12)})\n`);
}
// A warning here is a bundle that may break at run time (import.meta in CommonJS is undefined).
if (result.warnings.length + zodBuild.warnings.length > 0) process.exit(1);
