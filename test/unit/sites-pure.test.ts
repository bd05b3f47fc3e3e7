/**
 * The pure halves of `infra preview …`, `infra previews` and `infra sites` (src/app/previews.ts,
 * src/app/sites.ts) and the bastion's preview expiry (src/roles/previews.ts). The shell scripts
 * run for real with bash/sh in a temp folder (the host paths in their text moved there), and
 * `infra sites` reads a real HAProxy's `show stat` in a throwaway network namespace.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {expiredPreviews, listPreviewsScript, parsePreviews, planPreview, type PreviewMeta, previewKey, previewMetaPath, writeMetaScript} from '../../src/app/previews.js'
import {parseSites, renderSites, type SiteRow, sitesScript} from '../../src/app/sites.js'
import {branchSlug} from '../../src/app/slug.js'
import {DEFAULT_PATHS, UNITS_DIR} from '../../src/host/paths.js'
import {parseShowStat} from '../../src/host/haproxy.js'
import type {Inventory} from '../../src/inventory/schema.js'
import {declaredUnits} from '../../src/inventory/units.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import type {Release} from '../../src/app/release.js'
import {PREVIEWS_CRON, PREVIEWS_EXPIRE, previewBastionAbsent, previewBastionFiles} from '../../src/roles/previews.js'
import type {RenderContext} from '../../src/roles/render.js'
import {type Namespace, throwawayNamespace} from './edge-harness.js'
import {requireTool, run, tempDir, until} from './render-helpers.js'

let root: string
beforeAll(() => {
  root = tempDir('infra-sites-pure-')
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

function bash(script: string, cwd?: string) {
  const r = spawnSync('bash', ['--norc', '-s'], {input: script, encoding: 'utf8', cwd, timeout: 15_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

const FLEET = `domain: example.com
bastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}
web:
  nodes:
    - {name: web1, address: 10.10.0.11}
    - {name: web2, address: 10.10.0.12}
    - {name: web3, address: 10.10.0.13, standby: true}
`

function valid(text: string): Inventory {
  const r = validateInventoryText(text, 'infra.yaml')
  expect(r.errors).toEqual([])
  return r.inventory!
}

const meta = (branch: string, deployedAt: string, site = 'shop'): PreviewMeta => {
  const slug = branchSlug(branch)
  return {site, branch, slug, key: previewKey(site, slug), url: `https://${slug}.preview.shop.example.com`, deployedAt, by: 'ci@runner', release: 'v1'}
}

describe('planPreview', () => {
  const login = meta('feature/Login', '2025-03-02T10:00:00.000Z')
  const fix = meta('fix/x', '2025-03-01T09:00:00.000Z')
  const docs = meta('docs', '2025-03-03T08:00:00.000Z')

  it('gives a branch that has a preview its slug again, even at the limit', () => {
    for (const onLimit of ['refuse', 'evict'] as const) {
      expect(planPreview('shop', 'feature/Login', [login, fix], {max: 2, onLimit})).toEqual({slug: 'feature-login', key: 'shop--p-feature-login', existing: true})
    }
  })

  it('gives a new branch under the limit its plain slug', () => {
    expect(planPreview('shop', 'Release/2.0', [login], {max: 2, onLimit: 'refuse'})).toEqual({slug: 'release-2-0', key: 'shop--p-release-2-0', existing: false})
    expect(planPreview('shop', 'main', [], {max: 1, onLimit: 'refuse'})).toEqual({slug: 'main', key: 'shop--p-main', existing: false})
  })

  it('never gives a new branch the slug another branch has', () => {
    const p = planPreview('shop', 'Feature/login', [login], {max: 5, onLimit: 'refuse'})
    expect(p.slug).not.toBe('feature-login')
    expect(p.slug).toBe(branchSlug('Feature/login', new Map([['feature-login', 'feature/Login']])))
    expect(p.slug).toMatch(/^feature-login-[0-9a-f]{6}$/)
    expect(p.key).toBe(`shop--p-${p.slug}`)
  })

  it('at the limit with onLimit refuse: refused, naming the previews there are', () => {
    const p = planPreview('shop', 'new/thing', [login, fix], {max: 2, onLimit: 'refuse'})
    expect(p).toEqual({slug: 'new-thing', key: 'shop--p-new-thing', existing: false, refused: 'site shop has 2 previews already (previews.max 2): feature/Login, fix/x'})
    // Above the limit (previews.max lowered since) too.
    expect(planPreview('shop', 'new/thing', [login, fix, docs], {max: 2, onLimit: 'refuse'}).refused).toBe('site shop has 3 previews already (previews.max 2): feature/Login, fix/x, docs')
  })

  it('at the limit with onLimit evict: the least recently deployed one goes, whatever the order', () => {
    const p = planPreview('shop', 'new/thing', [login, docs, fix], {max: 3, onLimit: 'evict'})
    expect(p).toEqual({slug: 'new-thing', key: 'shop--p-new-thing', existing: false, evict: fix})
    expect(planPreview('shop', 'new/thing', [docs, login], {max: 2, onLimit: 'evict'}).evict).toBe(login)
  })
})

describe('expiredPreviews', () => {
  const now = Date.parse('2025-03-10T12:00:00.000Z')
  const week = 7 * 24 * 3600_000
  it('keeps a preview deployed within the TTL (the TTL itself included), returns the older ones', () => {
    const fresh = meta('fresh', '2025-03-10T11:59:59.000Z')
    const edge = meta('edge', '2025-03-03T12:00:00.000Z')
    const old = meta('old', '2025-03-03T11:59:59.000Z')
    const older = meta('older', '2024-12-01T00:00:00.000Z')
    expect(expiredPreviews([fresh, old, edge, older], week, now)).toEqual([old, older])
    expect(expiredPreviews([fresh, old], 999, now)).toEqual([fresh, old])
    expect(expiredPreviews([], week, now)).toEqual([])
  })
})

describe('parsePreviews', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  it('reads @@preview lines, sorted by key; ignores other lines, bad base64, bad JSON and JSON without key or branch', () => {
    const a = meta('zeta', '2025-03-01T00:00:00.000Z')
    const b = meta('alpha', '2025-03-02T00:00:00.000Z', 'blog')
    const out = [
      `@@preview\t${b64(JSON.stringify(a, null, 2) + '\n')}`,
      'some noise',
      '@@preview\t!!!not base64!!!',
      `@@preview\t${b64('{"key": "shop--p-half", "bran')}`,
      `@@preview\t${b64(JSON.stringify({site: 'shop', slug: 'x'}))}`,
      `@@preview\t${b64('null')}`,
      '@@preview',
      `@@other\t${b64(JSON.stringify(b))}`,
      `@@preview\t${b64(JSON.stringify(b))}`,
      '',
    ].join('\n')
    expect(parsePreviews(out)).toEqual([b, a])
    expect(parsePreviews('')).toEqual([])
  })
})

describe('the bastion\'s preview records (writeMetaScript, listPreviewsScript), run with bash in a temp folder', () => {
  /** The script with the units folder moved under `dir`. */
  const moved = (script: string, dir: string) => {
    expect(script).toContain(UNITS_DIR)
    return script.replaceAll(UNITS_DIR, `${dir}/apps`)
  }

  it('writes preview.json in the unit\'s folder, and lists a site\'s previews (or every site\'s) back', () => {
    const dir = caseDir()
    const metas = [meta('feature/Login', '2025-03-02T10:00:00.000Z'), meta('fix/x', '2025-03-01T09:00:00.000Z'), meta('main', '2025-03-01T00:00:00.000Z', 'blog')]
    // A unit that is not a preview, with a file of that name, and a half-written record.
    mkdirSync(`${dir}/apps/shop--preprod`, {recursive: true})
    writeFileSync(`${dir}/apps/shop--preprod/preview.json`, JSON.stringify(meta('x', '2025-01-01T00:00:00.000Z')))
    mkdirSync(`${dir}/apps/shop--p-half`, {recursive: true})
    writeFileSync(`${dir}/apps/shop--p-half/preview.json.tmp`, '{"key"')
    for (const m of metas) {
      const r = bash(moved(writeMetaScript(m), dir))
      expect(r, m.key).toMatchObject({code: 0, stderr: ''})
      expect(JSON.parse(readFileSync(`${dir}/apps/${m.key}/preview.json`, 'utf8'))).toEqual(m)
    }
    expect(previewMetaPath('shop--p-fix-x')).toBe(`${UNITS_DIR}/shop--p-fix-x/preview.json`)
    expect(readdirSync(`${dir}/apps/shop--p-fix-x`)).toEqual(['preview.json'])

    const shop = bash(moved(listPreviewsScript('shop'), dir))
    expect(shop.code).toBe(0)
    expect(shop.stdout.split('\n').filter(Boolean).every((l) => l.startsWith('@@preview\t'))).toBe(true)
    expect(parsePreviews(shop.stdout)).toEqual([metas[0], metas[1]])
    expect(parsePreviews(bash(moved(listPreviewsScript(), dir), dir).stdout)).toEqual([metas[2], metas[0], metas[1]])
    expect(bash(moved(listPreviewsScript('docs'), dir))).toMatchObject({code: 0, stdout: ''})

    // A second deploy of the same preview replaces its record.
    const again = {...metas[1], deployedAt: '2025-03-05T00:00:00.000Z', release: 'v2'}
    expect(bash(moved(writeMetaScript(again), dir)).code).toBe(0)
    expect(parsePreviews(bash(moved(listPreviewsScript('shop'), dir)).stdout)).toEqual([metas[0], again])
  })

  it('lists nothing, with success, where there is no units folder yet', () => {
    const dir = caseDir()
    expect(bash(moved(listPreviewsScript(), dir))).toEqual({code: 0, stdout: '', stderr: ''})
  })

  it('keeps a branch name with quotes and shell characters as it is', () => {
    const dir = caseDir()
    const m = {...meta('feat/$(touch pwned)`x`', '2025-03-02T10:00:00.000Z'), by: "o'brien@laptop"}
    expect(m.key).toMatch(/^shop--p-[a-z0-9-]+$/)
    expect(bash(moved(writeMetaScript(m), dir), dir).code).toBe(0)
    expect(parsePreviews(bash(moved(listPreviewsScript('shop'), dir)).stdout)).toEqual([m])
    expect(readdirSync(dir)).toEqual(['apps'])
  })
})

