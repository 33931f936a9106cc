#!/usr/bin/env node
// Bundles the agent (dist/agent/main.js: `otto agent` and nothing else) into ONE self-contained file, dist/agent/otto-agent-<version>.mjs,
// which is what `otto cluster start` uploads to remote nodes: a node needs Node.js >= 18, Docker and SSH,
// nothing else (no npm install, no node_modules).
//
//   node scripts/bundle-agent.mjs [--outdir DIR] [--version V]
//
// --version (or OTTO_AGENT_VERSION) overrides the version baked into the bundle; tests use it to make an
// "older" agent. Writes <file>.sha256 beside the bundle: the control plane compares it with the copy on a
// node to know whether to upload again.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { withLazyModules, withNodeStreams, withoutUnusedModules } from './agent-bundle-plugins.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { outdir: { type: 'string' }, version: { type: 'string' }, quiet: { type: 'boolean' } },
});
const version = values.version ?? process.env.OTTO_AGENT_VERSION ?? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
if (!/^[0-9A-Za-z][0-9A-Za-z.+-]*$/.test(version)) throw new Error(`invalid version "${version}"`);
const outdir = resolve(values.outdir ?? join(root, 'dist', 'agent'));
const outfile = join(outdir, `otto-agent-${version}.mjs`);
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

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'esm',
  minifyWhitespace: true,
  minifySyntax: true,
  // keepNames would redefine `name` on every function, which puts each one's properties in dictionary
  // mode: 0.9 MB of the agent's heap. Identifiers are not minified, so names stay as written except
  // where esbuild renames one to avoid a clash (Foo2).
  keepNames: false,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  // CommonJS dependencies (dockerode, ssh2...) call require() and read __dirname; an ESM file has
  // none of them of its own.
  banner: {
    js: [
      `// Otto agent ${version}: one self-contained file; run with Node.js >= 18: node otto-agent.mjs agent --help`,
      "import { createRequire as __ottoCreateRequire } from 'node:module';",
      "import { fileURLToPath as __ottoFileURLToPath } from 'node:url';",
      "import { dirname as __ottoDirname } from 'node:path';",
      'const require = __ottoCreateRequire(import.meta.url);',
      // CommonJS code bundled into ESM still reads these (ssh2's WebAssembly poly1305 does, at load time).
      'const __filename = __ottoFileURLToPath(import.meta.url);',
      'const __dirname = __ottoDirname(__filename);',
    ].join('\n'),
  },
  // Native optional add-ons: ssh2 (pulled in by dockerode) loads both inside try/catch and falls back to
  // pure JavaScript, so the bundle leaves them out and runs without them.
  external: ['cpu-features', '*.node'],
  plugins: [bakeVersion, withoutUnusedModules, withLazyModules, withNodeStreams],
});

const content = readFileSync(outfile);
const sha256 = createHash('sha256').update(content).digest('hex');
writeFileSync(`${outfile}.sha256`, `${sha256}\n`);
if (!values.quiet) {
  const kb = Math.round(statSync(outfile).size / 1024);
  process.stdout.write(`bundled agent ${version}: ${outfile} (${kb} kB, sha256 ${sha256.slice(0, 12)})\n`);
}
void result;
