// esbuild plugins for the one-file agent (scripts/bundle-agent.mjs): what the bundle leaves out or loads late.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const zodBesideModule = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'agent', 'zod-beside.js');

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
 *   the CLI's reading of otto.yaml for an agent started by hand: see below.
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
  },
  // Node built-ins loaded at start for what the agent never or rarely does: on first use instead.
  ...[
    { builtin: 'zlib', importer: /[\\/]dockerode[\\/]lib[\\/]util\.js$/ }, // gzips build contexts
    { builtin: 'child_process', importer: /[\\/]commander[\\/]/ }, // runs external subcommands
    { builtin: 'https', importer: /[\\/]docker-modem[\\/]lib[\\/]http\.js$/ }, // Docker engines over https://
  ].map(({ builtin, importer }) => ({
    filter: new RegExp(`^(node:)?${builtin}$`),
    importer,
    contents: `let loaded; module.exports = new Proxy({}, { get: (_, key) => (loaded ??= require('node:${builtin}'))[key] });`,
  })),
  // The one-file agent takes its settings as flags (the control plane passes them all); reading otto.yaml
  // is `otto agent -c` of the CLI. The config's schemas and YAML parser stay out of what every node holds.
  {
    filter: /^\.\/agent-settings\.js$/,
    importer: /[\\/]dist[\\/]cli[\\/]commands[\\/]agent\.js$/,
    contents:
      "import { UsageError } from '../../errors.js';\n" +
      "export function agentSettingsFromConfig() { throw new UsageError('the one-file agent reads no config: pass --cluster, --mqtt-url, --state-dir and --interval', 'or run otto agent -c otto.yaml, which reads them from the config'); }\n",
  },
];
export const withoutUnusedModules = {
  name: 'otto-without-unused-modules',
  setup(b) {
    stubs.forEach((stub, index) => {
      b.onResolve({ filter: stub.filter }, (args) => (stub.importer.test(args.importer) ? { path: String(index), namespace: 'otto-stub', pluginData: { resolveDir: args.resolveDir } } : undefined));
    });
    b.onLoad({ filter: /.*/, namespace: 'otto-stub' }, (args) => ({ contents: stubs[Number(args.path)].contents, loader: 'js', resolveDir: args.pluginData.resolveDir }));
  },
};

/** Where esbuild itself would resolve an import that a plugin of this file redirects (the plugin sees `otto: 'real'` and lets it be). */
function resolveUnredirected(b, args) {
  return b.resolve(args.path, { importer: args.importer, resolveDir: args.resolveDir, kind: args.kind, pluginData: { otto: 'real' } });
}

/**
 * Loaded only when used: mqtt.js reaches a broker through a SOCKS proxy only when MQTTJS_SOCKS_PROXY is
 * set, but its tcp transport loads the socks library (and ip-address) at start.
 */
const lazyModules = [{ filter: /^\.\/socks$/, importer: /[\\/]mqtt[\\/]build[\\/]lib[\\/]connect[\\/]/ }];
export const withLazyModules = {
  name: 'otto-lazy-modules',
  setup(b) {
    for (const lazy of lazyModules) {
      b.onResolve({ filter: lazy.filter }, async (args) => {
        if (!lazy.importer.test(args.importer) || args.pluginData?.otto === 'real') return undefined;
        const real = await resolveUnredirected(b, args);
        if (real.errors.length > 0) return { errors: real.errors };
        return { path: real.path, namespace: 'otto-lazy' };
      });
    }
    b.onLoad({ filter: /.*/, namespace: 'otto-lazy' }, (args) => ({
      contents: `exports.__esModule = true; exports.default = function () { return require(${JSON.stringify(args.path)}).default.apply(this, arguments); };`,
      loader: 'js',
      resolveDir: dirname(args.path),
    }));
  },
};

/**
 * debug, the DEBUG=mqttjs* tracing of mqtt.js, mqtt-packet and docker-modem, loads tty and supports-color at
 * start (0.15 MB of the agent's RSS) to colour lines nobody asked for. The bundle loads it only when DEBUG is
 * set; otherwise every debug('name') is a function that does nothing, as debug's own is when disabled.
 */