describe('previewBastionFiles: the expiry timer on the bastion', () => {
  const ctx = (inv: Inventory): RenderContext => ({inventory: inv, tlsPem: ''})
  const WITH_PREVIEWS = valid(`${FLEET}sites:
  shop:
    domain: shop.example.com
    app: {image: shop}
    previews: {domain: preview.shop.example.com}
  blog:
    domain: blog.example.org
    nodes: [web2]
    app: {image: blog}
  docs:
    domain: docs.example.org
    nodes: [web3, web1]
    app: {image: docs}
    previews: {domain: pr.docs.example.org, ttl: 90m}
`)

  it('renders nothing without previews, and then removes the script and cron file a previous provision left', () => {
    for (const inv of [valid(FLEET), valid(`${FLEET}app: {image: main}\nsites:\n  blog: {domain: blog.example.org, app: {image: blog}}\n`)]) {
      expect(previewBastionFiles(ctx(inv))).toEqual([])
      expect(previewBastionAbsent(ctx(inv))).toEqual(['/usr/local/sbin/infra-previews-expire', '/etc/cron.d/infra-previews'])
    }
    expect(previewBastionAbsent(ctx(WITH_PREVIEWS))).toEqual([])
  })

  const files = previewBastionFiles(ctx(WITH_PREVIEWS))
  const script = files.find((f) => f.path === PREVIEWS_EXPIRE)!
  const cron = files.find((f) => f.path === PREVIEWS_CRON)!

  it('renders the script (root, 0755, checked with sh -n) and its cron file', () => {
    expect(files.map((f) => f.path)).toEqual(['/usr/local/sbin/infra-previews-expire', '/etc/cron.d/infra-previews'])
    expect(script).toMatchObject({mode: 0o755, owner: 'root', group: 'root', validate: 'sh -n {}'})
    const dir = caseDir()
    writeFileSync(`${dir}/expire`, script.content)
    expect(run(['sh', '-n', `${dir}/expire`])).toEqual({code: 0, output: ''})
    expect(run(['shellcheck', '-s', 'sh', '-e', 'SC1091', `${dir}/expire`]).output).toBe('')
    expect(script.content).not.toMatch(/\{\{|\}\}/)
  })

  it('has each site with previews, its TTL in seconds and its nodes (web.nodes order), and no other site', () => {
    const cases = script.content.split('\n').filter((l) => /^\s+[a-z][a-z0-9-]*\) ttl=/.test(l)).map((l) => l.trim())
    expect(cases).toEqual(['shop) ttl=604800; site_nodes="web1 web2 web3" ;;', 'docs) ttl=5400; site_nodes="web1 web3" ;;'])
  })

  it('runs it every minute, as root, from cron', () => {
    expect(cron).toMatchObject({mode: 0o644, owner: 'root', group: 'root'})
    const lines = cron.content.split('\n').filter((l) => l && !l.startsWith('#'))
    expect(lines).toContain('SHELL=/bin/sh')
    expect(lines.filter((l) => /^[*\d]/.test(l))).toEqual(['* * * * * root /usr/local/sbin/infra-previews-expire >/dev/null 2>&1'])
  })

  it('removes, run for real, the previews idle for longer than their site\'s TTL, on each of the site\'s nodes, then their record', () => {
    const dir = caseDir()
    const now = Date.parse('2025-03-10T12:00:00.000Z')
    const at = (ms: number) => new Date(now - ms).toISOString()
    const records = {
      oldShop: meta('old', at(8 * 24 * 3600_000)),
      newShop: meta('new', at(6 * 24 * 3600_000)),
      oldDocs: meta('old', at(91 * 60_000), 'docs'),
      newDocs: meta('new', at(89 * 60_000), 'docs'),
      // A site that has no previews (any more): left alone.
      oldBlog: meta('old', at(30 * 24 * 3600_000), 'blog'),
    }
    for (const m of Object.values(records)) expect(bash(writeMetaScript(m).replaceAll(UNITS_DIR, `${dir}/apps`)).code).toBe(0)
    // The agents' library, its clock, node agent and journal replaced by stubs that record the calls.
    writeFileSync(`${dir}/lib.sh`, `now() { echo ${now / 1000}; }\nagent() { echo "$1 $2" >> ${dir}/calls; [ "$1 $2" != "$FAIL_ON" ]; }\nlog() { shift; echo "$*" >> ${dir}/log; }\n`)
    const text = script.content.replace(/^\. \/usr\/local\/lib\/infra\/agents\.sh$/m, `. ${dir}/lib.sh`).replace(`UNITS=${UNITS_DIR}`, `UNITS=${dir}/apps`)
    expect(text).toContain(`. ${dir}/lib.sh`)
    writeFileSync(`${dir}/expire`, text)

    // docs on web1 fails: its record stays for the next run.
    const first = spawnSync('sh', [`${dir}/expire`], {encoding: 'utf8', env: {PATH: process.env.PATH, FAIL_ON: 'web1 preview-destroy docs--p-old'}})
    expect(first.status, first.stderr).toBe(0)
    expect(readFileSync(`${dir}/calls`, 'utf8').split('\n').filter(Boolean).sort()).toEqual([
      'web1 preview-destroy docs--p-old',
      'web1 preview-destroy shop--p-old',
      'web2 preview-destroy shop--p-old',
      'web3 preview-destroy docs--p-old',
      'web3 preview-destroy shop--p-old',
    ])
    expect(readdirSync(`${dir}/apps`).sort()).toEqual(['blog--p-old', 'docs--p-new', 'docs--p-old', 'shop--p-new'])
    expect(readFileSync(`${dir}/log`, 'utf8')).toContain('preview shop--p-old expired (no deploy for more than 604800s): removed')
    expect(readFileSync(`${dir}/log`, 'utf8')).toMatch(/removing docs--p-old on web1 failed/)

    const second = spawnSync('sh', [`${dir}/expire`], {encoding: 'utf8', env: {PATH: process.env.PATH, FAIL_ON: 'none'}})
    expect(second.status, second.stderr).toBe(0)
    expect(readdirSync(`${dir}/apps`).sort()).toEqual(['blog--p-old', 'docs--p-new', 'shop--p-new'])
  })
})

