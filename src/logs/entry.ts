/**
 * `infra logs`, the other pure half: journalctl's JSON lines in, entries out (parsed, filtered,
 * merged across hosts) and rendered as text or NDJSON.
 */

export interface LogEntry {
  host: string
  /** Microseconds since the epoch (the entry's __REALTIME_TIMESTAMP, by the host's clock). */
  us: number
  /** What wrote it: the syslog identifier (haproxy, nginx, infra-scaler, ...), else the command name. */
  unit: string
  pid?: number
  /** Syslog priority, 0 (emerg) to 7 (debug). */
  priority?: number
  message: string
}

// --- bytes to lines --------------------------------------------------------------------------------

/**
 * Splits a byte stream into lines as chunks arrive: a partial last line is held until the rest
 * comes (or `end()`); lines are decoded only when whole, so a character split across chunks
 * stays whole.
 */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0)

  push(chunk: Buffer | string): string[] {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, Buffer.from(chunk)]) : Buffer.from(chunk)
    const lines: string[] = []
    let start = 0
    let nl: number
    while ((nl = buf.indexOf(0x0a, start)) !== -1) {
      lines.push(buf.subarray(start, nl).toString('utf8').replace(/\r$/, ''))
      start = nl + 1
    }
    this.pending = buf.subarray(start)
    return lines
  }

  /** The last line, when the stream ended without a newline. */
  end(): string[] {
    const rest = this.pending
    this.pending = Buffer.alloc(0)
    return rest.length > 0 ? [rest.toString('utf8').replace(/\r$/, '')] : []
  }
}

// --- journalctl -o json ------------------------------------------------------------------------

type FieldValue = string | number[] | null | (string | number[] | null)[]

/**
 * A field's text. journalctl writes a value that is not printable UTF-8 as an array of byte
 * values, a field too large as null, and a field present several times as an array of values.
 */
export function fieldText(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined
  if (typeof v === 'string') return v
  if (typeof v === 'number') return String(v)
  if (Array.isArray(v)) {
    if (v.every((b) => typeof b === 'number')) return new TextDecoder('utf-8').decode(Uint8Array.from(v))
    const parts = v.map((x) => fieldText(x)).filter((x): x is string => x !== undefined)
    return parts.length > 0 ? parts.join('\n') : undefined
  }
  return undefined
}

function firstInt(v: unknown): number | undefined {
  const t = fieldText(Array.isArray(v) && !v.every((b) => typeof b === 'number') ? v[0] : v)
  if (t === undefined || !/^\d+$/.test(t.trim())) return undefined
  return Number(t.trim())
}

/** One line of `journalctl -o json` as an entry, or undefined for anything that is not one. */
export function parseEntry(line: string, host: string): LogEntry | undefined {
  const text = line.trim()
  if (!text.startsWith('{')) return undefined
  let o: Record<string, FieldValue>
  try {
    o = JSON.parse(text) as Record<string, FieldValue>
  } catch {
    return undefined
  }
  if (!o || typeof o !== 'object') return undefined
  const us = firstInt(o.__REALTIME_TIMESTAMP)
  if (us === undefined) return undefined
  const entry: LogEntry = {
    host,
    us,
    unit: fieldText(o.SYSLOG_IDENTIFIER) ?? fieldText(o._COMM) ?? fieldText(o._SYSTEMD_UNIT) ?? 'unknown',
    message: (fieldText(o.MESSAGE) ?? '').replace(/\n+$/, ''),
  }
  const pid = firstInt(o._PID) ?? firstInt(o.SYSLOG_PID)
  if (pid !== undefined) entry.pid = pid
  const priority = firstInt(o.PRIORITY)
  if (priority !== undefined && priority <= 7) entry.priority = priority
  return entry
}

/** --grep: a case-insensitive fixed string, anywhere in the message. */
export function matchesGrep(e: LogEntry, grep: string | undefined): boolean {
  if (!grep) return true
  return e.message.toLowerCase().includes(grep.toLowerCase())
}

/**
 * Entries of several hosts in time order (each host's list is already in order; ties keep host
 * order). Hosts' clocks are trusted as they are.
 */
export function mergeByTime(lists: LogEntry[][]): LogEntry[] {
  const out: LogEntry[] = []
  const at = lists.map(() => 0)
  for (;;) {
    let best = -1
    for (let i = 0; i < lists.length; i++) {
      if (at[i] < lists[i].length && (best === -1 || lists[i][at[i]].us < lists[best][at[best]].us)) best = i
    }
    if (best === -1) return out
    out.push(lists[best][at[best]++])
  }
}

// --- rendering ---------------------------------------------------------------------------------

/** ISO 8601 in UTC with microseconds: 2026-11-22T10:00:01.123456Z. */
export function isoTime(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace(/Z$/, `${String(us % 1000).padStart(3, '0')}Z`)
}

const pad = (n: number) => String(n).padStart(2, '0')

/** `2026-11-22 10:00:01`, in this machine's time zone (or UTC). */
export function shortTime(us: number, utc = false): string {
  const d = new Date(Math.floor(us / 1000))
  if (utc) return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/**
 * Control characters shown, not obeyed: a log line written by a client (a request path, a
 * header) must not move the cursor or recolour the operator's terminal. Tab stays.
 */
export function visible(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

const COLORS = [36, 35, 33, 32, 34, 96, 95, 93, 92, 94]

export interface FormatOptions {
  /** Pad host names to this width (the longest name shown). */
  hostWidth?: number
  /** ANSI colours: the host name (by its index in `hostIndex`), errors red, warnings yellow. */
  color?: boolean
  hostIndex?: number
  /** Times in UTC instead of this machine's zone (tests). */
  utc?: boolean
}

/**
 * `TIME HOST UNIT[PID]: MESSAGE`, one line per line of the message (continuation lines are
 * indented under the first), ending with a newline.
 */
export function formatEntry(e: LogEntry, opts: FormatOptions = {}): string {
  const host = e.host.padEnd(opts.hostWidth ?? 0)
  const who = `${visible(e.unit)}${e.pid === undefined ? '' : `[${e.pid}]`}: `
  const head = `${shortTime(e.us, opts.utc)} ${host} ${who}`
  const lines = e.message.split('\n').map((l) => visible(l))
  const indent = ' '.repeat(head.length)
  if (!opts.color) return head + lines.join('\n' + indent) + '\n'
  const hostColored = `\u001b[${COLORS[(opts.hostIndex ?? 0) % COLORS.length]}m${host}\u001b[0m`
  const tone = e.priority !== undefined && e.priority <= 3 ? '\u001b[1;31m' : e.priority === 4 ? '\u001b[33m' : ''
  const body = lines.map((l) => (tone ? `${tone}${l}\u001b[0m` : l)).join('\n' + indent)
  return `${shortTime(e.us, opts.utc)} ${hostColored} ${who}${body}\n`
}

/** One NDJSON line: {time, host, unit, pid, priority, message}. */
export function jsonLine(e: LogEntry): string {
  return JSON.stringify({time: isoTime(e.us), host: e.host, unit: e.unit, pid: e.pid ?? null, priority: e.priority ?? null, message: e.message}) + '\n'
}
