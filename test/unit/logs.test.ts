/**
 * `infra logs`, the pure parts: --since, the journalctl command line, which hosts and units,
 * journalctl's JSON lines (split as chunks arrive, non-UTF-8 messages), rendering and merging.
 * The command against real journals is in test/lab/logs.test.ts.
 */
import {describe, expect, it} from 'vitest'

import type {HostSpec} from '../../src/inventory/schema.js'
import {UsageError} from '../../src/lib/errors.js'
import {fieldText, formatEntry, isoTime, jsonLine, LineSplitter, LogEntry, matchesGrep, mergeByTime, parseEntry, visible} from '../../src/logs/entry.js'
import {journalctlCommand, journalUtc, LogsQuery, parseSince, planHosts, unitMatches} from '../../src/logs/query.js'

function usageError(fn: () => unknown): UsageError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(2)
    return error as UsageError
  }
  throw new Error('expected a UsageError')
}

const FIELDS = '--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,_COMM,_SYSTEMD_UNIT'
const BASE = `journalctl -o json --no-pager --quiet --all ${FIELDS}`

describe('--since', () => {
  it.each([
    ['30s', '-30s'],
    ['10m', '-10min'],
    ['1h', '-1h'],
    ['2d', '-2d'],
    [' 15m ', '-15min'],
  ])('%s is relative, by the host clock: --since=%s', (input, journal) => {
    expect(parseSince(input)).toEqual({kind: 'relative', text: input.trim(), journal})
  })

  it.each([
    ['2026-11-22T10:00:00Z', '2026-11-22 10:00:00 UTC'],
    ['2026-11-22 10:00Z', '2026-11-22 10:00:00 UTC'],
    ['2026-11-22T10:00:30+01:00', '2026-11-22 09:00:30 UTC'],
    ['2026-11-22T10:00-0230', '2026-11-22 12:30:00 UTC'],
    ['2026-01-01T00:30:00+01:00', '2025-12-31 23:30:00 UTC'],
  ])('%s with a zone is %s', (input, journal) => {
    const s = parseSince(input)
    expect(s.kind).toBe('absolute')
    expect(s.journal).toBe(journal)
  })

  it.each([
    ['2026-11-22 10:00', [2026, 10, 22, 10, 0, 0]],
    ['2026-11-22T10:00:00', [2026, 10, 22, 10, 0, 0]],
    ['2026-11-22 23:59:59', [2026, 10, 22, 23, 59, 59]],
    ['2026-11-22', [2026, 10, 22, 0, 0, 0]],
  ] as const)("%s without a zone is this machine's local time, sent in UTC", (input, parts) => {
    const [y, mo, d, h, mi, s] = parts
    expect(parseSince(input).journal).toBe(journalUtc(new Date(y, mo, d, h, mi, s)))
    expect(parseSince(input).journal).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/)
  })

  it.each([
    ['bogus', 'not a duration or a date and time'],
    ['10', 'not a duration or a date and time'],
    ['5x', 'not a duration or a date and time'],
    ['-10m', 'not a duration or a date and time'],
    ['1w', 'not a duration or a date and time'],
    ['yesterday', 'not a duration or a date and time'],
    ['0m', 'the duration must be between 1 and 100000'],
    ['2026-02-30', 'no such date or time'],
    ['2026-11-22 25:00', 'no such date or time'],
    ['2026-11-22 10:60', 'no such date or time'],
    ['2026-11-22Z', 'a time zone needs a time'],
    ['22/11/2026', 'not a duration or a date and time'],
    ['2026-11-22 10', 'not a duration or a date and time'],
  ])('%s is a usage error: %s', (input, why) => {
    const e = usageError(() => parseSince(input))
    expect(e.message).toContain(`--since "${input}": ${why}`)
    expect(e.hint).toContain('30s, 10m, 1h or 2d')
    expect(e.hint).toContain('2026-11-22 10:00')
  })
})

