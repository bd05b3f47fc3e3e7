/**
 * What the rendered configuration says, as a user would check it: redirects, TLS settings,
 * HSTS, which web nodes are in rotation, health checks, firewall ports per role, sshd settings,
 * and the desired state (files, modes, validators, services) provision applies.
 */
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {createRequire} from 'node:module'

import {afterAll, describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/lib/errors.js'
import {
  DEFAULT_PATHS,
  desiredState,
  ERROR_PAGES,
  HSTS,
  MOZILLA_INTERMEDIATE,
  renderErrorPage,
  renderHaproxyConfig,
  renderNftables,
  renderNginx,
  renderSshd,
  SSHD_ALGORITHMS,
  templatesDir,
  templateTestPackages,
} from '../../src/roles/render.js'
import {packagesFor} from '../../src/roles/packages.js'
import {context, fileAt, hostsByName, INVENTORIES, inventory, tempDir} from './render-helpers.js'

const oneActive = inventory(INVENTORIES['one active, two standby, aliases'])
const threeActive = inventory(INVENTORIES['three active, no aliases'])
const app = inventory(INVENTORIES['app port, custom health check and web port'])
const admin = inventory(INVENTORIES['admin allowlist and ssh port'])

const lines = (text: string) => text.split('\n').map((l) => l.trim())

/** The lines of one section (`frontend https`, `backend web`, ...) of an HAProxy config. */
function section(cfg: string, header: string): string[] {
  const all = cfg.split('\n')
  const start = all.findIndex((l) => l.trim() === header)
  expect(start, `section "${header}"`).toBeGreaterThanOrEqual(0)
  const out: string[] = []
  for (const l of all.slice(start + 1)) {
    if (/^\S/.test(l)) break
    if (l.trim() && !l.trim().startsWith('#')) out.push(l.trim())
  }
  return out
}

describe('HAProxy configuration', () => {
  const cfg = renderHaproxyConfig(context(oneActive))

  it('redirects every plain-HTTP request to https://<apex><path>?<query> with a 301, leaving ACME challenges alone', () => {
    const http = section(cfg, 'frontend http')
    expect(http).toContain('bind 203.0.113.10:80')
    expect(http).toContain('http-request redirect location https://example.com%[pathq] code 301 unless acme_challenge METH_GET !acme_upgrade')
    expect(http).toContain('acl acme_challenge path -m reg ^/[.]well-known/acme-challenge/[A-Za-z0-9_-]+$')
    expect(http.join('\n')).not.toMatch(/redirect scheme/)
  })

  it('serves TLS 1.2+ with the Mozilla intermediate ciphers, no tickets, h2 and HSTS on every response', () => {
    const https = section(cfg, 'frontend https')
    expect(https[0]).toBe('bind 203.0.113.10:443 ssl crt /etc/haproxy/certs/example.com.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2 no-tls-tickets')
    expect(https).toContain(`http-after-response set-header Strict-Transport-Security "${HSTS}"`)
    expect(HSTS).toBe('max-age=63072000; includeSubDomains')
    const global = section(cfg, 'global')
    expect(global).toContain(
      'ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
    )
    expect(global).toContain('ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256')
    expect(global).toContain('ssl-default-bind-curves X25519:prime256v1:secp384r1')
    expect(global).toContain('ssl-default-bind-options prefer-client-ciphers ssl-min-ver TLSv1.2 no-tls-tickets')
    expect(cfg).not.toMatch(/(?<!EC)DHE-|MLKEM|TLSv1\.[01]\b/)
    expect(MOZILLA_INTERMEDIATE.curves).not.toContain('MLKEM')
  })

  it('redirects aliases to the apex on 443, comparing the host without port and case', () => {
    const https = section(cfg, 'frontend https')
    expect(https).toContain('acl infra_alias req.hdr(host),host_only -m str www.example.com www2.example.com')
    expect(https).toContain('http-request redirect prefix https://example.com code 301 if infra_alias')
    const without = section(renderHaproxyConfig(context(threeActive)), 'frontend https')
    expect(without.join('\n')).not.toMatch(/infra_alias|redirect/)
  })

  it('balances over every web node, standby nodes present but disabled', () => {
    const web = section(cfg, 'backend web')
    expect(web).toContain('balance roundrobin')
    expect(web).toContain('server web1 10.10.0.11:80')
    expect(web).toContain('server web2 10.10.0.12:80 disabled')
    expect(web).toContain('server web3 10.10.0.13:80 disabled')
    const three = section(renderHaproxyConfig(context(threeActive)), 'backend web')
    expect(three.filter((l) => l.startsWith('server '))).toEqual([
      'server web1 10.10.0.11:80',
      'server web2 10.10.0.12:80',
      'server web3 10.10.0.13:80',
    ])
  })

  it('checks nodes with GET <health path> and the inventory interval, fall and rise', () => {
    const web = section(cfg, 'backend web')
    expect(web).toContain('option httpchk')
    expect(web).toContain('http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host example.com')
    expect(web).toContain('http-check expect status 200')
    expect(web).toContain('default-server check inter 2s fastinter 1s downinter 1s fall 3 rise 2 observe layer7 error-limit 10 on-error mark-down')
    const custom = section(renderHaproxyConfig(context(app)), 'backend web')
    expect(custom).toContain('http-check send meth GET uri /status/health ver HTTP/1.1 hdr Host example.com')
    expect(custom).toContain('default-server check inter 5s fastinter 2500ms downinter 2500ms fall 5 rise 4 observe layer7 error-limit 10 on-error mark-down')
    expect(custom).toContain('server app1 10.20.0.21:8080')
    expect(custom).toContain('server app2 10.20.0.22:8080 disabled')
  })

  it('retries safe requests on another node', () => {
    const web = section(cfg, 'backend web')
    expect(web).toEqual(
      expect.arrayContaining([
        'option redispatch 1',
        'retries 3',
        'retry-on conn-failure empty-response response-timeout 502 503 504',
        'http-request disable-l7-retry unless { method GET HEAD OPTIONS }',
      ]),
    )
  })

  it('keeps server states across reloads and exposes stats, metrics and the runtime API privately', () => {
    expect(section(cfg, 'global')).toEqual(
      expect.arrayContaining([
        'server-state-file /var/lib/haproxy/server-state',
        'stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners',
      ]),
    )
    expect(section(cfg, 'defaults')).toContain('load-server-state-from-file global')
    const stats = section(cfg, 'frontend stats')
    expect(stats).toContain('bind 10.10.0.1:8404')
    expect(stats).toContain('http-request use-service prometheus-exporter if { path /metrics }')
    expect(stats).toContain('stats uri /stats')
    // Nothing but the public frontends binds the public address.
    expect(cfg.match(/bind 203\.0\.113\.10:/g)).toHaveLength(2)
  })

  it('points every error code at its page under /etc/haproxy/errors/infra, plus user-added codes', () => {
    const defaults = section(cfg, 'defaults')
    for (const code of [400, 403, 408, 429, 500, 502, 503, 504]) {
      expect(defaults).toContain(`errorfile ${code} /etc/haproxy/errors/infra/${code}.http`)
    }
    const withExtra = section(renderHaproxyConfig(context(oneActive, {errorPageOverrides: {404: '<p>gone</p>'}})), 'defaults')
    expect(withExtra).toContain('errorfile 404 /etc/haproxy/errors/infra/404.http')
  })

  it('renders the same text every time (so a re-run plans no change)', () => {
    expect(renderHaproxyConfig(context(oneActive))).toBe(cfg)
  })
})

describe('error pages', () => {
  const ctx = context(oneActive)

  it.each(Object.keys(ERROR_PAGES).map(Number))('%i is a whole raw HTTP response under 15 KB', (code) => {
    const page = renderErrorPage(ctx, code)
    const [head, body] = page.split('\r\n\r\n') as [string, string]
    const h = head.split('\r\n')
    expect(h[0]).toBe(`HTTP/1.1 ${code} ${ERROR_PAGES[code].reason}`)
    expect(h).toEqual(expect.arrayContaining(['Content-Type: text/html; charset=utf-8', 'Cache-Control: no-cache', 'Connection: close']))
    expect(h).toContain(`Content-Length: ${Buffer.byteLength(body)}`)
    expect(body).toContain(`<h1>${code}</h1>`)
    expect(body).toContain(ERROR_PAGES[code].title)
    expect(Buffer.byteLength(page)).toBeLessThan(15 * 1024)
  })

  it('uses a raw-response override as it is, and wraps an HTML-only override in our headers', () => {
    const raw = 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n<h1>Back soon</h1>\n'
    const html = '<!doctype html><h1>Slow down</h1>\n'
    const c = context(oneActive, {errorPageOverrides: {503: raw, 429: html}})
    expect(renderErrorPage(c, 503)).toBe(raw)
    const wrapped = renderErrorPage(c, 429)
    expect(wrapped.startsWith('HTTP/1.1 429 Too Many Requests\r\n')).toBe(true)
    expect(wrapped.endsWith('\r\n\r\n' + html)).toBe(true)
    const state = desiredState(c, hostsByName(oneActive).bastion)
    expect(fileAt(state.files, '/etc/haproxy/errors/infra/503.http').content).toBe(raw)
  })

  it('rejects an override that is not a response, a code HAProxy cannot serve, or a page too large', () => {
    const bad = (overrides: Record<number, string>, code: number) => () => renderErrorPage(context(oneActive, {errorPageOverrides: overrides}), code)
    expect(bad({503: 'Sorry, down'}, 503)).toThrow(ConfigError)
    expect(bad({503: 'Sorry, down'}, 503)).toThrow(/errors\/503\.http: the first line is not an HTTP status line/)
    expect(bad({503: 'HTTP/1.1 503 Down\r\nContent-Type: text/html'}, 503)).toThrow(/no blank line/)
    expect(bad({418: '<p>teapot</p>'}, 418)).toThrow(/errors\/418\.http: HAProxy has no error page for status 418/)
    expect(bad({500: `<p>${'x'.repeat(16_000)}</p>`}, 500)).toThrow(/errors\/500\.http: the error page is \d+ bytes; HAProxy takes at most 15360/)
  })
})

describe('firewall (nftables)', () => {
  it('bastion: drop by default; web ports for all; SSH rate limited; stats only from the private network; NAT', () => {
    const nft = renderNftables(context(oneActive), hostsByName(oneActive).bastion)
    const l = lines(nft)
    expect(l[0]).toBe('#!/usr/sbin/nft -f')
    expect(l).toContain('flush ruleset')
    expect(l).toContain('table inet filter {')
    expect(l).toContain('type filter hook input priority filter; policy drop;')
    expect(l).toContain('type filter hook forward priority filter; policy drop;')
    expect(l).toContain('type filter hook output priority filter; policy accept;')
    expect(l).toContain('ct state established,related accept')
    expect(l).toContain('iif lo accept')
    expect(l).toContain('tcp dport { 80, 443 } accept')
    expect(l).toContain('tcp dport 22 ct state new add @ssh_rate4 { ip saddr limit rate over 60/minute burst 30 packets } drop')
    expect(l).toContain('tcp dport 22 accept')
    expect(l).toContain('ip saddr $private_net ip daddr $private_address tcp dport 8404 accept')
    expect(l).toContain('define private_net = 10.10.0.0/24')
    expect(l).toContain('ip saddr $private_net ip daddr != $private_net accept')
    expect(l).toContain('ip saddr $private_net ip daddr != $private_net masquerade')
    // Interface names differ between hosts: none is used.
    expect(nft).not.toMatch(/\b(iifname|oifname)\b|\beth\d/)
  })

  it('bastion with adminAllow: SSH only from the allowlist, on the inventory SSH port', () => {
    const l = lines(renderNftables(context(admin), hostsByName(admin).bastion))
    expect(l).toContain('elements = { 198.51.100.7, 192.0.2.0/24 }')
    expect(l).toContain('tcp dport 2222 ip saddr @ssh_admins4 accept')
    expect(l).not.toContain('tcp dport 2222 accept')
    expect(l.join('\n')).not.toMatch(/dport 22\b/)
  })

  it('web node: web, metrics and SSH only from the bastion; nothing forwarded', () => {
    const nft = renderNftables(context(oneActive), hostsByName(oneActive).web1)
    const l = lines(nft)
    expect(l).toContain('define bastion = 10.10.0.1')
    expect(l).toContain('type filter hook input priority filter; policy drop;')
    expect(l).toContain('ip saddr $bastion tcp dport { 80, 9100 } accept')
    expect(l).toContain('ip saddr $bastion tcp dport 22 accept')
    expect(l).toContain('type filter hook forward priority filter; policy drop;')
    expect(nft).not.toMatch(/masquerade|dport \{ 80, 443 \}/)
    // Every accept of new traffic names the bastion or the private network as its source.
    const opens = l.filter((x) => / accept$/.test(x) && !/^(ct state|iif lo|icmpv6|type )/.test(x))
    for (const rule of opens) expect(rule).toMatch(/^ip saddr \$(bastion|private_net) /)
    const custom = lines(renderNftables(context(app), hostsByName(app).app1))
    expect(custom).toContain('ip saddr $bastion tcp dport { 8080, 9100 } accept')
    expect(custom).toContain('define private_net = 10.20.0.0/16')
  })
})

describe('sshd drop-in', () => {
  const require = createRequire(import.meta.url)
  const ssh2 = require('ssh2/lib/protocol/constants.js') as Record<string, string[]>

  it('allows keys only and hardens the login', () => {
    const l = lines(renderSshd(context(oneActive), hostsByName(oneActive).web1))
    for (const want of [
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'PermitEmptyPasswords no',
      'PubkeyAuthentication yes',
      'X11Forwarding no',
      'MaxAuthTries 3',
      'AllowTcpForwarding no',
    ]) {
      expect(l).toContain(want)
    }
    expect(lines(renderSshd(context(oneActive), hostsByName(oneActive).bastion))).toContain('AllowTcpForwarding yes')
  })

  it("keeps an algorithm of every kind that infra's own SSH client (ssh2) speaks", () => {
    const common = (ours: string[], theirs: string[]) => ours.filter((a) => theirs.includes(a))
    expect(common(SSHD_ALGORITHMS.kex, ssh2.DEFAULT_KEX)).not.toEqual([])
    expect(common(SSHD_ALGORITHMS.ciphers, ssh2.DEFAULT_CIPHER)).not.toEqual([])
    expect(common(SSHD_ALGORITHMS.macs, ssh2.DEFAULT_MAC)).not.toEqual([])
    // Ed25519 (what ssh2 pins) and RSA with SHA-2 stay offered; ECDSA (NIST P-256) no longer is:
    // a host pinned by its ECDSA key gets its Ed25519 key pinned too (ssh-fleet.test.ts).
    for (const k of ['ssh-ed25519', 'rsa-sha2-256']) expect(SSHD_ALGORITHMS.hostKeys).toContain(k)
    expect(SSHD_ALGORITHMS.hostKeys.join(',')).not.toMatch(/ecdsa|nistp/)
    expect([...SSHD_ALGORITHMS.kex, ...SSHD_ALGORITHMS.ciphers, ...SSHD_ALGORITHMS.macs, ...SSHD_ALGORITHMS.hostKeys].join(',')).not.toMatch(
      /sha1|cbc|ssh-rsa\b|ssh-dss|md5|group1-|group14-sha1/,
    )
  })
})

describe('nginx site', () => {
  it('static: listens on the private address only, answers the health path, names the node', () => {
    const site = renderNginx(context(oneActive), hostsByName(oneActive).web2)
    const l = lines(site)
    expect(l).toContain('listen 10.10.0.12:80 default_server;')
    expect(l.filter((x) => x.startsWith('listen '))).toHaveLength(1)
    expect(l).toContain('location = /healthz {')
    expect(l).toContain('return 200 "ok\\n";')
    expect(l).toContain('add_header X-Served-By web2 always;')
    expect(l).toContain('root /var/www/infra;')
    expect(site).not.toContain('proxy_pass')
    const index = fileAt(desiredState(context(oneActive), hostsByName(oneActive).web2).files, '/var/www/infra/index.html')
    expect(index.content).toContain('<h1>web2</h1>')
  })

  it('with appPort: proxies everything to the local application, the health path too', () => {
    const site = renderNginx(context(app), hostsByName(app).app1)
    const l = lines(site)
    expect(l).toContain('listen 10.20.0.21:8080 default_server;')
    expect(l).toContain('location = /status/health {')
    expect(l.filter((x) => x === 'proxy_pass http://127.0.0.1:3000;')).toHaveLength(2)
    expect(site).not.toMatch(/root |return 200/)
    const files = desiredState(context(app), hostsByName(app).app1).files
    expect(files.map((f) => f.path)).not.toContain('/var/www/infra/index.html')
  })

  it('rejects a health path nginx and HAProxy cannot take literally', () => {
    // The schema refuses such a path (test/unit/inventory.test.ts); the renderer still asserts it for an inventory made by hand.
    const valid = inventory({...INVENTORIES['three active, no aliases'], web: {nodes: [{name: 'web1', address: '10.10.0.11'}]}})
    const inv = {...valid, web: {...valid.web, healthCheck: {...valid.web.healthCheck, path: '/health;x'}}}
    expect(() => renderNginx(context(inv), hostsByName(inv).web1)).toThrow(/web\.healthCheck\.path: "\/health;x"/)
  })
})

describe('desired state', () => {
  it('bastion: packages, validated HAProxy config, secret PEM, error pages, reload drop-in, firewall', () => {
    const s = desiredState(context(oneActive), hostsByName(oneActive).bastion)
    expect(s.packages).toEqual(packagesFor('bastion'))
    const cfg = fileAt(s.files, '/etc/haproxy/haproxy.cfg')
    expect(cfg.validate).toBe('haproxy -c -f {}')
    expect(cfg.notify).toEqual([{service: 'haproxy', action: 'reload'}])
    const pem = fileAt(s.files, '/etc/haproxy/certs/example.com.pem')
    expect(pem).toMatchObject({secret: true, mode: 0o600, owner: 'root'})
    expect(pem.content).toContain('PRIVATE KEY')
    for (const code of [400, 403, 408, 429, 500, 502, 503, 504]) fileAt(s.files, `/etc/haproxy/errors/infra/${code}.http`)
    const dropIn = fileAt(s.files, '/etc/systemd/system/haproxy.service.d/infra.conf')
    const reload = dropIn.content.split('\n').filter((l) => l.startsWith('ExecReload='))
    expect(reload).toEqual([
      'ExecReload=',
      'ExecReload=/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS',
      'ExecReload=/usr/local/sbin/infra-haproxy-save-state',
      'ExecReload=/bin/kill -USR2 $MAINPID',
    ])
    expect(fileAt(s.files, '/usr/local/sbin/infra-haproxy-save-state').mode).toBe(0o755)
    const nft = fileAt(s.files, '/etc/nftables.conf')
    expect(nft).toMatchObject({validate: 'nft -c -f {}', notify: [{service: 'nftables', action: 'reload'}], guarded: true})
    const sshd = fileAt(s.files, '/etc/ssh/sshd_config.d/00-infra.conf')
    expect(sshd.notify).toEqual([{service: 'ssh', action: 'reload'}])
    expect(sshd.validate).toMatch(/sshd -t -f/)
    expect(s.services.find((x) => x.name === 'haproxy')).toMatchObject({enabled: true, running: true})
    expect(s.services.find((x) => x.name === 'nginx')).toMatchObject({enabled: false, running: false})
    // Without previews, the previews expiry job must not be there (a site with previews was removed).
    expect(s.absent ?? []).toEqual(['/usr/local/sbin/infra-previews-expire', '/etc/cron.d/infra-previews'])
    // The PEM is the only secret, and nothing else carries key material.
    expect(s.files.filter((f) => f.secret).map((f) => f.path)).toEqual(['/etc/haproxy/certs/example.com.pem'])
    for (const f of s.files.filter((x) => !x.secret)) expect(f.content).not.toContain('PRIVATE KEY')
  })

  it('web nodes: nginx running on active nodes, left to the scaler (stopped at first) on standby nodes', () => {
    const hosts = hostsByName(oneActive)
    const active = desiredState(context(oneActive), hosts.web1)
    const standby = desiredState(context(oneActive), hosts.web2)
    expect(active.packages).toEqual(packagesFor('web'))
    // verify: after a reload, nginx must listen on the node's private address (else the engine restarts it)
    const verify = (addr: string) => `ss -Hltn 'sport = :80' | grep -qF '${addr}:80 '`
    expect(active.services.find((s) => s.name === 'nginx')).toEqual({name: 'nginx', enabled: true, running: true, check: 'nginx -t -q', verify: verify(hosts.web1.privateAddress)})
    expect(standby.services.find((s) => s.name === 'nginx')).toEqual({
      name: 'nginx',
      enabled: true,
      running: 'keep',
      initial: false,
      check: 'nginx -t -q',
      verify: verify(hosts.web2.privateAddress),
    })
    expect(active.absent).toEqual(['/etc/nginx/sites-enabled/default'])
    const site = fileAt(active.files, '/etc/nginx/conf.d/infra.conf')
    expect(site.notify).toEqual([{service: 'nginx', action: 'reload'}])
    expect(site.validate).toMatch(/nginx -t -q -c/)
    expect(active.files.some((f) => f.path.startsWith('/etc/haproxy'))).toBe(false)
  })

  it('every host: sshd, unattended security upgrades, sysctl (forwarding on the bastion only)', () => {
    for (const host of Object.values(hostsByName(oneActive))) {
      const s = desiredState(context(oneActive), host)
      expect(fileAt(s.files, '/etc/apt/apt.conf.d/20auto-upgrades').content).toContain('APT::Periodic::Unattended-Upgrade "1";')
      expect(fileAt(s.files, '/etc/apt/apt.conf.d/52infra-unattended').content).toContain('Unattended-Upgrade::Automatic-Reboot "false";')
      expect(fileAt(s.files, '/etc/sysctl.d/60-infra.conf').content).toContain(`net.ipv4.ip_forward = ${host.role === 'bastion' ? 1 : 0}`)
      expect(s.services).toEqual(expect.arrayContaining([{name: 'unattended-upgrades', enabled: true, running: true}]))
      // Paths are absolute and unique.
      const paths = s.files.map((f) => f.path)
      expect(new Set(paths).size).toBe(paths.length)
      for (const p of paths) expect(p.startsWith('/')).toBe(true)
    }
  })

  it('rejects a host that is not in the inventory, and a TLS PEM without a key', () => {
    expect(() => desiredState(context(oneActive), {...hostsByName(oneActive).web1, name: 'web9'})).toThrow(/web9/)
    expect(() => desiredState(context(oneActive, {tlsPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n'}), hostsByName(oneActive).bastion)).toThrow(
      /certificate \(chain\) and its private key/,
    )
  })
})

describe('templates', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, {recursive: true, force: true})
  })

  it('are found in the package (src/templates, shipped in "files") from the source tree', () => {
    expect(templatesDir()).toBe(path.resolve('src/templates'))
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {files: string[]}
    expect(pkg.files).toContain('src/templates')
    for (const t of ['haproxy/haproxy.cfg.hbs', 'errors/page.html.hbs', 'nftables/bastion.nft.hbs', 'nftables/web.nft.hbs', 'ssh/sshd-infra.conf.hbs', 'nginx/site.conf.hbs']) {
      expect(existsSync(path.join(templatesDir(), t)), t).toBe(true)
    }
  })

  it('a file of the same name in the overrides folder replaces a built-in template', () => {
    const dir = tempDir('infra-tpl-')
    dirs.push(dir)
    mkdirSync(path.join(dir, 'nginx'))
    writeFileSync(path.join(dir, 'nginx/index.html.hbs'), '<p>{{name}} of {{domain}} & co</p>\n')
    const s = desiredState(context(oneActive, {templateOverridesDir: dir}), hostsByName(oneActive).web1)
    expect(fileAt(s.files, '/var/www/infra/index.html').content).toBe('<p>web1 of example.com & co</p>\n')
    // Other templates still come from the package.
    expect(fileAt(s.files, '/etc/nginx/conf.d/infra.conf').content).toContain('listen 10.10.0.11:80')
  })

  it('an override naming a variable that does not exist fails with its path', () => {
    const dir = tempDir('infra-tpl-')
    dirs.push(dir)
    mkdirSync(path.join(dir, 'errors'))
    writeFileSync(path.join(dir, 'errors/page.html.hbs'), '<p>{{cod}}</p>\n')
    expect(() => renderErrorPage(context(oneActive, {templateOverridesDir: dir}), 503)).toThrow(ConfigError)
    expect(() => renderErrorPage(context(oneActive, {templateOverridesDir: dir}), 503)).toThrow(/errors\/page\.html\.hbs.*"cod" not defined/)
  })

  it('lists the Debian packages the real-validator tests need', () => {
    expect(templateTestPackages()).toEqual(expect.arrayContaining(['haproxy', 'nftables', 'openssh-server', 'nginx']))
  })

  it('paths default to the Debian locations', () => {
    expect(DEFAULT_PATHS).toMatchObject({
      haproxyConfig: '/etc/haproxy/haproxy.cfg',
      haproxyErrorDir: '/etc/haproxy/errors/infra',
      nftablesConfig: '/etc/nftables.conf',
      sshdDropIn: '/etc/ssh/sshd_config.d/00-infra.conf',
      nginxSite: '/etc/nginx/conf.d/infra.conf',
    })
  })
})
