/** Progress output of the lab commands, and the duration format they use. */
export type Log = (message: string) => void
export const stderrLog: Log = (m) => process.stderr.write(m + '\n')

export function fmt(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}
