/**
 * Protected non-production units (`protect.usersEnv`; docs/SITES.md#protection): the users are
 * read from the operator's environment by prepare.ts (a missing or bad variable is a ConfigError,
 * exit 2, before any host is touched); haproxy.cfg holds only SHA-256 digests of the allowed
 * Authorization headers and passes `haproxy -c`; live, in a real HAProxy (test/unit/edge-harness.ts):
 * 401 with the unit's realm without the right user, the unit's backend with it, the header removed
 * before the nodes, prod untouched, X-Robots-Tag on every non-production response, and the
 * protected backends' health checks still UP.
 */
import {createHash} from 'node:crypto'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {ConfigError} from '../../src/lib/errors.js'
import {desiredState} from '../../src/roles/render.js'
import {basicAuthDigest, basicAuthDigests, prepareFleet, PROTECT_PASSWORD_MIN, readSiteAuth} from '../../src/tasks/provision/prepare.js'
import {type Harness, type Namespace, startEdge, until} from './edge-harness.js'
import {DOMAIN, fileAt, haproxyPaths, hostsByName, inventory, requireTool, runValidate, tempDir, testFleetPki, writeInside} from './render-helpers.js'
import {BLOG, pemFor, SHOP, siteInputs, sitesContext, sitesInventory, USERS_ENV} from './sites-fixtures.js'

// Provision and doctor must fail before they open a single connection: any call is recorded.
const opened = vi.hoisted(() => ({count: 0}))
vi.mock('../../src/ssh/fleet.js', async (original) => ({
  ...(await original<typeof import('../../src/ssh/fleet.js')>()),
  openFleet: () => {
    opened.count++
    throw new Error('a connection was opened')
  },
}))

/** shop: preprod behind basic auth, debug not (only noindex), previews behind their own users; blog as usual. */
const PROTECTED = sitesInventory({
  shop: {
    ...SHOP,
    environments: {preprod: {protect: {usersEnv: 'SHOP_PREPROD_USERS'}}, debug: {domain: 'debug-shop.example.com'}},
    previews: {domain: 'preview.shop.example.com', protect: {usersEnv: 'SHOP_PREVIEW_USERS'}},
  },
  blog: BLOG,
})
const inv = inventory(PROTECTED)
const ALICE = {user: 'alice', password: 'Vg4pL9wq2ZrT8mXc3nBd'}
const BOB = {user: 'bob', password: 'kE7yH2sQ9fJ4uW6a/+x='}
const CI = {user: 'ci', password: 'Qm3nR8tZ5wX1yV7bC2dF'}
const b64 = (u: {user: string; password: string}) => Buffer.from(`${u.user}:${u.password}`).toString('base64')
const hex = (s: string) => createHash('sha256').update(s).digest('hex')

let root: string
beforeAll(() => {
  requireTool('haproxy', 'haproxy')
  root = tempDir('infra-protect-')
})
afterAll(() => {
  if (root) rmSync(root, {recursive: true, force: true})
})

/** The error a function throws (sync or async). */
async function errorOf(fn: () => unknown): Promise<ConfigError> {
  try {
    await fn()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).exitCode).toBe(2)
    return error as ConfigError
  }
  throw new Error('did not throw')
}

