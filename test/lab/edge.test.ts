/**
 * Edge protection on the lab (docs/EDGE.md): flood limits and automatic bans per client address,
 * infra ban / unban / bans acting live and surviving provision and an HAProxy reload, JWT and CORS,
 * and what port 80 lets through to the web nodes (an ACME token only; no identity header a client sent).
 * The lab is provisioned with low limits from a copy of its inventory (edge.yaml beside it, so it
 * shares the key and known_hosts), and put back to the lab's own inventory afterwards. To see what
 * a web node receives, the nginx site is overridden for the time of this file (templates/ beside
 * the inventory) to echo the identity headers it got as X-Seen-Auth-Role / X-Seen-Auth-Subject.
 * Two clients on this machine's lab link: 198.51.100.1 and 198.51.100.2 (curl --interface).
 * Every flood loop is bounded (at most 30 requests) and targets only the bastion's public address.
 */
import {spawnSync} from 'node:child_process'
import {generateKeyPairSync, type KeyObject, sign} from 'node:crypto'
import {mkdir, readFile, rm, rmdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {ROOT_CLIENT2_ADDRESS, ROOT_PUBLIC_ADDRESS} from '../../src/lab/index.js'
import {DEFAULT_PATHS} from '../../src/roles/render.js'
import {infra, ROOT} from './helpers.js'

const A = ROOT_PUBLIC_ADDRESS
const B = ROOT_CLIENT2_ADDRESS
const LIMITS = {requests: 10, window: '3s', banAfter: 5, banFor: '5s'}
const ORIGIN = 'https://app.example.test'
const ISS = 'https://id.example.test'
const keys = generateKeyPairSync('rsa', {modulusLength: 2048})
/** Put on the web nodes by this file: a file /private/ protects, and an ACME challenge answer. */
const WEB_ROOT = DEFAULT_PATHS.webRoot
const SECRET = `protected-${process.pid}`
const TOKEN = 'lab-Token_1'
const TOKEN_BODY = `${TOKEN}.key-authorization`

let original: string
let edgeConfig: string
let siteOverride: string
let PUBLIC: string
let DOMAIN: string

/** Status codes of `n` sequential HTTPS requests from one client address (one curl, keep-alive). */
function codes(from: string, n: number): number[] {
  const url = `https://${DOMAIN}/`
  const args = ['-sk', '--max-time', '20', '--interface', from, '--resolve', `${DOMAIN}:443:${PUBLIC}`]
  for (let i = 0; i < n; i++) args.push('-o', '/dev/null', '-w', '%{http_code}\\n', url)
  const r = spawnSync('curl', args, {encoding: 'utf8', timeout: 25_000})
  return r.stdout.trim().split('\n').filter(Boolean).map(Number)
}

async function waitFor(what: string, fn: () => boolean, ms: number, step = 250): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < ms) {
    if (fn()) return Date.now() - t0
    await new Promise((r) => setTimeout(r, step))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

beforeAll(async () => {
  original = inject('labConfig')
  const inv = parse(await readFile(original, 'utf8'))
  PUBLIC = inv.bastion.publicAddress
  DOMAIN = inv.domain
  edgeConfig = path.join(path.dirname(original), 'edge.yaml')
  // The nginx site, echoing the identity headers this node received (empty: nginx adds no header).
  siteOverride = path.join(path.dirname(original), 'templates/nginx/site.conf.hbs')
  const site = await readFile(path.join(ROOT, 'src/templates/nginx/site.conf.hbs'), 'utf8')
  const echoed = site.replace(
    /^( *add_header X-Served-By \{\{name\}\} always;\n)/m,
    '$1    add_header X-Seen-Auth-Role $http_x_auth_role always;\n    add_header X-Seen-Auth-Subject $http_x_auth_subject always;\n',
  )
  if (echoed === site) throw new Error('the nginx site template has no X-Served-By line to put the echo after')
  await mkdir(path.dirname(siteOverride), {recursive: true})
  await writeFile(siteOverride, echoed)
  await writeFile(path.join(path.dirname(original), 'edge-jwt.pem'), keys.publicKey.export({type: 'spki', format: 'pem'}) as string)
  await writeFile(
    edgeConfig,
    stringify({
      ...inv,
      limits: LIMITS,
      cors: {origins: [ORIGIN], methods: ['GET', 'POST']},
      auth: {alg: 'RS256', key: 'edge-jwt.pem', issuer: ISS, rules: [{path: '/private/', roles: ['admin']}]},
    }),
  )
  await infra(['provision', '--yes'], edgeConfig, {exit: 0})
  await infra([
    'exec',
    'web',
    '--',
    `mkdir -p ${WEB_ROOT}/private ${WEB_ROOT}/.well-known/acme-challenge && printf %s ${SECRET} > ${WEB_ROOT}/private/lab-secret.txt && printf %s ${TOKEN_BODY} > ${WEB_ROOT}/.well-known/acme-challenge/${TOKEN}`,
  ], edgeConfig, {exit: 0})
}, 180_000)

afterAll(async () => {
  if (!edgeConfig) return
  await infra(['unban', B], edgeConfig)
  await infra(['unban', A], edgeConfig)
  await infra(['exec', 'web', '--', `rm -rf ${WEB_ROOT}/private ${WEB_ROOT}/.well-known`], edgeConfig)
  // Back to the lab's own inventory (default limits) and nginx site for the next test files.
  if (siteOverride) {
    await rm(siteOverride, {force: true})
    // templates/nginx and templates/, unless something else is in them.
    for (const dir of [path.dirname(siteOverride), path.dirname(path.dirname(siteOverride))]) await rmdir(dir).catch(() => {})
  }
  await infra(['provision', '--yes'], original)
  await rm(edgeConfig, {force: true})
  await rm(path.join(path.dirname(original), 'edge-jwt.pem'), {force: true})
}, 180_000)

describe('flood limits on the lab', () => {
  it('gives one client 429, then bans it, while the second client keeps getting 200; the ban ends by itself', async () => {
    expect(codes(B, 1)).toEqual([200])
    // 10 allowed per window, then 429; the 16th (5 refused beyond the limit + 1) triggers the ban.
    const a = codes(A, 16)
    expect(a.slice(0, 10)).toEqual(Array(10).fill(200))
    expect(a.slice(10)).toEqual(Array(6).fill(429))
    // Banned now: 403 for A, and B is untouched.
    expect(codes(A, 2)).toEqual([403, 403])
    expect(codes(B, 3)).toEqual([200, 200, 200])

    const listed = JSON.parse((await infra(['bans', '--json'], edgeConfig, {exit: 0})).stdout) as {address: string; source: string}[]
    expect(listed).toContainEqual(expect.objectContaining({address: A, source: 'auto'}))

    // banFor 5s, then the window (3s) drains: A is served again without anyone lifting the ban.
    const waited = await waitFor('the automatic ban to end', () => codes(A, 1)[0] === 200, 25_000, 1000)
    expect(waited).toBeGreaterThan(1000)
  }, 60_000)
})

describe('infra ban / unban / bans on the lab', () => {
  it('bans within a second, survives provision and a reload, and unbans within a second', async () => {
    // Whatever the flood test left (an automatic ban of A) is lifted by infra unban.
    await infra(['unban', A], edgeConfig)
    expect(codes(A, 1)).toEqual([200])
    expect(codes(B, 1)).toEqual([200])
    const banned = JSON.parse((await infra(['ban', B, '--reason', 'lab test', '--json'], edgeConfig, {exit: 0})).stdout)
    expect(banned).toEqual({address: B, until: null, reason: 'lab test'})
    const t = await waitFor('the ban to act', () => codes(B, 1)[0] === 403, 1000, 100)
    expect(t).toBeLessThan(1000)
    expect(codes(A, 1)).toEqual([200])

    const list = JSON.parse((await infra(['bans', '--json'], edgeConfig, {exit: 0})).stdout)
    expect(list).toContainEqual(expect.objectContaining({address: B, source: 'list', until: null, reason: 'lab test'}))

    // provision leaves the ban list alone (runtime data), and a reload re-reads it.
    const prov = JSON.parse((await infra(['provision', '--yes', '--json'], edgeConfig, {exit: 0})).stdout)
    expect(prov.failed).toEqual([])
    expect(codes(B, 1)).toEqual([403])
    await infra(['exec', 'bastion', '--', 'systemctl reload haproxy'], edgeConfig, {exit: 0})
    await waitFor('HAProxy after the reload', () => codes(A, 1)[0] === 200, 5000)
    expect(codes(B, 1)).toEqual([403])

    const un = JSON.parse((await infra(['unban', B, '--json'], edgeConfig, {exit: 0})).stdout)
    expect(un).toEqual({address: B, listed: true, auto: false})
    const t2 = await waitFor('the unban to act', () => codes(B, 1)[0] === 200, 1000, 100)
    expect(t2).toBeLessThan(1000)
    expect(JSON.parse((await infra(['bans', '--json'], edgeConfig, {exit: 0})).stdout)).toEqual([])
  }, 90_000)

  it('a ban with --for ends by itself (the prune timer on the bastion)', async () => {
    await infra(['ban', B, '--for', '3s'], edgeConfig, {exit: 0})
    expect(codes(B, 1)).toEqual([403])
    const t = await waitFor('the ban to expire', () => codes(B, 1)[0] === 200, 25_000, 1000)
    expect(t).toBeGreaterThan(1000)
    expect(JSON.parse((await infra(['bans', '--json'], edgeConfig, {exit: 0})).stdout)).toEqual([])
  }, 40_000)

  it('refuses a bad address with exit 2 without touching the bastion', async () => {
    const r = await infra(['ban', 'not-an-address'], edgeConfig)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/"not-an-address" is not an IP address or network/)
  })
})

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
function token(claims: object, key: KeyObject = keys.privateKey, header: object = {alg: 'RS256', typ: 'JWT'}): string {
  const data = `${b64(header)}.${b64(claims)}`
  return `${data}.${sign('sha256', Buffer.from(data), key).toString('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)

/** One HTTPS request from client A, paced: status and headers (lowercase names). */
function request(pathname: string, extra: string[] = []): {status: number; h: Record<string, string>} {
  // Paced under the lab's low flood limit (10 requests per 3 s).
  spawnSync('sleep', ['0.4'])
  const r = spawnSync('curl', ['-sk', '--max-time', '5', '--interface', A, '-o', '/dev/null', '-D', '-', '--resolve', `${DOMAIN}:443:${PUBLIC}`, ...extra, `https://${DOMAIN}${pathname}`], {encoding: 'utf8'})
  const lines = r.stdout.split(/\r?\n/)
  const h: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  return {status: Number(/HTTP\/[\d.]+ (\d+)/.exec(lines[0] ?? '')?.[1] ?? 0), h}
}

