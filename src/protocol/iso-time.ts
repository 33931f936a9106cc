/**
 * `new Date(ms).toISOString()` worked out by arithmetic. The first toISOString() of a process sets up
 * V8's date cache, which maps ICU's time-zone data into memory (0.6 MB, even for UTC): more than a
 * percent of the agent's budget on a Pi (npm run bench:agent), for the timestamps of its messages.
 */
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The same string as `new Date(ms).toISOString()` for any time of the years 0 to 9999. */
export function isoTime(ms: number = Date.now()): string {
  const days = Math.floor(ms / 86_400_000);
  const msOfDay = ms - days * 86_400_000;
  // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1_460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(msOfDay / 3_600_000);
  const minutes = Math.floor((msOfDay % 3_600_000) / 60_000);
  const seconds = Math.floor((msOfDay % 60_000) / 1_000);
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hours)}:${pad(minutes)}:${pad(seconds)}.${pad(msOfDay % 1_000, 3)}Z`;
}
