/**
 * `infra logs` over SSH: one `journalctl -o json` per host (web nodes through the bastion), its
 * output parsed line by line as it arrives. A host that cannot be read is reported and the
 * others go on.
 */
import type {LoadedInventory} from '../inventory/load.js'
import {HostError} from '../lib/errors.js'
import type {HostKeyEvent} from '../ssh/pins.js'
import {LineSplitter, LogEntry, matchesGrep, mergeByTime, parseEntry} from '../logs/entry.js'
import {HostPlan, journalctlCommand, LogsQuery} from '../logs/query.js'

export interface ReadLogsOptions {
  query: LogsQuery
  plans: HostPlan[]
  /** `arrival`: each entry as soon as it is read; `time`: every host read to the end, then all entries in time order. */
  order: 'arrival' | 'time'
  onEntry: (e: LogEntry) => void
  /** A host that could not be read (connection, or journalctl failing); the others go on. */
  onHostError: (host: string, error: Error & {hint?: string}) => void
  /** Stop reading (Ctrl-C): connections are closed, readLogs resolves. */
  signal?: AbortSignal
  onHostKeyNew?: (e: HostKeyEvent) => void
}

/** Read the journals. Resolves when every host is done (or the signal aborted) with the hosts that failed. */
export async function readLogs(loaded: LoadedInventory, opts: ReadLogsOptions): Promise<{failed: string[]}> {
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded, {only: opts.plans.map((p) => p.host.name), onHostKeyNew: opts.onHostKeyNew})
  const signal = opts.signal
  const stopped = new Promise<'stopped'>((resolve) => {
    if (signal?.aborted) resolve('stopped')
    signal?.addEventListener('abort', () => resolve('stopped'), {once: true})
  })
  const failed: string[] = []
  const buffered = new Map<string, LogEntry[]>()

  const readHost = async (plan: HostPlan): Promise<void> => {
    const name = plan.host.name
    const mine: LogEntry[] = []
    buffered.set(name, mine)
    const take = (line: string) => {
      const e = parseEntry(line, name)
      if (!e || !matchesGrep(e, opts.query.grep)) return
      if (opts.order === 'time') mine.push(e)
      else opts.onEntry(e)
    }
    try {
      const conn = await Promise.race([fleet.connect(name), stopped])
      if (conn === 'stopped') return
      const lines = new LineSplitter()
      let stderr = ''
      const r = await conn.exec(journalctlCommand(opts.query, plan.units), {
        collect: false,
        signal,
        onStdout: (chunk) => {
          for (const l of lines.push(chunk)) take(l)
        },
        onStderr: (chunk) => {
          if (stderr.length < 4000) stderr += chunk.toString('utf8')
        },
      })
      for (const l of lines.end()) take(l)
      if (r.code !== 0) {
        const why = stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? 'no message'
        throw new HostError(name, `${name}: journalctl exited with status ${r.code}: ${why}`, {
          hint: `Run it by hand to see more: infra exec ${name} -- journalctl -n 10`,
        })
      }
    } catch (error) {
      if (signal?.aborted) return
      failed.push(name)
      opts.onHostError(name, error instanceof Error ? error : new Error(String(error)))
    }
  }

  try {
    await Promise.all(opts.plans.map((p) => readHost(p)))
    if (opts.order === 'time') {
      for (const e of mergeByTime(opts.plans.map((p) => buffered.get(p.host.name) ?? []))) opts.onEntry(e)
    }
  } finally {
    await fleet.close()
  }
  return {failed: opts.plans.map((p) => p.host.name).filter((n) => failed.includes(n))}
}
