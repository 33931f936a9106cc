#!/usr/bin/env node
// After tsc: the CLI's start-up work done once, at build time. Two steps:
//
// 1. Predicates compiled from zod schemas (through the JSON Schema zod emits, src/protocol/check-codegen.ts):
//    dist/http/answer-checks.js for the API answers the CLI reads (src/http/schemas.ts), and
//    dist/agent/input-checks.js for the messages and files the agent reads (src/agent/inputs.ts; the agent
//    is bundled after this). With them the CLI and the agent check a value without loading zod; a value
//    they do not accept goes to zod (answers.ts, inputs.ts).
//
// 2. dist/cli/main.js becomes a bundle of the CLI's client side (BUNDLED below) with commander, zod and yaml:
//    a few files to resolve, read and compile instead of some hundred (zod alone is 60 ms unbundled, 20 ms
//    bundled), split so that each command loads its own part. The commands that run Otto itself (the
//    control plane, an agent, SSH) and every module they use stay the files tsc wrote, imported from the
//    bundle by their path, with their import.meta.url where it always was; so do errors.js (one class for
//    `instanceof OttoError`) and workspace.js. tsc's own main.js is kept as main.unbundled.js.
import { chmodSync, copyFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { inputJsonSchemas } from '../dist/agent/input-check-codegen.js';
import { answerJsonSchemas } from '../dist/http/answer-check-codegen.js';
import { checksModule, compileChecks } from '../dist/protocol/check-codegen.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const { values } = parseArgs({ options: { quiet: { type: 'boolean' } } });

// --- 1. schema checks

const checks = [
  { file: 'http/answer-checks.js', name: 'answerChecks', source: 'the zod schemas of src/http/schemas.ts (src/http/answers.ts)', schemas: answerJsonSchemas() },
  { file: 'agent/input-checks.js', name: 'inputChecks', source: 'the zod schemas of src/agent/inputs.ts', schemas: await inputJsonSchemas() },
];
for (const { file, name, source, schemas } of checks) {
  const compiled = compileChecks(schemas);
  for (const part of compiled.deferred) process.stderr.write(`warning: ${file}: check left to zod (slower, still correct): ${part}\n`);
  writeFileSync(join(dist, file), checksModule(compiled, name, source));
  rmSync(join(dist, `${file}.map`), { force: true });
}

// --- 2. the CLI bundle

/** Modules (paths in dist/; a folder takes all its modules) and packages bundled. */
const BUNDLED = [
  'cli/main.js',
  'cli/program.js',
  'cli/run.js',
  'cli/options.js',
  'cli/agent-command.js',
  'cli/format.js',
  'cli/running-config.js',
  'cli/status-while-down.js',
  'cli/logs-client.js',
  'cli/log-chunk-order.js',
  'cli/commands/status.js',
  'cli/commands/service.js',
  'cli/commands/migration.js',
  'cli/migration-labels.js',
  'cli/commands/node.js',
  'cli/commands/config.js',
  'http/client.js',
  'http/answers.js',
  'http/answer-checks.js',
  'http/schemas.js',
  'agent/pid-file.js',
  'agent/desired-store.js',
  'agent/desired-decode.js',
  'agent/inputs.js',
  'agent/input-checks.js',
  'agent/state-files.js',
  'security/credentials.js',
  'security/mosquitto.js',
  'security/join-token.js',
  'remote/mqtt-address.js',
  // For `node join-command`, which makes the cluster CA if there is none yet.
  'security/tls.js',
  'control-plane/tls-setup.js',
  'config/',
  'protocol/',
  'version.js',
].map((path) => join(dist, path));
const BUNDLED_PACKAGES = ['commander', 'zod', 'yaml'];
/** Left out on purpose: they run Otto (control plane, agent, SSH, the event log) with modules of their own. */
const COMMANDS_LEFT_OUT = ['cli/commands/cluster.js', 'cli/commands/agent.js', 'cli/commands/remote.js', 'cli/commands/events.js'].map((path) => join(dist, path));

const BUNDLE_MARK = '// otto: bundled by scripts/build-cli.mjs';
const outdir = join(dist, 'cli');
const entry = join(outdir, 'main.js');
const unbundledEntry = join(outdir, 'main.unbundled.js');
const chunkPrefix = 'bundled-';
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

const isBundled = (file) => BUNDLED.some((path) => (path.endsWith(sep) ? file.startsWith(path) : file === path));
const packageName = (specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
const toPosix = (path) => path.split(sep).join('/');

// A main.js that is not the bundle was just written by tsc: it is the entry. Otherwise, keep the last one.
if (!readFileSync(entry, 'utf8').includes(BUNDLE_MARK)) copyFileSync(entry, unbundledEntry);
for (const file of readdirSync(outdir)) if (file.startsWith(chunkPrefix)) rmSync(join(outdir, file));

const bundledOrNot = {
  name: 'otto-bundled-or-not',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const file = resolve(args.resolveDir, args.path);
      if (!file.startsWith(dist + sep) || isBundled(file)) return undefined;
      // Imported by its path from dist/cli/, where the bundle's files are.
      const path = toPosix(relative(outdir, file));
      return { path: path.startsWith('.') ? path : `./${path}`, external: true };
    });
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || !args.resolveDir.startsWith(dist + sep)) return undefined;
      return BUNDLED_PACKAGES.includes(packageName(args.path)) ? undefined : { path: args.path, external: true };
    });
    // zod's `z.locales` namespace (its messages in 40 languages, 390 kB) cannot be tree-shaken out of `z`, and
    // V8 compiles every byte of an ES module before it runs: Otto speaks English only (zod's default, which
    // zod imports apart), so the bundle's `z.locales` is empty.
    b.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({ contents: 'export {};\n', loader: 'js' }));
    // commander loads child_process at start-up for "executable subcommands", which otto has none of: it is
    // loaded on first use instead (about 3 ms of every command, --help included).
    b.onResolve({ filter: /^node:child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'otto-lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'otto-lazy' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, name) => require('node:child_process')[name] });",
      loader: 'js',
    }));
    // src/version.ts reads ../package.json at run time, a path the bundle does not have: baked in.
    b.onLoad({ filter: /[\\/]dist[\\/]version\.js$/ }, () => ({ contents: `export const OTTO_VERSION = ${JSON.stringify(version)};\n`, loader: 'js' }));
  },
};

