import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, readEvents, readLastEvents } from './ledger.js';

const eventLine = (id: number) => `${JSON.stringify({ id, time: '2026-01-01T00:00:00.000Z', kind: 'node-online', node: 'pi', message: `event ${id}` })}\n`;
const idsIn = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { id: number }).id);

let dir: string;
let unhandled: unknown[];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'otto-ledger-'));
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});

afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  rmSync(dir, { recursive: true, force: true });
});

/** Lets every pending promise callback and I/O callback run, so an unhandled rejection would be seen. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('Ledger.save', () => {
  it('fails only the save whose write failed; the next save succeeds once the disk is fine', async () => {
    const ledger = new Ledger(dir);
    await ledger.load();
    mkdirSync(join(dir, 'ledger.json')); // the rename onto ledger.json fails, as on a full disk
    ledger.data.scales.web = { replicas: 5, config_replicas: 2 };
    await expect(ledger.save()).rejects.toThrow(/ledger\.json/);
    rmSync(join(dir, 'ledger.json'), { recursive: true });
    await ledger.save();
    expect(JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')).scales.web).toEqual({ replicas: 5, config_replicas: 2 });
  });

  it('saveSoon never rejects: a failed write goes to onError, is counted, and the next one retries', async () => {
    const errors: Error[] = [];
    const ledger = new Ledger(dir, { onError: (err) => errors.push(err) });
    await ledger.load();
    mkdirSync(join(dir, 'ledger.json'));
    // The first starts a write; the other two share the one write that follows it: both fail.
    ledger.saveSoon();
    ledger.saveSoon();
    ledger.saveSoon();
    await ledger.idle();
    await settle();
    expect(unhandled).toEqual([]);
    expect(errors).toHaveLength(2);
    expect(errors[0]!.message).toMatch(/ledger\.json/);
    expect(ledger.stats).toMatchObject({ ledgerWrites: 2, failedLedgerWrites: 2 });

    rmSync(join(dir, 'ledger.json'), { recursive: true });
    ledger.data.scales.api = { replicas: 1, config_replicas: 3 };
    ledger.saveSoon();
    await ledger.idle();
    expect(JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')).scales.api).toEqual({ replicas: 1, config_replicas: 3 });
    expect(errors).toHaveLength(2);
  });

  it('coalesces the saves asked for during a write into one more write, of the latest data', async () => {
    const ledger = new Ledger(dir);
    await ledger.load();
    const saves: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      ledger.data.scales[`s${i}`] = { replicas: i, config_replicas: i };
      saves.push(ledger.save());
    }
    await Promise.all(saves);
    expect(ledger.stats.ledgerWrites).toBeLessThanOrEqual(2);
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')).scales)).toHaveLength(50);
  });

  it('rejects the saves of a failed write only, not those of the write after it', async () => {
    const ledger = new Ledger(dir);
    await ledger.load();
    mkdirSync(join(dir, 'ledger.json'));
    const failing = ledger.save();
    // Registered first, so it runs (the disk is fine again) before the next write starts.
    const diskFixed = failing.catch(() => rmSync(join(dir, 'ledger.json'), { recursive: true }));
    ledger.data.scales.web = { replicas: 2, config_replicas: 1 };
    const next = ledger.save(); // asked for while the failing write is under way
    await diskFixed;
    await expect(failing).rejects.toThrow(/EISDIR/);
    await expect(next).resolves.toBeUndefined();
    expect(JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')).scales.web).toEqual({ replicas: 2, config_replicas: 1 });
  });
});

describe('Ledger events', () => {
  it('writes 1,600 concurrent events in id order, each on disk when its append resolves; a new ledger continues after them', async () => {
    const ledger = new Ledger(dir);
    await ledger.load();
    const file = join(dir, 'events.jsonl');
    const first = await ledger.appendEvent({ kind: 'node-online', node: 'pi', message: 'first' });
    expect(idsIn(file)).toEqual([first.id]);

    const events = await Promise.all(Array.from({ length: 1_600 }, (_, i) => ledger.appendEvent({ kind: 'replica-died', service: 'web', replica: i, message: `replica ${i} died` })));
    const ids = idsIn(file);
    expect(ids).toHaveLength(1_601);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1);
    expect(events.map((e) => e.id)).toEqual(ids.slice(1));

    const restarted = new Ledger(dir);
    await restarted.load();
    expect(restarted.data.next_event_id).toBe(Math.max(...ids) + 1);
  });

  it('takes the largest id of the whole log at load, even from a line in the middle or the rotated file', async () => {
    writeFileSync(join(dir, 'events.jsonl'), [1, 2, 50, 3, 4].map(eventLine).join(''));
    const ledger = new Ledger(dir);
    await ledger.load();
    expect(ledger.data.next_event_id).toBe(51);

    writeFileSync(join(dir, 'events.jsonl.1'), [900, 7].map(eventLine).join(''));
    const again = new Ledger(dir);
    await again.load();
    expect(again.data.next_event_id).toBe(901);
  });

  it('rotates the log before it passes the size limit, keeping one rotated file', async () => {
    const ledger = new Ledger(dir, { maxEventLogBytes: 2_000 });
    await ledger.load();
    for (let i = 0; i < 100; i++) await ledger.appendEvent({ kind: 'drift-found', service: 'web', message: `web: ${i}/3 replicas running` });
    const file = join(dir, 'events.jsonl');
    expect(statSync(file).size).toBeLessThanOrEqual(2_000);
    expect(statSync(`${file}.1`).size).toBeLessThanOrEqual(2_000);
    expect(existsSync(`${file}.2`)).toBe(false);
    const kept = [...idsIn(`${file}.1`), ...idsIn(file)];
    expect(kept.at(-1)).toBe(100);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 101 - kept.length + i));
    expect((await readEvents(file)).map((e) => e.id)).toEqual(kept);

    // A ledger started on a rotated log continues after its largest id.
    const restarted = new Ledger(dir, { maxEventLogBytes: 2_000 });
    await restarted.load();
    expect(restarted.data.next_event_id).toBe(101);
  });

  it('reads the last N events from the end, across the rotation boundary', async () => {
    const ledger = new Ledger(dir, { maxEventLogBytes: 2_000 });
    await ledger.load();
    for (let i = 0; i < 100; i++) await ledger.appendEvent({ kind: 'drift-found', service: 'web', message: `web: ${i}/3 replicas running` });
    const file = join(dir, 'events.jsonl');
    const inCurrent = idsIn(file).length;
    const all = (await readEvents(file)).map((e) => e.id);

    const tail = (await ledger.lastEvents(inCurrent + 3)).map((e) => e.id);
    expect(tail).toEqual(all.slice(-(inCurrent + 3)));
    expect(tail[0]).toBeLessThan(idsIn(file)[0]!); // three of them come from the rotated file
    expect((await readLastEvents(file, 5)).map((e) => e.id)).toEqual([96, 97, 98, 99, 100]);
    expect((await readLastEvents(file, 10_000)).map((e) => e.id)).toEqual(all);
    expect(await readLastEvents(file, 0)).toEqual([]);
    expect(await readLastEvents(join(dir, 'absent.jsonl'), 5)).toEqual([]);
  });

  it('reads the last N events of lines longer than a read chunk', async () => {
    const file = join(dir, 'events.jsonl');
    const long = (id: number) => `${JSON.stringify({ id, time: 't', kind: 'config-rejected', message: 'x'.repeat(100_000 + id) })}\n`;
    writeFileSync(file, [1, 2, 3].map(long).join(''));
    expect((await readLastEvents(file, 2)).map((e) => [e.id, e.message.length])).toEqual([
      [2, 100_002],
      [3, 100_003],
    ]);
  });

  it('skips a torn last line in every reader, and starts the next append on a new line', async () => {
    const file = join(dir, 'events.jsonl');
    writeFileSync(file, [1, 2, 3].map(eventLine).join('') + eventLine(4).slice(0, 30)); // kill -9 mid-append
    expect((await readEvents(file)).map((e) => e.id)).toEqual([1, 2, 3]);
    expect((await readLastEvents(file, 10)).map((e) => e.id)).toEqual([1, 2, 3]);
    expect((await readLastEvents(file, 1)).map((e) => e.id)).toEqual([3]);

    const ledger = new Ledger(dir);
    await ledger.load();
    const next = await ledger.appendEvent({ kind: 'control-plane-started', message: 'started again' });
    expect(next.id).toBeGreaterThan(3);
    expect((await readEvents(file)).map((e) => e.id)).toEqual([1, 2, 3, next.id]);
    expect((await readLastEvents(file, 2)).map((e) => e.id)).toEqual([3, next.id]);
  });

  it('skips a torn line in the middle and keeps the good lines after it', async () => {
    const file = join(dir, 'events.jsonl');
    writeFileSync(file, eventLine(1) + eventLine(2).slice(0, 25) + '\n' + eventLine(3) + '{"id":4,"time":"x","kind":"bogus","message":"m"}\n' + eventLine(5));
    expect((await readEvents(file)).map((e) => e.id)).toEqual([1, 3, 5]);
    expect((await readLastEvents(file, 3)).map((e) => e.id)).toEqual([1, 3, 5]);
    const ledger = new Ledger(dir);
    await ledger.load();
    expect(ledger.data.next_event_id).toBe(6);
  });

  it('reports a failed append to onError without rejecting, and appends again once the disk is fine', async () => {
    const errors: Error[] = [];
    const ledger = new Ledger(dir, { onError: (err) => errors.push(err) });
    await ledger.load();
    const file = join(dir, 'events.jsonl');
    mkdirSync(file);
    const lost = await ledger.appendEvent({ kind: 'node-offline', node: 'pi', message: 'pi offline' });
    expect(lost.id).toBe(1);
    await settle();
    expect(unhandled).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(ledger.stats.failedEventWrites).toBe(1);

    rmSync(file, { recursive: true });
    await ledger.appendEvent({ kind: 'node-online', node: 'pi', message: 'pi online' });
    expect(idsIn(file)).toEqual([2]);
  });

  it('keeps an append that comes after a torn write on its own line', async () => {
    const file = join(dir, 'events.jsonl');
    const ledger = new Ledger(dir);
    await ledger.load();
    await ledger.appendEvent({ kind: 'node-online', node: 'pi', message: 'one' });
    appendFileSync(file, '{"id":2,"ti'); // a write cut short under this writer, not only before a restart
    const errors: Error[] = [];
    const other = new Ledger(dir, { onError: (err) => errors.push(err) });
    await other.load();
    const next = await other.appendEvent({ kind: 'node-online', node: 'pi', message: 'two' });
    expect((await readEvents(file)).map((e) => e.id)).toEqual([1, next.id]);
    expect(errors).toEqual([]);
  });
});
