/**
 * `otto config mosquitto` writes files a real Mosquitto runs from: every identity gets in with its own
 * password (hashed by Otto, not by mosquitto_passwd), anonymous clients do not, and a retained desired state
 * survives a restart of the broker. The spoofs themselves are in broker-spoofs.e2e.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { mosquittoAcl } from '../src/protocol/broker-auth.js';
import { topics } from '../src/protocol/topics.js';
import { mosquittoPasswordMatches } from '../src/security/mosquitto.js';
import { brokerLogin, freePort, nodeLogin, otto } from './support/cli.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';

const mode = (path: string) => statSync(path).mode & 0o777;

async function workspace(mqtt: string) {
  const dir = mkdtempSync(join(tmpdir(), 'otto-mosq-config-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'otto.yaml'),
    `cluster: { name: mosq }\nmqtt:\n  host: 127.0.0.1\n  port: ${port}\n${mqtt}nodes:\n  - { id: pi-a, host: localhost }\n  - { id: pi-b, host: localhost }\n`,
  );
  return { dir, port };
}

describe('otto config mosquitto', () => {
  let broker: Mosquitto | undefined;

  afterEach(async () => {
    await broker?.stop();
    broker = undefined;
  });

  it('writes a config, a password file and an ACL that a real Mosquitto enforces, and a retained desired state survives its restart', async () => {
    const { dir, port } = await workspace('  readers: [{ username: grafana, password: grafana-password }]\n');
    const result = await otto(['config', 'mosquitto'], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    const out = join(dir, '.otto', 'mosquitto');
    expect(result.stdout).toContain(`run it: mosquitto -c ${out}/mosquitto.conf`);
    expect(result.stdout).toContain('then set mqtt.embedded: false in otto.yaml: it still uses the embedded broker');
    expect(result.stdout).toContain('new broker credentials for pi-a, pi-b');
    expect([mode(out), mode(join(out, 'passwd')), mode(join(out, 'acl')), mode(join(out, 'data'))]).toEqual([0o700, 0o600, 0o600, 0o700]);
    expect(mode(join(dir, '.otto', 'credentials.json'))).toBe(0o600);
    expect(readFileSync(join(out, 'acl'), 'utf8')).toBe(mosquittoAcl(['grafana']));

    const logins = [brokerLogin(dir), nodeLogin(dir, 'pi-a'), nodeLogin(dir, 'pi-b'), { username: 'grafana', password: 'grafana-password' }];
    const hashes = new Map(
      readFileSync(join(out, 'passwd'), 'utf8')
        .split('\n')
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
    );
    expect([...hashes.keys()]).toEqual(logins.map((l) => l.username));
    for (const login of logins) expect(mosquittoPasswordMatches(login.password, hashes.get(login.username)!), login.username).toBe(true);

    broker = await startMosquitto({ port, configFile: join(out, 'mosquitto.conf') });
    const url = `mqtt://127.0.0.1:${port}`;
    for (const login of logins) await (await mqtt.connectAsync(url, { ...login, reconnectPeriod: 0 })).endAsync();
    await expect(mqtt.connectAsync(url, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/i);
    await expect(mqtt.connectAsync(url, { username: 'pi-a', password: nodeLogin(dir, 'pi-b').password, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/i);

    const control = await mqtt.connectAsync(url, { ...brokerLogin(dir), reconnectPeriod: 0 });
    await control.publishAsync(topics.desired('pi-a'), '{"revision":7}', { qos: 1, retain: true });
    await control.endAsync();
    await broker.stop();
    broker = await startMosquitto({ port, configFile: join(out, 'mosquitto.conf') });
    const nodeA = await mqtt.connectAsync(url, { ...nodeLogin(dir, 'pi-a'), reconnectPeriod: 0 });
    const retained = new Promise<string>((resolve) => nodeA.once('message', (_topic, payload) => resolve(payload.toString())));
    await nodeA.subscribeAsync(topics.desired('pi-a'), { qos: 1 });
    expect(await retained).toBe('{"revision":7}');
    await nodeA.endAsync();
  });

  it('reads the hashes mosquitto_passwd writes, and keeps the token and credentials when run again', async () => {
    const { dir } = await workspace('  embedded: false\n');
    const file = join(dir, 'reference');
    execFileSync('mosquitto_passwd', ['-c', '-b', file, 'someone', 'a password']);
    const reference = readFileSync(file, 'utf8').trim().split(':')[1]!;
    expect(mosquittoPasswordMatches('a password', reference)).toBe(true);

    const first = await otto(['config', 'mosquitto', '--out', 'broker'], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('otto.yaml uses an external broker (mqtt.embedded: false)');
    const credentials = readFileSync(join(dir, '.otto', 'credentials.json'), 'utf8');
    const token = readFileSync(join(dir, '.otto', 'token'), 'utf8');
    const again = await otto(['config', 'mosquitto', '--out', 'broker'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toContain('new broker credentials');
    expect(readFileSync(join(dir, '.otto', 'credentials.json'), 'utf8')).toBe(credentials);
    expect(readFileSync(join(dir, '.otto', 'token'), 'utf8')).toBe(token);
    expect(readFileSync(join(dir, 'broker', 'mosquitto.conf'), 'utf8')).toContain(`password_file ${join(dir, 'broker', 'passwd')}\n`);
  });

  it('refuses a reader name Mosquitto cannot hold, pointing at it in otto.yaml', async () => {
    const { dir } = await workspace('  readers:\n    - { username: "node:red", password: node-red-password }\n');
    const result = await otto(['config', 'mosquitto'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^otto: otto\.yaml:6:\d+ mqtt\.readers\[0\]\.username: "node:red": a Mosquitto username cannot hold ':'/);
    expect(result.stderr).toContain('hint: rename the reader in otto.yaml');
  });
});
