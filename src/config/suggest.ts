/** "did you mean" suggestions for misspelled keys, node ids and enum values. */

export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate `word` is most likely a typo of, if any is close enough. */
export function closestMatch(word: string, candidates: Iterable<string>): string | undefined {
  // Short words are within two edits of almost anything, so they only get one.
  const maxDistance = word.length <= 4 ? 1 : 2;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    // Names that differ only in digits are numbered siblings (rpi-01, rpi-02), not typos of each other.
    if (stripDigits(candidate) === stripDigits(word)) continue;
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= maxDistance && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

function stripDigits(text: string): string {
  return text.replace(/\d/g, '');
}