describe('JWT and CORS on the lab bastion', () => {
  const bearer = (t: string) => ['-H', `Authorization: Bearer ${t}`]

  it('protects /private/ with a token and a role; the health path and the rest stay public', () => {
    const none = request('/private/x')
    expect(none.status).toBe(401)
    expect(none.h['www-authenticate']).toBe(`Bearer realm="${DOMAIN}"`)
    // Passed through: nginx answers 404 for this path, with its X-Served-By header.
    const admin = request('/private/x', bearer(token({sub: 'ann', iss: ISS, role: 'admin', exp: now() + 60})))
    expect(admin.status).toBe(404)
    expect(admin.h['x-served-by']).toMatch(/^web[12]$/)
    expect(request('/private/x', bearer(token({sub: 'bob', iss: ISS, role: 'viewer', exp: now() + 60}))).status).toBe(403)
    expect(request('/private/x', bearer(token({sub: 'ann', iss: ISS, role: 'admin', exp: now() - 5}))).status).toBe(401)
    expect(request('/private/x', bearer(token({sub: 'ann', iss: 'https://evil.test', role: 'admin', exp: now() + 60}))).status).toBe(401)
    expect(request('/private/x', bearer(`${b64({alg: 'none'})}.${b64({sub: 'ann', iss: ISS, role: 'admin', exp: now() + 60})}.`)).status).toBe(401)
    const other = generateKeyPairSync('rsa', {modulusLength: 2048}).privateKey
    expect(request('/private/x', bearer(token({sub: 'ann', iss: ISS, role: 'admin', exp: now() + 60}, other))).status).toBe(401)
    expect(request('/healthz').status).toBe(200)
    expect(request('/').status).toBe(200)
  })

  it('answers preflights from the allowed origin and refuses other origins with 403', () => {
    const pre = (origin: string) => request('/', ['-X', 'OPTIONS', '-H', `Origin: ${origin}`, '-H', 'Access-Control-Request-Method: POST'])
    const ok = pre(ORIGIN)
    expect(ok.status).toBe(204)
    expect(ok.h['access-control-allow-origin']).toBe(ORIGIN)
    expect(ok.h['access-control-allow-methods']).toBe('GET, POST, OPTIONS')
    expect(pre('https://evil.test').status).toBe(403)
    expect(request('/', ['-H', 'Origin: https://evil.test']).status).toBe(403)
    const get = request('/', ['-H', `Origin: ${ORIGIN}`])
    expect(get.status).toBe(200)
    expect(get.h['access-control-allow-origin']).toBe(ORIGIN)
    expect(get.h.vary).toMatch(/Origin/)
  })
})

