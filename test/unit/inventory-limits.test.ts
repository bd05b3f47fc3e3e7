/**
 * Bad input never reaches a host: every value the schema accepts renders, and the result passes
 * the real validator (haproxy -c, sh -n). Each duration key has a maximum, found here by asking
 * the schema itself, so a key added later is covered too; lists HAProxy gets on one line and the
 * health path are checked the same way.
 */
import {generateKeyPairSync} from 'node:crypto'
import {rmSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {inventoryJsonSchema} from '../../src/inventory/json-schema.js'
import {DURATION_CEILING, durationMs, HAPROXY_LIST_MAX, HEALTH_PATH_MAX, type InventoryInput, inventoryObject, inventorySchema} from '../../src/inventory/schema.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import {renderAgentsLib} from '../../src/roles/agents.js'
import {configOf} from '../../src/inventory/config.js'
import {renderHaproxyConfig} from '../../src/roles/bastion.js'
import type {HostPaths} from '../../src/roles/render.js'
import {desiredState} from '../../src/roles/render.js'
import {context, fileAt, hostsByName, inventory, requireTool, runValidate, tempDir, writeInside, haproxyPaths} from './render-helpers.js'

const BASE: InventoryInput = {
  domain: 'example.com',
  bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
  web: {nodes: [{name: 'web1', address: '10.10.0.11'}, {name: 'web2', address: '10.10.0.12', standby: true}]},
  // With an app, so that the app's and the deploy's durations are checked and rendered too.
  app: {image: 'shop'},
}

type Json = {properties?: Record<string, Json>; items?: Json; pattern?: string; anyOf?: Json[]}

/** Key paths (e.g. ["web", "timeout"]) of every duration in the schema (the JSON Schema's duration pattern). */
function durationKeys(s: Json = inventoryJsonSchema(), at: string[] = []): string[][] {
  const out: string[][] = []
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    if (v.pattern === '^[1-9]\\d*(s|m|h)$') out.push([...at, k])
    out.push(...durationKeys(v, [...at, k]))
  }
  return out
}

function withValue(input: unknown, p: readonly string[], value: unknown): InventoryInput {
  const copy = structuredClone(input) as Record<string, unknown>
  let cur = copy
  for (const k of p.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>
  cur[p.at(-1)!] = value
  return copy as InventoryInput
}

const accepts = (p: readonly string[], value: string) => inventoryObject.safeParse(withValue(BASE, p, value)).success

/** The longest duration the schema accepts at `p`, in seconds (binary search; durations are whole seconds). */
function maxSeconds(p: readonly string[]): number {
  let lo = 1
  let hi = durationMs(DURATION_CEILING) / 1000 + 1
  expect(accepts(p, `${lo}s`), `${p.join('.')} refuses 1s`).toBe(true)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (accepts(p, `${mid}s`)) lo = mid
    else hi = mid
  }
  return lo
}

let root: string
let n = 0
beforeAll(() => {
  requireTool('haproxy', 'haproxy')
  root = tempDir('infra-limits-')
})
afterAll(() => {
  if (root) rmSync(root, {recursive: true, force: true})
})

function nextHaproxyPaths(): Partial<HostPaths> {
  return haproxyPaths(path.join(root, `case${++n}`))
}

const publicKey = generateKeyPairSync('rsa', {modulusLength: 2048}).publicKey.export({type: 'spki', format: 'pem'}) as string

/** `haproxy -c` on the bastion's haproxy.cfg for this inventory, run as the apply engine runs it. */
function haproxyCheck(input: InventoryInput): {code: number; output: string} {
  const inv = inventory(input)
  const paths = nextHaproxyPaths()
  const state = desiredState(context(inv, {paths, authMaterial: {key: publicKey}}), hostsByName(inv)[inv.bastion.name])
  const dir = path.dirname(paths.haproxyConfig!)
  writeInside(dir, state.files)
  return runValidate(fileAt(state.files, paths.haproxyConfig!), `${dir}/stage`)
}

