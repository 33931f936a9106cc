/**
 * Bounds of otto.yaml: every value that passes validation is one Docker and a node accept, and a file
 * that is too big or too deep is refused before it costs anything. Each message is `file:line:col path:
 * message`, saying what was found and what would do.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { parseConfig } from './load.js';
import { MAX_CONFIG_BYTES, MAX_NESTING, MAX_REPLICAS } from './limits.js';

function issuesOf(text: string): string[] {
  try {
    parseConfig(text, 'otto.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected the config to be rejected');
}

const oneNode = 'nodes:\n  - id: local\n    host: localhost\n';
/** A one-node config with one service `web` whose extra lines (4 spaces indented) start at line 6. */
const service = (...lines: string[]) => `${oneNode}services:\n  - name: web\n    image: x\n${lines.map((l) => `    ${l}\n`).join('')}`;

describe('numbers', () => {
  it('refuses cpus of 1e308 (Infinity nano CPUs on the wire), 0, and below Docker\'s 0.01', () => {
    expect(issuesOf(service('cpus: 1e308'))).toEqual([
      'otto.yaml:7:11 services[0].cpus: expected at most 256 CPUs (Otto\'s limit; a node also refuses more than its own cores), got 1e+308',
    ]);
    expect(issuesOf(service('cpus: 0'))).toEqual(["otto.yaml:7:11 services[0].cpus: expected at least 0.01 CPUs (Docker's smallest limit), got 0"]);
    expect(issuesOf(service('cpus: 0.001'))).toEqual(["otto.yaml:7:11 services[0].cpus: expected at least 0.01 CPUs (Docker's smallest limit), got 0.001"]);
  });

  it('accepts cpus from 0.01 to 256', () => {
    expect(parseConfig(service('cpus: 0.01'), 'otto.yaml', {}).services[0]!.cpus).toBe(0.01);
    expect(parseConfig(service('cpus: 256'), 'otto.yaml', {}).services[0]!.cpus).toBe(256);
  });

  it('says "expected a finite number" for 1e400, .inf and .nan, wherever a number goes', () => {
    expect(issuesOf(service('cpus: 1e400'))).toEqual(['otto.yaml:7:11 services[0].cpus: expected a finite number, got Infinity']);
    expect(issuesOf(`mqtt:\n  port: -.inf\n${oneNode}`)).toEqual(['otto.yaml:2:9 mqtt.port: expected a finite number, got -Infinity']);
    expect(issuesOf(service('replicas: .nan'))).toEqual(['otto.yaml:7:15 services[0].replicas: expected a finite number, got NaN']);
    // In a union (string, number or boolean; a size) too.
    expect(issuesOf(service('labels:', '  tier: 1e999'))).toEqual(['otto.yaml:8:13 services[0].labels.tier: expected a finite number, got Infinity']);
    expect(issuesOf(service('memory: 1e400'))).toEqual(['otto.yaml:7:13 services[0].memory: expected a finite number, got Infinity']);
  });

  it(`refuses more than ${MAX_REPLICAS} replicas of a service, saying where the limit is documented`, () => {
    expect(issuesOf(service('replicas: 10000'))).toEqual([
      `otto.yaml:7:15 services[0].replicas: expected at most ${MAX_REPLICAS} replicas per service (Otto's limit, see "Limits" in the README), got 10000`,
    ]);
    expect(parseConfig(service(`replicas: ${MAX_REPLICAS}`), 'otto.yaml', {}).services[0]!.replicas).toBe(MAX_REPLICAS);
  });

  it('bounds healthcheck retries and update parallelism', () => {
    expect(issuesOf(service('healthcheck:', '  test: "true"', '  retries: 1000000'))).toEqual(['otto.yaml:9:16 services[0].healthcheck.retries: expected number <= 100, got 1000000']);
    expect(issuesOf(service('update:', '  parallelism: 1000'))).toEqual([`otto.yaml:8:20 services[0].update.parallelism: expected number <= ${MAX_REPLICAS}, got 1000`]);
  });
});

