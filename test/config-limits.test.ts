/**
 * `otto config validate` (the built CLI) on configs that used to pass and then broke a node, or broke the
 * validator itself: each is exit 1 with one `file:line:col path: message` line and the hint.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { otto } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'otto-config-limits-'));
const HINT = 'hint: fix the file and run `otto config validate` again';

async function validate(text: string): Promise<{ code: number | null; lines: string[]; stdout: string }> {
  writeFileSync(join(dir, 'otto.yaml'), text);
  const result = await otto(['config', 'validate'], { cwd: dir });
  return { code: result.code, lines: result.stderr.split('\n').filter(Boolean), stdout: result.stdout };
}

const oneNode = 'nodes:\n  - id: local\n    host: localhost\n';
const service = (...lines: string[]) => `${oneNode}services:\n  - name: web\n    image: otto-test/busybox\n${lines.map((l) => `    ${l}\n`).join('')}`;

describe('otto config validate refuses, with the position and a hint (exit 1)', () => {
  it.each([
    ['cpus: 1e308 (Infinity nano CPUs: the node refused its whole desired state)', service('cpus: 1e308'), "otto.yaml:7:11 services[0].cpus: expected at most 256 CPUs (Otto's limit; a node also refuses more than its own cores), got 1e+308"],
    ['cpus: 1e400', service('cpus: 1e400'), 'otto.yaml:7:11 services[0].cpus: expected a finite number, got Infinity'],
    ['replicas: 10000', service('replicas: 10000'), `otto.yaml:7:15 services[0].replicas: expected at most 100 replicas per service (Otto's limit, see "Limits" in the README), got 10000`],
    ['a 5,000-character service name', `${oneNode}services:\n  - name: ${'a'.repeat(5_000)}\n    image: x\n`, 'otto.yaml:5:11 services[0].name: expected at most 63 characters (a DNS label), got 5000'],
    ['volume /x:/y:rw:zz:yy', service('volumes: ["/x:/y:rw:zz:yy"]'), 'otto.yaml:7:15 services[0].volumes[0]: invalid volume "/x:/y:rw:zz:yy": expected "SRC:DST[:MODE]" such as "/srv/data:/data:ro" or "cache:/cache"'],
    ['memory below Docker\'s minimum', service('memory: 1m'), `otto.yaml:7:13 services[0].memory: expected a memory limit from 6m (Docker's minimum) to 1t, got "1m" (1 MiB)`],
    ['nesting 5,000 deep', `${oneNode}x: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n`, 'otto.yaml:4:67 nested deeper than 64 levels; nothing in otto.yaml is nested more than a few'],
  ])('%s', async (_what, text, line) => {
    const { code, lines } = await validate(text);
    expect(code).toBe(1);
    expect(lines).toEqual([`otto: ${line}`, HINT]);
  });

  it('a 10 MB file, without parsing it', async () => {
    const { code, lines } = await validate(`${oneNode}# ${'x'.repeat(10 * 1024 * 1024)}\n`);
    expect(code).toBe(1);
    expect(lines).toEqual([
      'otto: otto.yaml: the file is 10.0 MB; otto.yaml may be at most 1 MB',
      "hint: is this the right file? A fleet's otto.yaml is a few KB; pass the right one with -c PATH",
    ]);
  });

  it('and accepts the same service within the limits', async () => {
    const { code, stdout } = await validate(service('cpus: 0.5', 'memory: 64m', 'replicas: 100', 'volumes: ["/srv/data:/data:ro,z", "cache:/cache:nocopy"]'));
    expect(code).toBe(0);
    expect(stdout).toContain('otto.yaml is valid');
  });
});