/** Every unit's release history as the bastion keeps it. */
const history = (releases: Partial<Release>[]) => JSON.stringify({releases}, null, 2) + '\n'
const b64 = (s: string) => Buffer.from(s).toString('base64')

/** HAProxy 2.6's `show stat` header and a server line, as it prints them (captured from a real one). */
const STAT_HEADER =
  '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,'
const SERVER_LINE =
  'site_shop,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,2,0,,1,4,1,,0,,2,0,,0,L7OK,200,2,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,3,4,,,,127.0.0.1:18081,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,'
const BACKEND_LINE =
  'site_shop,BACKEND,0,0,0,0,1,0,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,2,0,,1,4,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,1,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,'

/** A server line of `backend` with `status` (and a check result), the rest as HAProxy printed it. */
function server(backend: string, name: string, status: string, check = ''): string {
  const f = SERVER_LINE.split(',')
  f[0] = backend
  f[1] = name
  f[17] = status
  f[36] = check
  return f.join(',')
}
const backendLine = (backend: string) => [backend, ...BACKEND_LINE.split(',').slice(1)].join(',')

/** What sitesScript prints on the bastion: one @@releases per unit, in order, then show stat line by line. */
function sitesOutput(releases: (string | undefined)[], stat: string[]): string {
  return [...releases.map((h) => `@@releases\t${h === undefined ? '' : b64(h)}`), ...[STAT_HEADER, ...stat].map((l) => `@@stat\t${l}`), ''].join('\n')
}

