/**
 * The README's quick start, as a reader runs it: `npm run example` (the CLI's part of it) on a copy of
 * examples/otto.yaml, then the commands the README lists, and the `service scale` example with the output it
 * shows. The commands and the expected output are read from README.md and package.json, so the test fails
 * when the README documents something that does not work. Run `npm run build` first.
 *
 * The copy gets its own cluster name and free ports (MQTT, HTTP API, web's host port) so it collides with
 * nothing else on this Docker engine; everything else is the example as shipped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { cliPath, containersOf, freePort, otto, removeClusterContainers, waitFor } from './support/cli.js';

const root = new URL('..', import.meta.url).pathname;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const CONFIG = 'examples/otto.yaml';

/** `npx otto ARGS   # comment` lines of the quick start, as argument lists. */
function quickStartCommands(): string[][] {
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
  return [...section.matchAll(/^npx otto (.+?)\s+#/gm)].map((m) => m[1]!.trim().split(/\s+/));
}

/** The `$ otto service scale ...` example: its arguments and the lines it prints. */
function scaleExample(): { args: string[]; output: string[] } {
  const match = /^\$ otto (service scale .+)\n((?:.+\n)+)/m.exec(readme);
  if (!match) throw new Error('README.md has no `$ otto service scale` example');
  return { args: match[1]!.trim().split(/\s+/), output: match[2]!.trimEnd().split('\n') };
}

/** What `npm run example` runs after building the test image: `node dist/cli/main.js ARGS`. */
function exampleStartArgs(): string[] {
  const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.example!;
  const command = script.split('&&').map((part) => part.trim()).find((part) => part.startsWith('node dist/cli/main.js '));
  if (!command) throw new Error(`package.json scripts.example does not run the CLI: ${script}`);
  return command.slice('node dist/cli/main.js '.length).split(/\s+/);
}

describe("the README's quick start on examples/otto.yaml", () => {
  const dir = mkdtempSync(join(tmpdir(), 'otto-readme-'));
  const cluster = `readme${Math.random().toString(36).slice(2, 7)}`;
  let mqttPort: number;
  let httpPort: number;
  let webPort: number;
  let foreground: ChildProcess | undefined;
  let foregroundExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let foregroundOutput = '';
  const run = (args: string[]) => otto(args, { cwd: dir });

  beforeAll(async () => {
    expect(existsSync(cliPath), `${cliPath} is missing: run npm run build`).toBe(true);
    [mqttPort, httpPort, webPort] = [await freePort(), await freePort(), await freePort()];
    const doc = parseDocument(readFileSync(join(root, CONFIG), 'utf8'));
    doc.setIn(['cluster', 'name'], cluster);
    doc.setIn(['mqtt', 'port'], mqttPort);
    doc.setIn(['http', 'port'], httpPort);
    const web = (doc.get('services') as YAMLSeq<YAMLMap>).items.find((service) => service.get('name') === 'web')!;
    expect(web.getIn(['ports', 0])).toBe('8080:80');
    web.setIn(['ports', 0], `${webPort}:80`);
    mkdirSync(join(dir, 'examples'));
    writeFileSync(join(dir, CONFIG), doc.toString());
  });

  afterAll(async () => {
    if (foreground && foreground.exitCode === null && foreground.signalCode === null) {
      foreground.kill('SIGTERM');
      await foregroundExit;
    }
    await removeClusterContainers(cluster);
    rmSync(dir, { recursive: true, force: true });
  });

  it('npm run example starts the cluster in the foreground and prints the dashboard address', async () => {
    const args = exampleStartArgs();
    expect(args).toEqual(['cluster', 'start', '-c', CONFIG]);
    foreground = spawn(process.execPath, [cliPath, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    foreground.stdout!.on('data', (data) => (foregroundOutput += data));
    foreground.stderr!.on('data', (data) => (foregroundOutput += data));
    foregroundExit = new Promise((resolve) => foreground!.once('exit', (code, signal) => resolve({ code, signal })));
    const dashboard = await waitFor(
      'the dashboard address',
      async () => {
        if (foreground!.exitCode !== null) throw new Error(`otto cluster start exited with ${foreground!.exitCode}: ${foregroundOutput}`);
        return new RegExp(`http://127\\.0\\.0\\.1:${httpPort}/#token=([0-9a-f]+)`).exec(foregroundOutput)?.[1];
      },
      30_000,
      100,
    );
    expect(dashboard).toBe(readFileSync(join(dir, 'examples', '.otto', 'token'), 'utf8').trim());
  });

  it('the quick start lists cluster status and cluster stop --down, on the example config', () => {
    expect(quickStartCommands()).toEqual([
      ['-c', CONFIG, 'cluster', 'status'],
      ['-c', CONFIG, 'cluster', 'stop', '--down'],
    ]);
  });

  it('cluster status shows the node online and both services running', async () => {
    const status = quickStartCommands()[0]!;
    const result = await waitFor(
      'both services running',
      async () => {
        const r = await run(status);
        return /^web\s+1\s+1\s+local\s+running\s+healthy\s/m.test(r.stdout) && /^worker\s+1\s+1\s+local\s+running\s/m.test(r.stdout) && r;
      },
      60_000,
      500,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`cluster "${cluster}" running`);
    expect(result.stdout).toMatch(/^local\s+online\s/m);
    expect(result.stdout).toMatch(new RegExp(`^web\\s.*\\s${webPort}:80$`, 'm'));
  });

  it("the web service answers on its published port (the README's curl)", async () => {
    expect(readme).toContain('curl http://localhost:8080/');
    const response = await fetch(`http://localhost:${webPort}/`);
    expect(response.status).toBe(200);
    expect((await response.text()).length).toBeGreaterThan(0);
  });

  it("the metrics stream reaches the README's mosquitto_sub", async () => {
    const [, user, password, topic] = /mosquitto_sub -u (\S+) -P (\S+) -t '([^']+)' -v/.exec(readme) ?? [];
    expect(topic).toBe('otto/nodes/+/metrics/#');
    const { stdout } = await promisify(execFile)('mosquitto_sub', ['-h', 'localhost', '-p', String(mqttPort), '-u', user!, '-P', password!, '-t', topic!, '-v', '-C', '1', '-W', '15']);
    const [received, ...payload] = stdout.trim().split(' ');
    expect(received).toMatch(/^otto\/nodes\/local\/metrics\//);
    expect(JSON.parse(payload.join(' '))).toMatchObject({ node_id: 'local' });
  });

  it('the documented service scale example succeeds and prints what the README shows', async () => {
    const example = scaleExample();
    expect(example.args).toEqual(['service', 'scale', 'worker=3']);
    const result = await run(['-c', CONFIG, ...example.args]);
    expect(result.code, result.stderr).toBe(0);
    // Not a terminal here, so the progress lines that a terminal overwrites stay; the README shows the
    // terminal's final lines, which end the output.
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.slice(-example.output.length)).toEqual(example.output);
    const status = await run(['-c', CONFIG, 'cluster', 'status']);
    expect(status.stdout).toMatch(/^worker\s+3\s+3\s+local\s+running\s/m);
    expect((await containersOf(cluster)).filter((c) => c.Labels['otto.service'] === 'worker')).toHaveLength(3);
  });

  it('cluster stop --down stops the foreground Otto and removes the containers', async () => {
    expect((await containersOf(cluster, true)).length).toBe(4);
    const stop = await run(quickStartCommands()[1]!);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toContain('removed 4 container(s)');
    expect(await foregroundExit).toEqual({ code: 0, signal: null });
    expect(await containersOf(cluster, true)).toEqual([]);
  });
});
