/**
 * The sites live (src/roles/sites.ts): the rendered bastion files in a real HAProxy inside a
 * throwaway namespace (test/unit/edge-harness.ts), in front of fake web nodes that answer like
 * nginx's server blocks would (the Host they got, their name; 404 for /missing). Each request's
 * backend is read from HAProxy's log. Two sites: shop (aliases, two environments, previews, its
 * own 404 and 503) and blog (web1 only). SNI picks each site's certificate, no SNI the main one;
 * the agents' hap_set drives a node in every backend at once.
 */
import {writeFileSync} from 'node:fs'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {agentBastionFiles} from '../../src/roles/agents.js'
import {AGENT_PATHS} from '../../src/host/paths.js'
import {type Harness, type Namespace, startEdge, until} from './edge-harness.js'
import {DOMAIN, fileAt, inventory, run, testFleetPki} from './render-helpers.js'
import {PAGE_FILES, pemFor, siteInputs, TWO_SITES} from './sites-fixtures.js'

const CLIENT = '198.51.100.1'
const inv = inventory(TWO_SITES)
const PUB = inv.bastion.publicAddress

/** A web node: nginx's server blocks by Host, reduced to an echo of what it got. */
const NODE = `
import http from 'node:http'
const [addr, port, name] = process.argv.slice(2)
http.createServer((req, res) => {
  if (req.url === '/healthz' || req.url === '/up') { res.writeHead(200, {'content-type': 'text/plain'}); res.end('ok'); return }
  if (req.url.startsWith('/missing')) { res.writeHead(404, {'content-type': 'text/plain'}); res.end('the app says 404'); return }
  res.writeHead(200, {'content-type': 'application/json', 'x-served-by': 'backend'})
  res.end(JSON.stringify({node: name, host: req.headers.host, url: req.url}))
}).listen(Number(port), addr)
`

function nodes(space: Namespace, dir: string): void {
  writeFileSync(`${dir}/node.mjs`, NODE)
  for (const n of inv.web.nodes.filter((x) => !x.standby)) space.start([process.execPath, `${dir}/node.mjs`, n.address, String(inv.web.port), n.name], `node ${n.name}`)
}

const HOSTS = [
  DOMAIN, 'other.example.net', 'shop.example.com', 'www.shop.example.com', 'preprod.shop.example.com', 'debug-shop.example.com',
  'feat-x.preview.shop.example.com', 'a.b.preview.shop.example.com', 'blog.example.org',
]
const RESOLVE = HOSTS.flatMap((h) => ['--resolve', `${h}:443:${PUB}`, '--resolve', `${h}:80:${PUB}`])

let h: Harness
beforeAll(async () => {
  // The main certificate also covers *.example.com and shop.example.com itself (a tls.cert of the
  // user's could): a site's own certificate must still win for its names (the crt-list's !*).
  const tlsPem = pemFor([DOMAIN, `www.${DOMAIN}`, `*.${DOMAIN}`, 'shop.example.com'])
  h = await startEdge('sites', inv, [CLIENT], {tlsPem, fleet: testFleetPki(), ...siteInputs(inv)}, {backends: nodes})
  // Every site backend's active servers UP too (blog: web1 only).
  await until('every backend UP', async () => {
    const csv = await h.cli('show stat -1 4 -1')
    const up = csv.split('\n').filter((l) => l.startsWith('site_') && l.split(',')[17] === 'UP').length
    return up === 4 * 2 + 1 ? true : undefined
  })
}, 60_000)
afterAll(() => h?.stop())

let seq = 0
/** One request; `backend` is the HAProxy backend that handled it (from the log), `seen` what the node answered. */
async function get(url: string, extra: string[] = []) {
  const tag = `t${++seq}`
  const u = new URL(url)
  const target = `${u.origin}${u.pathname}${u.search ? `${u.search}&${tag}` : `?${tag}`}`
  const r = h.request(CLIENT, target, [...RESOLVE, ...extra])
  const line = await until(`the log line of ${target}`, () => h.log().split('\n').find((l) => l.includes(`${tag} HTTP/`)))
  const m = /\] (\S+) (\S+)\/(\S+) /.exec(line)
  const seen = r.headers['x-served-by'] === 'backend' ? (JSON.parse(r.body) as {node: string; host: string; url: string}) : undefined
  return {...r, tag, backend: m?.[2], seen}
}

