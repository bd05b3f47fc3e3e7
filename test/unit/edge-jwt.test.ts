/**
 * JWT and roles at the edge, live in a throwaway namespace (test/unit/edge-harness.ts). Tokens are
 * signed here with Node's crypto: valid, expired, not yet valid, wrong key, alg none, HS256 signed
 * with the public key, wrong issuer, wrong audience, wrong role. Each answer is checked, and what
 * the backend receives (identity headers from the token only).
 */
import {createHmac, createPrivateKey, generateKeyPairSync, type KeyObject, sign} from 'node:crypto'
import {readFileSync} from 'node:fs'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type Harness, startEdge, until} from './edge-harness.js'
import {DOMAIN, inventory} from './render-helpers.js'

const CLIENT = '198.51.100.1'
const ISS = 'https://id.example.com'
const AUD = 'api'

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

function rs256(payload: object, key: KeyObject, header: object = {alg: 'RS256', typ: 'JWT'}): string {
  const data = `${b64(header)}.${b64(payload)}`
  return `${data}.${sign('sha256', Buffer.from(data), key).toString('base64url')}`
}

function hs256(payload: object, secret: string | Buffer, header: object = {alg: 'HS256', typ: 'JWT'}): string {
  const data = `${b64(header)}.${b64(payload)}`
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`
}

const claims = (extra: object = {}) => ({sub: 'alice', iss: ISS, aud: AUD, role: 'viewer', iat: now(), exp: now() + 300, ...extra})

describe('JWT with RS256 and roles', () => {
  const good = generateKeyPairSync('rsa', {modulusLength: 2048})
  const other = generateKeyPairSync('rsa', {modulusLength: 2048})
  const publicPem = good.publicKey.export({type: 'spki', format: 'pem'}) as string
  const inv = inventory({
    domain: DOMAIN,
    bastion: {publicAddress: '198.51.100.10', privateAddress: '10.80.0.1'},
    web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.80.0.11'}]},
    auth: {
      alg: 'RS256',
      key: 'jwt.pem',
      issuer: ISS,
      audience: AUD,
      rules: [
        {path: '/api/admin', roles: ['admin']},
        {path: '/api/', methods: ['POST'], roles: ['editor', 'admin']},
        {path: '/api/'},
        {path: '/', methods: ['DELETE']},
      ],
    },
  })
  let h: Harness
  beforeAll(async () => {
    h = await startEdge('jwt', inv, [CLIENT], {authMaterial: {key: publicPem}})
  }, 30_000)
  afterAll(() => h?.stop())

  const get = (path: string, token?: string, extra: string[] = []) =>
    h.request(CLIENT, `https://${DOMAIN}${path}`, [...(token === undefined ? [] : ['-H', `Authorization: Bearer ${token}`]), ...extra])

  it('lets a valid token through, with the identity headers taken from the token only', () => {
    const r = get('/api/things', rs256(claims(), good.privateKey), ['-H', 'X-Auth-Role: admin', '-H', 'X-Auth-Subject: mallory'])
    expect(r.status, r.raw).toBe(200)
    const seen = JSON.parse(r.body).headers
    expect(seen['x-auth-subject']).toBe('alice')
    expect(seen['x-auth-role']).toBe('viewer')
  })

  it('answers 401 with WWW-Authenticate for a missing token, and invalid_token for a malformed one', () => {
    for (const token of [undefined, '']) {
      const r = get('/api/things', token)
      expect(r.status, String(token)).toBe(401)
      expect(r.headers['www-authenticate']).toBe(`Bearer realm="${DOMAIN}"`)
    }
    for (const token of ['abc', 'a.b', 'a.b.c.d', '!!.??.##']) {
      const r = get('/api/things', token)
      expect(r.status, token).toBe(401)
      expect(r.headers['www-authenticate']).toBe(`Bearer realm="${DOMAIN}", error="invalid_token"`)
    }
    expect(get('/api/things', undefined, ['-H', 'Authorization: Basic YTpi']).status).toBe(401)
  })

  it.each([
    ['expired', () => rs256(claims({exp: now() - 10}), good.privateKey)],
    ['without exp', () => rs256(claims({exp: undefined}), good.privateKey)],
    ['not yet valid', () => rs256(claims({nbf: now() + 120}), good.privateKey)],
    ['signed with another key', () => rs256(claims(), other.privateKey)],
    ['tampered', () => {
      const [hd, , s] = rs256(claims(), good.privateKey).split('.')
      return `${hd}.${b64(claims({role: 'admin'}))}.${s}`
    }],
    ['alg none, no signature', () => `${b64({alg: 'none', typ: 'JWT'})}.${b64(claims())}.`],
    ['alg none with a signature', () => `${b64({alg: 'none', typ: 'JWT'})}.${b64(claims())}.${Buffer.from('x').toString('base64url')}`],
    ['HS256 keyed with the public key', () => hs256(claims(), publicPem)],
    ['from another issuer', () => rs256(claims({iss: 'https://evil.example'}), good.privateKey)],
    ['for another audience', () => rs256(claims({aud: 'other'}), good.privateKey)],
  ])('answers 401 invalid_token for a token %s', (_what, token) => {
    const r = get('/api/things', token())
    expect(r.status, r.raw).toBe(401)
    expect(r.headers['www-authenticate']).toBe(`Bearer realm="${DOMAIN}", error="invalid_token"`)
    expect(r.headers['x-served-by']).toBeUndefined()
  })

  it('answers 403 for a valid token without the role the rule wants, first matching rule first', () => {
    const viewer = rs256(claims(), good.privateKey)
    const editor = rs256(claims({role: 'editor'}), good.privateKey)
    const admin = rs256(claims({role: 'admin'}), good.privateKey)
    expect(get('/api/admin/users', viewer).status).toBe(403)
    expect(get('/api/admin/users', editor).status).toBe(403)
    expect(get('/api/admin/users', admin).status).toBe(200)
    // A client-sent role header changes nothing.
    expect(get('/api/admin/users', viewer, ['-H', 'X-Auth-Role: admin']).status).toBe(403)
    // POST on /api/ needs editor or admin; GET does not.
    expect(get('/api/things', viewer, ['-X', 'POST']).status).toBe(403)
    expect(get('/api/things', editor, ['-X', 'POST']).status).toBe(200)
    // The path is matched as the backend would read it: case, repeated slashes, percent-encoding.
    for (const p of ['/API/Admin/users', '//api//admin/users', '/api/%61dmin/users', '/api%2Fadmin/users']) {
      expect(get(p, viewer, ['--path-as-is']).status, p).toBe(403)
      expect(get(p, undefined, ['--path-as-is']).status, p).toBe(401)
    }
    // Dot segments could hide a protected path from the rules: refused.
    for (const p of ['/public/../api/admin/users', '/api/./admin', '/public/%2e%2e/api/admin', '/x/..']) {
      expect(get(p, undefined, ['--path-as-is']).status, p).toBe(400)
    }
    expect(get('/public/a.b/..c/.d', undefined, ['--path-as-is']).status).toBe(200)
    // An array claim is not a role (json_query reads strings only): refused.
    expect(get('/api/admin/users', rs256(claims({role: ['admin']}), good.privateKey)).status).toBe(403)
  })

  it('keeps public paths public, and never puts the health path behind auth', () => {
    expect(get('/public/page').status).toBe(200)
    expect(get('/healthz').status).toBe(200)
    expect(get('/healthz', undefined, ['-X', 'DELETE']).status).toBe(200)
    expect(get('/other', undefined, ['-X', 'DELETE']).status).toBe(401)
    const pub = JSON.parse(get('/public/page', undefined, ['-H', 'X-Auth-Role: admin']).body).headers
    expect(pub['x-auth-role']).toBeUndefined()
  })

  it('logs the reason of each refusal', async () => {
    get('/api/things', rs256(claims({exp: now() - 10}), good.privateKey))
    const log = await until('the log lines', () => (/edge=jwt-expired/.test(h.log()) ? h.log() : undefined))
    expect(log).toMatch(/^198\.51\.100\.1:\d+ .* 401 .* edge=jwt-expired$/m)
    expect(log).toMatch(/ 401 .* edge=jwt-alg$/m)
    expect(log).toMatch(/ 401 .* edge=jwt-signature$/m)
    expect(log).toMatch(/ 401 .* edge=jwt-issuer$/m)
    expect(log).toMatch(/ 403 .* edge=jwt-role$/m)
  })
})

