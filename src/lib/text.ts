/**
 * The one edit distance: optimal string alignment (Levenshtein with transpositions of two
 * adjacent letters), case-insensitive. `editDistance('adress', 'address')` is 1.
 */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  const d: number[][] = Array.from({length: a.length + 1}, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * "Did you mean": the candidate nearest to `name` within `maxDistance` edits (default: 1 for
 * names of up to 4 letters, 2 otherwise), the first one on a tie; undefined when none is that near.
 */
export function didYouMean(name: string, candidates: Iterable<string>, maxDistance = name.length <= 4 ? 1 : 2): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = editDistance(name, c)
    if (d <= maxDistance && d < bestDistance) [best, bestDistance] = [c, d]
  }
  return best
}