describe('the users from the environment (prepare.ts)', () => {
  it('digests "Basic base64(user:password)" with SHA-256, for every pair separated by spaces or line breaks', () => {
    expect(basicAuthDigest(ALICE.user, ALICE.password)).toBe(hex(`Basic ${b64(ALICE)}`))
    expect(basicAuthDigests('k', 'V', USERS_ENV.SHOP_PREPROD_USERS)).toEqual([hex(`Basic ${b64(ALICE)}`), hex(`Basic ${b64(BOB)}`)])
    expect(basicAuthDigests('k', 'V', `\n\t ${ALICE.user}:${ALICE.password}  \n`)).toHaveLength(1)
    expect(readSiteAuth(inv, USERS_ENV)).toEqual({
      shop: {environments: {preprod: [hex(`Basic ${b64(ALICE)}`), hex(`Basic ${b64(BOB)}`)]}, previews: [hex(`Basic ${b64(CI)}`)]},
    })
    // No protected unit: nothing is read.
    expect(readSiteAuth(inventory(sitesInventory({shop: SHOP})), {})).toEqual({})
  })

  it('an unset, empty or malformed variable is a ConfigError (exit 2) naming the key and the variable, never a value', async () => {
    const key = 'sites.shop.environments.preprod.protect.usersEnv'
    const fails = async (env: Record<string, string>, message: RegExp, secret?: string) => {
      const err = await errorOf(() => readSiteAuth(inv, {...USERS_ENV, ...env}))
      expect(err.message).toMatch(message)
      if (secret) expect(`${err.message} ${err.hint}`).not.toContain(secret)
    }
    const {SHOP_PREPROD_USERS: _, ...withoutPreprod} = USERS_ENV
    const err = await errorOf(() => readSiteAuth(inv, withoutPreprod))
    expect(err.message).toBe(`${key}: the environment variable SHOP_PREPROD_USERS is not set (it holds the user:password pairs of basic auth)`)
    expect(err.hint).toMatch(/export SHOP_PREPROD_USERS=/)
    await fails({SHOP_PREPROD_USERS: ''}, /^sites\.shop\.environments\.preprod\.protect\.usersEnv: the environment variable SHOP_PREPROD_USERS is not set/)
    await fails({SHOP_PREPROD_USERS: ' \n '}, /SHOP_PREPROD_USERS is not set/)
    await fails({SHOP_PREVIEW_USERS: ''}, /^sites\.shop\.previews\.protect\.usersEnv: the environment variable SHOP_PREVIEW_USERS is not set/)
    const secret = 'Zz9Yy8Xx7Ww6Vv5Uu4'
    await fails({SHOP_PREPROD_USERS: `alice:${ALICE.password} ${secret}`}, /^sites\.shop\.environments\.preprod\.protect\.usersEnv: pair 2 of 2 in SHOP_PREPROD_USERS is not user:password/, secret)
    await fails({SHOP_PREPROD_USERS: `:${secret}`}, /pair 1 of 1 in SHOP_PREPROD_USERS is not user:password/, secret)
    await fails({SHOP_PREPROD_USERS: `${secret}:`}, /pair 1 of 1 in SHOP_PREPROD_USERS is not user:password/, secret)
    await fails({SHOP_PREPROD_USERS: `alice:${secret}é`}, /pair 1 of 1 in SHOP_PREPROD_USERS has a character other than printable ASCII/, secret)
    await fails({SHOP_PREPROD_USERS: 'alice:short-Pw1'}, new RegExp(`pair 1 of 1 in SHOP_PREPROD_USERS: the password is shorter than ${PROTECT_PASSWORD_MIN} characters`), 'short-Pw1')
  })

  describe('provision, plan and doctor', () => {
    function fleetDir(): string {
      const dir = path.join(root, `fleet-${Math.random().toString(36).slice(2)}`)
      mkdirSync(dir, {recursive: true})
      const yaml = [
        'domain: example.com',
        'bastion: {name: edge, publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}',
        'web:',
        '  nodes:',
        '    - {name: web1, address: 10.10.0.11}',
        'sites:',
        '  shop:',
        '    domain: shop.example.com',
        '    app: {image: shop, port: 8080}',
        '    environments:',
        '      preprod: {protect: {usersEnv: INFRA_TEST_PREPROD_USERS}}',
        '',
      ].join('\n')
      writeFileSync(`${dir}/infra.yaml`, yaml)
      return dir
    }
    const KEY = 'sites.shop.environments.preprod.protect.usersEnv'

    it('a missing variable stops them with exit 2 before any connection is opened', async () => {
      const {provision} = await import('../../src/tasks/provision/index.js')
      const {doctor} = await import('../../src/tasks/doctor.js')
      vi.stubEnv('INFRA_TEST_PREPROD_USERS', '')
      try {
        const loaded = await loadInventory(`${fleetDir()}/infra.yaml`)
        for (const task of [() => provision(loaded, {dryRun: true}), () => doctor(loaded), () => prepareFleet(loaded)]) {
          const err = await errorOf(task)
          expect(err.message).toBe(`${KEY}: the environment variable INFRA_TEST_PREPROD_USERS is not set (it holds the user:password pairs of basic auth)`)
        }
        expect(opened.count).toBe(0)
      } finally {
        vi.unstubAllEnvs()
      }
    })

    it('with the variable set, the rendered haproxy.cfg holds its digests only', async () => {
      const value = `${ALICE.user}:${ALICE.password}\n${BOB.user}:${BOB.password}`
      vi.stubEnv('INFRA_TEST_PREPROD_USERS', value)
      try {
        const prepared = await prepareFleet(await loadInventory(`${fleetDir()}/infra.yaml`))
        const all = JSON.stringify(prepared.hosts.map((h) => h.desired))
        const cfg = fileAt(prepared.hosts.find((h) => h.spec.role === 'bastion')!.desired.files, '/etc/haproxy/haproxy.cfg').content
        for (const u of [ALICE, BOB]) {
          expect(cfg).toContain(`acl user_site_shop__preprod req.fhdr(authorization),sha2(256),hex,lower -m str ${hex(`Basic ${b64(u)}`)}\n`)
          for (const leak of [u.password, b64(u)]) expect(all).not.toContain(leak)
        }
      } finally {
        vi.unstubAllEnvs()
      }
    })
  })
})

