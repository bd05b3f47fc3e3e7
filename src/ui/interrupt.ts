/**
 * The one Ctrl-C rule of the streaming commands (`exec`, `logs --follow`, `status --watch`): the
 * first Ctrl-C (or SIGTERM, or a closed stdout pipe such as `| head`) aborts the signal, so the
 * work stops and its connections close; a second one, or work that does not stop within a few
 * seconds, ends the process (status 130 after a second Ctrl-C, as shells do).
 */
export interface Interrupt {
  signal: AbortSignal
  /** Resolves after `ms`, or at once when interrupted (a --watch loop's sleep). */
  sleep(ms: number): Promise<void>
  /** Removes the handlers (call in `finally`). */
  dispose(): void
}

export function onInterrupt(opts: {graceMs?: number; exitCode?: () => number} = {}): Interrupt {
  const stop = new AbortController()
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130)
    stop.abort()
    setTimeout(() => process.exit(opts.exitCode?.() ?? process.exitCode ?? 0), opts.graceMs ?? 3000).unref()
  }
  const onPipe = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') onSignal()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.stdout.on('error', onPipe)
  return {
    signal: stop.signal,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        if (stop.signal.aborted) return resolve()
        const t = setTimeout(resolve, ms)
        stop.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), {once: true})
      }),
    dispose() {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.stdout.off('error', onPipe)
    },
  }
}
