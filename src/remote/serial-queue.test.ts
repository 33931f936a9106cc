import { describe, expect, it } from 'vitest';
import { SerialQueues } from './serial-queue.js';

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: Error): void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SerialQueues', () => {
  it('runs the jobs of one key one after the other, in order, even after a failure', async () => {
    const queues = new SerialQueues();
    const log: string[] = [];
    const first = deferred();
    const a = queues.run('n1', async () => {
      log.push('a start');
      await first.promise;
      log.push('a end');
      throw new Error('a failed');
    });
    const b = queues.run('n1', async () => {
      log.push('b');
      return 2;
    });
    expect(queues.pending('n1')).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(log).toEqual(['a start']);
    first.resolve();
    await expect(a).rejects.toThrow('a failed');
    expect(await b).toBe(2);
    expect(log).toEqual(['a start', 'a end', 'b']);
    await queues.idle('n1');
    expect(queues.pending('n1')).toBe(0);
  });

  it('runs the jobs of different keys side by side', async () => {
    const queues = new SerialQueues();
    const blocker = deferred();
    const log: string[] = [];
    const slow = queues.run('n1', async () => {
      await blocker.promise;
      log.push('n1');
    });
    await queues.run('n2', async () => log.push('n2'));
    expect(log).toEqual(['n2']);
    expect(queues.pending('n1')).toBe(1);
    blocker.resolve();
    await slow;
    expect(log).toEqual(['n2', 'n1']);
  });

  it('idle() waits for every job queued so far', async () => {
    const queues = new SerialQueues();
    const done: number[] = [];
    for (const i of [1, 2, 3]) void queues.run('n', async () => void done.push(i));
    await queues.idle('n');
    expect(done).toEqual([1, 2, 3]);
    expect(queues.pending('n')).toBe(0);
  });
});
