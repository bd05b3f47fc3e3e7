/**
 * HAProxy's runtime API as the host vocabulary: the one way to send it a command (a shell line run
 * on the bastion) and the parsers of what it answers.
 */
import {DEFAULT_PATHS} from './paths.js'
import {shq} from './quote.js'

/**
 * A shell line that sends one runtime-API command to HAProxy's admin socket and prints the answer;
 * it gives up after `seconds` (the socket of a stopped HAProxy does not hang the caller).
 */
export function runtimeCommand(command: string, opts: {socket?: string; seconds?: number} = {}): string {
  const seconds = opts.seconds ?? 2
  return `echo ${shq(command)} | timeout ${seconds + 1} socat -t ${seconds} stdio ${shq(`UNIX-CONNECT:${opts.socket ?? DEFAULT_PATHS.haproxyAdminSocket}`)}`
}

export interface StatRow {
  backend: string
  server: string
  /** UP, DOWN, MAINT, DRAIN, `UP 1/3`, `no check`, ... as HAProxy prints it. */
  status: string
  /** The last health check's result (e.g. L7OK, L4CON, L7STS). */
  check?: string
}

/** `show stat` CSV → one record per line (frontends, backends and servers), keyed by column name. */
export function parseStatCsv(csv: string): Record<string, string>[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '')
  const header = lines.find((l) => l.startsWith('# '))
  if (!header) return []
  const cols = header.slice(2).split(',')
  return lines
    .filter((l) => !l.startsWith('#'))
    .map((l) => {
      const f = l.split(',')
      return Object.fromEntries(cols.map((c, i) => [c, f[i] ?? '']))
    })
}

/** `show stat` CSV → rows of real servers (not FRONTEND/BACKEND lines). */
export function parseShowStat(csv: string): StatRow[] {
  const rows: StatRow[] = []
  for (const r of parseStatCsv(csv)) {
    const server = r.svname ?? ''
    if (server === 'FRONTEND' || server === 'BACKEND') continue
    const row: StatRow = {backend: r.pxname ?? '', server, status: r.status ?? ''}
    if (r.check_status !== undefined) row.check = r.check_status
    rows.push(row)
  }
  return rows
}

