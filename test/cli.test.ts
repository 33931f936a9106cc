/** The CLI's contract: exit codes, one clear line and a hint per failure, stack traces only with --debug. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, otto } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'otto-cli-'));
const run = (...args: string[]) => otto(args, { cwd: dir });

describe('otto CLI', () => {
  it('prints its version and help with exit 0, and rejects an unknown command with exit 1', async () => {
    expect((await run('--version')).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await run('--help')).code).toBe(0);
    const bogus = await run('bogus');
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain("unknown command 'bogus'");
  });

  it('reports every config problem with file:line:col and a hint, exit 1, no stack trace', async () => {
    writeFileSync(
      join(dir, 'otto.yaml'),
      `nodes:
  - id: local
    host: localhost
services:
  - name: web
    imagee: nginx
`,
    );
    const result = await run('config', 'validate');
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n').filter(Boolean)).toEqual([
      'otto: otto.yaml:5:5 services[0].image: missing required key',
      'otto: otto.yaml:6:5 services[0].imagee: unknown key (did you mean "image"?)',
      'hint: fix the file and run `otto config validate` again',
    ]);
    const debug = await run('config', 'validate', '--debug');
    expect(debug.stderr).toMatch(/ConfigError.*\n\s+at /);
  });

  it('says when the config file is missing', async () => {
    const result = await run('-c', 'nope.yaml', 'cluster', 'init');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('otto: nope.yaml: file not found');
  });

  it('prints the JSON Schema shipped in schema/otto.schema.json', async () => {
    const result = await run('config', 'schema');
    expect(result.code).toBe(0);
    const shipped = readFileSync(new URL('../schema/otto.schema.json', import.meta.url), 'utf8');
    expect(JSON.parse(result.stdout)).toEqual(JSON.parse(shipped));
    expect(JSON.parse(result.stdout).properties.services.items.required).toContain('image');
  });

  describe('with a valid config', () => {
    let busy: Server;
    let busyPort: number;

    beforeAll(async () => {
      busyPort = await freePort();
      busy = createServer().listen(busyPort, '127.0.0.1');
      writeFileSync(join(dir, 'otto.yaml'), `cluster: { name: cli }\nmqtt: { host: 127.0.0.1, port: ${busyPort} }\nhttp: { port: ${await freePort()} }\nnodes: [{ id: local, host: localhost }]\n`);
    });
    afterAll(() => busy.close());

    it('status before init says how to initialize (exit 1)', async () => {
      const result = await run('cluster', 'status');
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('cluster not initialized');
      expect(result.stderr).toContain('hint: run `otto cluster init`');
    });

    it('metrics of a cluster that is not running is an infrastructure failure (exit 2)', async () => {
      expect((await run('cluster', 'init')).code).toBe(0);
      const result = await run('node', 'metrics');
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('otto: cluster is not running');
      expect((await run('node', 'metrics', 'ghost')).code).toBe(1);
    });

    it('a start whose broker port is taken fails with exit 2 and says why', async () => {
      const result = await run('cluster', 'start', '--detach');
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`cannot start the embedded MQTT broker on 127.0.0.1:${busyPort}: EADDRINUSE`);
      expect((await run('cluster', 'status')).stdout).toContain('is stopped');
    });

    it('an external broker that does not answer is exit 2', async () => {
      const port = await freePort();
      writeFileSync(join(dir, 'otto.yaml'), `cluster: { name: cli }\nmqtt: { host: 127.0.0.1, port: ${port}, embedded: false }\nhttp: { port: ${await freePort()} }\nnodes: [{ id: local, host: localhost }]\n`);
      const result = await run('cluster', 'start', '--detach');
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`MQTT broker mqtt://127.0.0.1:${port} unreachable`);
    });

    it('the agent without a config needs --cluster and --mqtt-url (exit 1)', async () => {
      const result = await otto(['agent', '--node', 'x', '-c', join(dir, 'absent.yaml')]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('--cluster and --mqtt-url are required');
    });
  });
});
