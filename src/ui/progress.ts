/**
 * Per-host progress lines of a step that works on hosts (src/ui/tasks.ts shows them):
 * `web1  gathering facts`, `web1  ✔ 3 changes applied (1.2s)`.
 */
export type ProgressMode = 'tty' | 'plain' | 'silent'

/** tty: listr2's live renderer; plain: lines (CI, no TTY, TERM=dumb); silent: nothing (--json, tests). */
export function progressMode(json: boolean): ProgressMode {
  if (json) return 'silent'
  if (process.env.CI || !process.stderr.isTTY || process.env.TERM === 'dumb') return 'plain'
  return 'tty'
}

/** How a step reports on one of its hosts: a phase (`facts`, `applying`, `done`, `failed`…) and a detail. */
export type HostUpdate = (host: string, phase: string, detail?: string) => void

const LABELS: Record<string, string> = {
  waiting: 'waiting',
  connecting: 'connecting',
  facts: 'gathering facts',
  planning: 'planning',
  applying: 'applying',
  confirming: 'confirming with a new connection',
  settling: 'waiting for health checks',
}

/** The text of a host's line for a phase; `elapsed` is shown once the host is done or failed. */
export function hostLine(host: string, width: number, phase: string, detail: string | undefined, elapsed: string, marks = true): string {
  const name = host.padEnd(width)
  if (phase === 'done') return `${name}  ${marks ? '✔ ' : ''}${detail ?? 'done'} (${elapsed})`
  if (phase === 'failed') return `${name}  ${marks ? '✖ ' : ''}${detail ?? 'failed'} (${elapsed})`
  return `${name}  ${LABELS[phase] ?? phase}${detail ? `: ${detail}` : ''}`
}

/** Keeps when each host started, for the elapsed time on its last line. */
export function hostClock(): (host: string, phase: string) => string {
  const started = new Map<string, number>()
  return (host, phase) => {
    if (!started.has(host) && phase !== 'waiting') started.set(host, Date.now())
    return ((Date.now() - (started.get(host) ?? Date.now())) / 1000).toFixed(1) + 's'
  }
}

/** Plain mode: one line on stderr per host update (the `waiting` phase is not printed). */
export function plainHostUpdate(names: string[]): HostUpdate {
  const width = Math.max(...names.map((h) => h.length), 4)
  const clock = hostClock()
  return (host, phase, detail) => {
    const elapsed = clock(host, phase)
    if (phase !== 'waiting') process.stderr.write(hostLine(host, width, phase, detail, elapsed) + '\n')
  }
}

/** A listr2 subtask per host whose title follows the host's updates; it ends on `done`, or fails on `failed` (listr2 draws the mark). */
export interface HostLines {
  subtasks: {title: string; task: (_ctx: unknown, task: {title: string}) => Promise<void>}[]
  update: HostUpdate
  /** Ends every host line still open (the step finished or failed). */
  settle(): void
}

export function hostLines(names: string[]): HostLines {
  const width = Math.max(...names.map((h) => h.length), 4)
  const clock = hostClock()
  type Line = {title: (t: string) => void; end: () => void; fail: (e: Error) => void}
  const lines = new Map<string, Line>()
  const last = new Map<string, string>()
  const ended = new Map<string, 'done' | 'failed'>()
  const show = (host: string) => {
    const line = lines.get(host)
    const text = last.get(host)
    if (line && text !== undefined) line.title(text)
    const end = ended.get(host)
    if (line && end === 'done') line.end()
    if (line && end === 'failed') line.fail(new Error(text ?? 'failed'))
  }
  return {
    subtasks: names.map((host) => ({
      title: hostLine(host, width, 'waiting', undefined, ''),
      task: (_ctx, task) =>
        new Promise<void>((resolve, reject) => {
          lines.set(host, {title: (t) => (task.title = t), end: resolve, fail: reject})
          show(host)
        }),
    })),
    update(host, phase, detail) {
      last.set(host, hostLine(host, width, phase, detail, clock(host, phase), false))
      if (phase === 'done' || phase === 'failed') ended.set(host, phase)
      show(host)
    },
    settle() {
      for (const host of names) if (!ended.has(host)) ended.set(host, 'done')
      for (const host of names) show(host)
    },
  }
}
