import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { createLogger } from './log.js';

function capture(options: { pretty?: boolean; level?: string } = {}) {
  const lines: string[] = [];
  const log = createLogger({ component: 'agent[pi-1]', ...options, write: (line) => lines.push(line) });
  return { log, lines };
}

describe('createLogger', () => {
  it('writes one JSON line per entry, in the shape pino writes', () => {
    const { log, lines } = capture();
    log.info({ revision: 3, node: 'pi-1', gone: undefined }, 'new desired state');
    log.warn('broker unreachable');
    expect(lines).toHaveLength(2);
    expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(['level', 'time', 'component', 'revision', 'node', 'msg']);
    expect(first).toMatchObject({ level: 30, component: 'agent[pi-1]', revision: 3, node: 'pi-1', msg: 'new desired state' });
    expect(Math.abs(first.time - Date.now())).toBeLessThan(5_000);
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 40, msg: 'broker unreachable' });
  });

  it('keeps what is below its level out, and says nothing at all when silent', () => {
    const { log, lines } = capture({ level: 'warn' });
    log.debug('d');
    log.info('i');
    log.error('e');
    log.fatal('f');
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual(['e', 'f']);
    const silent = capture({ level: 'silent' });
    silent.log.fatal('f');
    expect(silent.lines).toEqual([]);
    expect(createLogger({ component: 'x', level: 'debug', write: () => {} }).level).toBe('debug');
  });

  it('gives a child its bindings, over its parent\'s', () => {
    const { log, lines } = capture();
    log.child({ component: 'supervisor', node: 'local' }).info({ pid: 7 }, 'agent started');
    expect(JSON.parse(lines[0]!)).toMatchObject({ component: 'supervisor', node: 'local', pid: 7, msg: 'agent started' });
  });

  it('makes a line readable when pretty: local time, level, component, message, then key=value', () => {
    const { log, lines } = capture({ pretty: true });
    log.warn({ node: 'pi-1', retryInMs: 500, gone: undefined, ports: [80] }, 'agent exited; restarting');
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d WARN  agent\[pi-1\] agent exited; restarting node=pi-1 retryInMs=500 ports=\[80\]\n$/);
    const now = new Date();
    expect(lines[0]!.slice(0, 2)).toBe(String(now.getHours()).padStart(2, '0'));
  });

  it('never throws on a field it cannot serialize', () => {
    const { log, lines } = capture();
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    log.info({ big: 2n ** 70n }, 'bigint');
    log.info({ loop }, 'circular');
    expect(JSON.parse(lines[0]!)).toMatchObject({ big: '1180591620717411303424', msg: 'bigint' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 30, msg: 'circular', fields: '(not serializable)' });
  });

  it('refuses a level it does not know, naming the ones it does', () => {
    expect(() => createLogger({ component: 'x', level: 'verbose' })).toThrow(UsageError);
    expect(() => createLogger({ component: 'x', level: 'verbose' })).toThrow(/unknown log level "verbose"/);
  });
});
