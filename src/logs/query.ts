/**
 * `infra logs`, the pure half: which journal entries to read on which host, and the journalctl
 * command line that reads them. Everything here is checked before any connection is opened.
 */
import type {HostSpec} from '../inventory/schema.js'
import {UsageError} from '../lib/errors.js'
import {shellJoin} from '../ssh/command.js'

// --- units -----------------------------------------------------------------------------------

/**
 * What `--unit` accepts, where it runs, and how its entries are found in the journal: a systemd
 * service (`-u`, its own output, its syslog messages and systemd's messages about it), or a
 * syslog identifier (`-t`) for the agents, which are cron jobs logging with `logger -t`.
 */
export const UNITS = {
  haproxy: {role: 'bastion', unit: 'haproxy.service'},
  nginx: {role: 'web', unit: 'nginx.service'},
  'infra-scaler': {role: 'bastion', tag: 'infra-scaler'},
  'infra-healthcheck': {role: 'bastion', tag: 'infra-healthcheck'},
  'infra-bans': {role: 'bastion', tag: 'infra-bans'},
  'infra-node-agent': {role: 'web', tag: 'infra-node-agent'},
  // The app's containers (journald log driver, tag app; release commands: app-release) and infra-app's own lines.
  app: {role: 'web', tag: 'app'},
  'app-release': {role: 'web', tag: 'app-release'},
  'infra-app': {role: 'web', tag: 'infra-app'},
} as const satisfies Record<string, {role: HostSpec['role']; unit?: string; tag?: string}>

export type UnitName = keyof typeof UNITS
export const UNIT_NAMES = Object.keys(UNITS) as UnitName[]

function unitsOfRole(role: HostSpec['role']): UnitName[] {
  return UNIT_NAMES.filter((u) => UNITS[u].role === role)
}

// --- --since ---------------------------------------------------------------------------------

/**
 * Where the window starts, as journalctl reads it. A duration stays relative (`-10min`), so the
 * host's own clock decides what "10 minutes ago" is; a date and time is turned into UTC here,
 * from this machine's time zone (or the zone written in it).
 */
export type Since = {kind: 'relative'; text: string; journal: string} | {kind: 'absolute'; text: string; journal: string; date: Date}

const SINCE_FORMS = '30s, 10m, 1h or 2d (that long ago), or a date and time in this machine\'s time zone: 2026-11-22, 2026-11-22 10:00, 2026-11-22T10:00:00 (add Z or +01:00 for another zone)'