describe('memory', () => {
  it("refuses less than Docker's 6 MB and more than 1 TB, and says what it read", () => {
    expect(issuesOf(service('memory: 4m'))).toEqual([
      `otto.yaml:7:13 services[0].memory: expected a memory limit from 6m (Docker's minimum) to 1t, got "4m" (4 MiB)`,
    ]);
    expect(issuesOf(service('memory: 2t'))).toEqual([`otto.yaml:7:13 services[0].memory: expected a memory limit from 6m (Docker's minimum) to 1t, got "2t" (2 TiB)`]);
    expect(issuesOf(service('memory: 1000'))).toEqual([`otto.yaml:7:13 services[0].memory: expected a memory limit from 6m (Docker's minimum) to 1t, got 1000 (1000 bytes)`]);
    expect(issuesOf(service(`memory: ${'9'.repeat(400)}g`))).toEqual([
      `otto.yaml:7:13 services[0].memory: expected a memory limit from 6m (Docker's minimum) to 1t, got "${'9'.repeat(40)}..." (more than 1t)`,
    ]);
  });

  it('accepts 6m to 1t, as a size or a number of bytes', () => {
    expect(parseConfig(service('memory: 6m'), 'otto.yaml', {}).services[0]!.memory).toBe('6m');
    expect(parseConfig(service('memory: 1t'), 'otto.yaml', {}).services[0]!.memory).toBe('1t');
    expect(parseConfig(service('memory: 6291456'), 'otto.yaml', {}).services[0]!.memory).toBe(6291456);
  });
});

describe('durations', () => {
  it('bound the intervals timers run on, and every other duration', () => {
    expect(issuesOf(`metrics:\n  interval: 10ms\ncontrol:\n  interval: 9999999999h\n${oneNode}`)).toEqual([
      'otto.yaml:2:13 metrics.interval: expected a duration from 100ms to 1h, got "10ms"',
      'otto.yaml:4:13 control.interval: expected a duration from 100ms to 1h, got "9999999999h"',
    ]);
    expect(issuesOf(service('stop_grace_period: 25h', 'healthcheck:', '  test: "true"', '  interval: 1000h'))).toEqual([
      'otto.yaml:7:24 services[0].stop_grace_period: expected a duration from 0s to 24h, got "25h"',
      'otto.yaml:10:17 services[0].healthcheck.interval: expected a duration from 0s to 24h, got "1000h"',
    ]);
    expect(issuesOf(`control:\n  lost_after: 0s\n${oneNode}`)).toEqual(['otto.yaml:2:15 control.lost_after: expected a duration from 1s to 168h, got "0s"']);
  });
});

describe('names', () => {
  it('are DNS labels of at most 63 characters: services, nodes and the cluster', () => {
    const long = 'a'.repeat(5_000);
    expect(issuesOf(`${oneNode}services:\n  - name: ${long}\n    image: x\n`)).toEqual([
      'otto.yaml:5:11 services[0].name: expected at most 63 characters (a DNS label), got 5000',
    ]);
    expect(issuesOf(`cluster:\n  name: Home_Lab\nnodes:\n  - id: rpi.01\n    host: localhost\n`)).toEqual([
      'otto.yaml:2:9 cluster.name: expected a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit, got "Home_Lab" (did you mean "home-lab"?)',
      'otto.yaml:4:9 nodes[0].id: expected a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit, got "rpi.01" (did you mean "rpi-01"?)',
    ]);
    expect(issuesOf(`${oneNode}services:\n  - name: web-\n    image: x\n`)).toEqual([
      'otto.yaml:5:11 services[0].name: expected a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit, got "web-" (did you mean "web"?)',
    ]);
  });

  it('the longest names still make a valid Docker container name {cluster}-{service}-{replica}', () => {
    const name = 'a'.repeat(63);
    const config = parseConfig(`cluster:\n  name: ${name}\nnodes:\n  - id: ${name}\n    host: localhost\nservices:\n  - name: ${name}\n    image: x\n    replicas: ${MAX_REPLICAS}\n`, 'otto.yaml', {});
    const container = `${config.cluster.name}-${config.services[0]!.name}-${MAX_REPLICAS}`;
    expect(container.length).toBeLessThanOrEqual(253);
    expect(container).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/);
  });
});

