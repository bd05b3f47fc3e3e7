/**
 * The sites on the bastion (src/roles/sites.ts, src/tls/sites.ts, prepare.ts): the rendered
 * haproxy.cfg with 1, 2 and 5 sites passes the real `haproxy -c` with its crt-list, certificates
 * and error pages; the crt-list, the backends and the redirects are what each site declares; an
 * inventory without sites renders as before; the agents drive every backend; prepare makes or
 * keeps each site's certificate and reads its error pages.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {ConfigError} from '../../src/lib/errors.js'
import {renderHaproxyConfig} from '../../src/roles/bastion.js'
import {desiredState} from '../../src/roles/render.js'
import {agentBackends, crtListPath} from '../../src/roles/sites.js'
import {AGENT_PATHS, DEFAULT_PATHS} from '../../src/host/paths.js'
import {ensureTls} from '../../src/tls/ensure.js'
import {certInfo} from '../../src/tls/inspect.js'
import {basicAuthDigest, prepareFleet, readSiteErrorPages} from '../../src/tasks/provision/prepare.js'
import {context, fileAt, haproxyPaths, hostsByName, INVENTORIES, inventory, requireTool, runValidate, tempDir, writeInside} from './render-helpers.js'
import {FIVE_SITES, ONE_SITE, PAGE_FILES, SHOP, sitesContext, sitesInventory, TWO_SITES} from './sites-fixtures.js'

let root: string
beforeAll(() => {
  requireTool('haproxy', 'haproxy')
  root = tempDir('infra-sites-')
})
afterAll(() => {
  if (root) rmSync(root, {recursive: true, force: true})
})
let n = 0
function caseDir(): string {
  const d = path.join(root, `case${++n}`)
  mkdirSync(d, {recursive: true})
  return d
}

function bastionFiles(input: typeof ONE_SITE, dir: string) {
  const inv = inventory(input)
  const ctx = sitesContext(inv, {paths: haproxyPaths(dir)})
  return {inv, ctx, files: desiredState(ctx, hostsByName(inv)[inv.bastion.name]).files}
}

/** The lines of one section (from its header to the next blank line). */
function section(cfg: string, header: string): string[] {
  const start = cfg.indexOf(`\n${header}\n`)
  expect(start, header).toBeGreaterThan(-1)
  const end = cfg.indexOf('\n\n', start + 1)
  return cfg.slice(start + 1, end < 0 ? undefined : end).split('\n')
}

describe.each([
  ['1 site', ONE_SITE, 4],
  ['2 sites', TWO_SITES, 5],
  ['5 sites', FIVE_SITES, 11],
])('haproxy -c with %s', (_name, input, backends) => {
  it('accepts the config with the crt-list, every certificate and error page; without a site PEM it fails', () => {
    const dir = caseDir()
    const {files, inv} = bastionFiles(input, dir)
    writeInside(dir, files)
    const cfg = fileAt(files, `${dir}/haproxy.cfg`)
    const ok = runValidate(cfg, `${dir}/stage`)
    expect(ok.code, ok.output).toBe(0)
    expect(ok.output.split('\n').filter((l) => /ALERT|WARNING/.test(l) && !/server state file/.test(l))).toEqual([])
    expect(cfg.content).toContain(`ssl crt-list ${dir}/certs/crt-list.txt alpn h2,http/1.1`)
    expect(cfg.content.match(/^backend site_/gm)).toHaveLength(backends)
    // The crt-list is read: a site's PEM missing is fatal.
    rmSync(`${dir}/certs/${inv.sites.shop.domain}.pem`)
    const bad = runValidate(cfg, `${dir}/stage`)
    expect(bad.code).not.toBe(0)
    expect(bad.output).toMatch(/shop\.example\.com\.pem/)
  })
})

