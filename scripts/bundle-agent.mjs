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

/**
 * Modules the agent's libraries load but the agent never runs, replaced in the bundle by a stub that says so
 * if it ever is called. Each one costs the agent RSS: its source stays in the heap and its top-level code
 * runs at start (npm run bench:agent measures the agent with 20 containers).
 *   ssh2: dockerode's ssh:// engines; the agent talks to the local socket. Instantiates WebAssembly at load.
 *   dockerode's session/buildkit: BuildKit image builds over gRPC (@grpc/grpc-js, protobufjs: 0.9 MB of
 *     source, loaded at start); the agent pulls images, it never builds one.
 *   mqtt.js's ws/wx/ali transports and worker-timers: WebSocket, mini-program and browser-worker code; the
 *     agent speaks mqtt:// and mqtts:// (tcp/tls) only.
 *   zod's locales: error messages in 40 languages besides English, which zod uses by default.
 */
const NOT_IN_AGENT = "(what) => function () { throw new Error('the Otto agent does not ' + what); }";
const stubs = [
  { filter: /^ssh2$/, importer: /./, contents: `const no = ${NOT_IN_AGENT}; exports.Client = no('reach Docker over ssh://');` },
  { filter: /^\.\/session$/, importer: /[\\/]dockerode[\\/]lib[\\/]/, contents: `module.exports = (${NOT_IN_AGENT})('build images (BuildKit sessions)');` },
  { filter: /^\.\/buildkit$/, importer: /[\\/]dockerode[\\/]lib[\\/]/, contents: `module.exports = { buildImageBuildkit: (${NOT_IN_AGENT})('build images (BuildKit)') };` },
  {
    filter: /^\.\/(ws|wx|ali)$/,
    importer: /[\\/]mqtt[\\/]build[\\/]lib[\\/]connect[\\/]/,
    contents: `const no = (${NOT_IN_AGENT})('speak MQTT over WebSocket: use mqtt:// or mqtts://'); exports.__esModule = true; exports.default = no; exports.streamBuilder = no; exports.browserStreamBuilder = no;`,
  },
  {
    filter: /^worker-timers$/,
    importer: /[\\/]mqtt[\\/]/,
    contents: `const no = (${NOT_IN_AGENT})('run in a browser'); exports.setInterval = no; exports.clearInterval = no; exports.setTimeout = no; exports.clearTimeout = no;`,
  },
  {
    filter: /^\.\.\/locales\/index\.js$/,
    importer: /[\\/]zod[\\/]v4[\\/]classic[\\/]/,
    contents: "export { default as en } from 'zod/v4/locales/en.js';",
    loader: 'js',
    esm: true,
  },
];
const withoutUnusedModules = {
  name: 'otto-without-unused-modules',
  setup(b) {
    stubs.forEach((stub, index) => {
      b.onResolve({ filter: stub.filter }, (args) => (stub.importer.test(args.importer) ? { path: String(index), namespace: 'otto-stub', pluginData: { resolveDir: args.resolveDir } } : undefined));
    });
    b.onLoad({ filter: /.*/, namespace: 'otto-stub' }, (args) => ({ contents: stubs[Number(args.path)].contents, loader: 'js', resolveDir: args.pluginData?.resolveDir ?? root }));
  },
};

/**
 * Loaded only when used: mqtt.js reaches a broker through a SOCKS proxy only when MQTTJS_SOCKS_PROXY is
 * set, but its tcp transport loads the socks library (and ip-address) at start.
 */
const lazyModules = [{ filter: /^\.\/socks$/, importer: /[\\/]mqtt[\\/]build[\\/]lib[\\/]connect[\\/]/ }];
const withLazyModules = {
  name: 'otto-lazy-modules',
  setup(b) {
    for (const lazy of lazyModules) {
      b.onResolve({ filter: lazy.filter }, async (args) => {
        if (!lazy.importer.test(args.importer) || args.pluginData?.otto === 'real') return undefined;
        const real = await b.resolve(args.path, { importer: args.importer, resolveDir: args.resolveDir, kind: args.kind, pluginData: { otto: 'real' } });
        if (real.errors.length > 0) return { errors: real.errors };
        return { path: real.path, namespace: 'otto-lazy' };
      });
    }
    b.onLoad({ filter: /.*/, namespace: 'otto-lazy' }, (args) => ({
      contents: `exports.__esModule = true; exports.default = function () { return require(${JSON.stringify(args.path)}).default.apply(this, arguments); };`,
      loader: 'js',
      resolveDir: root,
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
  keepNames: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  // CommonJS dependencies (dockerode, ssh2, pino...) call require() and read __dirname; an ESM file has
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
  plugins: [bakeVersion, withoutUnusedModules, withLazyModules],
});

const content = readFileSync(outfile);
const sha256 = createHash('sha256').update(content).digest('hex');
writeFileSync(`${outfile}.sha256`, `${sha256}\n`);
if (!values.quiet) {
  const kb = Math.round(statSync(outfile).size / 1024);
  process.stdout.write(`bundled agent ${version}: ${outfile} (${kb} kB, sha256 ${sha256.slice(0, 12)})\n`);
}
void result;