const result = await build({
  entryPoints: [{ in: unbundledEntry, out: 'main' }],
  outdir,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: `${chunkPrefix}[name]-[hash]`,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Not keepNames: its __name() call on every function of commander costs about 1.5 ms at start-up.
  minifyWhitespace: true,
  minifySyntax: true,
  // For `node --enable-source-maps`: stack traces of --debug in the sources (through tsc's maps).
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
  // commander and yaml are CommonJS: their require() calls need a require of the ESM file they end up in.
  banner: { js: `${BUNDLE_MARK}\nimport { createRequire as __ottoCreateRequire } from 'node:module';\nconst require = __ottoCreateRequire(import.meta.url);` },
  plugins: [bundledOrNot],
});
chmodSync(entry, 0o755);

// A module the bundle imports by its path must not load, in the same process, its own copy of something
// bundled (a second zod: 60 ms more, and classes that fail `instanceof`). The commands left out are exempt:
// a process that runs one of them loads nothing of the bundle but the program.
const bundledInputs = new Set(Object.keys(result.metafile.inputs).map((input) => resolve(root, input)));
const importedByPath = new Set();
for (const { imports } of Object.values(result.metafile.inputs)) {
  for (const imported of imports) {
    if (!imported.external || !imported.path.startsWith('.')) continue;
    const file = resolve(outdir, imported.path);
    if (!COMMANDS_LEFT_OUT.includes(file)) importedByPath.add(file);
  }
}
const closure = await build({
  entryPoints: [...importedByPath],
  bundle: true,
  write: false,
  outdir: join(root, 'node_modules', '.cache', 'otto-build-cli'),
  platform: 'node',
  format: 'esm',
  packages: 'external',
  metafile: true,
  logLevel: 'error',
});
const doubles = [];
for (const [input, { imports }] of Object.entries(closure.metafile.inputs)) {
  const file = resolve(root, input);
  if (bundledInputs.has(file)) doubles.push(`${relative(root, file)} (bundled too)`);
  for (const imported of imports) if (imported.external && BUNDLED_PACKAGES.includes(packageName(imported.path))) doubles.push(`${relative(root, file)} imports ${imported.path} (bundled too)`);
}
if (doubles.length > 0) {
  throw new Error(
    `the CLI bundle imports by path modules that load a second copy of what it bundles:\n  ${doubles.join('\n  ')}\n` +
      'add the module that imports them to BUNDLED in scripts/build-cli.mjs, or import it only where nothing bundled runs',
  );
}

if (!values.quiet) {
  const outputs = Object.entries(result.metafile.outputs).map(([file, output]) => `${relative(root, file)} ${Math.round(output.bytes / 1024)} kB`);
  process.stdout.write(`bundled the CLI: ${outputs.join(', ')}\n`);
}