/** One request from client A (paced under the flood limit) over http or https: status, headers (lowercase names), body. */
function fetchFrom(url: string, extra: string[] = []): {status: number; h: Record<string, string>; body: string} {
  spawnSync('sleep', ['0.4'])
  const resolve = ['--resolve', `${DOMAIN}:443:${PUBLIC}`, '--resolve', `${DOMAIN}:80:${PUBLIC}`]
  const r = spawnSync('curl', ['-sk', '-i', '--max-time', '5', '--interface', A, ...resolve, ...extra, url], {encoding: 'utf8'})
  const [head = '', ...rest] = r.stdout.split('\r\n\r\n')
  const h: Record<string, string> = {}
  for (const l of head.split('\r\n').slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  return {status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(head)?.[1] ?? 0), h, body: rest.join('\r\n\r\n')}
}

describe('port 80 and identity headers on the lab', () => {
  const FORGED = ['-H', 'X-Auth-Role: admin', '-H', 'X-Auth-Subject: mallory']
  const bearer = (t: string) => ['-H', `Authorization: Bearer ${t}`]

  it('port 80 serves an ACME token from a web node, and redirects the dot-segment path that reached /private/ without a token', () => {
    const acme = fetchFrom(`http://${DOMAIN}/.well-known/acme-challenge/${TOKEN}`)
    expect(acme.status).toBe(200)
    expect(acme.body).toBe(TOKEN_BODY)
    expect(acme.h['x-served-by']).toMatch(/^web[12]$/)
    // Resolved by nginx to /private/lab-secret.txt, which needs an admin token on 443.
    const bypass = `/.well-known/acme-challenge/../../private/lab-secret.txt`
    const plain = fetchFrom(`http://${DOMAIN}${bypass}`, ['--path-as-is'])
    expect(plain.status, plain.body).toBe(301)
    expect(plain.h.location).toBe(`https://${DOMAIN}${bypass}`)
    expect(plain.h['x-served-by']).toBeUndefined()
    expect(plain.body).not.toContain(SECRET)
    // Followed to 443 as is: a dot segment, refused while auth is on.
    const tls = fetchFrom(`https://${DOMAIN}${bypass}`, ['--path-as-is'])
    expect(tls.status).toBe(400)
    expect(tls.body).not.toContain(SECRET)
    // The file is there, for a token with the role.
    expect(fetchFrom(`https://${DOMAIN}/private/lab-secret.txt`).status).toBe(401)
    const admin = fetchFrom(`https://${DOMAIN}/private/lab-secret.txt`, bearer(token({sub: 'ann', iss: ISS, role: 'admin', exp: now() + 60})))
    expect(admin.status).toBe(200)
    expect(admin.body).toBe(SECRET)
  })

  it('a web node never receives X-Auth-Role or X-Auth-Subject from a client, on port 80 or 443; only from a verified token', () => {
    // The node echoes what it received: with a valid token, HAProxy's values, not the forged ones.
    const admin = fetchFrom(`https://${DOMAIN}/private/lab-secret.txt`, [...bearer(token({sub: 'ann', iss: ISS, role: 'admin', exp: now() + 60})), '-H', 'X-Auth-Role: root', '-H', 'X-Auth-Subject: mallory'])
    expect(admin.status).toBe(200)
    expect(admin.h['x-seen-auth-role']).toBe('admin')
    expect(admin.h['x-seen-auth-subject']).toBe('ann')
    for (const [url, extra] of [
      [`http://${DOMAIN}/.well-known/acme-challenge/${TOKEN}`, []],
      [`https://${DOMAIN}/`, []],
      [`https://${DOMAIN}/`, ['--http1.1']],
    ] as const) {
      const r = fetchFrom(url, [...FORGED, ...extra])
      expect(r.status, url).toBe(200)
      expect(r.h['x-served-by'], url).toMatch(/^web[12]$/)
      expect(r.h['x-seen-auth-role'], url).toBeUndefined()
      expect(r.h['x-seen-auth-subject'], url).toBeUndefined()
    }
  })
})
