import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadConfig, parseConfig, resolveServiceEnv } from './load.js';

/** The issues of the ConfigError that parsing `text` throws. */
function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'otto.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected the config to be rejected');
}

const twoNodes = `nodes:
  - id: local
    host: localhost
  - id: rpi-01
    host: localhost
`;

describe('parseConfig accepts', () => {
  it('the two-node config of seed 002', () => {
    const config = parseConfig(
      `cluster:
  name: home-cluster

mqtt:
  host: 192.168.2.1  # Control plane IP
  port: 1883

nodes:
  - id: local
    host: localhost
    user: null  # No SSH needed
    docker_url: unix:///var/run/docker.sock

  - id: rpi-01
    host: 192.168.2.7
    user: lolosioann  # SSH user
    docker_url: unix:///var/run/docker.sock

services:
  - name: test-nginx
    image: nginx:alpine
    node: rpi-01
    ports:
      - "8080:80"
    environment:
      NGINX_HOST: localhost

  - name: test-redis
    image: redis:alpine
    node: local
    command: redis-server --appendonly yes
`,
      'otto.yaml',
      {},
    );
    expect(config.cluster.name).toBe('home-cluster');
    expect(config.nodes.map((node) => [node.id, node.user])).toEqual([
      ['local', null],
      ['rpi-01', 'lolosioann'],
    ]);
    expect(config.services[0]).toMatchObject({ node: 'rpi-01', ports: ['8080:80'], environment: { NGINX_HOST: 'localhost' } });
    expect(config.services[1]!.command).toBe('redis-server --appendonly yes');
  });

  it('and fills in the defaults', () => {
    const config = parseConfig(`${twoNodes}services:\n  - name: web\n    image: nginx\n`, 'otto.yaml', {});
    expect(config.services[0]).toMatchObject({ restart: 'unless-stopped', replicas: 1, ports: [], environment: {} });
    expect(config.metrics.interval).toBe('5s');
    expect(config.mqtt).toEqual({ host: 'localhost', embedded: true, readers: [], tls: 'auto' });
    expect(config.cluster.name).toBe('default');
  });

  it('a service with neither node nor placement in a cluster of several nodes', () => {
    expect(() => parseConfig(`${twoNodes}services:\n  - name: web\n    image: nginx\n    ports: ["80:80"]\n`, 'otto.yaml', {})).not.toThrow();
  });

  it('the same host port on different nodes, protocols or addresses', () => {
    const text = `${twoNodes}services:
  - name: a
    image: x
    node: local
    ports: ["8080:80", "53:53/udp", "127.0.0.1:9000:9000"]
  - name: b
    image: x
    node: rpi-01
    ports: ["8080:80"]
  - name: c
    image: x
    node: local
    ports: ["53:53/tcp", "127.0.0.2:9000:9000"]
`;
    expect(() => parseConfig(text, 'otto.yaml', {})).not.toThrow();
  });

  it('environment as a list', () => {
    const config = parseConfig(`${twoNodes}services:\n  - name: web\n    image: x\n    environment: ["A=1", "B", "C=x=y"]\n`, 'otto.yaml', {});
    expect(resolveServiceEnv(config.services[0]!)).toEqual({ A: '1', B: '', C: 'x=y' });
  });

  it('examples/otto.yaml', async () => {
    const { config } = await loadConfig(join(import.meta.dirname, '../../examples/otto.yaml'), {});
    expect(config.cluster.name).toBe('demo');
    expect(config.services.map((service) => service.name)).toEqual(['web', 'worker']);
  });
});

