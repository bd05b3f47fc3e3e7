/**
 * A web node of an inventory with sites: each deploy unit's nginx server block
 * (src/app/unit-nginx.ts) included by the node's rendered site (src/roles/web.ts) passes the real
 * `nginx -t` and, run for real in a throwaway network namespace, routes each unit's host names to
 * its upstream; `infra-app -u KEY` (src/templates/app/infra-app.sh.hbs) run for real, its state
 * folder and lock moved to a temp folder.
 */
import {spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {unitNginxConf, upstreamName} from '../../src/app/unit-nginx.js'
import {APP_PATHS, NGINX_LISTEN_FILE, NGINX_UNITS_DIR, UNITS_DIR} from '../../src/host/paths.js'
import {configOf} from '../../src/inventory/config.js'
import type {Inventory} from '../../src/inventory/schema.js'
import {declaredUnits, type DeployUnit, previewUnit, singleAppUnit} from '../../src/inventory/units.js'
import {appWebFiles} from '../../src/roles/app.js'
import {desiredState} from '../../src/roles/render.js'
import {type Namespace, throwawayNamespace} from './edge-harness.js'
import {context, fileAt, hostsByName, inventory, requireTool, runValidate, tempDir, testFleetPki, until} from './render-helpers.js'
import {TWO_SITES} from './sites-fixtures.js'

let root: string
let space: Namespace | undefined
let wrap: string[]

beforeAll(() => {
  requireTool('nginx', 'nginx')
  requireTool('curl', 'curl')
  root = tempDir('infra-sites-node-')
  space = throwawayNamespace('sitesn')
  wrap = ['ip', 'netns', 'exec', space.ns]
})
afterAll(() => {
  space?.stop()
  if (root) rmSync(root, {recursive: true, force: true})
})
let n = 0
function caseDir(): string {
  const d = path.join(root, `case${++n}`)
  mkdirSync(d, {recursive: true})
  return d
}

/** shop (prod, preprod, debug, previews) on every node, blog on web1 with its own health path; plus the single app. */
const inv: Inventory = inventory({...TWO_SITES, app: {image: 'main'}})
const node = inv.web.nodes[0]
const healthOf = (u: DeployUnit) => u.app.healthCheck.path ?? configOf(inv).healthPath
const units: DeployUnit[] = [...declaredUnits(inv).filter((u) => u.key !== undefined), previewUnit(inv, 'shop', 'feature/Login', 'feature-login')]

describe('unitNginxConf', () => {
  it('routes the unit\'s host names to its own upstream (the file infra-app switches), on the node\'s listen line', () => {
    const preprod = units.find((u) => u.key === 'shop--preprod')!
    const lines = unitNginxConf(preprod, '/healthz').split('\n').map((l) => l.trim())
    expect(upstreamName('shop--preprod')).toBe('infra_u_shop__preprod')
    expect(lines).toContain('upstream infra_u_shop__preprod {')
    expect(lines).toContain(`include ${NGINX_UNITS_DIR}/shop--preprod.upstream;`)
    expect(lines).toContain(`include ${NGINX_LISTEN_FILE};`)
    expect(lines).toContain('server_name preprod.shop.example.com;')
    expect(lines).toContain('location = /healthz {')
    expect(lines.filter((l) => l === 'proxy_pass http://infra_u_shop__preprod;')).toHaveLength(2)
    expect(lines.filter((l) => l.startsWith('listen') || l.includes('default_server'))).toEqual([])
    // The aliases are HAProxy's redirects, never routed here.
    const shop = unitNginxConf(units.find((u) => u.key === 'shop')!, '/healthz')
    expect(shop).toContain('    server_name shop.example.com;\n')
    expect(shop).not.toContain('www.shop.example.com')
  })

  it('gives every unit its own upstream name', () => {
    const names = units.map((u) => upstreamName(u.key!))
    expect(new Set(names).size).toBe(units.length)
    for (const name of names) expect(name).toMatch(/^infra_u_[a-z0-9_]+$/)
  })

  it('refuses the single app (the node\'s default server serves it)', () => {
    expect(() => unitNginxConf(singleAppUnit(inv)!, '/healthz')).toThrow(/default server/)
  })
})

/**
 * A node's nginx under `dir`: Debian's nginx.conf (its conf.d include pointed at the staged site),
 * the rendered site with the units folder and the app's upstream moved under `dir`, the listen
 * file, and each unit's server block and upstream as deploy and `infra-app switch` write them.
 */
function nodeCase(dir: string, slot: (u: DeployUnit, i: number) => number) {
  const paths = {nginxConfig: `${dir}/nginx/nginx.conf`, nginxSite: `${dir}/nginx/conf.d/infra.conf`, nginxLogDir: `${dir}/log`, webRoot: `${dir}/www`}
  mkdirSync(`${dir}/nginx/conf.d`, {recursive: true})
  mkdirSync(`${dir}/log`)
  mkdirSync(`${dir}/infra-apps`)
  mkdirSync(`${dir}/www`)
  copyFileSync('/etc/nginx/mime.types', `${dir}/nginx/mime.types`)
  const debian = readFileSync('/etc/nginx/nginx.conf', 'utf8')
    .replace('include /etc/nginx/conf.d/*.conf;', `include ${dir}/nginx/conf.d/*.conf;`)
    .replace('include /etc/nginx/mime.types;', 'include mime.types;')
    .replace(/^\s*include \/etc\/nginx\/sites-enabled\/\*;$/m, '')
    .replace(/^\s*include \/etc\/nginx\/modules-enabled\/\*\.conf;$/m, '')
    .replaceAll('/var/log/nginx', `${dir}/log`)
    .replace('pid /run/nginx.pid;', `pid ${dir}/nginx.pid;`)
  expect(debian).toContain(`include ${dir}/nginx/conf.d/*.conf;`)
  writeFileSync(paths.nginxConfig, debian)

  const files = desiredState(context(inv, {fleet: testFleetPki(), paths}), hostsByName(inv)[node.name]).files
  const site = fileAt(files, paths.nginxSite)
  // The node's fixed paths, moved under dir.
  const move = (text: string) =>
    text.replaceAll(`${NGINX_UNITS_DIR}/`, `${dir}/infra-apps/`).replaceAll(NGINX_LISTEN_FILE, `${dir}/infra-listen.conf`).replaceAll(APP_PATHS.upstream, `${dir}/infra-app-upstream.conf`)
  const siteText = move(site.content)
  expect(siteText).toContain(`include ${dir}/infra-apps/*.conf;`)
  writeFileSync(`${dir}/infra-listen.conf`, fileAt(files, NGINX_LISTEN_FILE).content)
  writeFileSync(`${dir}/infra-app-upstream.conf`, fileAt(files, APP_PATHS.upstream).content)
  units.forEach((u, i) => {
    writeFileSync(`${dir}/infra-apps/${u.key}.conf`, move(unitNginxConf(u, healthOf(u))))
    writeFileSync(`${dir}/infra-apps/${u.key}.upstream`, `# Written by infra-app switch: the current release (v${i + 1}).\nserver 127.0.0.1:${slot(u, i)};\n`)
  })
  const r = space!.inNs(['ip', 'addr', 'replace', `${node.address}/32`, 'dev', 'lo'])
  expect(r.code, r.output).toBe(0)
  return {site, siteText, listen: fileAt(files, NGINX_LISTEN_FILE)}
}

describe('a node\'s nginx with the units\' server blocks', () => {
  it('the listen file is the node\'s private address and web port, and names the node in X-Served-By', () => {
    const files = desiredState(context(inv, {fleet: testFleetPki()}), hostsByName(inv)[node.name]).files
    expect(fileAt(files, NGINX_LISTEN_FILE).content.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([`listen ${node.address}:${inv.web.port};`, `add_header X-Served-By ${node.name} always;`])
    expect(fileAt(files, NGINX_LISTEN_FILE).notify).toEqual([{service: 'nginx', action: 'reload'}])
  })

  it('nginx -t accepts the site with every unit (prod, environments, a preview) and their upstreams; without the site\'s map, or with a broken upstream, it fails', () => {
    const dir = caseDir()
    const {site, siteText} = nodeCase(dir, (_u, i) => 9300 + i)
    expect(readdirSync(`${dir}/infra-apps`)).toHaveLength(2 * units.length)
    const ok = runValidate(site, `${dir}/stage`, siteText, wrap)
    expect(ok.code, ok.output).toBe(0)
    expect(ok.output).not.toMatch(/conflicting server name|warn/i)

    // The server blocks use the site's map $infra_connection_upgrade and log_format infra_journal.
    const noMap = siteText.replace(/map \$http_upgrade \$infra_connection_upgrade \{[^}]*\}/, '')
    expect(noMap).not.toContain('$infra_connection_upgrade {')
    const bad = runValidate(site, `${dir}/stage`, noMap, wrap)
    expect(bad.code).not.toBe(0)
    expect(bad.output).toMatch(/unknown "infra_connection_upgrade" variable/)
    const noFormat = runValidate(site, `${dir}/stage`, siteText.replace(/^log_format infra_journal .*$/m, ''), wrap)
    expect(noFormat.code).not.toBe(0)
    expect(noFormat.output).toMatch(/unknown log format "infra_journal"/)

    writeFileSync(`${dir}/infra-apps/shop--preprod.upstream`, 'server 127.0.0.1:notaport;\n')
    const broken = runValidate(site, `${dir}/stage`, siteText, wrap)
    expect(broken.code).not.toBe(0)
    expect(broken.output).toMatch(/shop--preprod\.upstream/)
  })

  describe('nginx serving it (throwaway namespace)', () => {
    let dir: string
    const port = (i: number) => 9300 + i
    beforeAll(async () => {
      dir = caseDir()
      const {siteText} = nodeCase(dir, (_u, i) => port(i))
      writeFileSync(`${dir}/nginx/conf.d/infra.conf`, siteText)
      writeFileSync(`${dir}/www/index.html`, 'the default server\n')
      // The units' containers: one server per slot answering with its port and the path.
      const slots = units.map((_u, i) => `server { listen 127.0.0.1:${port(i)}; location / { return 200 "slot ${port(i)} $request_uri\\n"; } }`).join('\n')
      writeFileSync(`${dir}/nginx/conf.d/zz-slots.conf`, `${slots}\nserver { listen 127.0.0.1:9201; location / { return 200 "the single app\\n"; } }\n`)
      space!.start(['nginx', '-c', `${dir}/nginx/nginx.conf`, '-g', 'daemon off;'], 'nginx')
      await until('nginx listening', () => (get('example.com', '/').code === 0 ? true : undefined))
    })

    function get(host: string, p: string) {
      const r = spawnSync('ip', ['netns', 'exec', space!.ns, 'curl', '-sS', '--max-time', '3', '-H', `Host: ${host}`, `http://${node.address}:${inv.web.port}${p}`], {encoding: 'utf8'})
      return {code: r.status, body: r.stdout}
    }

    it('routes each unit\'s host name (any case, with a port) to its slot, the health path too; any other name to the default server', () => {
      units.forEach((u, i) => {
        expect(get(u.hosts[0], '/a?b=1').body, u.key).toBe(`slot ${port(i)} /a?b=1\n`)
        expect(get(`${u.hosts[0].toUpperCase()}:443`, healthOf(u)).body, u.key).toBe(`slot ${port(i)} ${healthOf(u)}\n`)
      })
      expect(units.map((u) => u.hosts[0])).toContain('feature-login.preview.shop.example.com')
      // The top-level domain is the single app (the default server); so is a name no unit has.
      expect(get('example.com', '/x').body).toBe('the single app\n')
      expect(get('other-preview.preview.shop.example.com', '/x').body).toBe('the single app\n')
      expect(get('www.shop.example.com', '/x').body).toBe('the single app\n')
    })
  })
})

describe('infra-app -u KEY (run for real, its state folder and lock moved)', () => {
  const script = fileAt(appWebFiles(context(inventory(TWO_SITES), {fleet: testFleetPki()})), APP_PATHS.script).content

  function infraApp(dir: string, ...args: string[]) {
    const file = path.join(dir, 'infra-app')
    for (const p of [UNITS_DIR, NGINX_UNITS_DIR, APP_PATHS.stateDir, '/run/infra-app.lock']) expect(script).toContain(p)
    const moved = script
      .replaceAll(UNITS_DIR, `${dir}/apps`)
      .replaceAll(NGINX_UNITS_DIR, `${dir}/nginx-apps`)
      .replaceAll(`STATE=${APP_PATHS.stateDir}\n`, `STATE=${dir}/app\n`)
      .replaceAll('/run/infra-app.lock', `${dir}/infra-app.lock`)
    writeFileSync(file, moved, {mode: 0o755})
    const r = spawnSync('bash', ['--norc', file, ...args], {encoding: 'utf8', timeout: 10_000})
    return {code: r.status, stdout: r.stdout, stderr: r.stderr}
  }

  it('refuses a unit name that is not a unit key (exit 2), before anything else', () => {
    const dir = caseDir()
    for (const bad of ['Shop', '../etc', 'shop/x', 'shop;reboot', '-x', '', 'a'.repeat(122)]) {
      expect(infraApp(dir, '-u', bad, 'status'), bad).toEqual({code: 2, stdout: '', stderr: `infra-app: not a unit: ${bad}\n`})
    }
    expect(infraApp(dir, '-u')).toEqual({code: 2, stdout: '', stderr: 'infra-app: not a unit: \n'})
    expect(infraApp(dir, '-u', 'shop', 'launch')).toMatchObject({code: 2, stderr: expect.stringContaining('usage: infra-app [-u UNIT]')})
    expect(readdirSync(dir)).toEqual(['infra-app'])
  })

  it('refuses destroy without -u (exit 2): the single app is not removed that way', () => {
    const dir = caseDir()
    mkdirSync(`${dir}/app`)
    writeFileSync(`${dir}/app/current`, 'v1\n')
    expect(infraApp(dir, 'destroy')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'infra-app: destroy is for a unit (-u KEY); the single app is removed by removing app from the inventory\n',
    })
    expect(readFileSync(`${dir}/app/current`, 'utf8')).toBe('v1\n')
  })

  it('status of a unit with no release: release=none, exit 0, nothing written', () => {
    const dir = caseDir()
    for (const key of ['shop', 'shop--preprod', 'shop--p-feature-login']) {
      expect(infraApp(dir, '-u', key, 'status'), key).toEqual({code: 0, stdout: 'release=none state=missing health=failed restarts=0 exit=0\n', stderr: ''})
    }
    expect(existsSync(`${dir}/apps`)).toBe(false)
  })

  it('status reads the unit\'s own state, not the single app\'s nor another unit\'s', () => {
    const dir = caseDir()
    mkdirSync(`${dir}/app`)
    writeFileSync(`${dir}/app/current`, 'v9\n')
    mkdirSync(`${dir}/apps/shop--preprod`, {recursive: true})
    writeFileSync(`${dir}/apps/shop--preprod/current`, 'v3\n')
    // No container here (no Docker on the script's PATH): the release is known, its container missing.
    expect(infraApp(dir, '-u', 'shop--preprod', 'status').stdout).toBe('release=v3 state=missing health=failed restarts=0 exit=0\n')
    expect(infraApp(dir, '-u', 'shop', 'status').stdout).toBe('release=none state=missing health=failed restarts=0 exit=0\n')
    expect(infraApp(dir, 'status').stdout).toBe('release=v9 state=missing health=failed restarts=0 exit=0\n')
  })

  it('units-up with no unit on the node does nothing, successfully', () => {
    const dir = caseDir()
    expect(infraApp(dir, 'units-up')).toEqual({code: 0, stdout: '', stderr: ''})
  })
})
