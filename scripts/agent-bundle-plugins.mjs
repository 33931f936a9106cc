// esbuild plugins for the one-file agent (scripts/bundle-agent.mjs): what the bundle leaves out or loads late.
import { dirname } from 'node:path';

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
 *   pino's transports: log shipping in worker threads (thread-stream); the agent writes to stdout.
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
  { filter: /^\.\/(lib\/)?transport$/, importer: /[\\/]pino[\\/]/, contents: `module.exports = (${NOT_IN_AGENT})('ship logs through pino transports');` },
  // pino asks only whether it runs on the main thread, which the agent does.
  { filter: /^worker_threads$/, importer: /[\\/]pino[\\/]lib[\\/]tools\.js$/, contents: 'exports.isMainThread = true;' },
  // Node built-ins loaded at start for what the agent never or rarely does: on first use instead.
  ...[
    { builtin: 'zlib', importer: /[\\/]dockerode[\\/]lib[\\/]util\.js$/ }, // gzips build contexts
    { builtin: 'child_process', importer: /[\\/]commander[\\/]/ }, // runs external subcommands
  ].map(({ builtin, importer }) => ({
    filter: new RegExp(`^(node:)?${builtin}$`),
    importer,
    contents: `let loaded; module.exports = new Proxy({}, { get: (_, key) => (loaded ??= require('node:${builtin}'))[key] });`,
  })),
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
        const real = await b.resolve(args.path, { importer: args.importer, resolveDir: args.resolveDir, kind: args.kind, pluginData: { otto: 'real' } });
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
