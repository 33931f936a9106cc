/** Plain-text tables and values, the way `docker ps` prints them. */

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 2))).join('').trimEnd())
    .join('\n');
}

export function percent(value: number | undefined): string {
  return value === undefined ? '-' : `${value.toFixed(1)}%`;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function bytes(value: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = value;
  let unit = 0;
  while (n >= 1000 && unit < units.length - 1) {
    n /= 1000;
    unit++;
  }
  return `${n.toFixed(n < 10 && unit > 0 ? 1 : 0)}${units[unit]}`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `45s`, `6m`, `2h`: how long ago, without "ago". */
export function age(iso: string | null | undefined, now = Date.now()): string {
  return ago(iso, now).replace(/ ago$/, '');
}

/** A node's lifecycle as a cell: `online`, `unreachable 45s`, `lost 6m`. */
export function nodeStateLabel(node: { state: 'online' | 'unreachable' | 'lost'; unreachable_since: string | null }): string {
  return node.state === 'online' ? 'online' : `${node.state} ${age(node.unreachable_since)}`;
}

/** A replica's state as a cell: `running`, `pulling 45% (12MB/30MB)`, `exited (0)`, `running (stale 45s)`. */
export function replicaStateLabel(replica: {
  state: string;
  exit_code?: number;
  pull?: { percent?: number; bytes_done?: number; bytes_total?: number };
  stale?: boolean;
  reported_at?: string | null;
}): string {
  let label = replica.state;
  if (replica.pull) {
    const { percent: done, bytes_done: got, bytes_total: total } = replica.pull;
    const amount = got !== undefined && total ? ` (${bytes(got)}/${bytes(total)})` : '';
    label = `${replica.state === 'running' ? 'running, ' : ''}pulling${done === undefined ? '' : ` ${done}%`}${amount}`;
  } else if (replica.exit_code !== undefined && (replica.state === 'exited' || replica.state === 'dead')) {
    label = `${replica.state} (${replica.exit_code})`;
  }
  if (replica.stale) label += ` (stale ${age(replica.reported_at)})`;
  return label;
}

/** An error cell with when it is retried: `port is already allocated (retry in 8s)`. */
export function errorLabel(replica: { error?: string; retry_at?: string }, now = Date.now()): string {
  if (!replica.error) return '';
  if (!replica.retry_at) return replica.error;
  const seconds = Math.max(0, Math.round((Date.parse(replica.retry_at) - now) / 1000));
  return `${replica.error} (retry in ${seconds}s)`;
}