describe('the rendered sites', () => {
  const dir = '/srv/h'
  const {inv, files} = bastionFiles(FIVE_SITES, dir)
  const cfg = fileAt(files, `${dir}/haproxy.cfg`).content

  it('puts the main certificate first in the crt-list (the fallback only: !*), then each site with its SNI names (wildcard for previews)', () => {
    expect(fileAt(files, `${dir}/certs/crt-list.txt`).content.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      `${dir}/certs/example.com.pem !*`,
      `${dir}/certs/shop.example.com.pem shop.example.com www.shop.example.com preprod.shop.example.com debug-shop.example.com *.preview.shop.example.com`,
      `${dir}/certs/blog.example.org.pem blog.example.org`,
      `${dir}/certs/docs.example.net.pem docs.example.net www.docs.example.net documentation.example.net`,
      `${dir}/certs/api.example.io.pem api.example.io staging.api.example.io dev-api.example.io`,
      `${dir}/certs/labs.example.com.pem labs.example.com *.pr.labs.example.com`,
    ])
  })

  it('installs each PEM as a secret and reloads HAProxy when a PEM, the crt-list or a site error page changes', () => {
    const reload = [{service: 'haproxy', action: 'reload'}]
    const pem = fileAt(files, `${dir}/certs/shop.example.com.pem`)
    expect(pem).toMatchObject({mode: 0o600, owner: 'root', secret: true, notify: reload})
    expect(pem.content).toMatch(/BEGIN CERTIFICATE[\s\S]*BEGIN PRIVATE KEY/)
    expect(fileAt(files, `${dir}/certs/crt-list.txt`)).toMatchObject({mode: 0o644, notify: reload})
    expect(fileAt(files, `${dir}/errors/shop/404.http`)).toMatchObject({mode: 0o644, notify: reload})
    // The files HAProxy reads come before haproxy.cfg (validated with them in place).
    const order = files.map((f) => f.path)
    for (const p of [`${dir}/certs/crt-list.txt`, `${dir}/certs/labs.example.com.pem`, `${dir}/errors/api/502.http`]) {
      expect(order.indexOf(p)).toBeLessThan(order.indexOf(`${dir}/haproxy.cfg`))
    }
  })

  it('builds each site error page as a raw HTTP response (HTML gets our status line, a raw response is kept)', () => {
    const html = fileAt(files, `${dir}/errors/shop/404.http`).content
    expect(html).toMatch(/^HTTP\/1\.1 404 Not Found\r\nContent-Type: text\/html; charset=utf-8\r\n/)
    expect(html.endsWith(PAGE_FILES['errors/shop-404.html'])).toBe(true)
    expect(fileAt(files, `${dir}/errors/shop/503.http`).content).toBe(PAGE_FILES['errors/shop-503.http'])
    expect(section(cfg, 'http-errors site_api')).toEqual(['http-errors site_api', `    errorfile 404 ${dir}/errors/api/404.http`, `    errorfile 502 ${dir}/errors/api/502.http`])
  })

  it('gives each unit a backend like web: its nodes, standby ones disabled, its own health check', () => {
    const blog = section(cfg, 'backend site_blog')
    expect(blog).toContain('    http-check send meth GET uri /up ver HTTP/1.1 hdr Host blog.example.org')
    expect(blog.filter((l) => l.startsWith('    server '))).toEqual(['    server web1 10.10.0.11:80'])
    const docs = section(cfg, 'backend site_docs')
    expect(docs.filter((l) => l.startsWith('    server '))).toEqual(['    server web2 10.10.0.12:80', '    server web3 10.10.0.13:80 disabled'])
    expect(section(cfg, 'backend site_api__dev').filter((l) => l.startsWith('    server '))).toEqual(['    server web2 10.10.0.12:80'])
    expect(section(cfg, 'backend site_api__staging')).toContain('    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host staging.api.example.io')
    const previews = section(cfg, 'backend site_shop__previews')
    expect(previews).toContain('    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host preview.shop.example.com')
    expect(previews.filter((l) => l.startsWith('    server '))).toHaveLength(3)
    // The same settings as backend web, line for line, but the check's Host, the error pages and the servers.
    const web = section(cfg, 'backend web').filter((l) => !l.startsWith('    #') && !/http-check send|^ {4}server /.test(l)).slice(1)
    const shop = section(cfg, 'backend site_shop').filter((l) => !/http-check send|^ {4}server |errorfiles/.test(l)).slice(1)
    expect(shop).toEqual(web)
    expect(section(cfg, 'backend site_shop')).toEqual(
      expect.arrayContaining([
        '    errorfiles site_shop',
        '    http-response return status 404 errorfiles site_shop if { status 404 }',
        '    http-response return status 503 errorfiles site_shop if { status 503 }',
      ]),
    )
    expect(section(cfg, 'backend site_blog').join('\n')).not.toContain('errorfiles')
  })

  it('routes on 443 by host name and redirects aliases to the apex, before the default backend', () => {
    const https = section(cfg, 'frontend https')
    const at = (l: string) => {
      const i = https.indexOf(l)
      expect(i, l).toBeGreaterThan(-1)
      return i
    }
    const alias = at('    http-request redirect prefix https://docs.example.net code 301 if { req.hdr(host),host_only -m str www.docs.example.net documentation.example.net }')
    const route = at('    use_backend site_api__dev if { req.hdr(host),host_only -m str dev-api.example.io }')
    const previews = at('    use_backend site_labs__previews if { req.hdr(host),host_only -m end .pr.labs.example.com }')
    expect(alias).toBeLessThan(route)
    expect(route).toBeLessThan(previews)
    expect(previews).toBeLessThan(at('    default_backend web'))
  })

  it('redirects each site name on port 80 to its canonical https name, keeping the ACME exception, before the catch-all', () => {
    const http = section(cfg, 'frontend http')
    const i = (l: string) => http.indexOf(l)
    const shop = i('    http-request redirect location https://shop.example.com%[pathq] code 301 if { req.hdr(host),host_only -m str shop.example.com www.shop.example.com } !acme_request')
    const env = i('    http-request redirect location https://staging.api.example.io%[pathq] code 301 if { req.hdr(host),host_only -m str staging.api.example.io } !acme_request')
    const preview = i('    http-request redirect location https://%[req.hdr(host),host_only]%[pathq] code 301 if { req.hdr(host),host_only -m reg ^[a-z0-9-]+[.]pr[.]labs[.]example[.]com$ } !acme_request')
    const catchAll = i('    http-request redirect location https://example.com%[pathq] code 301 unless acme_challenge METH_GET !acme_upgrade')
    for (const x of [shop, env, preview]) {
      expect(x).toBeGreaterThan(-1)
      expect(x).toBeLessThan(catchAll)
    }
  })

  it('guards the protected units (api staging, labs previews) with their digests only, and marks every non-production name noindex', () => {
    const https = section(cfg, 'frontend https')
    expect(https.filter((l) => /realm/.test(l))).toEqual([
      '    http-request auth realm "api staging" if protect_site_api__staging !user_site_api__staging',
      '    http-request auth realm "labs preview" if protect_site_labs__previews !user_site_labs__previews',
    ])
    const digests = (unit: string) => https.filter((l) => l.startsWith(`    acl user_${unit} `)).map((l) => l.split(' ').at(-1))
    expect(digests('site_api__staging')).toEqual([basicAuthDigest('ops', 'Hh5Jj8Kk2Ll9Mm4Nn7Pp')])
    expect(digests('site_labs__previews')).toEqual([basicAuthDigest('ops', 'Hh5Jj8Kk2Ll9Mm4Nn7Pp'), basicAuthDigest('dev', 'Rr3Ss6Tt9Uu2Vv5Ww8Xx')])
    expect(cfg).not.toContain('Hh5Jj8Kk2Ll9Mm4Nn7Pp')
    expect(https.filter((l) => l.includes('set-var(txn.site_noindex)')).map((l) => /host_only (-m \S+ \S+)/.exec(l)?.[1])).toEqual([
      '-m str preprod.shop.example.com', '-m str debug-shop.example.com', '-m end .preview.shop.example.com',
      '-m str staging.api.example.io', '-m str dev-api.example.io', '-m end .pr.labs.example.com',
    ])
  })

  it('lists every backend for the agents: web first, then each unit, then previews', () => {
    expect(agentBackends(inv)).toEqual([
      'web',
      'site_shop', 'site_shop__preprod', 'site_shop__debug', 'site_shop__previews',
      'site_blog', 'site_docs',
      'site_api', 'site_api__staging', 'site_api__dev',
      'site_labs', 'site_labs__previews',
    ])
  })
})