function badSince(value: string, why = 'not a duration or a date and time'): UsageError {
  return new UsageError(`--since "${value}": ${why}`, {hint: `Use ${SINCE_FORMS}.`})
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** `2026-11-22 09:00:00 UTC`: a form every journalctl reads (systemd 252 does not read `T`). */
export function journalUtc(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`
}

export function parseSince(value: string): Since {
  const text = value.trim()
  const rel = /^(\d+)\s*(s|m|h|d)$/.exec(text)
  if (rel) {
    const n = Number(rel[1])
    if (n === 0 || n > 100_000) throw badSince(value, 'the duration must be between 1 and 100000')
    const unit = {s: 's', m: 'min', h: 'h', d: 'd'}[rel[2] as 's' | 'm' | 'h' | 'd']
    return {kind: 'relative', text, journal: `-${n}${unit}`}
  }
  const abs = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(text)
  if (!abs) throw badSince(value)
  const [y, mo, d, h = 0, mi = 0, s = 0] = abs.slice(1, 7).map((x) => (x === undefined ? undefined : Number(x))) as number[]
  const zone = abs[7]
  if (zone && abs[4] === undefined) throw badSince(value, 'a time zone needs a time (2026-11-22T10:00Z)')
  // Reject 2026-02-30 and 25:00: the parts must come back unchanged.
  const probe = new Date(Date.UTC(y, mo - 1, d, h, mi, s))
  const valid = probe.getUTCFullYear() === y && probe.getUTCMonth() === mo - 1 && probe.getUTCDate() === d && probe.getUTCHours() === h && probe.getUTCMinutes() === mi && probe.getUTCSeconds() === s
  if (!valid) throw badSince(value, 'no such date or time')
  let date: Date
  if (zone) {
    const off = zone.toUpperCase() === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)))
    date = new Date(probe.getTime() - off * 60_000)
  } else {
    date = new Date(y, mo - 1, d, h, mi, s)
  }
  return {kind: 'absolute', text, journal: journalUtc(date), date}
}

// --- the query and its command line --------------------------------------------------------------

export interface LogsQuery {
  /** Only these units (none: the whole journal). */
  units: UnitName[]
  since?: Since
  /** At most this many entries before following (journalctl -n); default: see defaultLines. */
  lines?: number
  follow: boolean
  /** Case-insensitive fixed string, matched on this side against each message. */
  grep?: string
}

/** Without --lines: the last 100 entries, or 10 before following; with --since, the whole window. */
export function defaultLines(q: Pick<LogsQuery, 'follow' | 'since'>): number | undefined {
  if (q.since) return undefined
  return q.follow ? 10 : 100
}

/** The only fields journalctl sends (it always adds __CURSOR, the timestamps and _BOOT_ID). */
export const JOURNAL_FIELDS = ['MESSAGE', 'PRIORITY', 'SYSLOG_IDENTIFIER', 'SYSLOG_PID', '_PID', '_COMM', '_SYSTEMD_UNIT'] as const

/**
 * journalctl's matches for these units. Services (`-u`) and identifiers (`-t`) given together
 * would be ANDed by journalctl, so a mix is written as explicit matches ORed with `+`.
 */
export function unitMatches(units: UnitName[]): string[] {
  const specs = units.map((u) => UNITS[u] as {unit?: string; tag?: string})
  const services = specs.filter((s) => s.unit).map((s) => s.unit!)
  const tags = specs.filter((s) => s.tag).map((s) => s.tag!)
  if (tags.length === 0) return services.flatMap((s) => ['-u', s])
  if (services.length === 0) return tags.flatMap((t) => ['-t', t])
  const terms = [
    ...services.flatMap((s) => [[`_SYSTEMD_UNIT=${s}`], ['_PID=1', `UNIT=${s}`]]),
    ...tags.map((t) => [`SYSLOG_IDENTIFIER=${t}`]),
  ]
  return terms.flatMap((t, i) => (i === 0 ? t : ['+', ...t]))
}

/** The journalctl command line (for `bash -c` on the host) that reads `units` for the query. */
export function journalctlCommand(q: LogsQuery, units: UnitName[] = q.units): string {
  const words = ['journalctl', '-o', 'json', '--no-pager', '--quiet', '--all', `--output-fields=${JOURNAL_FIELDS.join(',')}`]
  const lines = q.lines ?? defaultLines(q)
  if (lines !== undefined) words.push('-n', String(lines))
  if (q.since) words.push(`--since=${q.since.journal}`)
  if (q.follow) words.push('--follow')
  words.push(...unitMatches([...new Set(units)]))
  return shellJoin(words)
}

// --- which hosts ---------------------------------------------------------------------------------

export interface HostPlan {
  host: HostSpec
  /** The asked units that run on this host (empty: the whole journal). */
  units: UnitName[]
}

/**
 * The hosts to read and the units to read on each. A unit that does not run on a host's role is
 * a UsageError when the target is one host; among several hosts, a host that runs none of the
 * asked units is left out (`skipped`), and a UsageError only if no host is left.
 */
export function planHosts(hosts: HostSpec[], units: UnitName[]): {plans: HostPlan[]; skipped: HostSpec[]} {
  const asked = [...new Set(units)]
  if (asked.length === 0) return {plans: hosts.map((host) => ({host, units: []})), skipped: []}
  const where = (u: UnitName) => `${u} runs on ${UNITS[u].role === 'bastion' ? 'the bastion' : 'web nodes'}`
  if (hosts.length === 1) {
    const [host] = hosts
    const wrong = asked.filter((u) => UNITS[u].role !== host.role)
    if (wrong.length > 0) {
      throw new UsageError(`--unit ${wrong[0]}: not on ${host.name} (${where(wrong[0])}, and ${host.name} is ${host.role === 'bastion' ? 'the bastion' : 'a web node'})`, {
        hint: `On ${host.name}: ${unitsOfRole(host.role).join(', ')}. Use \`infra logs all --unit ${wrong[0]}\` to read it wherever it runs.`,
      })
    }
    return {plans: [{host, units: asked}], skipped: []}
  }
  const plans: HostPlan[] = []
  const skipped: HostSpec[] = []
  for (const host of hosts) {
    const mine = asked.filter((u) => UNITS[u].role === host.role)
    if (mine.length > 0) plans.push({host, units: mine})
    else skipped.push(host)
  }
  if (plans.length === 0) {
    const names = hosts.map((h) => h.name).join(', ')
    const what = asked.length === 1 ? `--unit ${asked[0]}: does not run on ${names}` : `--unit ${asked.join(', ')}: none of these runs on ${names}`
    throw new UsageError(what, {
      hint: asked.map(where).join('; ') + '.',
    })
  }
  return {plans, skipped}
}