describe('volumes', () => {
  it('are parsed with their modes, each message saying what is wrong', () => {
    const text = service(
      'volumes:',
      '  - /x:/y:rw:zz:yy',
      '  - /data:/data:ro,zz',
      '  - ./data:/data',
      '  - /data:data',
      '  - /data:/data:ro,rw',
      '  - /data:/data:nocopy',
      '  - cache:/cache:rshared',
      '  - a:/a',
      '  - /data:/',
    );
    expect(issuesOf(text)).toEqual([
      'otto.yaml:8:9 services[0].volumes[0]: invalid volume "/x:/y:rw:zz:yy": expected "SRC:DST[:MODE]" such as "/srv/data:/data:ro" or "cache:/cache"',
      'otto.yaml:9:9 services[0].volumes[1]: invalid volume "/data:/data:ro,zz": unknown mode "zz" (expected a comma list of ro, rw, z, Z, nocopy, consistent, cached, delegated, shared, slave, private, rshared, rslave, rprivate)',
      'otto.yaml:10:9 services[0].volumes[2]: invalid volume "./data:/data": source "./data" is neither an absolute path on the node nor a volume name; Otto does not resolve relative paths, write the absolute path',
      'otto.yaml:11:9 services[0].volumes[3]: invalid volume "/data:data": the path in the container "data" must be absolute',
      'otto.yaml:12:9 services[0].volumes[4]: invalid volume "/data:/data:ro,rw": modes "ro" and "rw" exclude each other',
      'otto.yaml:13:9 services[0].volumes[5]: invalid volume "/data:/data:nocopy": "nocopy" applies to named volumes only, not to a host path',
      'otto.yaml:14:9 services[0].volumes[6]: invalid volume "cache:/cache:rshared": "rshared" applies to host paths only, not to a named volume',
      'otto.yaml:15:9 services[0].volumes[7]: invalid volume "a:/a": source "a" is neither an absolute path on the node nor a volume name; volume names have at least 2 characters: letters, digits, "_", "." or "-"',
      'otto.yaml:16:9 services[0].volumes[8]: invalid volume "/data:/": the path in the container cannot be "/"',
    ]);
  });

  it('accept host paths, named volumes, anonymous volumes and every Docker mode', () => {
    const volumes = ['/srv/data:/data', '/srv/data:/data:ro', 'cache:/cache', 'cache_2.x-y:/c:nocopy,ro', '/data', '/srv:/srv:delegated,ro,z,rprivate', '/srv:/s:Z,rslave,cached'];
    const config = parseConfig(service('volumes:', ...volumes.map((v) => `  - ${v}`)), 'otto.yaml', {});
    expect(config.services[0]!.volumes).toEqual(volumes);
  });
});

describe('the file', () => {
  it(`is refused above ${MAX_CONFIG_BYTES / 1024 / 1024} MB before it is parsed`, () => {
    const big = `${oneNode}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`;
    const started = Date.now();
    expect(issuesOf(big)).toEqual(['otto.yaml: the file is 1.0 MB; otto.yaml may be at most 1 MB']);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it(`refuses nesting deeper than ${MAX_NESTING} levels with its position, instead of overflowing the stack`, () => {
    const depth = 5_000;
    const flow = `${oneNode}services:\n  - name: web\n    image: x\n    labels: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
    expect(issuesOf(flow)).toEqual([`otto.yaml:7:${13 + MAX_NESTING - 3} nested deeper than ${MAX_NESTING} levels; nothing in otto.yaml is nested more than a few`]);
    let block = `${oneNode}x:\n`;
    for (let i = 1; i < 1_000; i++) block += `${' '.repeat(i)}- \n`;
    expect(issuesOf(block)[0]).toMatch(new RegExp(`^otto.yaml:\\d+:\\d+ nested deeper than ${MAX_NESTING} levels`));
    const map = `${oneNode}x: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`;
    expect(issuesOf(map)[0]).toMatch(new RegExp(`^otto.yaml:4:\\d+ nested deeper than ${MAX_NESTING} levels`));
  });

  it(`composes nesting of exactly ${MAX_NESTING} levels, and refuses one more`, () => {
    // The root mapping is level 1, the value of x the rest.
    const nested = (levels: number) => `${oneNode}x: ${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}\n`;
    expect(issuesOf(nested(MAX_NESTING))).toEqual(['otto.yaml:4:1 x: unknown key (expected one of: cluster, mqtt, http, metrics, control, nodes, node_pools, services, nfr, migration, secrets, registries)']);
    expect(issuesOf(nested(MAX_NESTING + 1))).toEqual([`otto.yaml:4:${4 + MAX_NESTING - 1} nested deeper than ${MAX_NESTING} levels; nothing in otto.yaml is nested more than a few`]);
  });
});
