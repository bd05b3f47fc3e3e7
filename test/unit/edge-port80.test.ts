/**
 * What port 80 lets through, and the identity headers on every frontend, live in a throwaway
 * namespace (test/unit/edge-harness.ts): only an ACME HTTP-01 token path reaches the web nodes on
 * port 80 (a dot segment or any other shape is redirected to https, so it cannot reach a path that
 * auth protects on 443), and a client-sent X-Auth-Subject / X-Auth-Role never reaches a backend,
 * on port 80 or 443, with auth on or off. The backend echoes the path and headers it received.
 */
import {generateKeyPairSync} from 'node:crypto'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type Harness, startEdge} from './edge-harness.js'
import {DOMAIN, inventory} from './render-helpers.js'

const CLIENT = '198.51.100.1'
const FORGED = ['-H', 'X-Auth-Role: admin', '-H', 'x-auth-SUBJECT: mallory']

/** What the backend saw, or undefined when the answer did not come from it. */
function seen(r: {headers: Record<string, string>; body: string}): {url: string; headers: Record<string, string>} | undefined {
  return r.headers['x-served-by'] === 'backend' ? JSON.parse(r.body) : undefined
}

describe('port 80 with auth on', () => {
  const publicPem = generateKeyPairSync('rsa', {modulusLength: 2048}).publicKey.export({type: 'spki', format: 'pem'}) as string
  const inv = inventory({
    domain: DOMAIN,
    bastion: {publicAddress: '198.51.100.10', privateAddress: '10.82.0.1'},
    web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.82.0.11'}]},
    auth: {alg: 'RS256', key: 'jwt.pem', rules: [{path: '/private/', roles: ['admin']}, {path: '/api/'}]},
  })
  let h: Harness
  beforeAll(async () => {
    h = await startEdge('port80', inv, [CLIENT], {authMaterial: {key: publicPem}})
  }, 30_000)
  afterAll(() => h?.stop())

  const get = (path: string, extra: string[] = []) => h.request(CLIENT, `http://${DOMAIN}${path}`, ['--path-as-is', ...extra])

  it('redirects a dot segment after the ACME prefix to https instead of passing it to the web nodes', () => {
    // The bypass of issue 13: a web node resolves this to /private/x, which needs an admin token on 443.
    const r = get('/.well-known/acme-challenge/../../private/x')
    expect(r.status, r.raw).toBe(301)
    expect(r.headers.location).toBe(`https://${DOMAIN}/.well-known/acme-challenge/../../private/x`)
    expect(seen(r)).toBeUndefined()
    // Followed to 443, the same path is refused there (dot segments with auth on).
    expect(h.request(CLIENT, `https://${DOMAIN}/.well-known/acme-challenge/../../private/x`, ['--path-as-is']).status).toBe(400)
  })

  it.each([
    '/.well-known/acme-challenge/%2e%2e/%2e%2e/private/x',
    '/.well-known/acme-challenge/..%2F..%2Fprivate%2Fx',
    '/.well-known/acme-challenge/./x',
    '/.well-known/acme-challenge/tok/../../../private/x',
    '/.well-known/acme-challenge/tok/more',
    '/.well-known/acme-challenge//private/x',
    '/.well-known/acme-challenge/tok.en',
    '/.well-known/acme-challenge/',
    '/.well-known/acme-challenge',
    '/.WELL-KNOWN/acme-challenge/tok',
    '/private/x',
  ])('redirects %s to https (not an ACME token path)', (path) => {
    const r = get(path)
    expect(r.status, r.raw).toBe(301)
    expect(r.headers.location).toBe(`https://${DOMAIN}${path}`)
    expect(seen(r)).toBeUndefined()
  })

  it('passes an ACME token path (one segment of base64url characters) to the web nodes, query included', () => {
    for (const path of ['/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0', '/.well-known/acme-challenge/a_b-C9', '/.well-known/acme-challenge/tok?x=1']) {
      const r = get(path)
      expect(r.status, `${path}\n${r.raw}`).toBe(200)
      expect(seen(r)?.url).toBe(path)
      expect(seen(r)?.headers['x-forwarded-proto']).toBe('http')
    }
    const head = get('/.well-known/acme-challenge/tok', ['-I'])
    expect(head.status).toBe(200)
    expect(head.headers['x-served-by']).toBe('backend')
  })

  it('passes it for GET and HEAD only, and never as a WebSocket (port 80 checks no Origin)', () => {
    for (const extra of [['-X', 'POST', '-d', 'x'], ['-X', 'PUT', '-d', 'x'], ['-X', 'DELETE'], ['-H', 'Upgrade: websocket', '-H', 'Connection: Upgrade', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '-H', 'Sec-WebSocket-Version: 13']]) {
      const r = get('/.well-known/acme-challenge/tok', extra)
      expect(r.status, extra.join(' ')).toBe(301)
      expect(seen(r)).toBeUndefined()
    }
  })

  it('never passes client-sent identity headers to the web nodes, on port 80 or 443', () => {
    const acme = seen(get('/.well-known/acme-challenge/tok', FORGED))
    expect(acme, 'the ACME request reached the backend').toBeDefined()
    expect(acme!.headers['x-auth-role']).toBeUndefined()
    expect(acme!.headers['x-auth-subject']).toBeUndefined()
    for (const extra of [[], ['--http1.1']]) {
      const tls = seen(h.request(CLIENT, `https://${DOMAIN}/public/page`, [...FORGED, ...extra]))
      expect(tls, 'the HTTPS request reached the backend').toBeDefined()
      expect(tls!.headers['x-auth-role']).toBeUndefined()
      expect(tls!.headers['x-auth-subject']).toBeUndefined()
    }
  })
})

describe('identity headers with auth off', () => {
  const inv = inventory({
    domain: DOMAIN,
    bastion: {publicAddress: '198.51.100.10', privateAddress: '10.83.0.1'},
    web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.83.0.11'}]},
  })
  let h: Harness
  beforeAll(async () => {
    h = await startEdge('noauth', inv, [CLIENT])
  }, 30_000)
  afterAll(() => h?.stop())

  it('are removed on port 443 and on port 80 all the same (an application may trust them)', () => {
    const tls = seen(h.request(CLIENT, `https://${DOMAIN}/anything`, FORGED))
    expect(tls, 'the HTTPS request reached the backend').toBeDefined()
    expect(tls!.headers['x-auth-role']).toBeUndefined()
    expect(tls!.headers['x-auth-subject']).toBeUndefined()
    // Other headers pass: the echo does show what the client sent.
    expect(seen(h.request(CLIENT, `https://${DOMAIN}/anything`, ['-H', 'X-Other: kept']))!.headers['x-other']).toBe('kept')
    const plain = seen(h.request(CLIENT, `http://${DOMAIN}/.well-known/acme-challenge/tok`, FORGED))
    expect(plain, 'the ACME request reached the backend').toBeDefined()
    expect(plain!.headers['x-auth-role']).toBeUndefined()
    expect(plain!.headers['x-auth-subject']).toBeUndefined()
  })
})
