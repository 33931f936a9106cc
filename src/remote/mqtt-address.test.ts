import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentCredentials as readAgentCredentials } from '../cli/commands/agent.js';
import { parseConfig } from '../config/load.js';
import { isLoopbackHost } from '../protocol/broker-url.js';
import { redactUrl, remoteMqttUrl, routableIPv4, splitMqttCredentials, withCredentials } from './mqtt-address.js';
import { agentArgs, agentCredentials, parseFacts, runtimeProblems, startScript, agentPaths } from './remote-agent.js';

const ifaces = {
  lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
  docker0: [{ address: '172.17.0.1', family: 'IPv4', internal: false }],
  eth0: [{ address: '192.168.2.1', family: 'IPv4', internal: false }],
} as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;

/** A config with one remote node, plain MQTT unless `tls` says otherwise. */
const mqtt = (over: Record<string, unknown>) =>
  ({
    mqtt: { host: 'localhost', port: 1883, embedded: true, tls: 'off', readers: [], ...over },
    nodes: [{ id: 'rpi-01', host: '10.0.0.9', user: 'pi', labels: {}, docker_url: 'unix:///var/run/docker.sock' }],
  }) as unknown as Parameters<typeof remoteMqttUrl>[0];

describe('the broker address of remote agents', () => {
  it('is mqtt.advertise, a routable mqtt.host, or this machine’s address for 0.0.0.0', () => {
    expect(remoteMqttUrl(mqtt({ advertise: '10.0.0.5' }), ifaces)).toBe('mqtt://10.0.0.5:1883');
    expect(remoteMqttUrl(mqtt({ host: '192.168.2.1' }), ifaces)).toBe('mqtt://192.168.2.1:1883');
    expect(remoteMqttUrl(mqtt({ host: '0.0.0.0', port: 1884 }), ifaces)).toBe('mqtt://192.168.2.1:1884');
    expect(remoteMqttUrl(mqtt({ host: '127.0.0.1' }), ifaces)).toBeUndefined();
    // mqtt.tls auto with a remote node: mqtts, on 8883 unless a port is given.
    expect(remoteMqttUrl(mqtt({ advertise: '10.0.0.5', tls: 'auto', port: undefined }), ifaces)).toBe('mqtts://10.0.0.5:8883');
    expect(remoteMqttUrl(mqtt({ advertise: '10.0.0.5', tls: 'auto' }), ifaces)).toBe('mqtts://10.0.0.5:1883');
    expect(routableIPv4(ifaces)).toBe('192.168.2.1');
  });

  it("carries a node's credential, and redacts the password for display", () => {
    const url = withCredentials(remoteMqttUrl(mqtt({ advertise: '10.0.0.5' }), ifaces)!, { username: 'rpi-01', password: 'p@ss:w/rd' });
    expect(url).toBe('mqtt://rpi-01:p%40ss%3Aw%2Frd@10.0.0.5:1883');
    expect(redactUrl(url)).toBe('mqtt://rpi-01:***@10.0.0.5:1883');
  });

  it('splits the credentials out of the URL again, exactly as given', () => {
    const split = (credentials?: { username: string; password: string }) => splitMqttCredentials(withCredentials(remoteMqttUrl(mqtt({ advertise: '10.0.0.5' }), ifaces)!, credentials));
    expect(split({ username: 'rpi-01', password: 'p@ss:w/rd' })).toEqual({ url: 'mqtt://10.0.0.5:1883', credentials: { username: 'rpi-01', password: 'p@ss:w/rd' } });
    expect(split({ username: 'ünï côde', password: 'x y' })).toEqual({ url: 'mqtt://10.0.0.5:1883', credentials: { username: 'ünï côde', password: 'x y' } });
    expect(split()).toEqual({ url: 'mqtt://10.0.0.5:1883' });
    expect(splitMqttCredentials('mqtt://u:pw@[fd00::1]:1884')).toEqual({ url: 'mqtt://[fd00::1]:1884', credentials: { username: 'u', password: 'pw' } });
  });

  it('knows loopback names', () => {
    for (const host of ['localhost', '127.0.0.1', '127.3.2.1', '::1', '[::1]']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '192.168.1.2', 'rpi.local']) expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('validation of the broker address for remote nodes', () => {
  const nodes = `nodes:
  - id: local
    host: localhost
  - id: rpi-01
    host: 192.168.2.7
    user: pi
`;
  const issues = (text: string) => {
    try {
      parseConfig(text, 'otto.yaml', {});
      return [];
    } catch (err) {
      return (err as { issues: string[] }).issues;
    }
  };

  it('rejects a loopback mqtt.host without mqtt.advertise, at mqtt.host', () => {
    expect(issues(`mqtt:\n  host: localhost\n${nodes}`)).toEqual([
      'otto.yaml:2:9 mqtt.host: remote node "rpi-01" cannot reach the broker at "localhost"; set mqtt.advertise to an address rpi-01 can route to',
    ]);
    expect(issues(`mqtt:\n  port: 1884\n${nodes}`)[0]).toMatch(/^otto\.yaml:\d+:\d+ mqtt\.host: remote node "rpi-01" cannot reach the broker at "localhost"/);
  });

  it('rejects an advertised address the embedded broker does not listen on', () => {
    expect(issues(`mqtt:\n  host: 127.0.0.1\n  advertise: 192.168.2.1\n${nodes}`)[0]).toContain(
      'mqtt.host: the embedded broker listens on "127.0.0.1" only, so remote node "rpi-01" cannot reach it at mqtt.advertise "192.168.2.1"',
    );
  });

  it('accepts mqtt.advertise (loopback in the test bed), 0.0.0.0, a routable host, or local nodes only', () => {
    expect(issues(`mqtt:\n  host: 127.0.0.1\n  advertise: 127.0.0.1\n${nodes}`)).toEqual([]);
    expect(issues(`mqtt:\n  host: 0.0.0.0\n  advertise: 192.168.2.1\n${nodes}`)).toEqual([]);
    expect(issues(`mqtt:\n  host: 192.168.2.1\n${nodes}`)).toEqual([]);
    expect(issues(`nodes:\n  - id: local\n    host: localhost\n  - id: other\n    host: 127.0.0.1\n`)).toEqual([]);
  });
});

describe('remote agent helpers', () => {
  it('parses node facts and finds what keeps a node from running the agent', () => {
    const facts = parseFacts('arch=armv6l\nos=Linux\nuser=pi\nuid=1000\nhome=/home/pi\nnode=/usr/bin/node\nnode_version=v16.20.0\nsystemd=running\n');
    expect(facts).toMatchObject({ arch: 'armv6l', node: '/usr/bin/node', nodeVersion: 'v16.20.0', systemd: true, uid: 1000 });
    expect(runtimeProblems('rpi-01', facts).map((p) => p.message)).toEqual([
      'rpi-01: architecture armv6l is not supported',
      "rpi-01: Node.js v16.20.0 at /usr/bin/node is too old (Otto's agent needs >= 18)",
    ]);
    expect(runtimeProblems('rpi-01', parseFacts('arch=aarch64\nos=Linux\nnode=/usr/bin/node\nnode_version=v18.19.0\n'))).toEqual([]);
    expect(runtimeProblems('x', parseFacts('arch=x86_64\nos=Linux\nnode=\n'))[0]!.message).toMatch(/no Node\.js runtime found/);
  });

  it('writes a start script that detaches the agent and records pid and version, with no secret in it', () => {
    const paths = agentPaths('/home/pi', 'home', 'rpi-01', '1.2.3');
    const settings = { cluster: 'home', mqttUrl: "mqtt://u:it's%20s3cret@h:1883", interval: '5s', dockerUrl: 'unix:///var/run/docker.sock' };
    const script = startScript('rpi-01', paths, { version: '1.2.3', path: '', zodPath: '', sha256: 'ab'.repeat(32), id: '1.2.3+abababababab' }, settings, '/usr/bin/node');
    expect(script).toContain(
      `nohup $SETSID "$NODE" --max-semi-space-size=1 --lite-mode --no-expose-wasm --no-icu-timezone-data --expose-gc /home/pi/.otto/agent/1.2.3/otto-agent.cjs agent --node rpi-01 --cluster home --mqtt-url mqtt://h:1883 --mqtt-credentials-file /home/pi/.otto/state/home-rpi-01/mqtt.json --docker-url`,
    );
    expect(script).toContain('OTTO_LOG_PRETTY=1 MALLOC_MMAP_THRESHOLD_=32768 MALLOC_TRIM_THRESHOLD_=32768 nohup $SETSID "$NODE" --max-semi-space-size=1');
    expect(script).not.toMatch(/s3cret|u:it|OTTO_MQTT_PASSWORD/);
    // What goes into the 0600 file instead.
    expect(agentCredentials(settings)).toEqual({ username: 'u', password: "it's s3cret" });
    expect(paths.mqttCredentials).toBe('/home/pi/.otto/state/home-rpi-01/mqtt.json');
    expect(script).toContain('--state-dir /home/pi/.otto/state/home-rpi-01');
    expect(script).toContain('</dev/null >>/home/pi/.otto/agent/home-rpi-01.log 2>&1 &');
    expect(script).toContain('mv -f /home/pi/.otto/agent/home-rpi-01.pid.tmp /home/pi/.otto/agent/home-rpi-01.pid');
    expect(script).toMatch(/echo '1\.2\.3\+abababababab [0-9a-f]{8}' > \/home\/pi\/\.otto\/agent\/home-rpi-01\.pid\.version/);
  });

  it('gives an agent of a broker without credentials no credentials file', () => {
    const paths = agentPaths('/home/pi', 'home', 'rpi-01', '1.2.3');
    const settings = { cluster: 'home', mqttUrl: 'mqtt://h:1883', interval: '5s', dockerUrl: 'unix:///var/run/docker.sock' };
    expect(agentArgs('rpi-01', paths, settings)).not.toContain('--mqtt-credentials-file');
    expect(agentCredentials(settings)).toBeUndefined();
  });
});

describe('otto agent: the broker credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otto-creds-'));
  const file = (name: string, text: string, mode = 0o600) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  it('come from --mqtt-credentials-file, else OTTO_MQTT_USERNAME / OTTO_MQTT_PASSWORD', () => {
    const env = { OTTO_MQTT_USERNAME: 'envuser', OTTO_MQTT_PASSWORD: 'envpw' };
    expect(readAgentCredentials(file('ok.json', '{"username":"otto","password":"pw"}'), env)).toEqual({ username: 'otto', password: 'pw' });
    expect(readAgentCredentials(undefined, env)).toEqual({ username: 'envuser', password: 'envpw' });
    expect(readAgentCredentials(undefined, {})).toBeUndefined();
  });

  it('warn about a file others can read, and refuse a missing or malformed one', () => {
    expect(readAgentCredentials(file('open.json', '{"username":"otto"}', 0o644), {})?.warning).toMatch(/can be read by other users \(mode 644\)/);
    expect(() => readAgentCredentials(join(dir, 'missing.json'), {})).toThrow(/cannot read .*missing\.json: ENOENT/);
    expect(() => readAgentCredentials(file('bad.json', 'user=otto'), {})).toThrow(/not JSON/);
    expect(() => readAgentCredentials(file('nouser.json', '{"password":"x"}'), {})).toThrow(/no string "username"/);
  });
});