describe('JWT with HS256 (secret from an environment variable)', () => {
  const secret = 'correct-horse-battery-staple-0123456789-abcdef'
  const inv = inventory({
    domain: DOMAIN,
    bastion: {publicAddress: '198.51.100.10', privateAddress: '10.81.0.1'},
    web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.81.0.11'}]},
    auth: {alg: 'HS256', secretEnv: 'JWT_SECRET', rules: [{path: '/api/'}]},
  })
  let h: Harness
  beforeAll(async () => {
    h = await startEdge('jwths', inv, [CLIENT], {authMaterial: {secret}})
  }, 30_000)
  afterAll(() => h?.stop())

  it('accepts a token signed with the secret and refuses others; the secret is not in haproxy.cfg', () => {
    const url = `https://${DOMAIN}/api/x`
    const ok = h.request(CLIENT, url, ['-H', `Authorization: Bearer ${hs256({sub: 'bob', exp: now() + 60}, secret)}`])
    expect(ok.status, ok.raw).toBe(200)
    expect(h.request(CLIENT, url, ['-H', `Authorization: Bearer ${hs256({sub: 'bob', exp: now() + 60}, 'another-secret-of-enough-length-000000')}`]).status).toBe(401)
    const rsa = createPrivateKey(generateKeyPairSync('rsa', {modulusLength: 2048}).privateKey.export({type: 'pkcs8', format: 'pem'}))
    expect(h.request(CLIENT, url, ['-H', `Authorization: Bearer ${rs256({sub: 'bob', exp: now() + 60}, rsa)}`]).status).toBe(401)
    expect(readFileSync(`${h.dir}/haproxy.cfg`, 'utf8')).not.toContain(secret)
  })
})
