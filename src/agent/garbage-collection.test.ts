import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { collectGarbageEvery } from './garbage-collection.js';

describe('collectGarbageEvery', () => {
  it('collects on its interval until stopped', async () => {
    let collections = 0;
    const stop = collectGarbageEvery(20, () => collections++);
    await new Promise((resolve) => setTimeout(resolve, 110));
    stop();
    const counted = collections;
    expect(counted).toBeGreaterThanOrEqual(3);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(collections).toBe(counted);
  });

  it('does nothing when Node runs without --expose-gc, and never keeps a process alive', () => {
    expect(collectGarbageEvery(20, undefined)).toBeTypeOf('function');
    // A process whose only timer is this one exits at once (the build's copy: npm test builds first).
    const built = new URL('../../dist/agent/garbage-collection.js', import.meta.url).pathname;
    const script = `import(${JSON.stringify(built)}).then((m) => { m.collectGarbageEvery(60_000); console.log('started'); })`;
    const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { timeout: 10_000, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout).toBe('started\n');
  });
});
