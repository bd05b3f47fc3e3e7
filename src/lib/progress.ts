/**
 * Progress for work across hosts: one line per host and step.
 * - a terminal: listr2's live renderer on stderr;
 * - CI or no TTY: plain, line-by-line output on stderr (`web1  facts`, `web1  ✔ 3 changes applied (1.2s)`);
 * - --json: nothing (stdout is the JSON document).
 */
export type ProgressMode = 'tty' | 'plain' | 'silent'

export function progressMode(json: boolean): ProgressMode {
  if (json) return 'silent'
  if (process.env.CI || !process.stderr.isTTY || process.env.TERM === 'dumb') return 'plain'
  return 'tty'
}

export interface HostProgress {
  update(host: string, phase: string, detail?: string): void
  /** Resolves once every host reached 'done' or 'failed' and the renderer finished. */
  finish(): Promise<void>
}

const LABELS: Record<string, string> = {
  waiting: 'waiting',
  connecting: 'connecting',
  facts: 'gathering facts',
  planning: 'planning',
  applying: 'applying',
  confirming: 'confirming with a new connection',
  settling: 'waiting for health checks',
}

export async function hostProgress(hosts: string[], mode: ProgressMode): Promise<HostProgress> {
  const width = Math.max(...hosts.map((h) => h.length), 4)
  const started = new Map<string, number>()
  const elapsed = (host: string) => (((Date.now() - (started.get(host) ?? Date.now())) / 1000).toFixed(1) + 's')
  if (mode === 'silent') return {update() {}, finish: async () => {}}
  if (mode === 'plain') {
    return {
      update(host, phase, detail) {
        if (phase === 'waiting') return
        if (!started.has(host)) started.set(host, Date.now())
        const mark = phase === 'done' ? '✔ ' : phase === 'failed' ? '✖ ' : ''
        const text = phase === 'done' || phase === 'failed' ? `${detail ?? phase} (${elapsed(host)})` : (LABELS[phase] ?? phase) + (detail ? `: ${detail}` : '')
        process.stderr.write(`${host.padEnd(width)}  ${mark}${text}\n`)
      },
      finish: async () => {},
    }
  }

  const {Listr, ListrLogger, ProcessOutput} = await import('listr2')
  type Waiter = {title: (t: string) => void; resolve: () => void; reject: (e: Error) => void}
  const waiters = new Map<string, Waiter>()
  const pending = new Map<string, {phase: string; detail?: string}>()
  const listr = new Listr(
    hosts.map((host) => ({
      title: `${host.padEnd(width)}  waiting`,
      task: (_ctx: unknown, task: {title: string}) =>
        new Promise<void>((resolve, reject) => {
          waiters.set(host, {title: (t) => (task.title = t), resolve, reject})
          const early = pending.get(host)
          if (early) apply(host, early.phase, early.detail)
        }),
    })),
    {
      concurrent: true,
      exitOnError: false,
      collectErrors: 'minimal',
      rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
    },
  )
  function apply(host: string, phase: string, detail?: string) {
    const w = waiters.get(host)
    if (!w) {
      pending.set(host, {phase, detail})
      return
    }
    if (!started.has(host) && phase !== 'waiting') started.set(host, Date.now())
    if (phase === 'done') {
      w.title(`${host.padEnd(width)}  ${detail ?? 'done'} (${elapsed(host)})`)
      w.resolve()
    } else if (phase === 'failed') {
      w.title(`${host.padEnd(width)}  failed (${elapsed(host)})`)
      w.reject(new Error(detail ?? 'failed'))
    } else {
      w.title(`${host.padEnd(width)}  ${LABELS[phase] ?? phase}${detail ? `: ${detail}` : ''}`)
    }
  }
  const running = listr.run().catch(() => {})
  return {update: apply, finish: async () => void (await running)}
}