describe('haproxy.cfg', () => {
  const dir = () => {
    const d = path.join(root, `cfg-${Math.random().toString(36).slice(2)}`)
    mkdirSync(d, {recursive: true})
    return d
  }
  const bastion = (d: string, extra = {}) => desiredState(sitesContext(inv, {paths: haproxyPaths(d), ...extra}), hostsByName(inv)[inv.bastion.name]).files

  it('passes haproxy -c, holds the digests and neither a password nor its base64', () => {
    const d = dir()
    const files = bastion(d)
    writeInside(d, files)
    const cfg = fileAt(files, `${d}/haproxy.cfg`)
    const ok = runValidate(cfg, `${d}/stage`)
    expect(ok.code, ok.output).toBe(0)
    expect(ok.output.split('\n').filter((l) => /ALERT|WARNING/.test(l) && !/server state file/.test(l))).toEqual([])
    for (const u of [ALICE, BOB, CI]) expect(cfg.content).toContain(` -m str ${hex(`Basic ${b64(u)}`)}\n`)
    const everything = files.map((f) => f.content).join('\n')
    for (const u of [ALICE, BOB, CI]) {
      for (const leak of [u.password, b64(u)]) expect(everything).not.toContain(leak)
    }
    expect(everything).not.toMatch(/Basic [A-Za-z0-9+/]{8}/)
  })

  it('guards each protected unit by its own names, after CORS, before the JWT rules, redirects and routing; noindex on every non-production name', () => {
    const cfg = fileAt(bastion('/srv/h'), '/srv/h/haproxy.cfg').content
    const https = cfg.slice(cfg.indexOf('\nfrontend https\n'), cfg.indexOf('\nbackend web\n')).split('\n')
    const rules = https.filter((l) => /site_noindex|X-Robots-Tag|_site_shop__p|realm|del-header Authorization/.test(l))
    expect(rules).toEqual([
      '    http-request set-var(txn.site_noindex) bool(true) if { req.hdr(host),host_only -m str preprod.shop.example.com }',
      '    http-request set-var(txn.site_noindex) bool(true) if { req.hdr(host),host_only -m str debug-shop.example.com }',
      '    http-request set-var(txn.site_noindex) bool(true) if { req.hdr(host),host_only -m end .preview.shop.example.com }',
      '    http-after-response set-header X-Robots-Tag "noindex, nofollow" if { var(txn.site_noindex) -m bool }',
      '    acl protect_site_shop__preprod req.hdr(host),host_only -m str preprod.shop.example.com',
      `    acl user_site_shop__preprod req.fhdr(authorization),sha2(256),hex,lower -m str ${hex(`Basic ${b64(ALICE)}`)}`,
      `    acl user_site_shop__preprod req.fhdr(authorization),sha2(256),hex,lower -m str ${hex(`Basic ${b64(BOB)}`)}`,
      '    http-request auth realm "shop preprod" if protect_site_shop__preprod !user_site_shop__preprod',
      '    http-request del-header Authorization if protect_site_shop__preprod',
      '    acl protect_site_shop__previews req.hdr(host),host_only -m end .preview.shop.example.com',
      `    acl user_site_shop__previews req.fhdr(authorization),sha2(256),hex,lower -m str ${hex(`Basic ${b64(CI)}`)}`,
      '    http-request auth realm "shop preview" if protect_site_shop__previews !user_site_shop__previews',
      '    http-request del-header Authorization if protect_site_shop__previews',
    ])
    const at = (re: RegExp) => https.findIndex((l) => re.test(l))
    expect(at(/set-header X-Forwarded-Proto https/)).toBeLessThan(at(/site_noindex/))
    expect(at(/realm "shop preview"/)).toBeLessThan(at(/redirect prefix https:\/\/shop\.example\.com/))
    expect(at(/del-header Authorization if protect_site_shop__previews/)).toBeLessThan(at(/use_backend/))
    // The health checks stay as they were: HAProxy's own, which never pass through the frontend.
    expect(cfg).toContain('backend site_shop__preprod\n')
    expect(cfg).toMatch(/backend site_shop__preprod\n(?: {4}.*\n)*? {4}http-check send meth GET uri \/healthz ver HTTP\/1\.1 hdr Host preprod\.shop\.example\.com\n/)
  })

  it('without a non-production unit nothing changes', () => {
    const plain = inventory(sitesInventory({blog: BLOG}))
    const cfg = fileAt(desiredState(sitesContext(plain), hostsByName(plain)[plain.bastion.name]).files, '/etc/haproxy/haproxy.cfg').content
    expect(cfg).not.toMatch(/noindex|X-Robots-Tag|realm|authorization/i)
  })

  it('a protected unit whose users were not read is a ConfigError', () => {
    expect(() => bastion(dir(), {siteAuth: {}})).toThrow(/^sites\.shop\.environments\.preprod\.protect\.usersEnv: the users were not read$/)
    expect(() => bastion(dir(), {siteAuth: {shop: {environments: {preprod: ['x']}}}})).toThrow(/^sites\.shop\.previews\.protect\.usersEnv: the users were not read$/)
  })
})