describe('durations: every key has a maximum the renderers can take', () => {
  const keys = durationKeys()
  const maxima = Object.fromEntries(keys.map((p) => [p.join('.'), maxSeconds(p)]))

  it('finds the duration keys', () => {
    expect(keys.map((p) => p.join('.'))).toEqual(expect.arrayContaining(['ssh.connectTimeout', 'web.timeout', 'limits.banFor', 'cors.maxAge']))
  })

  it('each key has the maximum its description gives', () => {
    const h = 3600
    expect(maxima).toMatchObject({
      'ssh.connectTimeout': 5 * 60,
      'web.healthCheck.interval': h,
      'web.timeout': h,
      'scaling.sustainFor': 24 * h,
      'scaling.recheckEvery': 24 * h,
      'healing.every': h,
      'limits.window': h,
      'limits.banFor': 168 * h,
      'cors.maxAge': 24 * h,
      'app.healthCheck.interval': 60,
      'deploy.timeout': 30 * 60,
      'deploy.drain': h,
      'deploy.lockStale': 24 * h,
    })
  })

  it('no key accepts more than a timer holds (2^31-1 ms: Node setTimeout, HAProxy timeouts)', () => {
    for (const [key, s] of Object.entries(maxima)) expect(s * 1000, key).toBeLessThanOrEqual(2 ** 31 - 1)
    expect(durationMs(DURATION_CEILING)).toBeLessThanOrEqual(2 ** 31 - 1)
  })

  it('the message names the maximum, in the file:line:col style', () => {
    const text = `domain: example.com
bastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}
web:
  timeout: 1000h
  nodes: [{name: web1, address: 10.10.0.11}]
ssh: {connectTimeout: 597h}
scaling: {recheckEvery: 99999999999999999999999h}
`
    expect(validateInventoryText(text).errors).toEqual([
      'infra.yaml:4:12 web.timeout: "1000h" is too long (at most 1h)',
      'infra.yaml:6:23 ssh.connectTimeout: "597h" is too long (at most 5m)',
      'infra.yaml:7:25 scaling.recheckEvery: "99999999999999999999999h" is too long (at most 24h)',
    ])
  })

  it('every duration at its maximum renders, and haproxy -c and sh -n accept the result', () => {
    let input = withValue(BASE, ['cors', 'origins'], ['https://app.example.net'])
    for (const p of keys) input = withValue(input, p, `${maxima[p.join('.')]}s`)
    const r = haproxyCheck(input)
    expect(r.code, r.output).toBe(0)
    const lib = renderAgentsLib(context(inventory(input)))
    for (const v of ['HEAL_EVERY', 'SUSTAIN', 'RECHECK']) expect(lib).toMatch(new RegExp(`^${v}=\\d{1,6}$`, 'm'))
    const sh = runValidate({path: '/lib.sh', content: lib, mode: 0o644, owner: 'root', group: 'root', validate: 'sh -n {}'}, path.join(root, 'lib'))
    expect(sh.code, sh.output).toBe(0)
  })

  it('one second more is refused for every key', () => {
    for (const p of keys) expect(accepts(p, `${maxima[p.join('.')] + 1}s`), p.join('.')).toBe(false)
  })
})

describe('lists HAProxy gets on one line', () => {
  const lists = {
    aliases: (k: number) => Array.from({length: k}, (_, i) => `a${i}.example.com`),
    'limits.allow': (k: number) => Array.from({length: k}, (_, i) => `198.51.100.${i + 1}`),
    'cors.origins': (k: number) => Array.from({length: k}, (_, i) => `https://o${i}.example.org`),
    'auth.rules[0].roles': (k: number) => Array.from({length: k}, (_, i) => `role${i}`),
  }
  const at = (k: number): InventoryInput => ({
    ...BASE,
    aliases: lists.aliases(k),
    limits: {allow: lists['limits.allow'](k)},
    cors: {origins: lists['cors.origins'](k)},
    auth: {alg: 'RS256', key: 'jwt.pem', rules: [{path: '/api/', roles: lists['auth.rules[0].roles'](k)}]},
  })

  it(`${HAPROXY_LIST_MAX} entries each render and pass haproxy -c`, () => {
    const r = haproxyCheck(at(HAPROXY_LIST_MAX))
    expect(r.code, r.output).toBe(0)
  })

  it('one more is refused, with a message that names the maximum', () => {
    const r = inventorySchema.safeParse(at(HAPROXY_LIST_MAX + 1))
    expect(r.success).toBe(false)
    const k = HAPROXY_LIST_MAX + 1
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).sort()).toEqual([
      `aliases: has ${k} aliases; at most ${HAPROXY_LIST_MAX} (HAProxy reads at most 64 words on one line)`,
      `auth.rules.0.roles: has ${k} roles; at most ${HAPROXY_LIST_MAX} (HAProxy reads at most 64 words on one line)`,
      `cors.origins: has ${k} origins; at most ${HAPROXY_LIST_MAX} (HAProxy reads at most 64 words on one line; use a pattern such as "https://*.example.com")`,
      `limits.allow: has ${k} entries; at most ${HAPROXY_LIST_MAX} (HAProxy reads at most 64 words on one line; list networks instead of their addresses)`,
    ])
  })
})

