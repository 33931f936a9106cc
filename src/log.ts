/**
 * Logging for the long-running parts (control plane, agent): one line per entry on stdout, JSON in the
 * shape pino writes (`{"level":30,"time":...,"component":...,...fields,"msg":...}`), or, when a human reads
 * it (`pretty`), `12:00:01 INFO  agent[local] message key=value`.
 *
 * Written here rather than with pino: the agent runs on a Pi with a 50 MB budget, and pino with its
 * destination, serializers and redaction held 1.2 MB of it (npm run bench:agent) for what these
 * twenty lines do. Writes are synchronous (process.stdout is, on Linux, for files, pipes and terminals),
 * so nothing logged just before an exit is lost, and a field that cannot be serialized never throws.
 */
import { UsageError } from './errors.js';

export const LOG_LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LOG_LEVELS;
type Fields = Record<string, unknown>;

export interface LogFn {
  (message: string): void;
  (fields: Fields, message?: string): void;
}

export interface Logger {
  readonly level: LogLevel;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger whose lines carry `bindings` too (e.g. another `component`). */
  child(bindings: Fields): Logger;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const NOT_EXTRAS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);

const twoDigits = (n: number) => String(n).padStart(2, '0');

/** An entry made readable: `12:00:01 INFO  agent[local] message key=value` (local time). */
function prettyLine(entry: Fields): string {
  // getHours() and not toTimeString(): the time zone's name costs the process 0.4 MB of ICU data.
  const at = new Date(Number(entry.time));
  const time = `${twoDigits(at.getHours())}:${twoDigits(at.getMinutes())}:${twoDigits(at.getSeconds())}`;
  const extras = Object.entries(entry)
    .filter(([key, value]) => !NOT_EXTRAS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : stringify(value)}`)
    .join(' ');
  const component = entry.component ? `${entry.component} ` : '';
  return `${time} ${LEVEL_NAMES[Number(entry.level)] ?? entry.level} ${component}${entry.msg ?? ''}${extras ? ` ${extras}` : ''}`;
}

function stringify(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return '"(not serializable)"';
  }
}

function jsonLine(entry: Fields): string {
  const line = stringify(entry);
  return line.startsWith('{') ? line : stringify({ level: entry.level, time: entry.time, component: entry.component, msg: entry.msg, fields: '(not serializable)' });
}

export function createLogger(options: { component: string; pretty?: boolean; level?: string; write?: (line: string) => void }): Logger {
  const levelName = options.level ?? process.env.OTTO_LOG_LEVEL ?? 'info';
  if (!(levelName in LOG_LEVELS)) throw new UsageError(`unknown log level "${levelName}"`, `use one of ${Object.keys(LOG_LEVELS).join(', ')} (OTTO_LOG_LEVEL)`);
  const format = options.pretty ? prettyLine : jsonLine;
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  return makeLogger(levelName as LogLevel, { component: options.component }, (entry) => write(`${format(entry)}\n`));
}

function makeLogger(level: LogLevel, bindings: Fields, out: (entry: Fields) => void): Logger {
  const threshold = LOG_LEVELS[level];
  const at = (value: number): LogFn =>
    value < threshold
      ? () => {}
      : (first: Fields | string, message?: string) => {
          const fields = typeof first === 'string' ? undefined : first;
          out({ level: value, time: Date.now(), ...bindings, ...fields, msg: typeof first === 'string' ? first : message });
        };
  return {
    level,
    trace: at(LOG_LEVELS.trace),
    debug: at(LOG_LEVELS.debug),
    info: at(LOG_LEVELS.info),
    warn: at(LOG_LEVELS.warn),
    error: at(LOG_LEVELS.error),
    fatal: at(LOG_LEVELS.fatal),
    child: (more) => makeLogger(level, { ...bindings, ...more }, out),
  };
}