describe('live', () => {
  const CLIENT = '198.51.100.1'
  const PUB = inv.bastion.publicAddress
  const NODE = `
import http from 'node:http'
const [addr, port, name] = process.argv.slice(2)
http.createServer((req, res) => {
  if (req.url === '/healthz' || req.url === '/up') { res.writeHead(200, {'content-type': 'text/plain'}); res.end('ok'); return }
  if (req.url.startsWith('/missing')) { res.writeHead(404, {'content-type': 'text/plain'}); res.end('the app says 404'); return }
  const auth = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].toLowerCase() === 'authorization') auth.push(req.rawHeaders[i + 1])
  res.writeHead(200, {'content-type': 'application/json', 'x-served-by': 'backend'})
  res.end(JSON.stringify({node: name, host: req.headers.host, url: req.url, auth}))
}).listen(Number(port), addr)
`
  function nodes(space: Namespace, d: string): void {
    writeFileSync(`${d}/node.mjs`, NODE)
    for (const n of inv.web.nodes.filter((x) => !x.standby)) space.start([process.execPath, `${d}/node.mjs`, n.address, String(inv.web.port), n.name], `node ${n.name}`)
  }
  const HOSTS = [DOMAIN, 'shop.example.com', 'preprod.shop.example.com', 'debug-shop.example.com', 'feat-x.preview.shop.example.com', 'blog.example.org']
  const RESOLVE = HOSTS.flatMap((x) => ['--resolve', `${x}:443:${PUB}`])

  let h: Harness
  beforeAll(async () => {
    h = await startEdge('protect', inv, [CLIENT], {tlsPem: pemFor([DOMAIN, `www.${DOMAIN}`]), fleet: testFleetPki(), ...siteInputs(inv)}, {backends: nodes})
    // HAProxy's own health checks reach the protected units' backends without credentials.
    await until('every site backend UP', async () => {
      const csv = await h.cli('show stat -1 4 -1')
      const up = csv.split('\n').filter((l) => l.startsWith('site_') && l.split(',')[17] === 'UP').length
      return up === 4 * 2 + 1 ? true : undefined
    })
  }, 60_000)
  afterAll(() => h?.stop())

  let seq = 0
  async function get(url: string, extra: string[] = []) {
    const tag = `t${++seq}`
    const target = `${url}?${tag}`
    const r = h.request(CLIENT, target, [...RESOLVE, ...extra])
    const line = await until(`the log line of ${target}`, () => h.log().split('\n').find((l) => l.includes(`${tag} HTTP/`)))
    const backend = /\] \S+ (\S+)\/\S+ /.exec(line)?.[1]
    const seen = r.headers['x-served-by'] === 'backend' ? (JSON.parse(r.body) as {node: string; host: string; auth: string[]}) : undefined
    return {...r, backend, seen}
  }
  const basic = (u: {user: string; password: string}) => ['-H', `Authorization: Basic ${b64(u)}`]

  it('the health checks of the protected backends pass (they do not go through the frontend)', async () => {
    const csv = await h.cli('show stat -1 4 -1')
    // Active servers (web3 is on standby); check_status may carry "* " while a check runs.
    const rows = csv.split('\n').map((l) => l.split(',')).filter((f) => (f[0] === 'site_shop__preprod' || f[0] === 'site_shop__previews') && f[1] !== 'web3')
    expect(rows.map((f) => `${f[0]}/${f[1]} ${f[17]} ${f[36].replace(/^\* /, '')}`).sort()).toEqual([
      'site_shop__preprod/web1 UP L7OK', 'site_shop__preprod/web2 UP L7OK',
      'site_shop__previews/web1 UP L7OK', 'site_shop__previews/web2 UP L7OK',
    ])
  })

  it.each([
    ['preprod.shop.example.com', 'shop preprod', []],
    ['preprod.shop.example.com', 'shop preprod', ['-u', `${ALICE.user}:${BOB.password}`]],
    ['preprod.shop.example.com', 'shop preprod', basic(CI)],
    ['preprod.shop.example.com', 'shop preprod', ['-H', `Authorization: Bearer ${b64(ALICE)}`]],
    // Only the exact header clients send ("Basic " + base64) matches: any other spelling is refused.
    ['preprod.shop.example.com', 'shop preprod', ['-H', `Authorization: basic  ${b64(ALICE)}`]],
    ['feat-x.preview.shop.example.com', 'shop preview', []],
    ['feat-x.preview.shop.example.com', 'shop preview', basic(ALICE)],
  ])('%s (realm %s) refuses %j: 401, WWW-Authenticate Basic, noindex, HSTS, no backend', async (host, realm, extra) => {
    const r = await get(`https://${host}/page`, extra)
    expect(r.status, r.raw).toBe(401)
    expect(r.headers['www-authenticate']).toBe(`Basic realm="${realm}"`)
    expect(r.headers['x-robots-tag']).toBe('noindex, nofollow')
    expect(r.headers['strict-transport-security']).toBeDefined()
    expect(r.backend).toBe('https')
    expect(r.seen).toBeUndefined()
  })

  it.each([
    ['preprod.shop.example.com', 'site_shop__preprod', ['-u', `${ALICE.user}:${ALICE.password}`]],
    ['preprod.shop.example.com', 'site_shop__preprod', basic(BOB)],
    ['preprod.shop.example.com', 'site_shop__preprod', ['--http1.1', ...basic(ALICE)]],
    // A wrong header first, the right one last: the last is checked, and none reaches the node.
    ['preprod.shop.example.com', 'site_shop__preprod', ['-H', 'Authorization: Basic d3Jvbmc6d3Jvbmc=', ...basic(ALICE)]],
    ['feat-x.preview.shop.example.com', 'site_shop__previews', ['-u', `${CI.user}:${CI.password}`]],
  ])('%s with a user of its own: 200 from %s, noindex, the Authorization header removed', async (host, backend, extra) => {
    const r = await get(`https://${host}/page`, extra)
    expect(r.status, r.raw).toBe(200)
    expect(r.backend).toBe(backend)
    expect(r.seen?.host).toBe(host)
    expect(r.seen?.auth).toEqual([])
    expect(r.headers['x-robots-tag']).toBe('noindex, nofollow')
  })

  it('a Host with another case or a port is still guarded', async () => {
    const r = await get('https://preprod.shop.example.com/page', ['-H', 'Host: PREPROD.Shop.Example.com:443'])
    expect(r.status, r.raw).toBe(401)
    const ok = await get('https://preprod.shop.example.com/page', ['-H', 'Host: PREPROD.Shop.Example.com:443', ...basic(ALICE)])
    expect(ok.status, ok.raw).toBe(200)
    expect(ok.backend).toBe('site_shop__preprod')
  })

  it('an unprotected environment answers without credentials, but is not indexed either (the app\'s errors too)', async () => {
    const r = await get('https://debug-shop.example.com/page')
    expect(r.status, r.raw).toBe(200)
    expect(r.backend).toBe('site_shop__debug')
    expect(r.headers['x-robots-tag']).toBe('noindex, nofollow')
    const missing = await get('https://debug-shop.example.com/missing')
    expect(missing.status).toBe(404)
    expect(missing.headers['x-robots-tag']).toBe('noindex, nofollow')
  })

  it.each([
    ['shop.example.com', 'site_shop'],
    ['blog.example.org', 'site_blog'],
    [DOMAIN, 'web'],
  ])('prod %s is unaffected: no auth, no X-Robots-Tag, its own Authorization header passed on', async (host, backend) => {
    const r = await get(`https://${host}/page`)
    expect(r.status, r.raw).toBe(200)
    expect(r.backend).toBe(backend)
    expect(r.headers['x-robots-tag']).toBeUndefined()
    expect(r.headers['www-authenticate']).toBeUndefined()
    if (backend !== 'web') {
      const withAuth = await get(`https://${host}/page`, ['-H', 'Authorization: Bearer abc'])
      expect(withAuth.seen?.auth).toEqual(['Bearer abc'])
    }
  })
})