describe('the journalctl command line', () => {
  const q = (over: Partial<LogsQuery> = {}): LogsQuery => ({units: [], follow: false, ...over})
  it.each<[string, LogsQuery, string]>([
    ['the whole journal: the last 100', q(), `${BASE} -n 100`],
    ['following: the last 10 first', q({follow: true}), `${BASE} -n 10 --follow`],
    ['--lines', q({lines: 5}), `${BASE} -n 5`],
    ['--lines 0 --follow: new entries only', q({lines: 0, follow: true}), `${BASE} -n 0 --follow`],
    ['--since: the whole window', q({since: parseSince('10m')}), `${BASE} --since=-10min`],
    ['--since with --follow', q({since: parseSince('1h'), follow: true}), `${BASE} --since=-1h --follow`],
    ['--since and --lines', q({since: parseSince('2d'), lines: 20}), `${BASE} -n 20 --since=-2d`],
    ['a date is quoted for the shell', q({since: parseSince('2026-11-22T10:00:00Z')}), `${BASE} '--since=2026-11-22 10:00:00 UTC'`],
    ['a service: -u', q({units: ['nginx'], since: parseSince('10m')}), `${BASE} --since=-10min -u nginx.service`],
    ['services', q({units: ['haproxy', 'nginx']}), `${BASE} -n 100 -u haproxy.service -u nginx.service`],
    ['an agent: its syslog identifier', q({units: ['infra-scaler']}), `${BASE} -n 100 -t infra-scaler`],
    ['agents', q({units: ['infra-scaler', 'infra-healthcheck']}), `${BASE} -n 100 -t infra-scaler -t infra-healthcheck`],
    [
      'a service and an agent: explicit matches ORed with +',
      q({units: ['haproxy', 'infra-healthcheck']}),
      `${BASE} -n 100 _SYSTEMD_UNIT=haproxy.service + _PID=1 UNIT=haproxy.service + SYSLOG_IDENTIFIER=infra-healthcheck`,
    ],
    ['a unit given twice counts once', q({units: ['nginx', 'nginx']}), `${BASE} -n 100 -u nginx.service`],
  ])('%s', (_what, query, command) => {
    expect(journalctlCommand(query)).toBe(command)
  })

  it("a host's own units replace the query's", () => {
    expect(journalctlCommand(q({units: ['haproxy', 'nginx']}), ['nginx'])).toBe(`${BASE} -n 100 -u nginx.service`)
  })

  it('no units: no match at all', () => {
    expect(unitMatches([])).toEqual([])
  })
})

describe('which hosts, which units', () => {
  const bastion: HostSpec = {name: 'edge', role: 'bastion', address: '203.0.113.10', privateAddress: '10.0.0.1', standby: false}
  const web1: HostSpec = {name: 'web1', role: 'web', address: '10.0.0.11', privateAddress: '10.0.0.11', standby: false}
  const web2: HostSpec = {name: 'web2', role: 'web', address: '10.0.0.12', privateAddress: '10.0.0.12', standby: true}
  const all = [bastion, web1, web2]
  const names = (r: ReturnType<typeof planHosts>) => ({plans: r.plans.map((p) => `${p.host.name}:${p.units.join('+')}`), skipped: r.skipped.map((h) => h.name)})

  it.each<[string, HostSpec[], Parameters<typeof planHosts>[1], {plans: string[]; skipped: string[]}]>([
    ['no --unit: every host, whole journal', all, [], {plans: ['edge:', 'web1:', 'web2:'], skipped: []}],
    ['nginx on one web node', [web1], ['nginx'], {plans: ['web1:nginx'], skipped: []}],
    ['haproxy and the agents on the bastion', [bastion], ['haproxy', 'infra-scaler', 'infra-healthcheck'], {plans: ['edge:haproxy+infra-scaler+infra-healthcheck'], skipped: []}],
    ['all --unit haproxy: the web nodes are left out', all, ['haproxy'], {plans: ['edge:haproxy'], skipped: ['web1', 'web2']}],
    ['all --unit nginx: the bastion is left out', all, ['nginx'], {plans: ['web1:nginx', 'web2:nginx'], skipped: ['edge']}],
    ['all, haproxy and nginx: each host its own', all, ['haproxy', 'nginx'], {plans: ['edge:haproxy', 'web1:nginx', 'web2:nginx'], skipped: []}],
  ])('%s', (_what, hosts, units, expected) => {
    expect(names(planHosts(hosts, units))).toEqual(expected)
  })

  it.each<[string, HostSpec[], Parameters<typeof planHosts>[1], string, string]>([
    ['nginx on the bastion', [bastion], ['nginx'], '--unit nginx: not on edge (nginx runs on web nodes, and edge is the bastion)', 'On edge: haproxy, infra-scaler, infra-healthcheck, infra-bans.'],
    ['an agent on a web node', [web1], ['infra-scaler'], '--unit infra-scaler: not on web1 (infra-scaler runs on the bastion, and web1 is a web node)', 'On web1: nginx, infra-node-agent, app, app-release, infra-app.'],
    ['one of two units does not fit one host', [web1], ['nginx', 'haproxy'], '--unit haproxy: not on web1', 'infra logs all --unit haproxy'],
    ['haproxy on the web nodes', [web1, web2], ['haproxy'], '--unit haproxy: does not run on web1, web2', 'haproxy runs on the bastion.'],
    ['two bastion units on the web nodes', [web1, web2], ['haproxy', 'infra-bans'], '--unit haproxy, infra-bans: none of these runs on web1, web2', 'infra-bans runs on the bastion.'],
  ])('%s is a usage error', (_what, hosts, units, message, hint) => {
    const e = usageError(() => planHosts(hosts, units))
    expect(e.message).toContain(message)
    expect(e.hint).toContain(hint)
  })
})

