/**
 * `infra logs` against the shared lab: a request made through the bastion shows up in web1's
 * nginx journal (read through the bastion), `--follow` streams a new request within seconds and
 * stops cleanly on Ctrl-C, `all` prefixes each line with its host, and a bad flag exits 2
 * without connecting to any host.
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {beforeAll, describe, expect, inject, it} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {labExec} from '../../src/lab/index.js'
import {BIN, infra, infraEnv} from './helpers.js'

/** Every `infra` command here is killed after 2 minutes. */
const BOUNDED = {timeoutMs: 120_000}
/** `TIME HOST UNIT[PID]: MESSAGE` */
const LINE = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+) +([^\s:[]+)(?:\[(\d+)\])?: (.*)$/

let config: string
let bastionName: string
let domain: string
let publicAddress: string
let webNames: string[]

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A path nobody else requests. */
function uniquePath(what: string): string {
  return `/logs-test-${what}-${randomBytes(6).toString('hex')}`
}

/** One HTTPS request from this machine to the bastion's public address; the node that served it. */
function request(pathname: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sk', '-o', '/dev/null', '-D', '-', '--max-time', '5', '--resolve', `${domain}:443:${publicAddress}`, `https://${domain}${pathname}`])
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.on('close', () => resolve(/^x-served-by: *(\S+)/im.exec(out)?.[1]))
  })
}

/** Request `pathname` through the bastion until `node` serves it (the backend balances between the active nodes). */
async function requestOn(node: string, pathname: string): Promise<void> {
  const served: (string | undefined)[] = []
  for (let i = 0; i < 12; i++) {
    const by = await request(pathname)
    if (by === node) return
    served.push(by)
  }
  throw new Error(`${node} served none of 12 requests for ${pathname} (served by: ${served.join(', ')})`)
}