describe('interpolation', () => {
  const service = (value: string) => `${twoNodes}services:\n  - name: web\n    image: nginx\n    environment:\n      TOKEN: ${value}\n`;
  const tokenOf = (value: string, env: NodeJS.ProcessEnv) =>
    resolveServiceEnv(parseConfig(service(value), 'otto.yaml', env).services[0]!).TOKEN;

  it('substitutes ${VAR} from the environment', () => {
    expect(tokenOf('abc-${TOKEN}', { TOKEN: 's3cret' })).toBe('abc-s3cret');
  });

  it('uses the default of ${VAR:-default} when the variable is unset or empty, else the variable', () => {
    expect(tokenOf('${TOKEN:-none}', {})).toBe('none');
    expect(tokenOf('${TOKEN:-none}', { TOKEN: '' })).toBe('none');
    expect(tokenOf('${TOKEN:-none}', { TOKEN: 'set' })).toBe('set');
  });

  it('reads $$ as a literal $', () => {
    expect(tokenOf('"cost: $$5 ${TOKEN:-x}"', {})).toBe('cost: $5 x');
  });

  it('keeps a value that looks like a number a string where strings are allowed', () => {
    expect(tokenOf('${TOKEN}', { TOKEN: '1.10' })).toBe('1.10');
  });

  it('turns an unquoted variable into a number where a number is expected', () => {
    const config = parseConfig(`mqtt:\n  port: \${MQTT_PORT:-1884}\n${twoNodes}`, 'otto.yaml', {});
    expect(config.mqtt.port).toBe(1884);
  });

  it('rejects an unset variable without a default, pointing at the ${', () => {
    expect(issuesOf(service('Bearer ${TOKEN}'))).toEqual([
      'otto.yaml:10:21 services[0].environment.TOKEN: variable "TOKEN" is not set (use ${TOKEN:-default} for a default)',
    ]);
  });

  it('rejects a malformed reference', () => {
    expect(issuesOf(service('${TOKEN'))).toEqual(['otto.yaml:10:14 services[0].environment.TOKEN: unterminated "${TOKEN" (missing "}")']);
  });
});

