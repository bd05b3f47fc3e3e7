/**
 * Banned clients with `limits.banAction: tarpit`, live in a throwaway namespace
 * (test/unit/edge-harness.ts): a tarpitted request holds its connection for `timeout tarpit`
 * (10 s), so a banned address opening many connections could fill the frontend's connection slots
 * and starve everyone else. Here the frontend gets a low maxconn (20) to make that observable:
 * two banned addresses (one in the ban list, one banned automatically) open 45 connections at
 * once, and a third client must still be served at once. Bounded: 45 connections, about 11 s.
 */
import {spawn} from 'node:child_process'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {edgePaths} from '../../src/roles/edge.js'
import {DEFAULT_PATHS} from '../../src/host/paths.js'
import {type Harness, startEdge, until} from './edge-harness.js'
import {DOMAIN, inventory} from './render-helpers.js'

const LISTED = '198.51.100.1'
const AUTO = '198.51.100.2'
const OTHER = '198.51.100.3'
const MAXCONN = 20
const inv = inventory({
  domain: DOMAIN,
  bastion: {publicAddress: '198.51.100.10', privateAddress: '10.84.0.1'},
  web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.84.0.11'}]},
  limits: {banAction: 'tarpit', connections: 5},
})
const URL = `https://${DOMAIN}/`

let h: Harness
beforeAll(async () => {
  h = await startEdge('tarpit', inv, [LISTED, AUTO, OTHER], {}, {
    patchConfig: (cfg) => cfg.replace(/^(frontend https\n {4}bind .*\n)/m, `$1    maxconn ${MAXCONN}\n`),
  })
}, 30_000)
afterAll(() => h?.stop())

/** `n` HTTPS requests at once from one address (one connection each): [status, seconds] per request. */
function flood(from: string, n: number): Promise<[number, number][]> {
  const curl = `curl -sk --http1.1 --max-time 14 --interface ${from} --resolve ${DOMAIN}:443:${inv.bastion.publicAddress} -o /dev/null -w '%{http_code} %{time_total}\\n' ${URL}`
  const child = spawn('ip', ['netns', 'exec', h.ns, 'sh', '-c', `for i in $(seq ${n}); do ${curl} & done; wait`], {stdio: ['ignore', 'pipe', 'ignore']})
  let out = ''
  child.stdout.on('data', (d) => (out += String(d)))
  return new Promise((resolve) =>
    child.on('exit', () => resolve(out.trim().split('\n').filter(Boolean).map((l) => l.split(' ').map(Number) as [number, number]))),
  )
}

/** Field `name` of the https frontend's line in `show stat`. */
async function frontendStat(name: string): Promise<number> {
  const [head, ...rows] = (await h.cli('show stat https 1 -1')).trim().split('\n')
  const i = head.replace(/^# /, '').split(',').indexOf(name)
  return Number(rows.find((r) => r.startsWith('https,FRONTEND,'))!.split(',')[i])
}

describe('banned clients with banAction: tarpit', () => {
  it('hold at most limits.connections connections each: the rest are refused at once, and another client is served', async () => {
    const e = edgePaths({...DEFAULT_PATHS, ...h.paths})
    expect(await h.cli(`add acl ${e.bansFile} ${LISTED}`)).not.toMatch(/error|unknown/i)
    expect(await h.cli(`set table edge_ban key ::ffff:${AUTO} data.gpc0 1`)).not.toMatch(/error|unknown/i)
    expect(h.codes(OTHER, [URL])).toEqual([200])

    const t0 = Date.now()
    const floods = Promise.all([flood(LISTED, 30), flood(AUTO, 15)])
    // Every connection of the flood is opened (or refused) by now; the tarpitted ones are held.
    await new Promise((r) => setTimeout(r, 1500))
    const held = await frontendStat('scur')
    const other = h.inNs(['curl', '-sk', '--max-time', '3', '--interface', OTHER, '--resolve', `${DOMAIN}:443:${inv.bastion.publicAddress}`, '-o', '/dev/null', '-w', '%{http_code} %{time_total}', URL])
    const [otherCode, otherTime] = other.output.trim().split(' ').map(Number)
    const [listed, auto] = await floods
    const took = Date.now() - t0
    console.log(`tarpit flood: ${held} connections held of maxconn ${MAXCONN}; other client ${otherCode} in ${otherTime}s; flood ${took} ms`)

    expect(otherCode, other.output).toBe(200)
    expect(otherTime).toBeLessThan(1)
    // 5 connections per banned address at most (limits.connections).
    expect(held).toBeLessThanOrEqual(10)
    for (const [results, n] of [[listed, 30], [auto, 15]] as const) {
      expect(results).toHaveLength(n)
      // Still a tarpit for the connections it holds: 403 after timeout tarpit (10 s)...
      const tarpitted = results.filter(([code]) => code === 403)
      expect(tarpitted.length).toBeGreaterThan(0)
      expect(tarpitted.length).toBeLessThanOrEqual(5)
      for (const [, s] of tarpitted) expect(s).toBeGreaterThan(9)
      // ...and every other connection is closed at once, before TLS (curl: no status).
      const refused = results.filter(([code]) => code === 0)
      expect(refused).toHaveLength(n - tarpitted.length)
      for (const [, s] of refused) expect(s).toBeLessThan(2)
    }
    expect(await frontendStat('dcon')).toBeGreaterThanOrEqual(35)
    // Nobody else was counted: the other client was never limited.
    await until('the held connections to end', async () => ((await frontendStat('scur')) === 0 ? true : undefined))
    expect(h.codes(OTHER, [URL, URL])).toEqual([200, 200])
  }, 30_000)
})
