/**
 * The kinds of values otto.yaml is made of (names, durations, sizes, CPU shares, volumes), each a zod
 * schema that carries its bounds (limits.ts) and says, when a value is refused, what it found and what
 * would do. schema.ts assembles the file from these.
 */
import { z } from 'zod';
import { show } from './issues.js';
import {
  DURATION_BOUNDS,
  MAX_CPUS,
  MAX_MEMORY_BYTES,
  MAX_NAME_LENGTH,
  MIN_CPUS,
  MIN_MEMORY_BYTES,
  type DurationBounds,
} from './limits.js';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './units.js';
import { parseVolumeSpec } from './volumes.js';

/** RFC 1123 label, lower case: the same name can never differ only by case in a container name or a topic. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const DNS_LABEL_RULE = 'expected a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit';

/** The DNS label a refused name most likely meant: "Home_Lab" -> "home-lab". */
function labelSuggestion(name: string): string | undefined {
  const fixed = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, MAX_NAME_LENGTH);
  return fixed && DNS_LABEL.test(fixed) ? fixed : undefined;
}

/** Names of the cluster, nodes and services. */
export const dnsLabel = () =>
  z
    .string()
    .min(1)
    .max(MAX_NAME_LENGTH, { error: (issue) => `expected at most ${MAX_NAME_LENGTH} characters (a DNS label), got ${String(issue.input).length}`, abort: true })
    .regex(DNS_LABEL, {
      error: (issue) => {
        const suggestion = labelSuggestion(String(issue.input));
        return `${DNS_LABEL_RULE}, got ${show(issue.input)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
      },
    });

/** A duration such as "1m30s", within bounds (those of a timer that ticks for ever are tighter). */
export const duration = (bounds: DurationBounds = DURATION_BOUNDS) =>
  z
    .string()
    .regex(DURATION_PATTERN, 'expected a duration such as "500ms", "5s", "1m30s"')
    .superRefine((text, ctx) => {
      if (!DURATION_PATTERN.test(text)) return;
      const ms = parseDuration(text);
      if (ms >= bounds.minMs && ms <= bounds.maxMs) return;
      ctx.addIssue({ code: 'custom', input: text, message: `expected a duration from ${formatDuration(bounds.minMs)} to ${formatDuration(bounds.maxMs)}, got ${show(text)}` });
    });

/** A memory limit: a size ("256m") or a number of bytes, between Docker's minimum and 1 TiB. */
export const memory = () =>
  z
    .union([
      z.number().int().positive(),
      z.string().regex(SIZE_PATTERN, 'expected a size such as "256m", "1g", "512MB" or a number of bytes'),
    ])
    .superRefine((value, ctx) => {
      if (typeof value === 'string' && !SIZE_PATTERN.test(value)) return;
      const bytes = parseSize(value);
      if (bytes >= MIN_MEMORY_BYTES && bytes <= MAX_MEMORY_BYTES) return;
      const read = Number.isFinite(bytes) && bytes <= MAX_MEMORY_BYTES * 1024 ? formatBytes(bytes) : `more than ${formatBytes(MAX_MEMORY_BYTES, true)}`;
      ctx.addIssue({
        code: 'custom',
        input: value,
        message: `expected a memory limit from ${formatBytes(MIN_MEMORY_BYTES, true)} (Docker's minimum) to ${formatBytes(MAX_MEMORY_BYTES, true)}, got ${show(value)} (${read})`,
      });
    });

export const cpus = () =>
  z
    .number()
    .min(MIN_CPUS, { error: (issue) => `expected at least ${MIN_CPUS} CPUs (Docker's smallest limit), got ${show(issue.input)}` })
    .max(MAX_CPUS, { error: (issue) => `expected at most ${MAX_CPUS} CPUs (Otto's limit; a node also refuses more than its own cores), got ${show(issue.input)}` });

/** A volume as Docker reads a bind: `SRC:DST[:MODE]`, SRC a host path or a volume name. */
export const volume = () =>
  z.string().superRefine((spec, ctx) => {
    try {
      parseVolumeSpec(spec);
    } catch (err) {
      ctx.addIssue({ code: 'custom', input: spec, message: `invalid volume ${show(spec)}: ${(err as Error).message}` });
    }
  });

/** 5400000 -> "90m"; bounds are whole units, written the way otto.yaml writes durations. */
export function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [['h', 3_600_000], ['m', 60_000], ['s', 1_000]];
  if (ms === 0) return '0s';
  for (const [unit, size] of units) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** Bytes for a person: "4 MiB", or as otto.yaml writes a size ("6m") when `asSize`. */
function formatBytes(bytes: number, asSize = false): string {
  const units = ['', 'k', 'm', 'g', 't'];
  let index = 0;
  while (index < units.length - 1 && bytes >= 1024 ** (index + 1)) index++;
  const amount = Math.round((bytes / 1024 ** index) * 10) / 10;
  if (asSize) return `${amount}${units[index]}`;
  return index === 0 ? `${amount} bytes` : `${amount} ${units[index]!.toUpperCase()}iB`;
}
