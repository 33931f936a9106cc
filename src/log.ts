/**
 * Logging for the long-running parts (control plane, agent). pino writes JSON lines; in the foreground
 * a human reads them, so `pretty` turns each line into `12:00:01 INFO  agent[local] message key=value`.
 */
import { Writable } from 'node:stream';
import pino from 'pino';

export type Logger = pino.Logger;

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const omitted = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);

export function formatLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  const time = new Date(Number(entry.time)).toTimeString().slice(0, 8);
  const extras = Object.entries(entry)
    .filter(([key]) => !omitted.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const component = entry.component ? `${entry.component} ` : '';
  return `${time} ${levelNames[Number(entry.level)] ?? entry.level} ${component}${entry.msg ?? ''}${extras ? ` ${extras}` : ''}`;
}

function prettyStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) out.write(`${formatLine(line)}\n`);
      done();
    },
  });
}

export function createLogger(options: { component: string; pretty?: boolean; level?: string }): Logger {
  const level = options.level ?? process.env.OTTO_LOG_LEVEL ?? 'info';
  const destination = options.pretty ? prettyStream(process.stdout) : pino.destination({ dest: 1, sync: true });
  return pino({ level, base: { component: options.component } }, destination);
}
