// Prints the rows the fault scenarios appended to test-artifacts/faults.jsonl (npm run faults).
import { readFileSync } from 'node:fs';

const file = new URL('../test-artifacts/faults.jsonl', import.meta.url);
let rows;
try {
  rows = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
} catch {
  console.error('no fault results: run `npm run faults`');
  process.exit(1);
}
const headers = ['SCENARIO', 'FAULTS', 'RECREATED', 'DUPLICATES', 'RECOVER MAX', 'RECOVER P50', 'NOTES'];
const cells = rows.map((r) => [r.scenario, r.runs, r.recreated, r.duplicates, r.recoverMaxS === undefined ? '-' : `${r.recoverMaxS}s`, r.recoverP50S === undefined ? '-' : `${r.recoverP50S}s`, r.notes ?? '']);
const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => String(row[i]).length)));
const line = (row) => row.map((cell, i) => String(cell).padEnd(widths[i])).join('  ').trimEnd();
console.log(line(headers));
for (const row of cells) console.log(line(row));