describe('without sites', () => {
  it.each(Object.entries(INVENTORIES))('%s: binds with crt, no crt-list, no site section; sites: {} renders the same', (_name, input) => {
    const inv = inventory(input)
    const ctx = context(inv)
    const cfg = renderHaproxyConfig(ctx)
    expect(cfg).toMatch(/^ {4}bind \S+:443 ssl crt \/etc\/haproxy\/certs\/example\.com\.pem alpn/m)
    expect(cfg).not.toMatch(/crt-list|http-errors|site_|acme_request/)
    expect(renderHaproxyConfig(context(inventory({...input, sites: {}})))).toBe(cfg)
    const files = desiredState(ctx, hostsByName(inv)[inv.bastion.name]).files.map((f) => f.path)
    expect(files).not.toContain(crtListPath(DEFAULT_PATHS))
    expect(fileAt(desiredState(ctx, hostsByName(inv)[inv.bastion.name]).files, AGENT_PATHS.lib).content).toContain('\nBACKENDS=web\n')
  })
})

describe('refused site inputs', () => {
  const inv = inventory(ONE_SITE)
  const render = (extra: Parameters<typeof sitesContext>[1]) => () => desiredState(sitesContext(inv, extra), hostsByName(inv)[inv.bastion.name])

  it('a site without its PEM, or a PEM without a key', () => {
    expect(render({siteCerts: {}})).toThrow(/^sites\.shop: no certificate was read for the site$/)
    expect(render({siteCerts: {shop: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n'}})).toThrow(/sites\.shop: .*certificate and its private key/)
  })

  it('an error page for a status HAProxy cannot serve, a non-error status, a broken raw response, a page too large', () => {
    const withPages = (errorPages: Record<string, string>) => inventory(sitesInventory({shop: {...SHOP, errorPages}}))
    const r = (i: ReturnType<typeof inventory>, pages: Record<number, string>) => () =>
      desiredState(sitesContext(i, {siteErrorPages: {shop: pages}}), hostsByName(i)[i.bastion.name])
    expect(r(withPages({'418': 'x.html'}), {418: '<h1>teapot</h1>'})).toThrow(/^sites\.shop\.errorPages\.418 \(x\.html\): HAProxy has no error page for status 418$/)
    expect(r(withPages({'200': 'x.html'}), {200: '<h1>ok</h1>'})).toThrow(/^sites\.shop\.errorPages\.200: 200 is not an error status$/)
    expect(r(withPages({'404': 'x.http'}), {404: 'HTTP/1.1 404 Not Found\r\nno blank line'})).toThrow(/sites\.shop\.errorPages\.404 \(x\.http\): no blank line/)
    expect(r(withPages({'404': 'x.html'}), {404: `<p>${'x'.repeat(16_000)}</p>`})).toThrow(/sites\.shop\.errorPages\.404 \(x\.html\): the error page is \d+ bytes/)
    expect(r(withPages({'404': 'x.html'}), {})).toThrow(/sites\.shop\.errorPages\.404 \(x\.html\): the file was not read/)
  })

})

describe('agents', () => {
  const inv = inventory(TWO_SITES)
  const lib = fileAt(desiredState(sitesContext(inv), hostsByName(inv)[inv.bastion.name]).files, AGENT_PATHS.lib).content

  it('hap_set sets the state in every backend over one connection; hap_servers still reads backend web', () => {
    const dir = caseDir()
    writeFileSync(`${dir}/lib.sh`, lib)
    const r = spawnSync('sh', ['-c', `. ${dir}/lib.sh; hap() { printf '%s\\n' "$*"; }; hap_set web2 maint >/dev/null; hap() { printf '[%s]\\n' "$*" >&2; }; hap_set web1 ready; hap_servers`], {encoding: 'utf8'})
    expect(r.status, r.stderr).toBe(0)
    const backends = ['web', 'site_shop', 'site_shop__preprod', 'site_shop__debug', 'site_shop__previews', 'site_blog']
    expect(r.stderr.trim().split('\n')).toEqual([`[${backends.map((b) => `set server ${b}/web1 state ready`).join('; ')}]`, '[show stat web 4 -1]'])
  })
})

describe('prepare: the sites certificates and error pages beside the inventory', () => {
  function fleetDir(pages: Record<string, string> = PAGE_FILES): string {
    const dir = caseDir()
    mkdirSync(`${dir}/errors`)
    for (const [file, text] of Object.entries(pages)) writeFileSync(path.join(dir, file), text)
    const yaml = [
      'domain: example.com',
      'bastion: {name: edge, publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}',
      'web:',
      '  nodes:',
      '    - {name: web1, address: 10.10.0.11}',
      'sites:',
      '  shop:',
      '    domain: shop.example.com',
      '    aliases: [www.shop.example.com]',
      '    app: {image: shop, port: 8080}',
      '    errorPages: {"404": errors/shop-404.html}',
      '    environments:',
      '      preprod: {}',
      '      debug: {domain: debug-shop.example.com}',
      '    previews: {domain: preview.shop.example.com}',
      '  blog:',
      '    domain: blog.example.org',
      '    app: {image: blog}',
      '',
    ].join('\n')
    writeFileSync(`${dir}/infra.yaml`, yaml)
    return dir
  }
  const bastionPem = (prepared: Awaited<ReturnType<typeof prepareFleet>>, file: string) => fileAt(prepared.hosts.find((h) => h.spec.role === 'bastion')!.desired.files, `${DEFAULT_PATHS.haproxyCertDir}/${file}`).content

  it('plan and doctor (no TLS step): made in memory only, with a warning; nothing written', async () => {
    const dir = fleetDir()
    const prepared = await prepareFleet(await loadInventory(`${dir}/infra.yaml`))
    expect(prepared.warnings.join('\n')).toMatch(/sites\.shop \(self-signed certificate\): .*tls\/shop\.example\.com\.crt does not exist yet; `infra provision` writes/)
    expect(prepared.warnings.join('\n')).toMatch(/sites\.blog \(self-signed certificate\)/)
    expect(spawnSync('ls', [`${dir}/tls`]).status).not.toBe(0)
    expect(bastionPem(prepared, 'shop.example.com.pem')).toMatch(/BEGIN CERTIFICATE/)
  })

  it('provision (the TLS step ran): written beside the main one, covering every name, then kept', async () => {
    const dir = fleetDir()
    const loaded = await loadInventory(`${dir}/infra.yaml`)
    const first = await prepareFleet(loaded, {tls: await ensureTls(loaded)})
    expect(first.warnings.filter((w) => /sites\./.test(w))).toEqual([])
    const crt = readFileSync(`${dir}/tls/shop.example.com.crt`, 'utf8')
    expect(statSync(`${dir}/tls/shop.example.com.key`).mode & 0o777).toBe(0o600)
    const info = certInfo(crt)
    expect(info.subject).toContain('CN=shop.example.com')
    expect(info.dnsNames).toEqual(['shop.example.com', 'www.shop.example.com', 'preprod.shop.example.com', 'debug-shop.example.com', '*.preview.shop.example.com'])
    expect(bastionPem(first, 'shop.example.com.pem')).toBe(crt + readFileSync(`${dir}/tls/shop.example.com.key`, 'utf8'))
    // A second run keeps them: nothing to change on the bastion, no reload.
    const second = await prepareFleet(loaded, {tls: await ensureTls(loaded)})
    expect(bastionPem(second, 'shop.example.com.pem')).toBe(bastionPem(first, 'shop.example.com.pem'))
    expect(bastionPem(second, 'blog.example.org.pem')).toBe(bastionPem(first, 'blog.example.org.pem'))
    expect(readFileSync(`${dir}/tls/shop.example.com.crt`, 'utf8')).toBe(crt)
  })

  it('a missing error page file is a ConfigError (exit 2) naming the key and the path', async () => {
    const dir = fleetDir({})
    const loaded = await loadInventory(`${dir}/infra.yaml`)
    const err = await readSiteErrorPages(loaded).catch((error: unknown) => error)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    expect((err as Error).message).toBe(`sites.shop.errorPages.404: cannot read ${dir}/errors/shop-404.html: no such file`)
    await expect(prepareFleet(loaded)).rejects.toThrow(/sites\.shop\.errorPages\.404: cannot read/)
  })
})
