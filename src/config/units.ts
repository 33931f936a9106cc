/** Durations ("1m30s") and sizes ("256m") as written in otto.yaml, turned into numbers. */
export const DURATION_PATTERN = /^(\d+(\.\d+)?(ms|s|m|h))+$/;
export const SIZE_PATTERN = /^\d+(\.\d+)?\s*([bkmgt]i?b?)?$/i;

const durationUnitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new RangeError(`invalid duration "${text}"`);
  let total = 0;
  for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * durationUnitMs[unit!]!;
  }
  return Math.round(total);
}

const sizeUnitBytes: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(value.trim());
  if (!match) throw new RangeError(`invalid size "${value}"`);
  return Math.round(Number(match[1]) * sizeUnitBytes[match[2]!.toLowerCase()]!);
}