describe('splitting the stream into lines', () => {
  it.each<[string, (string | Buffer)[], string[]]>([
    ['whole lines in one chunk', ['a\nb\n'], ['a', 'b']],
    ['a line split across chunks', ['{"a":', '1}\n{"b"', ':2}\n'], ['{"a":1}', '{"b":2}']],
    ['a chunk that is only a newline', ['abc', '\n', '\n'], ['abc', '']],
    ['CRLF', ['a\r\nb\r\n'], ['a', 'b']],
    ['a UTF-8 character split between chunks', [Buffer.from([0x63, 0x61, 0x66, 0xc3]), Buffer.from([0xa9, 0x0a])], ['café']],
    ['a 3-byte character split byte by byte', [Buffer.from([0xe2]), Buffer.from([0x82]), Buffer.from([0xac, 0x0a])], ['€']],
  ])('%s', (_what, chunks, lines) => {
    const s = new LineSplitter()
    expect(chunks.flatMap((c) => s.push(c))).toEqual(lines)
    expect(s.end()).toEqual([])
  })

  it('holds a partial last line until more comes, or until the end', () => {
    const s = new LineSplitter()
    expect(s.push('one\ntw')).toEqual(['one'])
    expect(s.push('o')).toEqual([])
    expect(s.push('\nthr')).toEqual(['two'])
    expect(s.end()).toEqual(['thr'])
    expect(s.end()).toEqual([])
  })
})

describe("journalctl's JSON entries", () => {
  const line = (o: Record<string, unknown>) => JSON.stringify({__CURSOR: 's=1', __REALTIME_TIMESTAMP: '1795341601123456', __MONOTONIC_TIMESTAMP: '1', _BOOT_ID: 'b', ...o})

  it.each<[string, Record<string, unknown>, Partial<LogEntry>]>([
    [
      'a service line',
      {MESSAGE: 'GET /x 200', PRIORITY: '6', SYSLOG_IDENTIFIER: 'nginx', _PID: '812', _COMM: 'nginx', _SYSTEMD_UNIT: 'nginx.service'},
      {unit: 'nginx', pid: 812, priority: 6, message: 'GET /x 200'},
    ],
    ['an agent (logger -t)', {MESSAGE: 'scale_up web3', PRIORITY: '5', SYSLOG_IDENTIFIER: 'infra-scaler', _PID: '4242', _COMM: 'logger'}, {unit: 'infra-scaler', pid: 4242, priority: 5}],
    ['no identifier: the command name', {MESSAGE: 'm', _COMM: 'haproxy', _PID: '7'}, {unit: 'haproxy', pid: 7}],
    ['no identifier or command: the unit', {MESSAGE: 'm', _SYSTEMD_UNIT: 'x.service'}, {unit: 'x.service'}],
    ['no pid of its own: SYSLOG_PID', {MESSAGE: 'm', SYSLOG_IDENTIFIER: 'haproxy', SYSLOG_PID: '99'}, {unit: 'haproxy', pid: 99}],
    ['nothing known', {MESSAGE: 'm'}, {unit: 'unknown', pid: undefined, priority: undefined}],
    ['not UTF-8: an array of bytes, decoded with U+FFFD', {MESSAGE: [0x62, 0x61, 0x64, 0xff, 0x21]}, {message: 'bad\ufffd!'}],
    ['valid UTF-8 with a control character: an array too', {MESSAGE: [0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x72, 0x65, 0x64, 0xc3, 0xa9]}, {message: '\u001b[31mredé'}],
    ['too large (null)', {MESSAGE: null}, {message: ''}],
    ['a field given twice', {MESSAGE: ['first', [0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64]], _PID: ['12', '13']}, {message: 'first\nsecond', pid: 12}],
    ['trailing newlines dropped', {MESSAGE: 'line\n\n'}, {message: 'line'}],
    ['a priority out of range is dropped', {MESSAGE: 'm', PRIORITY: '9'}, {priority: undefined}],
  ])('%s', (_what, fields, expected) => {
    const e = parseEntry(line(fields), 'web1')
    expect(e).toBeDefined()
    expect(e!.host).toBe('web1')
    expect(e!.us).toBe(1_795_341_601_123_456)
    for (const [k, v] of Object.entries(expected)) expect(e![k as keyof LogEntry], k).toEqual(v)
  })

  it.each([['-- No entries --'], [''], ['{not json'], ['[1,2]'], [JSON.stringify({MESSAGE: 'no timestamp'})], ['null']])('%j is not an entry', (text) => {
    expect(parseEntry(text, 'web1')).toBeUndefined()
  })

  it('fieldText decodes every shape journalctl writes', () => {
    expect(fieldText('x')).toBe('x')
    expect(fieldText([104, 105])).toBe('hi')
    expect(fieldText(null)).toBeUndefined()
    expect(fieldText(undefined)).toBeUndefined()
    expect(fieldText([])).toBe('')
  })

  it('--grep: a fixed string, any case, in the message', () => {
    const e = parseEntry(line({MESSAGE: 'GET /Probe-42.html?a=[1] 404', SYSLOG_IDENTIFIER: 'nginx'}), 'web1')!
    expect(matchesGrep(e, undefined)).toBe(true)
    expect(matchesGrep(e, 'probe-42')).toBe(true)
    expect(matchesGrep(e, '?A=[1]')).toBe(true) // not a pattern
    expect(matchesGrep(e, '.*')).toBe(false)
    expect(matchesGrep(e, 'nginx')).toBe(false) // the message only
  })
})

