/**
 * Flood limits and bans of the rendered HAProxy config, live in a throwaway namespace
 * (test/unit/edge-harness.ts): 429 then a ban for one client while another keeps getting 200, the
 * allowlist, the ban's end, the log line, and the infra-bans script (live + file, across a reload).
 * Every loop is bounded: at most a few dozen requests, all inside the namespace.
 */
import {readFileSync} from 'node:fs'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {parseList} from '../../src/edge/bans.js'
import {edgePaths} from '../../src/roles/edge.js'
import {DEFAULT_PATHS} from '../../src/host/paths.js'
import {type Harness, startEdge, until} from './edge-harness.js'
import {DOMAIN, inventory, run} from './render-helpers.js'

const A = '198.51.100.1'
const B = '198.51.100.2'
const OFFICE = '198.51.100.3'
const inv = inventory({
  domain: DOMAIN,
  bastion: {publicAddress: '198.51.100.10', privateAddress: '10.78.0.1'},
  web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.78.0.11'}]},
  limits: {requests: 5, window: '2s', banAfter: 5, banFor: '3s', connections: 50, allow: [OFFICE]},
})
const URL = `https://${DOMAIN}/`

let h: Harness
let script: string
let bansFile: string

beforeAll(async () => {
  h = await startEdge('flood', inv, [A, B, OFFICE])
  const e = edgePaths({...DEFAULT_PATHS, ...h.paths})
  script = e.bansScript
  bansFile = e.bansFile
}, 30_000)

afterAll(() => h?.stop())

const bans = (args: string[]) => run(['ip', 'netns', 'exec', h.ns, 'sh', script, ...args])

describe('flood limits', () => {
  it('gives one client 429 above the limit, then bans it, while another address keeps getting 200', async () => {
    const a = h.codes(A, Array(11).fill(URL))
    // 5 allowed in the window, then 429; the 11th (5 refused + 1) gets the ban.
    expect(a.slice(0, 5)).toEqual([200, 200, 200, 200, 200])
    expect(a.slice(5)).toEqual([429, 429, 429, 429, 429, 429])
    expect(h.codes(B, [URL, URL, URL])).toEqual([200, 200, 200])
    const banned = h.request(A, URL)
    expect(banned.status).toBe(403)
    // The 403 is our error page.
    expect(banned.body).toContain('Forbidden')
    expect(h.codes(B, [URL])).toEqual([200])

    const line = await until('the log lines', () => (/edge=auto-ban/.test(h.log()) ? h.log() : undefined))
    expect(line).toMatch(new RegExp(`^${A.replaceAll('.', '\\.')}:\\d+ .* 429 .*edge=rate-limit`, 'm'))
    expect(line).toMatch(new RegExp(`^${A.replaceAll('.', '\\.')}:\\d+ .* 429 .*edge=rate-ban`, 'm'))
    expect(line).toMatch(new RegExp(`^${A.replaceAll('.', '\\.')}:\\d+ .* 403 .*edge=auto-ban`, 'm'))
    expect(line).toMatch(new RegExp(`^${B.replaceAll('.', '\\.')}:\\d+ .* 200 .*edge=-`, 'm'))

    // infra-bans lists the automatic ban, then it ends by itself (banFor 3s) and A is served again.
    expect(parseList(`@@auto\n${bans(['auto']).output}`).map((b) => b.address)).toEqual([A])
    const t0 = Date.now()
    await until('the ban to end', () => (h.codes(A, [URL])[0] === 200 ? true : undefined), 12_000)
    expect(Date.now() - t0).toBeGreaterThan(1000)
  }, 30_000)

  it('never limits an allowlisted address', () => {
    const codes = h.codes(OFFICE, Array(25).fill(URL))
    expect(codes.every((c) => c === 200)).toBe(true)
  })

  it('port 80 is limited too (the same counters), before its redirect', async () => {
    const codes = h.codes(B, Array(8).fill(`http://${DOMAIN}/`))
    expect(codes.slice(0, 3)).toContain(301)
    expect(codes).toContain(429)
    await until('B clean again', async () => {
      await new Promise((r) => setTimeout(r, 500))
      return h.codes(B, [URL])[0] === 200 ? true : undefined
    }, 12_000)
  }, 20_000)
})

describe('infra-bans (what infra ban / unban / bans run on the bastion)', () => {
  it('bans an address at once, keeps it across a reload, lists it, and unbans it at once', async () => {
    expect(h.codes(B, [URL])).toEqual([200])
    const add = bans(['add', B, '0', 'testing ban'])
    expect(add.code, add.output).toBe(0)
    expect(h.codes(B, [URL])).toEqual([403])
    expect(h.codes(A, [URL])).toEqual([200])
    expect(readFileSync(bansFile, 'utf8')).toMatch(new RegExp(`^# ban 0 \\d+ testing ban\\n${B.replaceAll('.', '\\.')}$`, 'm'))
    await until('the ban-list log line', () => (new RegExp(`^${B.replaceAll('.', '\\.')}:\\d+ .* 403 .*edge=ban-list`, 'm').test(h.log()) ? true : undefined))

    await h.reload()
    expect(h.codes(B, [URL])).toEqual([403])

    const listed = parseList(bans(['list']).output)
    expect(listed).toEqual([{address: B, source: 'list', until: null, since: expect.any(String), reason: 'testing ban'}])

    const del = bans(['del', B])
    expect(del.output.trim()).toBe('listed=yes auto=no')
    expect(h.codes(B, [URL])).toEqual([200])
    expect(parseList(bans(['list']).output)).toEqual([])
    await h.reload()
    expect(h.codes(B, [URL])).toEqual([200])
  }, 20_000)

  it('bans a network, and drops an expired ban from the file and the running HAProxy (prune)', async () => {
    const until = Math.floor(Date.now() / 1000) + 1
    expect(bans(['add', '198.51.100.0/30', String(until), 'short']).code).toBe(0)
    expect(bans(['add', '203.0.113.0/24', '0', 'kept']).code).toBe(0)
    expect(h.codes(A, [URL])).toEqual([403])
    expect(h.codes(B, [URL])).toEqual([403])
    expect(h.codes(OFFICE, [URL])).toEqual([200]) // the allowlist wins
    await new Promise((r) => setTimeout(r, 2100))
    expect(bans(['prune']).code).toBe(0)
    expect(h.codes(A, [URL])).toEqual([200])
    const left = parseList(bans(['list']).output)
    expect(left.map((b) => b.address)).toEqual(['203.0.113.0/24'])
    expect((await h.cli(`show acl ${bansFile}`)).trim()).toMatch(/^0x[0-9a-f]+ 203\.0\.113\.0\/24$/)
    expect(bans(['del', '203.0.113.0/24']).code).toBe(0)
  }, 20_000)

  it('refuses something that is not an address', () => {
    const r = bans(['add', '1.2.3.4; reboot', '0', 'x'])
    expect(r.code).toBe(2)
    expect(r.output).toMatch(/is not an address or network/)
  })
})