describe('web.healthCheck.path: the schema refuses every path the renderers would', () => {
  /** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
    }
  }
  const random = rng(13)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
  const good = ['a', 'Z', '0', '9', '_', '-', '.', '..', '~', '/', 'health', 'v1.2']
  const bad = ['//', ' ', ';', '#', '%20', '?x=1', '"', "'", '\\', '{', '$', '\t', 'é', '*', ':']
  const generated = Array.from({length: 400}, () => {
    let s = random() < 0.95 ? '/' : ''
    const k = Math.floor(random() * 10)
    for (let i = 0; i < k; i++) s += random() < 0.93 ? pick(good) : pick(bad)
    return s
  })
  const edges = ['/', '/healthz', '/status/health/', '/.well-known/health', '/~ops/ping', '/v1.2/a-b_c', '/a..b', '/..a', '/a.', '/-/_/~', `/${'x'.repeat(HEALTH_PATH_MAX - 1)}`]
  const refusedEdges = ['healthz', '//healthz', '/a//b', '/./x', '/a/.', '/a/..', '/../x', '/a b', '/a;b', '/a?b', '/a#b', '/a%20b', `/${'x'.repeat(HEALTH_PATH_MAX)}`, '']
  const accepted = (p: string) => inventoryObject.safeParse({...BASE, web: {...BASE.web, healthCheck: {path: p}}}).success

  it('accepts the plain paths and refuses the others', () => {
    for (const p of edges) expect(accepted(p), p).toBe(true)
    for (const p of refusedEdges) expect(accepted(p), p).toBe(false)
  })

  it('every accepted path renders (no assertion fires) and passes haproxy -c', () => {
    const ok = [...new Set([...edges, ...generated.filter(accepted)])]
    // Enough variety to mean something: the generator also makes paths the schema accepts.
    expect(ok.length).toBeGreaterThan(40)
    for (const p of ok) {
      const input = {...BASE, web: {...BASE.web, healthCheck: {path: p}}}
      const inv = inventory(input)
      expect(configOf(inv).healthPath).toBe(p)
      expect(renderHaproxyConfig(context(inv))).toContain(`uri ${p} ver HTTP/1.1`)
    }
    // haproxy -c on a sample (each run starts HAProxy): the edges and every third generated path.
    for (const p of [...edges, ...ok.slice(edges.length).filter((_, i) => i % 3 === 0)]) {
      const r = haproxyCheck({...BASE, web: {...BASE.web, healthCheck: {path: p}}})
      expect(r.code, `${p}\n${r.output}`).toBe(0)
    }
  })

  it('a refused path is refused by validate with a message saying what is allowed', () => {
    const text = (p: string) => `domain: example.com
bastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}
web:
  healthCheck: {path: "${p}"}
  nodes: [{name: web1, address: 10.10.0.11}]
`
    expect(validateInventoryText(text('/health;x')).errors).toEqual([
      `infra.yaml:4:23 web.healthCheck.path: "/health;x" is not a plain URL path ("/" then letters, digits and . _ ~ / - only, at most ${HEALTH_PATH_MAX} characters, e.g. "/healthz")`,
    ])
    expect(validateInventoryText(text('/status//health')).errors).toEqual([
      'infra.yaml:4:23 web.healthCheck.path: "/status//health" has an empty, "." or ".." segment, which nginx normalizes away, so the check would never match (e.g. "/healthz")',
    ])
  })
})