describe('rendering', () => {
  const e: LogEntry = {host: 'web1', us: Date.UTC(2026, 10, 22, 10, 0, 1) * 1000 + 123_456, unit: 'nginx', pid: 812, priority: 6, message: 'GET /x 200'}

  it('text: TIME HOST UNIT[PID]: MESSAGE', () => {
    expect(formatEntry(e, {utc: true})).toBe('2026-11-22 10:00:01 web1 nginx[812]: GET /x 200\n')
    expect(formatEntry({...e, pid: undefined}, {utc: true})).toBe('2026-11-22 10:00:01 web1 nginx: GET /x 200\n')
    expect(formatEntry({...e, host: 'b'}, {utc: true, hostWidth: 7})).toBe('2026-11-22 10:00:01 b       nginx[812]: GET /x 200\n')
  })

  it("text: this machine's time zone by default", () => {
    const d = new Date(Math.floor(e.us / 1000))
    const p = (n: number) => String(n).padStart(2, '0')
    expect(formatEntry(e)).toBe(`${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} web1 nginx[812]: GET /x 200\n`)
  })

  it('text: continuation lines indented under the message', () => {
    expect(formatEntry({...e, message: 'one\ntwo'}, {utc: true})).toBe('2026-11-22 10:00:01 web1 nginx[812]: one\n                                     two\n')
  })

  it('text: control characters are shown, not sent to the terminal', () => {
    expect(visible('a\u001b[2Jb\tc\u0007\u009b')).toBe('a\\x1b[2Jb\tc\\x07\\x9b')
    expect(formatEntry({...e, message: '\u001b[31mred\r'}, {utc: true})).toBe('2026-11-22 10:00:01 web1 nginx[812]: \\x1b[31mred\\x0d\n')
  })

  it('text with colour: the host by its index, errors red, warnings yellow', () => {
    expect(formatEntry(e, {utc: true, color: true, hostIndex: 1, hostWidth: 6})).toBe('2026-11-22 10:00:01 \u001b[35mweb1  \u001b[0m nginx[812]: GET /x 200\n')
    expect(formatEntry({...e, priority: 3}, {utc: true, color: true})).toBe('2026-11-22 10:00:01 \u001b[36mweb1\u001b[0m nginx[812]: \u001b[1;31mGET /x 200\u001b[0m\n')
    expect(formatEntry({...e, priority: 4}, {utc: true, color: true})).toContain('\u001b[33mGET /x 200\u001b[0m')
  })

  it('NDJSON: {time, host, unit, pid, priority, message}, time in UTC with microseconds', () => {
    expect(isoTime(e.us)).toBe('2026-11-22T10:00:01.123456Z')
    expect(isoTime(1_000_000_000_000_007)).toBe('2001-09-09T01:46:40.000007Z')
    expect(jsonLine(e)).toBe('{"time":"2026-11-22T10:00:01.123456Z","host":"web1","unit":"nginx","pid":812,"priority":6,"message":"GET /x 200"}\n')
    expect(JSON.parse(jsonLine({...e, pid: undefined, priority: undefined, message: 'a\u001bb'}))).toEqual({
      time: '2026-11-22T10:00:01.123456Z',
      host: 'web1',
      unit: 'nginx',
      pid: null,
      priority: null,
      message: 'a\u001bb',
    })
  })

  it('merges hosts by time; ties keep host order', () => {
    const at = (host: string, us: number): LogEntry => ({host, us, unit: 'u', message: `${host}@${us}`})
    const merged = mergeByTime([
      [at('edge', 1), at('edge', 5), at('edge', 9)],
      [at('web1', 2), at('web1', 5), at('web1', 10)],
      [],
      [at('web2', 0)],
    ])
    expect(merged.map((x) => x.message)).toEqual(['web2@0', 'edge@1', 'web1@2', 'edge@5', 'web1@5', 'edge@9', 'web1@10'])
    expect(mergeByTime([])).toEqual([])
  })
})
