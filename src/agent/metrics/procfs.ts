/**
 * Allocation-free parsers for the small text files of /proc and cgroupfs. Metrics are read every few
 * seconds on a Raspberry Pi, so these scan the file text in place instead of splitting it into arrays.
 */

let lastEnd = 0;

/** Where the last {@link uintAt} stopped: lets callers read consecutive numbers without allocating. */
export function scanEnd(): number {
  return lastEnd;
}

/** The unsigned integer at `from`, after blanks. Values beyond 2^53 (e.g. "unlimited" cgroup limits) come out approximate, which is fine. */
export function uintAt(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  let n = 0;
  for (; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    n = n * 10 + digit;
  }
  lastEnd = i;
  return n;
}

/** The number after `key` where `key` starts a line (`MemTotal:`, `usage_usec `), or undefined. */
export function field(text: string, key: string): number | undefined {
  for (let i = text.indexOf(key); i !== -1; i = text.indexOf(key, i + key.length)) {
    if (i === 0 || text.charCodeAt(i - 1) === 10) return uintAt(text, i + key.length);
  }
  return undefined;
}

/** Sum of the numbers after every occurrence of `key`: per-device byte counts (` Read `, `rbytes=`). */
export function sumOf(text: string, key: string): number {
  let sum = 0;
  for (let i = text.indexOf(key); i !== -1; i = text.indexOf(key, i + key.length)) sum += uintAt(text, i + key.length);
  return sum;
}

/**
 * Received and sent bytes of a /proc/net/dev file, summed over the interfaces that leave the machine:
 * loopback and Docker's bridges and veth pairs would count container traffic twice.
 */
export function netDevTotals(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', start);
    // The two header lines have no colon; data lines are "  name: rx_bytes ×8 fields, tx_bytes ...".
    if (colon !== -1 && colon < end && !isLocalInterface(text, start, colon)) {
      rx += uintAt(text, colon + 1);
      for (let k = 0; k < 7; k++) uintAt(text, lastEnd);
      tx += uintAt(text, lastEnd);
    }
    start = end + 1;
  }
  return { rx, tx };
}

const localInterface = /^(lo|veth.*|docker\d*|br-.*)$/;

function isLocalInterface(text: string, start: number, colon: number): boolean {
  return localInterface.test(text.slice(start, colon).trim());
}

/** Host memory in bytes from /proc/meminfo: what "unlimited" means for a container. */
export function memTotalBytes(meminfo: string): number {
  return (field(meminfo, 'MemTotal:') ?? 0) * 1024;
}

export function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