describe('routing by host name on 443', () => {
  it.each([
    ['shop.example.com', 'site_shop'],
    ['preprod.shop.example.com', 'site_shop__preprod'],
    ['debug-shop.example.com', 'site_shop__debug'],
    ['feat-x.preview.shop.example.com', 'site_shop__previews'],
    ['blog.example.org', 'site_blog'],
    [DOMAIN, 'web'],
    ['other.example.net', 'web'],
  ])('%s goes to backend %s, with its Host unchanged and HSTS (X-Robots-Tag on an environment or a preview only)', async (host, backend) => {
    const r = await get(`https://${host}/page`)
    expect(r.status, r.raw).toBe(200)
    expect(r.backend).toBe(backend)
    expect(r.seen?.host).toBe(host)
    expect(r.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains')
    expect(r.headers['x-robots-tag']).toBe(/__/.test(backend) ? 'noindex, nofollow' : undefined)
  })

  it('spreads a site over its nodes only (blog: web1)', async () => {
    const shop = new Set<string>()
    const blog = new Set<string>()
    for (let i = 0; i < 6; i++) {
      shop.add((await get('https://shop.example.com/n')).seen!.node)
      blog.add((await get('https://blog.example.org/n')).seen!.node)
    }
    expect([...shop].sort()).toEqual(['web1', 'web2'])
    expect([...blog]).toEqual(['web1'])
  })

  it('redirects an alias to the apex, path and query kept', async () => {
    const r = await get('https://www.shop.example.com/a/b?x=1')
    expect(r.status).toBe(301)
    expect(r.headers.location).toBe(`https://shop.example.com/a/b?x=1&${r.tag}`)
    expect(r.headers['strict-transport-security']).toBeDefined()
  })
})

describe('port 80', () => {
  it.each([
    ['www.shop.example.com', 'https://shop.example.com'],
    ['shop.example.com', 'https://shop.example.com'],
    ['preprod.shop.example.com', 'https://preprod.shop.example.com'],
    ['debug-shop.example.com', 'https://debug-shop.example.com'],
    ['feat-x.preview.shop.example.com', 'https://feat-x.preview.shop.example.com'],
    ['blog.example.org', 'https://blog.example.org'],
    // Two labels before the previews domain, or any other name: the main domain.
    ['a.b.preview.shop.example.com', `https://${DOMAIN}`],
    ['other.example.net', `https://${DOMAIN}`],
  ])('http://%s/path → 301 %s/path', async (host, to) => {
    const r = await get(`http://${host}/path?q=1`)
    expect(r.status, r.raw).toBe(301)
    expect(r.headers.location).toBe(`${to}/path?q=1&${r.tag}`)
  })

  it('builds a preview location from the host without its port, lower-cased', async () => {
    const r = await get('http://feat-x.preview.shop.example.com/p', ['-H', 'Host: FEAT-X.Preview.shop.example.com:80'])
    expect(r.headers.location).toBe(`https://feat-x.preview.shop.example.com/p?${r.tag}`)
  })

  it('leaves an ACME token of a site name on plain HTTP', async () => {
    const path = '/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0'
    const r = h.request(CLIENT, `http://shop.example.com${path}`, RESOLVE)
    expect(r.status, r.raw).toBe(200)
    expect(JSON.parse(r.body)).toMatchObject({host: 'shop.example.com', url: path})
  })
})

describe('site error pages', () => {
  it("replace the app's 404 in every unit of the site (with HSTS), not another site's", async () => {
    for (const host of ['shop.example.com', 'preprod.shop.example.com', 'feat-x.preview.shop.example.com']) {
      const r = await get(`https://${host}/missing`)
      expect(r.status).toBe(404)
      expect(r.body).toBe(PAGE_FILES['errors/shop-404.html'])
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(r.headers['strict-transport-security']).toBeDefined()
      expect(r.headers['x-robots-tag']).toBe(host === 'shop.example.com' ? undefined : 'noindex, nofollow')
    }
    for (const host of ['blog.example.org', DOMAIN]) {
      const r = await get(`https://${host}/missing`)
      expect(r.status).toBe(404)
      expect(r.body).toBe('the app says 404')
    }
  })

  it("serve the site's 503 when none of its servers is left", async () => {
    for (const n of ['web1', 'web2']) await h.cli(`set server site_shop/${n} state maint`)
    try {
      const r = await get('https://shop.example.com/x')
      expect(r.status).toBe(503)
      expect(r.body).toBe('The shop is closed for a moment.\n')
      expect((await get(`https://${DOMAIN}/x`)).status).toBe(200)
    } finally {
      for (const n of ['web1', 'web2']) await h.cli(`set server site_shop/${n} state ready`)
    }
  })
})

describe('certificates by SNI', () => {
  function served(args: string): {subject: string; san: string} {
    const r = h.inNs(['sh', '-c', `timeout 5 openssl s_client -connect ${PUB}:443 ${args} </dev/null 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName`])
    return {subject: /subject=(.*)/.exec(r.output)?.[1] ?? r.output, san: /DNS:.*/.exec(r.output)?.[0] ?? ''}
  }

  it.each([
    ['shop.example.com', 'shop.example.com'],
    ['www.shop.example.com', 'shop.example.com'],
    ['debug-shop.example.com', 'shop.example.com'],
    ['feat-x.preview.shop.example.com', 'shop.example.com'],
    ['blog.example.org', 'blog.example.org'],
    // The main certificate's names (it covers *.example.com, shop.example.com included).
    [DOMAIN, DOMAIN],
    [`www.${DOMAIN}`, DOMAIN],
    [`anything.${DOMAIN}`, DOMAIN],
  ])('-servername %s gets the certificate of %s', (sni, cn) => {
    const c = served(`-servername ${sni}`)
    expect(c.subject).toContain(`CN = ${cn}`)
    if (cn === 'shop.example.com') {
      expect(c.san).toBe('DNS:shop.example.com, DNS:www.shop.example.com, DNS:preprod.shop.example.com, DNS:debug-shop.example.com, DNS:*.preview.shop.example.com')
    }
  })

  it('no SNI, or a name no certificate has, gets the main certificate', () => {
    expect(served('-noservername').subject).toContain(`CN = ${DOMAIN}`)
    expect(served('-servername other.example.net').subject).toContain(`CN = ${DOMAIN}`)
    expect(served('-noservername').san).toBe(`DNS:${DOMAIN}, DNS:www.${DOMAIN}, DNS:*.${DOMAIN}, DNS:shop.example.com`)
  })
})

describe('the agents', () => {
  it('hap_set puts a node in maintenance and back in every backend that has it (blog has no web2: ignored)', async () => {
    const lib = fileAt(agentBastionFiles({inventory: inv, tlsPem: '', paths: h.paths}), AGENT_PATHS.lib).content
    writeFileSync(`${h.dir}/lib.sh`, lib)
    const states = async (server: string) =>
      Object.fromEntries(
        (await h.cli('show stat -1 4 -1'))
          .split('\n')
          .map((l) => l.split(','))
          .filter((f) => f[1] === server && (f[0] === 'web' || f[0].startsWith('site_')))
          .map((f) => [f[0], f[17]]),
      )
    const set = (state: string) => run(['sh', '-c', `. ${h.dir}/lib.sh && hap_set web2 ${state} && hap_status web2`])
    expect(set('maint')).toEqual({code: 0, output: 'MAINT\n'})
    expect(await states('web2')).toEqual({web: 'MAINT', site_shop: 'MAINT', site_shop__preprod: 'MAINT', site_shop__debug: 'MAINT', site_shop__previews: 'MAINT'})
    expect((await states('web1')).site_blog).toBe('UP')
    set('ready')
    await until('web2 UP everywhere', async () => (Object.values(await states('web2')).every((s) => s === 'UP') ? true : undefined))
  })
})