/** Runs `fn` until it returns something, every second, for up to `timeoutMs`. */
async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await fn()
    if (last !== undefined) return last
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`)
    await sleep(1000)
  }
}

/** Logins the bastion's sshd accepted so far (proves whether the CLI connected). */
async function bastionLogins(): Promise<number> {
  const r = await labExec(bastionName, "journalctl -q -u ssh.service -o cat --no-pager | grep -c 'Accepted publickey' || true", {allowFail: true})
  return Number(r.stdout.trim() || 0)
}

beforeAll(async () => {
  config = inject('labConfig')
  const loaded = await loadInventory(config)
  bastionName = loaded.inventory.bastion.name
  domain = loaded.inventory.domain
  publicAddress = loaded.inventory.bastion.publicAddress
  webNames = loaded.inventory.web.nodes.map((n) => n.name)
  const p = await infra(['provision', '--yes'], config, BOUNDED)
  if (p.code !== 0) throw new Error(`provision failed:\n${p.stderr}`)
})

describe('infra logs (lab)', () => {
  it('web1 --unit nginx --since 10m shows a request made a moment before (text, --grep, --json)', async () => {
    const probe = uniquePath('since')
    await requestOn('web1', probe)
    const out = await until(`${probe} in web1's nginx journal`, 15_000, async () => {
      const r = await infra(['logs', 'web1', '--unit', 'nginx', '--since', '10m'], config, BOUNDED)
      expect(r.code, r.stderr).toBe(0)
      return r.stdout.includes(probe) ? r : undefined
    })
    const line = out.stdout.split('\n').find((l) => l.includes(probe))!
    const m = LINE.exec(line)
    expect(m, line).not.toBeNull()
    expect(m![2]).toBe('web1')
    expect(m![3]).toBe('nginx')
    // Every line is an nginx line of web1.
    for (const l of out.stdout.trimEnd().split('\n')) expect(LINE.exec(l)?.[2], l).toBe('web1')

    // --grep: a fixed string, any case.
    const g = await infra(['logs', 'web1', '--unit', 'nginx', '--since', '10m', '--grep', probe.toUpperCase()], config, BOUNDED)
    expect(g.code, g.stderr).toBe(0)
    const lines = g.stdout.trimEnd().split('\n')
    expect(lines.length).toBeGreaterThanOrEqual(1)
    for (const l of lines) expect(l).toContain(probe)

    // --json: NDJSON.
    const j = await infra(['logs', 'web1', '--unit', 'nginx', '--since', '10m', '--grep', probe, '--json'], config, BOUNDED)
    expect(j.code, j.stderr).toBe(0)
    const objects = j.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(objects.length).toBeGreaterThanOrEqual(1)
    expect(objects[0]).toMatchObject({host: 'web1', unit: 'nginx', message: expect.stringContaining(probe)})
    expect(Object.keys(objects[0]).sort()).toEqual(['host', 'message', 'pid', 'priority', 'time', 'unit'])
    expect(objects[0].time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    expect(Math.abs(Date.parse(objects[0].time as string) - Date.now())).toBeLessThan(10 * 60_000)
  })

  it('--follow streams a new request within seconds; Ctrl-C closes it, exit 0', async () => {
    const child = spawn('node', [BIN, 'logs', 'web1', '--unit', 'nginx', '--follow', '--config', config], {env: infraEnv()})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    try {
      // Until the stream is up (node start-up and SSH through the bastion), a request may come
      // before journalctl follows: request again until one shows up.
      await until('the follow stream to show a request', 60_000, async () => {
        const warm = uniquePath('warm')
        await requestOn('web1', warm)
        await sleep(2000)
        return stdout.includes(warm) ? true : undefined
      })
      // Now streaming: a new request shows up within a few seconds.
      const probe = uniquePath('follow')
      await requestOn('web1', probe)
      const t = Date.now()
      while (!stdout.includes(probe) && Date.now() - t < 5000) await sleep(100)
      expect(stdout, stderr).toContain(probe)
      const line = stdout.split('\n').find((l) => l.includes(probe))!
      expect(LINE.exec(line)?.[2]).toBe('web1')
    } finally {
      child.kill('SIGINT')
    }
    const code = await Promise.race([exited, sleep(10_000).then(() => 'still running')])
    if (code === 'still running') child.kill('SIGKILL')
    expect(code, stderr).toBe(0)
    expect(stderr).not.toMatch(/Error/)
    // journalctl --follow on web1 ended with the stream (it sees its output closed).
    await until('journalctl --follow to end on web1', 10_000, async () => {
      const r = await labExec('web1', 'pgrep -a journalctl || true', {allowFail: true})
      return r.stdout.includes('--follow') ? undefined : true
    })
  })

  it('all: every host, the host column padded to the longest name, merged by time', async () => {
    const probe = uniquePath('all')
    await requestOn('web1', probe)
    const width = Math.max(bastionName.length, ...webNames.map((n) => n.length))
    const r = await until(`${probe} in all --unit haproxy --unit nginx`, 15_000, async () => {
      const x = await infra(['logs', 'all', '--unit', 'haproxy', '--unit', 'nginx', '--since', '10m'], config, BOUNDED)
      expect(x.code, x.stderr).toBe(0)
      return x.stdout.includes(probe) ? x : undefined
    })
    const lines = r.stdout.trimEnd().split('\n')
    const hosts = new Set<string>()
    let previous = ''
    for (const l of lines) {
      if (l.startsWith(' ')) continue // continuation of a multi-line message
      const m = LINE.exec(l)
      expect(m, l).not.toBeNull()
      hosts.add(m![2])
      // The host column is padded: the unit starts at the same column on every line.
      expect(l.slice(20, 20 + width + 1), l).toBe(m![2].padEnd(width) + ' ')
      expect(m![1] >= previous, `not in time order: ${l}`).toBe(true)
      previous = m![1]
    }
    expect(hosts.has('web1')).toBe(true)
    // The request, as web1's nginx and the bastion's HAProxy logged it.
    const withProbe = lines.filter((l) => l.includes(probe))
    const column = (host: string, unit: string) => new RegExp(`^\\S+ \\S+ ${host} {${width - host.length + 1}}${unit}\\[\\d+\\]: `)
    expect(withProbe.some((l) => column('web1', 'nginx').test(l)), withProbe.join('\n')).toBe(true)
    expect(withProbe.some((l) => column(bastionName, 'haproxy').test(l)), withProbe.join('\n')).toBe(true)

    // --unit haproxy runs on the bastion only: the web nodes are left out, and said so.
    const h = await infra(['logs', 'all', '--unit', 'haproxy', '-n', '20'], config, BOUNDED)
    expect(h.code, h.stderr).toBe(0)
    expect(h.stderr).toContain(`Leaving out ${webNames.join(', ')}: no haproxy there.`)
    const hl = h.stdout.trimEnd().split('\n').filter((l) => !l.startsWith(' '))
    expect(hl.length).toBeGreaterThan(0)
    for (const l of hl) expect(LINE.exec(l)?.[2], l).toBe(bastionName)
  })

  it('a unit on the wrong host, or a bad --since, exits 2 without connecting', async () => {
    const before = await bastionLogins()
    const bad = await infra(['logs', 'web1', '--since', 'yesterday-ish'], config, BOUNDED)
    expect(bad.code).toBe(2)
    expect(bad.stdout).toBe('')
    expect(bad.stderr).toContain('--since "yesterday-ish": not a duration or a date and time')
    expect(bad.stderr).toContain('30s, 10m, 1h or 2d')

    const wrong = await infra(['logs', bastionName, '--unit', 'nginx'], config, BOUNDED)
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain(`--unit nginx: not on ${bastionName}`)

    const unknown = await infra(['logs', 'web9', '--since', '10m'], config, BOUNDED)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown host or target "web9"')
    expect(unknown.stderr).toContain(webNames.join(', '))

    expect(await bastionLogins()).toBe(before)
  })

  it('a host that cannot be read: an error naming it, the others still shown, exit 1', async () => {
    // The standby node (the agents leave it alone), with its sshd stopped for a moment.
    const down = webNames[webNames.length - 1]
    await labExec(down, 'systemctl stop ssh.service ssh.socket 2>/dev/null; true', {allowFail: true})
    try {
      const r = await infra(['logs', 'web', '-n', '3'], config, BOUNDED)
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(new RegExp(`Error: ${down}: `))
      expect(r.stderr).toContain(`Could not read 1 of ${webNames.length} hosts: ${down}`)
      const shown = new Set(r.stdout.trimEnd().split('\n').map((l) => LINE.exec(l)?.[2]).filter(Boolean))
      expect(shown.has('web1')).toBe(true)
      expect(shown.has(down)).toBe(false)
    } finally {
      await labExec(down, 'systemctl start ssh.service', {allowFail: true})
    }
  })
})