describe('parseSites and renderSites', () => {
  const inv = valid(`${FLEET}sites:
  shop:
    domain: shop.example.com
    aliases: [www.shop.example.com, shop.example.net]
    app: {image: shop}
    environments: {preprod: {nodes: [web1]}, dev: {}}
  blog:
    domain: blog.example.org
    nodes: [web1, web2]
    app: {image: blog}
`)
  const units = declaredUnits(inv)

  it('reads the captured lines as HAProxy\'s parser does (the fixture is sound)', () => {
    expect(units.map((u) => u.backend)).toEqual(['site_shop', 'site_shop__preprod', 'site_shop__dev', 'site_blog'])
    expect(parseShowStat([STAT_HEADER, server('site_x', 'web2', 'DOWN', 'L4CON'), backendLine('site_x')].join('\n'))).toEqual([{backend: 'site_x', server: 'web2', status: 'DOWN', check: 'L4CON'}])
  })

  const out = sitesOutput(
    [
      history([{id: 'v3', state: 'current'}, {id: 'v2', state: 'previous'}]),
      history([{id: 'v4', state: 'failed'}, {id: 'v3', state: 'previous'}]),
      undefined,
      '{"releases": [',
    ],
    [
      'f,FRONTEND,,,0,0,9984,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,',
      server('web', 'web1', 'UP', 'L7OK'),
      server('web', 'web2', 'DOWN', 'L7STS'),
      backendLine('web'),
      // shop: web1 up, web2 down, web3 on standby (disabled: MAINT).
      server('site_shop', 'web1', 'UP', 'L7OK'),
      server('site_shop', 'web2', 'DOWN', 'L4CON'),
      server('site_shop', 'web3', 'MAINT'),
      backendLine('site_shop'),
      server('site_shop__preprod', 'web1', 'DOWN', 'L7STS'),
      backendLine('site_shop__preprod'),
      // dev is not in HAProxy's config yet (provision not run).
      server('site_blog', 'web1', 'UP', 'L7OK'),
      server('site_blog', 'web2', 'UP 1/3', 'L7STS'),
      backendLine('site_blog'),
    ],
  )
  const rows = parseSites(units, out)

  it('gives each unit its canonical name, aliases, current release and health', () => {
    expect(rows).toEqual([
      {site: 'shop', env: 'prod', host: 'shop.example.com', aliases: ['www.shop.example.com', 'shop.example.net'], release: 'v3', up: 1, nodes: 3, health: 'degraded'},
      {site: 'shop', env: 'preprod', host: 'preprod.shop.example.com', aliases: [], release: null, up: 0, nodes: 1, health: 'down'},
      {site: 'shop', env: 'dev', host: 'dev.shop.example.com', aliases: [], release: null, up: 0, nodes: 3, health: 'unknown'},
      {site: 'blog', env: 'prod', host: 'blog.example.org', aliases: [], release: undefined, up: 2, nodes: 2, health: 'ok'},
    ])
  })

  it('counts only the servers of the unit\'s own backend, and standby (MAINT) servers out of the health', () => {
    const only = (stat: string[]) => parseSites(units.slice(0, 1), sitesOutput([undefined], stat))[0]
    expect(only([server('site_shop', 'web1', 'UP'), server('site_shop', 'web3', 'MAINT'), server('site_shop__preprod', 'web2', 'DOWN')])).toMatchObject({up: 1, health: 'ok'})
    expect(only([server('site_shop', 'web1', 'UP'), server('site_shop', 'web2', 'DRAIN')])).toMatchObject({up: 1, health: 'degraded'})
    expect(only([server('site_shop', 'web1', 'DOWN 1/2'), server('site_shop', 'web2', 'MAINT')])).toMatchObject({up: 0, health: 'down'})
    expect(only([server('site_shop', 'web1', 'MAINT'), server('site_shop', 'web2', 'MAINT (via site_shop/web1)')])).toMatchObject({up: 0, health: 'down'})
    expect(only([server('web', 'web1', 'UP')])).toMatchObject({up: 0, health: 'unknown'})
    // No answer from HAProxy at all (stopped): unknown, not down.
    expect(parseSites(units, units.map(() => '@@releases\t').join('\n')).map((r) => r.health)).toEqual(['unknown', 'unknown', 'unknown', 'unknown'])
  })

  it('renders a table: one line per unit, https URLs, "-" for no release, "?" for an unreadable history', () => {
    expect(renderSites(rows).split('\n')).toEqual([
      'SITE  ENV      URL                               RELEASE  HEALTH           ALIASES',
      'shop  prod     https://shop.example.com          v3       degraded (1 up)  www.shop.example.com, shop.example.net',
      'shop  preprod  https://preprod.shop.example.com  -        down (0 up)      -',
      'shop  dev      https://dev.shop.example.com      -        unknown (0 up)   -',
      'blog  prod     https://blog.example.org          ?        ok (2 up)        -',
    ])
    expect(renderSites([])).toBe('No sites. Add one: infra site add NAME --domain DOMAIN --image IMAGE')
    const one: SiteRow = {...rows[0], aliases: []}
    expect(renderSites([one]).split('\n')[1]).toBe('shop  prod  https://shop.example.com  v3       degraded (1 up)  -')
  })

  describe('sitesScript against a real HAProxy (throwaway namespace) and real history files', () => {
    let space: Namespace | undefined
    let dir: string
    beforeAll(() => {
      requireTool('haproxy', 'haproxy')
      requireTool('socat', 'socat')
      dir = caseDir()
      space = throwawayNamespace('sitesp')
      const cfg = [
        'global',
        `    stats socket ${dir}/admin.sock mode 600 level admin`,
        'defaults',
        '    mode http',
        '    timeout connect 1s',
        '    timeout client 5s',
        '    timeout server 5s',
        'backend site_shop',
        '    option httpchk',
        '    default-server check inter 100ms rise 1 fall 1',
        '    server web1 127.0.0.1:9001',
        '    server web2 127.0.0.1:9002',
        '    server web3 127.0.0.1:9003 disabled',
        'backend site_shop__preprod',
        '    option httpchk',
        '    server web1 127.0.0.1:9002 check inter 100ms rise 1 fall 1',
        'backend site_blog',
        '    option httpchk',
        '    default-server check inter 100ms rise 1 fall 1',
        '    server web1 127.0.0.1:9001',
        '    server web2 127.0.0.1:9001',
        'listen node',
        '    bind 127.0.0.1:9001',
        '    http-request return status 200',
        '',
      ].join('\n')
      writeFileSync(`${dir}/haproxy.cfg`, cfg)
      space.start(['haproxy', '-db', '-f', `${dir}/haproxy.cfg`], 'haproxy')
      mkdirSync(`${dir}/apps/shop`, {recursive: true})
      writeFileSync(`${dir}/apps/shop/releases.json`, history([{id: 'v7', state: 'current'}]))
      mkdirSync(`${dir}/apps/blog`, {recursive: true})
      writeFileSync(`${dir}/apps/blog/releases.json`, history([{id: '2025-03-01', state: 'previous'}, {id: 'abc1234', state: 'current'}]))
    })
    afterAll(() => space?.stop())

    it('reads every unit\'s release and health in one script', async () => {
      const script = sitesScript(units)
      expect(script).toContain(DEFAULT_PATHS.haproxyAdminSocket)
      const text = script.replaceAll(UNITS_DIR, `${dir}/apps`).replaceAll(DEFAULT_PATHS.haproxyAdminSocket, `${dir}/admin.sock`)
      const settled = await until('the health checks', () => {
        const r = bash(text)
        if (r.code !== 0) return undefined
        const got = parseSites(units, r.stdout)
        return got[0].health === 'degraded' && got[1].health === 'down' && got[3].health === 'ok' ? got : undefined
      })
      expect(settled.map((r) => `${r.site} ${r.env} ${r.release} ${r.health} ${r.up}/${r.nodes}`)).toEqual([
        'shop prod v7 degraded 1/3',
        'shop preprod null down 0/1',
        'shop dev null unknown 0/3',
        'blog prod abc1234 ok 2/2',
      ])
    })
  })
})
