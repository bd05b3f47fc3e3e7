/**
 * The one worker pool: run `fn` on every item, at most `limit` at once (at least one), and
 * resolve with the results in input order. A rejection of `fn` rejects the whole call (the items
 * already started still run to their end); catch inside `fn` to keep going past failures.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  const workers = Math.max(1, Math.min(limit, items.length))
  await Promise.all(Array.from({length: workers}, worker))
  return out
}