describe('parseConfig rejects', () => {
  it('malformed YAML, with its position', () => {
    expect(issuesOf('nodes:\n  - id: local\n    host: localhost\n   user: me\n')).toEqual([
      'otto.yaml:4:4 Sequence item without - indicator',
    ]);
    expect(issuesOf('mqtt:\n  host: a\n port: 1\n')).toEqual(['otto.yaml:3:2 All mapping items must start at the same column']);
    expect(issuesOf('nodes: [a, b\n')).toEqual(['otto.yaml:2:1 Flow sequence in block collection must be sufficiently indented and end with a ]']);
  });

  it('an empty file', () => {
    expect(issuesOf('# nothing yet\n')).toEqual(['otto.yaml:1:1 the file is empty; it needs at least a "nodes" list']);
  });

  it('an unknown key, suggesting the one meant', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    imagee: nginx\n`)).toEqual([
      'otto.yaml:7:5 services[0].image: missing required key',
      'otto.yaml:8:5 services[0].imagee: unknown key (did you mean "image"?)',
    ]);
  });

  it('an unknown key with no close match, listing the allowed ones', () => {
    expect(issuesOf(`cluster:\n  title: x\n${twoNodes}`)).toEqual(['otto.yaml:2:3 cluster.title: unknown key (expected one of: name)']);
  });

  it('a value of the wrong type', () => {
    expect(issuesOf(`mqtt:\n  host: broker\n  port: "1883"\n${twoNodes}`)).toEqual(['otto.yaml:3:9 mqtt.port: expected number, got string']);
  });

  it('a value out of range or not an integer', () => {
    expect(issuesOf(`http:\n  port: 0\n${twoNodes}services:\n  - name: web\n    image: x\n    replicas: 1.5\n`)).toEqual([
      'otto.yaml:2:9 http.port: expected number >= 1, got 0',
      'otto.yaml:11:15 services[0].replicas: expected integer, got 1.5',
    ]);
  });

  it('an unknown enum value, suggesting the one meant', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n    restart: unless-stoped\n`)).toEqual([
      'otto.yaml:9:14 services[0].restart: expected one of "no", "always", "on-failure", "unless-stopped", got "unless-stoped" (did you mean "unless-stopped"?)',
    ]);
  });

  it('a bad duration or size, saying what was found', () => {
    expect(issuesOf(`metrics:\n  interval: 5 sec\n${twoNodes}services:\n  - name: web\n    image: x\n    memory: lots\n`)).toEqual([
      'otto.yaml:2:13 metrics.interval: expected a duration such as "500ms", "5s", "1m30s", got "5 sec"',
      'otto.yaml:11:13 services[0].memory: expected a size such as "256m", "1g", "512MB" or a number of bytes, got "lots"',
    ]);
  });

  it('a config without nodes', () => {
    expect(issuesOf('cluster:\n  name: x\n')).toEqual(['otto.yaml:1:1 nodes: missing required key']);
    expect(issuesOf('nodes: []\n')).toEqual(['otto.yaml:1:8 nodes: expected at least one node']);
  });

  it('duplicate node ids', () => {
    expect(issuesOf(`${twoNodes}  - id: local\n    host: 127.0.0.1\n`)).toEqual([
      'otto.yaml:6:9 nodes[2].id: duplicate node id "local" (first at otto.yaml:2:9)',
    ]);
  });

  it('duplicate service names', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n  - name: web\n    image: y\n`)).toEqual([
      'otto.yaml:9:11 services[1].name: duplicate service name "web" (first at otto.yaml:7:11)',
    ]);
  });

  it('a service on an unknown node', () => {
    const text = `${twoNodes}services:\n  - name: web\n    image: x\n  - name: db\n    image: x\n    node: rpi-02\n`;
    expect(issuesOf(text)).toEqual(['otto.yaml:11:11 services[1].node: unknown node "rpi-02" (nodes: local, rpi-01)']);
  });

  it('a service on a misspelled node, suggesting the one meant', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n    node: lcoal\n`)).toEqual([
      'otto.yaml:9:11 services[0].node: unknown node "lcoal", did you mean "local"? (nodes: local, rpi-01)',
    ]);
  });

  it('a service with both node and placement', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n    node: local\n    placement:\n      constraints: []\n`)).toEqual([
      'otto.yaml:10:5 services[0].placement: cannot be combined with "node"; pin the service with "node" or let "placement" choose',
    ]);
  });

  it('a bad port spec', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n    ports:\n      - "8080:80"\n      - "80:99999"\n      - 80\n`)).toEqual([
      'otto.yaml:11:9 services[0].ports[1]: invalid port "80:99999": container port 99999 is out of range 1-65535',
      'otto.yaml:12:9 services[0].ports[2]: invalid port 80: expected "HOST:CONTAINER[/PROTO]" such as "8080:80"',
    ]);
  });

  it('two services binding the same host port on one node', () => {
    const text = `${twoNodes}services:
  - name: web
    image: x
    node: local
    ports: ["8080:80"]
  - name: other
    image: x
    node: rpi-01
    ports: ["8080:80"]
  - name: api
    image: x
    node: local
    ports: ["127.0.0.1:8080:8080"]
`;
    expect(issuesOf(text)).toEqual([
      'otto.yaml:18:13 services[2].ports[0]: host port 127.0.0.1:8080/tcp on node "local" is already used by service "web"',
    ]);
  });

  it('a host port bound by every replica of a service pinned to one node', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n    node: local\n    replicas: 3\n    ports: ["8080:80"]\n`)).toEqual([
      'otto.yaml:11:13 services[0].ports[0]: host port 8080/tcp on node "local" would be bound by each of the 3 replicas; use replicas: 1 or drop the host port',
    ]);
  });

  it('a host port taken twice in a one-node cluster, where every service lands on that node', () => {
    const text = `nodes:\n  - id: local\n    host: localhost\nservices:\n  - name: web\n    image: x\n    ports: ["8080:80", "8080:81"]\n`;
    expect(issuesOf(text)).toEqual([
      'otto.yaml:7:24 services[0].ports[1]: host port 8080/tcp on node "local" is already used by ports[0] of this service',
    ]);
  });

  it('a malformed environment list entry', () => {
    expect(issuesOf(`${twoNodes}services:\n  - name: web\n    image: x\n    environment: ["A=1", "=2"]\n`)).toEqual([
      'otto.yaml:9:26 services[0].environment[1]: expected "NAME=value" or "NAME", got "=2"',
    ]);
  });

  it('with every problem in one error, sorted by line', () => {
    const text = `services:\n  - name: web\n    image: nginx\n    node: nowhere\n    prots: []\nmqtt:\n  port: high\n${twoNodes}`;
    let error: unknown;
    try {
      parseConfig(text, 'examples/otto.yaml', {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      'examples/otto.yaml:5:5 services[0].prots: unknown key (did you mean "ports"?)',
      'examples/otto.yaml:7:9 mqtt.port: expected number, got string',
    ]);
    expect((error as ConfigError).message).toBe((error as ConfigError).issues[0]);
  });
});

describe('loadConfig', () => {
  it('returns the absolute path, the text and its sha256', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-config-'));
    const text = `${twoNodes}`;
    await writeFile(join(dir, 'otto.yaml'), text);
    const loaded = await loadConfig(join(dir, 'otto.yaml'), {});
    expect(loaded.path).toBe(join(dir, 'otto.yaml'));
    expect(loaded.text).toBe(text);
    expect(loaded.hash).toBe(createHash('sha256').update(text).digest('hex'));
    expect(loaded.config.nodes).toHaveLength(2);
  });

  it('reports a missing file with a hint', async () => {
    const error = await loadConfig('no-such-dir/otto.yaml', {}).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe('no-such-dir/otto.yaml: file not found');
    expect((error as ConfigError).hint).toBe('run otto in the folder of your otto.yaml or pass -c PATH');
  });

  it('names the file as given in messages', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-config-'));
    await writeFile(join(dir, 'otto.yaml'), 'nodes: 3\n');
    const error = await loadConfig(join(dir, 'otto.yaml'), {}).catch((err: unknown) => err);
    expect((error as ConfigError).issues).toEqual([`${join(dir, 'otto.yaml')}:1:8 nodes: expected list, got number`]);
  });
});

describe('how each node is reached', () => {
  const fail = (nodes: string) => () => parseConfig(`mqtt: { host: 0.0.0.0, advertise: 10.0.0.1 }\nnodes:\n${nodes}`, 'otto.yaml', {});
  it('refuses a node on another machine with neither user nor join, with the hint', () => {
    expect(fail('  - { id: pi, host: 10.0.0.9 }\n')).toThrow(/otto.yaml:3:\d+ nodes\[0\].host: node "pi" is at "10.0.0.9", another machine, with neither user \(reached over SSH\) nor join: true \(dials in\)/);
  });
  it('accepts a node that joins by itself without a host, and refuses join with SSH', () => {
    expect(fail('  - { id: pi, join: true }\n')).not.toThrow();
    expect(fail('  - { id: pi, join: true, host: 10.0.0.9, user: pi }\n')).toThrow(/both joins by itself and is reached over SSH/);
    expect(fail('  - { id: pi }\n')).toThrow(/has no host: give its address/);
    expect(fail('  - { id: otto-pi, join: true }\n')).toThrow(/node ids starting with "otto-"/);
  });
  it('wants a broker address that joining nodes can reach', () => {
    expect(() => parseConfig(`node_pools: [{ name: field }]\nnodes:\n  - { id: local, host: localhost }\n`, 'otto.yaml', {})).toThrow(/pool field" cannot reach the broker|cannot reach the broker/);
  });
});

describe('broker identities in the config', () => {
  const base = `nodes:\n  - { id: local, host: localhost }\n`;
  it('says what replaced mqtt.username and mqtt.password', () => {
    expect(() => parseConfig(`mqtt:\n  username: otto\n${base}`, 'otto.yaml', {})).toThrow(/otto.yaml:2:13 mqtt.username: no longer used: every node has its own credential/);
  });

  it('refuses a node or a reader that would take another identity', () => {
    expect(() => parseConfig(`nodes:\n  - { id: otto-control-plane, host: localhost }\n`, 'otto.yaml', {})).toThrow(/"otto-control-plane" is the control plane's broker identity/);
    expect(() => parseConfig(`mqtt:\n  readers: [{ username: local, password: 'a-long-one' }]\n${base}`, 'otto.yaml', {})).toThrow(/reader "local" would take the broker identity of a node/);
    expect(() => parseConfig(`mqtt:\n  readers: [{ username: g, password: short }]\n${base}`, 'otto.yaml', {})).toThrow(/at least 8 characters/);
  });
});
