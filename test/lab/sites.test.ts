/**
 * Several sites on the lab (issue 16, docs/SITES.md): two sites with their own domains on the same
 * nodes, each answering with its own app, its own redirects, certificate and 404 page; a third
 * site added and removed with `infra site add/rm` while a request loop runs against the first
 * (0 failed requests, infra.yaml keeps its comments); preprod → prod promotion of the same digest,
 * rollback, a debug tag; previews per branch (by rm and by TTL); one site's container cannot reach
 * another's. The sites inventory is a copy of the lab's (sites.yaml beside it); at the end the
 * sites are removed from the nodes and the lab's own inventory provisioned again.
 */
import {execFile} from 'node:child_process'
import {chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {labExec, type LoadReport, startLoad} from '../../src/lab/index.js'
import {infra, ROOT} from './helpers.js'

const run = promisify(execFile)

let original: string
let config: string
let work: string
let address: string

async function context(name: string): Promise<string> {
  const dir = path.join(work, name)
  await cp(path.join(ROOT, 'examples/hello'), dir, {recursive: true})
  await cp('/bin/busybox', path.join(dir, 'rootfs/bin/busybox'))
  await chmod(path.join(dir, 'rootfs/bin/busybox'), 0o755)
  return dir
}

/** One HTTPS (or HTTP) request to the bastion for `host`: status, Location, body, the certificate's subject. */
async function get(url: string, user?: string): Promise<{status: number; location: string; body: string; robots: string}> {
  const u = new URL(url)
  const port = u.protocol === 'https:' ? 443 : 80
  const r = await run('curl', ['-sk', '--max-time', '5', '-D', '-', ...(user ? ['-u', user] : []), '--resolve', `${u.hostname}:${port}:${address}`, url], {encoding: 'utf8'}).catch((error: {stdout?: string}) => ({stdout: error.stdout ?? ''}))
  const [head, ...body] = r.stdout.split('\r\n\r\n')
  return {status: Number(/^HTTP\/\S+ (\d+)/.exec(head)?.[1] ?? 0), location: /\r\nlocation: (\S+)/i.exec(head)?.[1] ?? '', body: body.join('\r\n\r\n'), robots: /\r\nx-robots-tag: ([^\r]+)/i.exec(head)?.[1] ?? ''}
}

async function certSubject(name: string): Promise<string> {
  const r = await run('bash', ['-c', `openssl s_client -connect ${address}:443 -servername ${name} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName`], {encoding: 'utf8'})
  return r.stdout
}

const deploy = (args: string[]) => infra(['deploy', '--yes', ...args], config, {timeoutMs: 300_000})
const measured: Record<string, string> = {}

async function underLoad(host: string, fn: () => Promise<void>): Promise<LoadReport> {
  const load = await startLoad({address, domain: host, workers: 3, maxRequests: 20_000, maxMs: 400_000})
  try {
    await new Promise((r) => setTimeout(r, 1000))
    await fn()
    await new Promise((r) => setTimeout(r, 1500))
  } finally {
    await load.stop()
  }
  return load.done
}

const YAML_HEAD = '# The lab with sites (test/lab/sites.test.ts).\n# This comment and the ones below must survive `infra site add` and `infra site rm`.\n'

/** The debug environment's login (basic auth; every infra call gets it through process.env). */
const DEBUG_USER = 'tester'
const DEBUG_PASSWORD = `pw-${Date.now()}-0123456789abcdef`

beforeAll(async () => {
  process.env.SITES_DEBUG_USERS = `${DEBUG_USER}:${DEBUG_PASSWORD}`
  original = inject('labConfig')
  const inv = parse(await readFile(original, 'utf8')) as Record<string, unknown>
  address = (inv.bastion as {publicAddress: string}).publicAddress
  const dir = path.dirname(original)
  config = path.join(dir, 'sites.yaml')
  work = await mkdtemp(path.join(tmpdir(), 'infra-sites-'))
  await mkdir(path.join(dir, 'errors'), {recursive: true})
  await writeFile(path.join(dir, 'errors/shop-404.html'), '<!doctype html><title>shop</title><p>Shop: this page is not on our shelves.</p>\n')
  await writeFile(path.join(dir, 'errors/blog-404.html'), '<!doctype html><title>blog</title><p>Blog: no such post.</p>\n')
  const sites = {
    shop: {
      domain: 'shop.test',
      aliases: ['www.shop.test'],
      app: {image: 'shop', port: 8080},
      errorPages: {'404': 'errors/shop-404.html'},
      environments: {preprod: {env: {STAGE: 'preprod'}}, debug: {protect: {usersEnv: 'SITES_DEBUG_USERS'}}},
      previews: {domain: 'pv.shop.test', max: 3, ttl: '30s'},
    },
    blog: {domain: 'blog.test', aliases: ['www.blog.test'], nodes: ['web1', 'web2'], app: {image: 'blog', port: 8080}, errorPages: {'404': 'errors/blog-404.html'}},
  }
  const body = stringify({...inv, deploy: {timeout: '20s', drain: '5s'}, limits: {requests: 100000, connections: 1000}})
  await writeFile(config, `${YAML_HEAD}${body}# The sites of the lab:\n${stringify({sites})}`)
  await infra(['provision', '--yes'], config, {exit: 0, timeoutMs: 400_000})
}, 500_000)

afterAll(async () => {
  process.stderr.write(`[sites] measurements: ${JSON.stringify(measured)}\n`)
  if (!config) return
  const clean = 'docker ps -aq | xargs -r docker rm -f >/dev/null; docker network prune -f >/dev/null 2>&1; rm -rf /var/lib/infra/apps /etc/nginx/infra-apps; systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1; true'
  for (const h of ['web1', 'web2', 'web3']) await labExec(h, clean, {allowFail: true})
  await labExec('bastion', `rm -rf /var/lib/infra/apps; systemctl disable --now docker-registry.service >/dev/null 2>&1; ${clean}`, {allowFail: true})
  await infra(['provision', '--yes'], original, {timeoutMs: 300_000})
  await rm(work, {recursive: true, force: true})
}, 400_000)

describe('sites on the lab', () => {
  it('two sites on the same nodes answer with their own app, redirects, certificate and 404 page', async () => {
    expect((await deploy(['shop', '--build', await context('s1'), '--version', 'v1'])).code).toBe(0)
    const b = await deploy(['blog', '--build', await context('b1'), '--version', 'b1'])
    expect(b.code, b.stderr).toBe(0)
    expect((await get('https://shop.test/')).body).toMatch(/^hello v1 from web[12]/)
    expect((await get('https://blog.test/')).body).toMatch(/^hello b1 from web[12]/)
    // www. and http:// of each go to its own https:// apex, path and query kept.
    expect(await get('http://www.shop.test/a?b=1')).toMatchObject({status: 301, location: 'https://shop.test/a?b=1'})
    expect(await get('https://www.blog.test/x')).toMatchObject({status: 301, location: 'https://blog.test/x'})
    expect(await get('http://blog.test/')).toMatchObject({status: 301, location: 'https://blog.test/'})
    // Each site's own 404 page (the app's 404 replaced by HAProxy).
    const s404 = await get('https://shop.test/no-such-page')
    expect(s404.status).toBe(404)
    expect(s404.body).toContain('Shop: this page is not on our shelves.')
    const b404 = await get('https://blog.test/no-such-page')
    expect(b404.status).toBe(404)
    expect(b404.body).toContain('Blog: no such post.')
    // One certificate per site, chosen by SNI.
    expect(await certSubject('shop.test')).toMatch(/DNS:shop\.test/)
    expect(await certSubject('blog.test')).toMatch(/DNS:blog\.test/)
    expect(await certSubject('blog.test')).not.toMatch(/shop\.test/)
    const sites = JSON.parse((await infra(['sites', '--json'], config, {exit: 0})).stdout) as {sites: {site: string; env: string; release: string; health: string}[]}
    expect(sites.sites.filter((s) => s.env === 'prod').map((s) => `${s.site}:${s.release}:${s.health}`).sort()).toEqual(['blog:b1:ok', 'shop:v1:ok'])
  }, 600_000)

  it('site add of a third site under load on the first: 0 failed requests; it answers; site rm removes it the same way; comments kept', async () => {
    // A retry starts from a fleet without news.
    if ((parse(await readFile(config, 'utf8')) as {sites: Record<string, unknown>}).sites.news) await infra(['site', 'rm', 'news', '--yes'], config, {exit: 0, timeoutMs: 400_000})
    const ctx = await context('n1')
    let added = {code: -1, stdout: '', stderr: ''}
    const load = await underLoad('shop.test', async () => {
      added = await infra(['site', 'add', 'news', '--domain', 'news.test', '--alias', 'www.news.test', '--image', 'news', '--build', ctx, '--version', 'n1', '--yes'], config, {timeoutMs: 400_000})
    })
    measured['site add under load'] = `${load.total} requests, ${load.failed} failed`
    expect(added.code, added.stderr).toBe(0)
    expect(load.failed, JSON.stringify(load.errors)).toBe(0)
    expect(load.total).toBeGreaterThan(50)
    expect((await get('https://news.test/')).body).toMatch(/^hello n1 from web/)
    let text = await readFile(config, 'utf8')
    expect(text.startsWith(YAML_HEAD)).toBe(true)
    expect(text).toContain('# The sites of the lab:')
    expect(parse(text).sites.news).toMatchObject({domain: 'news.test', aliases: ['www.news.test'], app: {image: 'news'}})

    let removed = {code: -1, stdout: '', stderr: ''}
    const load2 = await underLoad('shop.test', async () => {
      removed = await infra(['site', 'rm', 'news', '--yes'], config, {timeoutMs: 400_000})
    })
    measured['site rm under load'] = `${load2.total} requests, ${load2.failed} failed`
    expect(removed.code, removed.stderr).toBe(0)
    expect(load2.failed, JSON.stringify(load2.errors)).toBe(0)
    // news.test is no longer routed to a site: the default backend answers (the lab's static page).
    expect((await get('https://news.test/')).body).not.toMatch(/hello n1/)
    const left = await labExec('web1', "docker ps -a --format '{{.Names}}' | grep -c '^news-' || true; ls /etc/nginx/infra-apps")
    expect(left.stdout).toMatch(/^0\n/)
    expect(left.stdout).not.toContain('news')
    text = await readFile(config, 'utf8')
    expect(text.startsWith(YAML_HEAD)).toBe(true)
    expect(text).toContain('# The sites of the lab:')
    expect(parse(text).sites.news).toBeUndefined()
  }, 900_000)

  it('preprod → prod promotion serves the same image digest in prod; rollback of prod goes back; debug runs a chosen tag', async () => {
    const p = await deploy(['shop', '--env', 'preprod', '--build', await context('s2'), '--version', 'v2'])
    expect(p.code, p.stderr).toBe(0)
    expect((await get('https://preprod.shop.test/')).body).toMatch(/^hello v2 /)
    expect((await get('https://shop.test/')).body).toMatch(/^hello v1 /)
    const promoted = await infra(['promote', 'shop', 'preprod', 'prod', '--yes', '--json'], config, {timeoutMs: 300_000})
    expect(promoted.code, promoted.stderr).toBe(0)
    expect((await get('https://shop.test/')).body).toMatch(/^hello v2 /)
    const history = async (env: string) => JSON.parse((await infra(['releases', 'shop', '--env', env, '--json'], config, {exit: 0})).stdout) as {releases: {id: string; state: string; digest: string}[]}
    const pre = (await history('preprod')).releases.find((r) => r.state === 'current')!
    const prod = (await history('prod')).releases.find((r) => r.state === 'current')!
    expect(prod.digest).toMatch(/^sha256:/)
    expect(prod.digest).toBe(pre.digest)
    // The container in prod runs that digest, with prod's own values (no STAGE=preprod).
    const env = await labExec('web1', `docker inspect -f '{{.Image}} {{.Config.Env}}' shop-${prod.id}`)
    expect(env.stdout).not.toContain('STAGE=preprod')

    const back = await infra(['rollback', 'shop', '--yes'], config, {timeoutMs: 300_000})
    expect(back.code, back.stderr).toBe(0)
    expect((await get('https://shop.test/')).body).toMatch(/^hello v1 /)
    expect((await get('https://preprod.shop.test/')).body).toMatch(/^hello v2 /)

    const dbg = await deploy(['shop', '--env', 'debug', '--version', 'v1'])
    expect(dbg.code, dbg.stderr).toBe(0)
    // debug is protected (basic auth): strangers and search engines get 401; the team gets the tag.
    expect(await get('https://debug.shop.test/')).toMatchObject({status: 401, robots: 'noindex, nofollow'})
    expect((await get('https://debug.shop.test/', `${DEBUG_USER}:wrong-password-0123456789`)).status).toBe(401)
    const ok = await get('https://debug.shop.test/', `${DEBUG_USER}:${DEBUG_PASSWORD}`)
    expect(ok.status).toBe(200)
    expect(ok.body).toMatch(/^hello v1 /)
    expect((await get('https://preprod.shop.test/')).robots).toBe('noindex, nofollow')
    expect((await get('https://shop.test/')).robots).toBe('')
  }, 900_000)

  it('a preview of a branch with slashes and capitals answers at its slug, is listed, removed by rm; another expires by its TTL', async () => {
    const r = await infra(['preview', 'deploy', 'shop', '--branch', 'Feature/Login_Page', '--version', 'v2', '--yes'], config, {timeoutMs: 300_000})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('https://feature-login-page.pv.shop.test')
    expect((await get('https://feature-login-page.pv.shop.test/')).body).toMatch(/^hello v2 /)
    const list = JSON.parse((await infra(['previews', '--json'], config, {exit: 0})).stdout) as {previews: {branch: string; url: string}[]}
    expect(list.previews.map((x) => `${x.branch} ${x.url}`)).toEqual(['Feature/Login_Page https://feature-login-page.pv.shop.test'])
    const gone = await infra(['preview', 'rm', 'shop', '--branch', 'Feature/Login_Page'], config, {timeoutMs: 120_000})
    expect(gone.code, gone.stderr).toBe(0)
    expect((await get('https://feature-login-page.pv.shop.test/')).body).not.toMatch(/hello/)

    // As CI runs it: --json, the URL in the result.
    const t = await infra(['preview', 'deploy', 'shop', '--branch', 'fix/ttl', '--version', 'v1', '--yes', '--json'], config, {timeoutMs: 300_000})
    expect(t.code, t.stderr).toBe(0)
    expect((JSON.parse(t.stdout) as {url: string; slug: string}).url).toBe('https://fix-ttl.pv.shop.test')
    expect((await get('https://fix-ttl.pv.shop.test/')).body).toMatch(/^hello v1 /)
    // previews.ttl is 30s here; the bastion's cron job runs every minute.
    const listed = async () => (JSON.parse((await infra(['previews', '--json'], config, {exit: 0})).stdout) as {previews: unknown[]}).previews.length
    await expect.poll(listed, {timeout: 150_000, interval: 5000}).toBe(0)
    expect((await get('https://fix-ttl.pv.shop.test/')).body).not.toMatch(/hello/)
    const units = await labExec('web1', "docker ps -a --format '{{.Names}}'")
    expect(units.stdout).not.toMatch(/shop--p-/)
  }, 600_000)

  it('one site\'s container cannot reach another site\'s container, nor the node\'s nginx', async () => {
    const names = (await labExec('web1', "docker ps --format '{{.Names}}'")).stdout.split('\n')
    const shop = names.find((n) => /^shop-v/.test(n))!
    const blog = names.find((n) => /^blog-b/.test(n))!
    const ip = async (c: string) => (await labExec('web1', `docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ${c}`)).stdout.trim()
    const blogIp = await ip(blog)
    const shopIp = await ip(shop)
    // busybox's nc (its wget needs files a FROM scratch image lacks): an HTTP request by hand.
    const from = async (c: string, ip: string, port: number, host = 'x') =>
      (await labExec('web1', `printf 'GET /healthz HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n' | docker exec -i ${c} /bin/busybox nc -w 3 ${ip} ${port} | head -n 1; true`, {allowFail: true})).stdout
    // The probe works (a container reaches itself on its own network)...
    expect(await from(shop, shopIp, 8080)).toMatch(/200 OK/)
    // ...but not another site's container, nor nginx on the node (which would route by Host).
    expect(await from(shop, blogIp, 8080)).not.toMatch(/HTTP/)
    expect(await from(blog, shopIp, 8080)).not.toMatch(/HTTP/)
    const node = (await labExec('web1', "ip -4 -o addr show | awk '$2 != \"lo\" && $4 ~ /^10\\./ { sub(/\\/.*/, \"\", $4); print $4; exit }'")).stdout.trim()
    expect(node).toMatch(/^10\./)
    expect(await from(shop, node, 80, 'blog.test')).not.toMatch(/HTTP/)
  }, 120_000)
})
