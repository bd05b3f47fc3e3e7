/**
 * Edge protection in the rendered bastion files: every option on passes the real `haproxy -c`
 * (through the config's own validate command), options off leave their sections out, the ban list
 * is runtime data (ifAbsent), the JWT secret stays out of haproxy.cfg, and bad key material or
 * inventory values fail with a clear message.
 */
import {execFileSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {checkPublicKey, checkSecret, readAuthMaterial} from '../../src/edge/jwt.js'
import type {InventoryInput} from '../../src/inventory/schema.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import {ConfigError} from '../../src/lib/errors.js'
import {edgePaths, originMatcher} from '../../src/roles/edge.js'
import {DEFAULT_PATHS, desiredState, type HostPaths, type RenderContext} from '../../src/roles/render.js'
import {context, DOMAIN, fileAt, haproxyPaths, hostsByName, inventory, requireTool, runValidate, tempDir, writeInside} from './render-helpers.js'

const rsa = generateKeyPairSync('rsa', {modulusLength: 2048})
const RSA_PUB = rsa.publicKey.export({type: 'spki', format: 'pem'}) as string
const EC_PUB = generateKeyPairSync('ec', {namedCurve: 'P-256'}).publicKey.export({type: 'spki', format: 'pem'}) as string
const SECRET = 'a-secret-of-at-least-thirty-two-bytes-0123456789'

const base = (extra: Partial<InventoryInput>): InventoryInput => ({
  domain: DOMAIN,
  bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
  web: {nodes: [{name: 'web1', address: '10.10.0.11'}, {name: 'web2', address: '10.10.0.12', standby: true}]},
  ...extra,
})

const EVERYTHING = base({
  limits: {requests: 50, window: '5s', banAfter: 20, banFor: '15m', banAction: 'tarpit', connections: 20, allow: ['198.51.100.7', '192.0.2.0/24']},
  cors: {
    origins: ['https://app.example.net', 'https://*.example.org', 'http://localhost:3000'],
    websocketOrigins: ['https://chat.example.net', 'https://*.example.org'],
    methods: ['GET', 'PUT'],
    headers: ['Content-Type'],
    credentials: true,
    maxAge: '1h',
  },
  auth: {
    alg: 'ES256',
    key: 'jwt.pem',
    issuer: 'https://id.example.com',
    audience: 'api',
    roleClaim: 'grp',
    rules: [{path: '/api/admin/', roles: ['admin', 'ops']}, {path: '/api/', methods: ['GET', 'POST']}],
  },
})

let root: string
let n = 0
beforeAll(() => {
  requireTool('haproxy', 'haproxy')
  root = tempDir('infra-edge-render-')
})
afterAll(() => rmSync(root, {recursive: true, force: true}))

function render(input: InventoryInput, material: RenderContext['authMaterial'] = {}) {
  const dir = path.join(root, `case${++n}`)
  mkdirSync(dir, {recursive: true})
  const paths: Partial<HostPaths> = {...haproxyPaths(dir), haproxyChroot: null}
  const inv = inventory(input)
  const ctx = context(inv, {paths, authMaterial: material})
  const files = desiredState(ctx, hostsByName(inv).bastion).files
  writeInside(dir, files)
  const cfg = fileAt(files, `${dir}/haproxy.cfg`)
  return {dir, files, cfg, ctx, e: edgePaths({...DEFAULT_PATHS, ...paths})}
}

describe('haproxy -c accepts the rendered edge configuration', () => {
  it('with every option on (ES256 key, CORS with patterns and credentials, tarpit bans, allowlist)', () => {
    const {dir, cfg, e} = render(EVERYTHING, {key: EC_PUB})
    const r = runValidate(cfg, path.join(dir, 'stage'))
    expect(r.code, r.output).toBe(0)
    const text = cfg.content
    expect(text).toContain(`jwt_verify(ES256,"${e.jwtKey}")`)
    expect(readFileSync(e.jwtKey, 'utf8')).toBe(EC_PUB)
    expect(text).toContain('http-request tarpit deny_status 403 if edge_banned !edge_allowed')
    expect(text).toContain('timeout tarpit 10s')
    expect(text).toContain('acl edge_allowed src 198.51.100.7 192.0.2.0/24')
    expect(text).toContain('stick-table type ipv6 size 1m expire 5s store http_req_rate(5s),conn_cur')
    expect(text).toContain('stick-table type ipv6 size 100k expire 15m store gpc0')
    expect(text).toContain('acl edge_ban_now sc0_http_req_rate gt 70')
    expect(text).toContain('acl cors_allowed req.hdr(origin) -m str -i https://example.com https://app.example.net http://localhost:3000')
    expect(text).toContain('hdr Access-Control-Max-Age "3600"')
    expect(text).toContain("jwt_payload_query('$.grp')")
    expect(text).toContain('{ method GET POST HEAD }')
    // CORS and auth only on 443 (port 80 redirects everything); flood limits and bans on both.
    expect(text.match(/acl edge_banned src -f/g)).toHaveLength(2)
    expect(text.match(/acl cors_allowed req.hdr\(origin\) -m str/g)).toHaveLength(1)
    expect(text.match(/jwt_verify/g)).toHaveLength(1)
    // More than one Origin value is refused; WebSocket upgrades are checked against their own list.
    expect(text).toContain('acl cors_multiple req.hdr_cnt(origin) gt 1')
    expect(text).toContain('acl ws_allowed req.hdr(origin) -m str -i https://example.com https://chat.example.net')
    expect(text).toContain('acl ws_allowed req.hdr(origin) -m reg -i ^https://([a-z0-9-]+[.])+example[.]org$')
    expect(text).toContain('http-request deny deny_status 403 if ws_upgrade !ws_allowed')
    expect(text).toContain('http-request deny deny_status 403 if cors_origin !cors_allowed !ws_upgrade')
    // Tarpit: a banned address holds at most limits.connections connections; more are refused on arrival.
    expect(text).toContain('tcp-request connection track-sc2 src table edge_tarpit if edge_banned !edge_allowed')
    expect(text).toContain('tcp-request connection track-sc2 src table edge_tarpit if edge_autobanned !edge_allowed')
    expect(text).toContain('tcp-request connection reject if { sc2_conn_cur gt 20 }')
    expect(text).toContain('stick-table type ipv6 size 100k expire 30s store conn_cur')
    expect(text.match(/tcp-request connection reject/g)).toHaveLength(2)
  })

  it('with only cors.websocketOrigins: upgrades checked, CORS itself off', () => {
    const {dir, cfg} = render(base({cors: {websocketOrigins: ['https://chat.example.net']}}))
    expect(runValidate(cfg, path.join(dir, 'stage')).code).toBe(0)
    const text = cfg.content
    expect(text).toContain('acl ws_upgrade req.hdr(upgrade) -m str -i websocket')
    expect(text).toContain('acl ws_allowed req.hdr(origin) -m str -i https://example.com https://chat.example.net')
    expect(text).toContain('acl cors_multiple req.hdr_cnt(origin) gt 1')
    expect(text).not.toContain('cors_allowed')
    expect(text).not.toContain('Access-Control-')
    expect(text).not.toContain('Vary')
  })

  it('removes client-sent identity headers in both public frontends, with auth off', () => {
    const {cfg} = render(base({}))
    expect(cfg.content.match(/http-request del-header X-Auth-Subject\n {4}http-request del-header X-Auth-Role\n/g)).toHaveLength(2)
    const http = cfg.content.slice(cfg.content.indexOf('frontend http\n'), cfg.content.indexOf('frontend https\n'))
    expect(http).toContain('http-request del-header X-Auth-Role')
    expect(http).toContain('acl acme_challenge path -m reg ^/[.]well-known/acme-challenge/[A-Za-z0-9_-]+$')
  })

  it('with HS256: the secret is in a root-only secret file, never in haproxy.cfg', () => {
    const {dir, cfg, files, e} = render(base({auth: {alg: 'HS512', secretEnv: 'JWT_SECRET', rules: [{path: '/'}]}}), {secret: SECRET})
    expect(runValidate(cfg, path.join(dir, 'stage')).code).toBe(0)
    expect(cfg.content).not.toContain(SECRET)
    expect(cfg.content).toContain(`map(${e.jwtSecretMap})`)
    expect(cfg.content).toContain('jwt_verify(HS512,txn.jwt_key)')
    expect(fileAt(files, e.jwtSecretMap)).toMatchObject({content: `secret ${SECRET}\n`, mode: 0o600, owner: 'root', secret: true})
  })

  it('with the defaults: flood limits on, no CORS, no auth', () => {
    const {dir, cfg} = render(base({}))
    expect(runValidate(cfg, path.join(dir, 'stage')).code).toBe(0)
    expect(cfg.content).toContain('acl edge_over_rate sc0_http_req_rate gt 100')
    expect(cfg.content).toContain('acl edge_allowed always_false')
    expect(cfg.content).not.toContain('cors_')
    expect(cfg.content).not.toContain('jwt')
    expect(cfg.content).not.toContain('timeout tarpit')
    expect(cfg.content).not.toContain('tcp-request')
    expect(cfg.content).not.toContain('ws_')
  })

  it('with flood limits off, or bans after a flood off', () => {
    const off = render(base({limits: {enabled: false}}))
    expect(runValidate(off.cfg, path.join(off.dir, 'stage')).code).toBe(0)
    expect(off.cfg.content).not.toContain('track-sc0')
    expect(off.cfg.content).not.toContain('stick-table')
    // infra ban still works.
    expect(off.cfg.content).toContain('acl edge_banned src -f')
    const noBan = render(base({limits: {banAfter: 0}}))
    expect(runValidate(noBan.cfg, path.join(noBan.dir, 'stage')).code).toBe(0)
    expect(noBan.cfg.content).toContain('track-sc0')
    expect(noBan.cfg.content).not.toMatch(/\bedge_ban\b|auto-ban/)
    // The ban list tarpits with the flood limits off too: its timeout and its bound stay.
    const tarpitOff = render(base({limits: {enabled: false, banAction: 'tarpit', connections: 7}}))
    expect(runValidate(tarpitOff.cfg, path.join(tarpitOff.dir, 'stage')).code).toBe(0)
    expect(tarpitOff.cfg.content).toContain('timeout tarpit 10s')
    expect(tarpitOff.cfg.content).toContain('tcp-request connection reject if { sc2_conn_cur gt 7 }')
    expect(tarpitOff.cfg.content).not.toContain('edge_autobanned')
  })

  it('refuses the config when the ban list file is missing (why provision creates it first)', () => {
    const {dir, cfg, e} = render(base({}))
    rmSync(e.bansFile)
    const r = runValidate(cfg, path.join(dir, 'stage'))
    expect(r.code).not.toBe(0)
    expect(r.output).toContain('bans.lst')
  })
})

describe('the bastion files of edge protection', () => {
  it('seed the ban list once (ifAbsent) before haproxy.cfg, and install the script and its prune timer', () => {
    const {files, e, dir} = render(base({}))
    const bans = fileAt(files, e.bansFile)
    expect(bans).toMatchObject({ifAbsent: true, mode: 0o644})
    expect(bans.notify).toBeUndefined()
    expect(files.findIndex((f) => f.path === e.bansFile)).toBeLessThan(files.findIndex((f) => f.path === `${dir}/haproxy.cfg`))
    const script = fileAt(files, e.bansScript)
    expect(script.mode).toBe(0o755)
    expect(runValidate(script, path.join(dir, 'stage')).code).toBe(0)
    expect(fileAt(files, e.pruneTimer).content).toContain('OnUnitActiveSec=10s')
    expect(fileAt(files, e.pruneService).content).toContain(`ExecStart=${e.bansScript} prune`)
  })

  it('need the key material that auth names', () => {
    expect(() => render(base({auth: {alg: 'RS256', key: 'k.pem', rules: [{path: '/api/'}]}}))).toThrow(/no public key \(auth.key\) was read for RS256/)
    expect(() => render(base({auth: {alg: 'HS256', secretEnv: 'S', rules: [{path: '/api/'}]}}))).toThrow(/no secret \(environment variable S\)/)
  })
})

describe('CORS origins', () => {
  it('match exactly, or any subdomain for a *. pattern', () => {
    expect(originMatcher('https://App.Example.net')).toEqual({exact: 'https://app.example.net'})
    const {regex} = originMatcher('https://*.example.org:8443')
    const re = new RegExp(regex!)
    expect(re.test('https://a.example.org:8443')).toBe(true)
    expect(re.test('https://a.b.example.org:8443')).toBe(true)
    expect(re.test('https://example.org:8443')).toBe(false)
    expect(re.test('https://a.example.org')).toBe(false)
    expect(re.test('https://aexample.org:8443')).toBe(false)
    expect(re.test('https://a.example.org:8443.evil.com')).toBe(false)
  })
})

describe('JWT key material', () => {
  it('takes an RSA or EC public key matching the algorithm', () => {
    expect(checkPublicKey(RSA_PUB, 'RS256')).toBe(RSA_PUB)
    expect(checkPublicKey(EC_PUB, 'ES256')).toBe(EC_PUB)
    expect(() => checkPublicKey(EC_PUB, 'RS256')).toThrow(/is an EC key; auth.alg RS256 needs an RSA key/)
  })

  it('refuses a certificate, a private key, and garbage', () => {
    const dir = tempDir('infra-jwt-')
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=x', '-days', '1', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`], {stdio: 'pipe'})
      expect(() => checkPublicKey(readFileSync(`${dir}/c.pem`, 'utf8'), 'RS256')).toThrow(/is a certificate/)
      expect(() => checkPublicKey(readFileSync(`${dir}/k.pem`, 'utf8'), 'RS256')).toThrow(/is a private key/)
      expect(() => checkPublicKey('hello', 'RS256')).toThrow(ConfigError)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('reads the key beside the inventory, or the secret from the environment (never in a message)', async () => {
    const dir = tempDir('infra-jwt-')
    try {
      writeFileSync(`${dir}/jwt.pem`, RSA_PUB)
      const rs = inventory(base({auth: {alg: 'RS256', key: 'jwt.pem', rules: [{path: '/api/'}]}}))
      const loaded = {path: `${dir}/infra.yaml`, dir, inventory: rs, knownHostsPath: `${dir}/known_hosts`}
      expect(await readAuthMaterial(loaded)).toEqual({key: RSA_PUB})
      const hs = {...loaded, inventory: inventory(base({auth: {alg: 'HS256', secretEnv: 'MY_JWT', rules: [{path: '/api/'}]}}))}
      expect(await readAuthMaterial(hs, {MY_JWT: SECRET})).toEqual({secret: SECRET})
      await expect(readAuthMaterial(hs, {})).rejects.toThrow(/environment variable MY_JWT is not set/)
      const short = 'short-secret'
      const err = await readAuthMaterial(hs, {MY_JWT: short}).then(() => new Error('no error'), (e: Error) => e)
      expect(err.message).toMatch(/shorter than 32 bytes/)
      expect(err.message).not.toContain(short)
      expect(() => checkSecret(' padded-secret-padded-secret-padded ', 'X')).toThrow(/leading\/trailing spaces/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('inventory checks of the edge sections', () => {
  const yaml = (tail: string) => `domain: example.com
bastion:
  publicAddress: 203.0.113.10
  privateAddress: 10.10.0.1
web:
  nodes:
    - name: web1
      address: 10.10.0.11
${tail}`

  it.each([
    ['HS without secretEnv', 'auth:\n  alg: HS256\n  rules:\n    - path: /api/\n', 'infra.yaml:10:3 auth.secretEnv: is missing (auth.alg HS256 needs secretEnv: the environment variable holding the HMAC secret)'],
    ['RS with a secretEnv', 'auth:\n  alg: RS256\n  key: k.pem\n  secretEnv: X\n  rules:\n    - path: /api/\n', 'infra.yaml:12:14 auth.secretEnv: is only used with HS* algorithms; RS256 verifies with auth.key'],
    ['no rules', 'auth:\n  alg: RS256\n  key: k.pem\n  rules: []\n', 'infra.yaml:12:10 auth.rules: needs at least one rule'],
    ['alg none', 'auth:\n  alg: none\n  key: k.pem\n  rules:\n    - path: /\n', 'infra.yaml:10:8 auth.alg: "none" is not a JWT algorithm (RS256, RS384, RS512, ES256, ES384, ES512, HS256, HS384, HS512)'],
    ['a bad origin', 'cors:\n  origins: ["https://example.com/"]\n', 'infra.yaml:10:13 cors.origins[0]: "https://example.com/" is not an origin (scheme, host and optional port, e.g. "https://app.example.com" or "https://*.example.com")'],
    ['a bad WebSocket origin', 'cors:\n  websocketOrigins: [https://chat.example.com, "chat.example.com"]\n', 'infra.yaml:10:48 cors.websocketOrigins[1]: "chat.example.com" is not an origin (scheme, host and optional port, e.g. "https://app.example.com" or "https://*.example.com")'],
    ['a bad allowlist entry', 'limits:\n  allow: [example.com]\n', 'infra.yaml:10:11 limits.allow[0]: "example.com" is not an IPv4 address or network (e.g. "198.51.100.7" or "198.51.100.0/24")'],
    ['a bad ban action', 'limits:\n  banAction: drop\n', 'infra.yaml:10:14 limits.banAction: "drop" is not "deny" or "tarpit"'],
  ])('%s', (_t, tail, message) => {
    expect(validateInventoryText(yaml(tail), 'infra.yaml').errors).toEqual([message])
  })
})