const debugWhenAsked = (realPath) => `
function off() {}
off.enabled = false;
function createDebug() { return off; }
off.extend = createDebug;
module.exports = process.env.DEBUG ? require(${JSON.stringify(realPath)}) : createDebug;
`;
export const withDebugOnlyWhenAsked = {
  name: 'otto-debug-only-when-asked',
  setup(b) {
    b.onResolve({ filter: /^debug$/ }, async (args) => {
      if (args.pluginData?.otto === 'real') return undefined;
      const real = await resolveUnredirected(b, args);
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'otto-debug' };
    });
    b.onLoad({ filter: /.*/, namespace: 'otto-debug' }, (args) => ({ contents: debugWhenAsked(args.path), loader: 'js', resolveDir: dirname(args.path) }));
  },
};

/**
 * zod is 580 kB of source, half the bundle, and an agent needs it only for an input its build-time checks
 * refuse, or to read a join token. Every `import 'zod'` of the bundle loads it from its own file beside the
 * bundle (src/agent/zod-beside.ts; scripts/bundle-agent.mjs builds the file), so its source is in an agent's
 * heap only once the agent has needed it.
 */
export const withZodBeside = {
  name: 'otto-zod-beside',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, () => ({ path: 'zod', namespace: 'otto-zod-beside' }));
    b.onResolve({ filter: /^zod[\\/]/ }, (args) => ({ errors: [{ text: `${args.importer} imports ${args.path}: the agent bundle takes zod only as 'zod' (scripts/agent-bundle-plugins.mjs)` }] }));
    b.onLoad({ filter: /.*/, namespace: 'otto-zod-beside' }, () => ({
      contents: `module.exports = require(${JSON.stringify(zodBesideModule)}).requireZodBeside(__filename);`,
      loader: 'js',
      resolveDir: dirname(zodBesideModule),
    }));
  },
};

/**
 * readable-stream (mqtt.js and bl use v4, dockerode's modem and tar-stream v3) is a copy of Node's own
 * streams for browsers and old Nodes: 290 kB of source held in the agent's heap and its classes built at
 * start. Both versions hand out Node's `stream` classes instead when READABLE_STREAM=disable; the bundle
 * makes that choice at build time, with the names v4 exports (the v3 users here take named classes too,
 * and Node's classes are left untouched).
 */
const NODE_STREAM_NAMES = ['_uint8ArrayToBuffer', '_isUint8Array', 'isDisturbed', 'isErrored', 'isReadable', 'Readable', 'Writable', 'Duplex', 'Transform', 'PassThrough', 'addAbortSignal', 'finished', 'destroy', 'pipeline', 'compose', 'promises'];
const nodeStream = `const Stream = require('stream');\n${NODE_STREAM_NAMES.map((name) => `exports.${name} = Stream.${name};`).join('\n')}\nexports.Stream = Stream.Stream;\n`;
export const withNodeStreams = {
  name: 'otto-node-streams',
  setup(b) {
    b.onResolve({ filter: /^readable-stream$/ }, async (args) => {
      if (args.pluginData?.otto === 'real') return undefined;
      const real = await resolveUnredirected(b, args);
      if (real.errors.length > 0) return { errors: real.errors };
      const major = JSON.parse(readFileSync(join(real.path.slice(0, real.path.lastIndexOf('node_modules/readable-stream/') + 'node_modules/readable-stream/'.length), 'package.json'), 'utf8')).version.split('.')[0];
      if (major !== '3' && major !== '4') return { errors: [{ text: `readable-stream ${major}.x at ${real.path}: check that Node's stream can stand in for it (scripts/agent-bundle-plugins.mjs)` }] };
      return { path: 'readable-stream', namespace: 'otto-node-stream' };
    });
    b.onLoad({ filter: /.*/, namespace: 'otto-node-stream' }, () => ({ contents: nodeStream, loader: 'js' }));
  },
};
