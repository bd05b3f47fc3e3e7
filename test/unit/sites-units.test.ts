/**
 * Deploy units of an inventory with sites (src/inventory/units.ts): their keys, host names, values,
 * secrets, nodes, backends, networks and paths; the cross-key checks of `sites`
 * (src/inventory/cross-check-sites.ts) as a user sees them from `infra validate`; and what
 * `infra deploy [SITE] [--env ENV]` resolves to (src/tasks/deploy/target.ts). Every inventory goes
 * through the real validator, from YAML text.
 */
import {describe, expect, it} from 'vitest'

import {unitPaths} from '../../src/host/paths.js'
import type {LoadedInventory} from '../../src/inventory/load.js'
import type {Inventory} from '../../src/inventory/schema.js'
import {declaredUnits, type DeployUnit, hasApps, previewUnit, singleAppUnit, siteUnit} from '../../src/inventory/units.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import {ConfigError, UsageError} from '../../src/lib/errors.js'
import {resolveTarget, unitView} from '../../src/tasks/deploy/target.js'

/** Lines 1–10: a bastion and three web nodes, web3 on standby. */
const FLEET = `domain: example.com
aliases: [www.example.com]
bastion:
  publicAddress: 203.0.113.10
  privateAddress: 10.10.0.1
web:
  nodes:
    - {name: web1, address: 10.10.0.11}
    - {name: web2, address: 10.10.0.12}
    - {name: web3, address: 10.10.0.13, standby: true}
`

/** Lines 11–34 after FLEET. Names in mixed case on purpose: every host name of a unit is lower case. */
const SITES = `sites:
  shop:
    domain: Shop.Example.com
    aliases: [WWW.shop.example.com]
    app:
      image: shop
      port: 3000
      env: {STAGE: prod, LOG: info}
      secrets: [STRIPE_KEY]
      secretsFile: secrets.shop.env
    environments:
      preprod:
        env: {STAGE: preprod, FEATURE: 1}
      debug:
        domain: Debug-Shop.example.com
        nodes: [web3, web1]
        secrets: [DEBUG_TOKEN]
        secretsFile: debug.env
    previews: {domain: Preview.shop.example.com}
  blog:
    domain: blog.example.org
    nodes: [web2, web1]
    app: {image: blog}
    environments: {dev: {}}
`

function valid(text: string): Inventory {
  const r = validateInventoryText(text, 'infra.yaml')
  expect(r.errors).toEqual([])
  return r.inventory!
}

const SITES_ONLY = valid(FLEET + SITES)
const APP_AND_SITES = valid(`${FLEET}app: {image: main, secrets: [DB_PASSWORD]}\n${SITES}`)
const APP_ONLY = valid(`${FLEET}app: {image: main}\n`)

const byKey = (inv: Inventory) => Object.fromEntries(declaredUnits(inv).map((u) => [u.key ?? '(app)', u]))

describe('declaredUnits', () => {
  it('is the single app first, then each site and its environments in the file\'s order', () => {
    expect(declaredUnits(SITES_ONLY).map((u) => u.key)).toEqual(['shop', 'shop--preprod', 'shop--debug', 'blog', 'blog--dev'])
    expect(declaredUnits(APP_AND_SITES).map((u) => u.key)).toEqual([undefined, 'shop', 'shop--preprod', 'shop--debug', 'blog', 'blog--dev'])
    expect(declaredUnits(APP_ONLY).map((u) => u.key)).toEqual([undefined])
    expect(declaredUnits(valid(FLEET))).toEqual([])
    expect(declaredUnits(APP_AND_SITES).map((u) => `${u.site ?? '-'} ${u.env} ${u.label}`)).toEqual([
      '- prod app',
      'shop prod shop',
      'shop preprod shop (preprod)',
      'shop debug shop (debug)',
      'blog prod blog',
      'blog dev blog (dev)',
    ])
  })

  it('gives each unit its own folder, upstream, server block, history, lock, backend and containers', () => {
    const units = declaredUnits(APP_AND_SITES)
    for (const field of ['stateDir', 'upstream', 'history', 'deployLock', 'containerPrefix', 'script'] as const) {
      const values = units.map((u) => u.paths[field])
      expect(new Set(values).size, field).toBe(units.length)
    }
    expect(new Set(units.map((u) => u.backend)).size).toBe(units.length)
    expect(units.map((u) => u.hosts[0])).toEqual([
      'example.com',
      'shop.example.com',
      'preprod.shop.example.com',
      'debug-shop.example.com',
      'blog.example.org',
      'dev.blog.example.org',
    ])
  })

  it('returns frozen units', () => {
    for (const u of declaredUnits(APP_AND_SITES)) expect(Object.isFrozen(u), u.label).toBe(true)
  })
})

describe('siteUnit: prod is the site itself', () => {
  const shop = byKey(SITES_ONLY).shop

  it('has the site\'s name as key, its apex (lower case) and its aliases', () => {
    expect(shop).toMatchObject({key: 'shop', site: 'shop', env: 'prod', label: 'shop', hosts: ['shop.example.com'], aliases: ['www.shop.example.com']})
    expect(shop.branch).toBeUndefined()
  })

  it('runs the site\'s app as declared, with the site\'s secrets file', () => {
    expect(shop.app).toBe(SITES_ONLY.sites.shop.app)
    expect(shop.app).toMatchObject({image: 'shop', port: 3000, env: {STAGE: 'prod', LOG: 'info'}, secrets: ['STRIPE_KEY']})
    expect(shop.secretsFile).toBe('secrets.shop.env')
    // A site that names no secrets file gets app.secretsFile's default.
    expect(byKey(SITES_ONLY).blog.secretsFile).toBe('secrets.env')
  })

  it('runs on every web node (standby ones too) unless the site names its nodes, always in web.nodes order', () => {
    expect(shop.nodes).toEqual(['web1', 'web2', 'web3'])
    expect(byKey(SITES_ONLY).blog.nodes).toEqual(['web1', 'web2'])
  })

  it('has the backend site_NAME and the Docker network infra-NAME', () => {
    expect(shop.backend).toBe('site_shop')
    expect(shop.network).toBe('infra-shop')
    expect(byKey(SITES_ONLY).blog).toMatchObject({backend: 'site_blog', network: 'infra-blog'})
  })

  it('keeps its files under its key', () => {
    expect(shop.paths).toEqual({
      key: 'shop',
      script: '/usr/local/sbin/infra-app -u shop',
      stateDir: '/var/lib/infra/apps/shop',
      releasesDir: '/var/lib/infra/apps/shop/releases',
      upstream: '/etc/nginx/infra-apps/shop.upstream',
      nginxConf: '/etc/nginx/infra-apps/shop.conf',
      history: '/var/lib/infra/apps/shop/releases.json',
      deployLock: '/var/lib/infra/apps/shop/deploy.lock',
      containerPrefix: 'shop',
    })
    expect(shop.paths).toEqual(unitPaths('shop'))
  })
})

describe('siteUnit: an environment', () => {
  const units = byKey(SITES_ONLY)

  it('answers at "<env>.<site domain>" by default, or at its own domain; never at the aliases', () => {
    expect(units['shop--preprod']).toMatchObject({key: 'shop--preprod', site: 'shop', env: 'preprod', label: 'shop (preprod)', hosts: ['preprod.shop.example.com'], aliases: []})
    expect(units['shop--debug']).toMatchObject({hosts: ['debug-shop.example.com'], aliases: []})
    expect(units['blog--dev'].hosts).toEqual(['dev.blog.example.org'])
  })

  it('merges its env values over the site\'s app.env, and leaves the site\'s own values alone', () => {
    const app = units['shop--preprod'].app
    expect(app.env).toEqual({STAGE: 'preprod', LOG: 'info', FEATURE: '1'})
    expect(app).toMatchObject({image: 'shop', port: 3000})
    expect(units['shop--debug'].app.env).toEqual({STAGE: 'prod', LOG: 'info'})
    expect(SITES_ONLY.sites.shop.app.env).toEqual({STAGE: 'prod', LOG: 'info'})
  })

  it('has the site\'s secret names and "secrets.<site>.<env>.env" unless it names its own', () => {
    expect(units['shop--preprod'].app.secrets).toEqual(['STRIPE_KEY'])
    expect(units['shop--preprod'].secretsFile).toBe('secrets.shop.preprod.env')
    expect(units['blog--dev'].secretsFile).toBe('secrets.blog.dev.env')
    expect(units['shop--debug'].app.secrets).toEqual(['DEBUG_TOKEN'])
    expect(units['shop--debug'].secretsFile).toBe('debug.env')
  })

  it('runs on its own nodes, else the site\'s, in web.nodes order', () => {
    expect(units['shop--preprod'].nodes).toEqual(['web1', 'web2', 'web3'])
    expect(units['shop--debug'].nodes).toEqual(['web1', 'web3'])
    expect(units['blog--dev'].nodes).toEqual(['web1', 'web2'])
  })

  it('has its own backend and paths, and the site\'s network', () => {
    const preprod = units['shop--preprod']
    expect(preprod).toMatchObject({backend: 'site_shop__preprod', network: 'infra-shop'})
    expect(preprod.paths).toMatchObject({
      script: '/usr/local/sbin/infra-app -u shop--preprod',
      stateDir: '/var/lib/infra/apps/shop--preprod',
      upstream: '/etc/nginx/infra-apps/shop--preprod.upstream',
      nginxConf: '/etc/nginx/infra-apps/shop--preprod.conf',
      history: '/var/lib/infra/apps/shop--preprod/releases.json',
      containerPrefix: 'shop--preprod',
    })
    expect(units['blog--dev'].backend).toBe('site_blog__dev')
  })

  it('is refused for a site or an environment the inventory does not declare', () => {
    expect(() => siteUnit(SITES_ONLY, 'shopp')).toThrow('no site shopp')
    expect(() => siteUnit(SITES_ONLY, 'shop', 'staging')).toThrow('no environment staging in site shop')
  })
})

describe('previewUnit', () => {
  it('answers at "<slug>.<previews domain>" with the site\'s prod app, secrets and nodes', () => {
    const p = previewUnit(SITES_ONLY, 'shop', 'feature/Login', 'feature-login')
    expect(p).toMatchObject({
      key: 'shop--p-feature-login',
      site: 'shop',
      env: 'preview',
      branch: 'feature/Login',
      hosts: ['feature-login.preview.shop.example.com'],
      aliases: [],
      secretsFile: 'secrets.shop.env',
      nodes: ['web1', 'web2', 'web3'],
      backend: 'site_shop__previews',
      network: 'infra-shop',
      label: 'shop (preview feature-login)',
    })
    expect(p.app).toBe(SITES_ONLY.sites.shop.app)
    expect(p.paths).toEqual(unitPaths('shop--p-feature-login'))
    expect(p.paths.nginxConf).toBe('/etc/nginx/infra-apps/shop--p-feature-login.conf')
    expect(Object.isFrozen(p)).toBe(true)
  })

  it('runs on the site\'s nodes', () => {
    const inv = valid(FLEET + SITES.replace('    nodes: [web2, web1]\n', '    nodes: [web2, web1]\n    previews: {domain: pr.blog.example.org}\n'))
    expect(previewUnit(inv, 'blog', 'main', 'main')).toMatchObject({hosts: ['main.pr.blog.example.org'], nodes: ['web1', 'web2'], backend: 'site_blog__previews'})
  })

  it('is refused for a site without previews', () => {
    expect(() => previewUnit(SITES_ONLY, 'blog', 'main', 'main')).toThrow('site blog has no previews')
    expect(() => previewUnit(SITES_ONLY, 'nope', 'main', 'main')).toThrow('site nope has no previews')
  })
})

describe('singleAppUnit', () => {
  it('is the historical layout: no key, the top-level domain and aliases, backend web, Docker\'s default network', () => {
    const u = singleAppUnit(APP_AND_SITES)!
    expect(u).toMatchObject({key: undefined, site: undefined, env: 'prod', label: 'app', hosts: ['example.com'], aliases: ['www.example.com'], backend: 'web', network: undefined})
    expect(u.app).toBe(APP_AND_SITES.app)
    expect(u.secretsFile).toBe('secrets.env')
    expect(u.nodes).toEqual(['web1', 'web2', 'web3'])
    expect(u.paths).toEqual({
      key: undefined,
      script: '/usr/local/sbin/infra-app',
      stateDir: '/var/lib/infra/app',
      releasesDir: '/var/lib/infra/app/releases',
      upstream: '/etc/nginx/infra-app-upstream.conf',
      nginxConf: undefined,
      history: '/var/lib/infra/app/releases.json',
      deployLock: '/var/lib/infra/app/deploy.lock',
      containerPrefix: 'app',
    })
  })

  it('is undefined without app; hasApps is true with an app or a site', () => {
    expect(singleAppUnit(SITES_ONLY)).toBeUndefined()
    expect([hasApps(SITES_ONLY), hasApps(APP_ONLY), hasApps(APP_AND_SITES), hasApps(valid(FLEET)), hasApps(valid(`${FLEET}sites: {}\n`))]).toEqual([true, true, true, false, false])
  })
})

describe('unitPaths', () => {
  it('refuses a key that is not a unit key (it becomes a path and a shell word)', () => {
    for (const bad of ['Shop', '../etc', 'shop/x', 'shop x', '', '-shop', '1shop']) expect(() => unitPaths(bad), bad).toThrow(`not a unit key: ${bad}`)
  })
})

/** Lines of FLEET + BASE_SITES: shop on lines 12–19, blog on lines 20–22. */
const BASE_SITES = `sites:
  shop:
    domain: shop.example.com
    aliases: [www.shop.example.com]
    app: {image: shop}
    environments:
      preprod: {}
      debug: {domain: debug-shop.example.com}
    previews: {domain: preview.shop.example.com}
  blog:
    domain: blog.example.org
    app: {image: blog}
`
const BASE = FLEET + BASE_SITES

function edit(from: string, to: string, text = BASE): string {
  const parts = text.split(from)
  if (parts.length !== 2) throw new Error(`"${from}" occurs ${parts.length - 1} times`)
  return parts.join(to)
}

const SAME = 'each name belongs to one site or environment'

const CASES: [title: string, text: string, errors: string[]][] = [
  ['a site on the top-level domain (in other case)', edit('domain: blog.example.org', 'domain: Example.COM'), [
    `infra.yaml:21:13 sites.blog.domain: "example.com" is already served by domain; ${SAME}`,
  ]],
  ['a site on a top-level alias', edit('domain: blog.example.org', 'domain: www.example.com'), [
    `infra.yaml:21:13 sites.blog.domain: "www.example.com" is already served by aliases[0]; ${SAME}`,
  ]],
  ['a site on another site\'s alias', edit('domain: blog.example.org', 'domain: www.shop.example.com'), [
    `infra.yaml:21:13 sites.blog.domain: "www.shop.example.com" is already served by sites.shop.aliases[0]; ${SAME}`,
  ]],
  ['an alias that is another site\'s domain', edit('    app: {image: blog}', '    aliases: [blog.example.net, shop.example.com]\n    app: {image: blog}'), [
    `infra.yaml:22:33 sites.blog.aliases[1]: "shop.example.com" is already served by sites.shop.domain; ${SAME}`,
  ]],
  ['a site on another site\'s environment default name', edit('domain: blog.example.org', 'domain: preprod.shop.example.com'), [
    `infra.yaml:21:13 sites.blog.domain: "preprod.shop.example.com" is already served by sites.shop.environments.preprod; ${SAME}`,
  ]],
  ['an environment whose default name is the site\'s alias', edit('    app: {image: blog}', '    aliases: [www.blog.example.org]\n    app: {image: blog}\n    environments: {www: {}}'), [
    `infra.yaml:24:25 sites.blog.environments.www.domain (default): "www.blog.example.org" is already served by sites.blog.aliases[0]; ${SAME}`,
  ]],
  ['an environment whose domain is another site\'s', edit('{domain: debug-shop.example.com}', '{domain: blog.example.org}'), [
    `infra.yaml:21:13 sites.blog.domain: "blog.example.org" is already served by sites.shop.environments.debug; ${SAME}`,
  ]],
  ['an environment named prod', edit('      preprod: {}', '      prod: {}'), [
    'infra.yaml:17:13 sites.shop.environments.prod: "prod" is the site itself (its domain, app and nodes); name the other environments, e.g. preprod',
  ]],
  ['an environment named previews (the previews backend\'s name)', edit('      preprod: {}', '      previews: {}'), [
    'infra.yaml:17:17 sites.shop.environments.previews: "previews" is the name of the site\'s previews backend; name the environment otherwise (e.g. preview, review)',
  ]],
  ['site nodes naming an unknown web node', edit('    app: {image: blog}', '    nodes: [web1, web9]\n    app: {image: blog}'), [
    'infra.yaml:22:19 sites.blog.nodes[1]: "web9" is not a web node (web.nodes has web1, web2, web3)',
  ]],
  ['environment nodes naming an unknown web node', edit('      preprod: {}', '      preprod: {nodes: [bastion]}'), [
    'infra.yaml:17:25 sites.shop.environments.preprod.nodes[0]: "bastion" is not a web node (web.nodes has web1, web2, web3)',
  ]],
  ['a previews domain over the site\'s own names', edit('{domain: preview.shop.example.com}', '{domain: shop.example.com}'), [
    'infra.yaml:19:24 sites.shop.previews.domain: "shop.example.com" would take "www.shop.example.com" (sites.shop.aliases[0]): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
    'infra.yaml:19:24 sites.shop.previews.domain: "shop.example.com" would take "preprod.shop.example.com" (sites.shop.environments.preprod): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
  ]],
  ['a previews domain over the top-level alias', edit('{domain: preview.shop.example.com}', '{domain: example.com}'), [
    'infra.yaml:19:24 sites.shop.previews.domain: "example.com" would take "www.example.com" (aliases[0]): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
    'infra.yaml:19:24 sites.shop.previews.domain: "example.com" would take "shop.example.com" (sites.shop.domain): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
    'infra.yaml:19:24 sites.shop.previews.domain: "example.com" would take "www.shop.example.com" (sites.shop.aliases[0]): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
    'infra.yaml:19:24 sites.shop.previews.domain: "example.com" would take "preprod.shop.example.com" (sites.shop.environments.preprod): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
    'infra.yaml:19:24 sites.shop.previews.domain: "example.com" would take "debug-shop.example.com" (sites.shop.environments.debug): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
  ]],
  // The same name, whatever the order of the sites in the file.
  ['a later site on a name under an earlier site\'s previews domain', edit('domain: blog.example.org', 'domain: blog.preview.shop.example.com'), [
    'infra.yaml:19:24 sites.shop.previews.domain: "preview.shop.example.com" would take "blog.preview.shop.example.com" (sites.blog.domain): a preview name could shadow it; choose a domain of its own, e.g. "preview.shop.example.com"',
  ]],
  ['an earlier site on a name under a later site\'s previews domain', edit('domain: shop.example.com\n', 'domain: shop.pr.blog.example.org\n', edit('    app: {image: blog}', '    app: {image: blog}\n    previews: {domain: pr.blog.example.org}')), [
    'infra.yaml:23:24 sites.blog.previews.domain: "pr.blog.example.org" would take "shop.pr.blog.example.org" (sites.shop.domain): a preview name could shadow it; choose a domain of its own, e.g. "preview.blog.example.org"',
    'infra.yaml:23:24 sites.blog.previews.domain: "pr.blog.example.org" would take "preprod.shop.pr.blog.example.org" (sites.shop.environments.preprod): a preview name could shadow it; choose a domain of its own, e.g. "preview.blog.example.org"',
  ]],
  ['two sites with the same previews domain', edit('    app: {image: blog}', '    app: {image: blog}\n    previews: {domain: Preview.shop.example.com}'), [
    `infra.yaml:23:24 sites.blog.previews.domain: "*.preview.shop.example.com" is already served by sites.shop.previews.domain; ${SAME}`,
  ]],
]

describe('validateInventoryText: the sites cross-checks, one exact message per mistake', () => {
  it('accepts the base inventory', () => {
    expect(valid(BASE).sites.shop.environments.preprod).toEqual({env: {}})
  })

  it.each(CASES)('%s', (_title, text, expected) => {
    const r = validateInventoryText(text, 'infra.yaml')
    expect(r.errors).toEqual(expected)
    expect(r.inventory).toBeUndefined()
  })

  it('names the file as given', () => {
    expect(validateInventoryText(edit('      preprod: {}', '      prod: {}'), 'fleet/infra.yaml').errors).toEqual([
      expect.stringMatching(/^fleet\/infra\.yaml:17:13 sites\.shop\.environments\.prod: /),
    ])
  })
})

describe('validateInventoryText: site and environment names', () => {
  const rename = (name: string) => edit('  blog:\n', `  ${name}:\n`)
  const nameErrors = (name: string) => validateInventoryText(rename(name), 'infra.yaml').errors

  it.each(['Shop', 'a--b', 'app', 'web', '1blog', 'blog-', 'b'.repeat(25)])('refuses the site name %j at its key (file:line:col)', (name) => {
    const errors = nameErrors(name)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(new RegExp(`^infra\\.yaml:21:\\d+ sites\\.${name}: "${name}" `))
    expect(validateInventoryText(rename(name)).inventory).toBeUndefined()
  })

  it.each(['a', 'blog-2', 'my-shop', 'b'.repeat(24)])('accepts the site name %j', (name) => {
    expect(nameErrors(name)).toEqual([])
  })

  it('refuses an environment name with capitals or a "-" at its key', () => {
    for (const env of ['Preprod', 'pre-prod']) {
      const errors = validateInventoryText(edit('      preprod: {}', `      ${env}: {}`), 'infra.yaml').errors
      expect(errors, env).toEqual([expect.stringMatching(new RegExp(`^infra\\.yaml:17:\\d+ sites\\.shop\\.environments\\.${env}: "${env}" `))])
    }
  })

  // The record's own error keeps the key schema's reason (not '"app" is not a mapping of site name: site').
  it.each([
    ['Shop', 'is not a site name'],
    ['a--b', 'has "--", which infra keeps to join a site and an environment'],
    ['app', 'is reserved'],
  ])('says why the site name %j is refused', (name, why) => {
    expect(nameErrors(name)[0]).toContain(`"${name}" ${why}`)
  })
})

/** An inventory as the loader returns it. */
function loaded(inv: Inventory): LoadedInventory {
  return {path: '/srv/fleet/infra.yaml', dir: '/srv/fleet', inventory: inv, knownHostsPath: '/srv/fleet/known_hosts'}
}

function usageError(fn: () => unknown): UsageError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(2)
    return error as UsageError
  }
  throw new Error('no error was thrown')
}

describe('resolveTarget: what `infra deploy [SITE] [--env ENV]` deploys', () => {
  it('no site: the single app, the inventory as it is', () => {
    const l = loaded(APP_AND_SITES)
    const t = resolveTarget(l, undefined, undefined)
    expect(t.unit.key).toBeUndefined()
    expect(t.unit.label).toBe('app')
    expect(t.loaded).toBe(l)
  })

  it('no site and only sites: exit 2 naming the sites, with an example', () => {
    const e = usageError(() => resolveTarget(loaded(SITES_ONLY)))
    expect(e.message).toBe('name the site to deploy (sites: shop, blog)')
    expect(e.hint).toBe('e.g. `infra deploy shop --build .`')
  })

  it('no site, no app, no sites: a configuration error (exit 2)', () => {
    let caught: unknown
    try {
      resolveTarget(loaded(valid(FLEET)))
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(ConfigError)
    expect((caught as ConfigError).exitCode).toBe(2)
    expect((caught as Error).message).toBe('/srv/fleet/infra.yaml: there is no app to deploy (no "app:" section)')
  })

  it('--env without a site: exit 2 listing the sites', () => {
    const e = usageError(() => resolveTarget(loaded(APP_AND_SITES), undefined, 'preprod'))
    expect(e.message).toBe('--env needs a site: `infra deploy SITE --env ENV`')
    expect(e.hint).toBe('Sites: shop, blog.')
  })

  it('an unknown site: exit 2 naming the sites, and the closest one', () => {
    const e = usageError(() => resolveTarget(loaded(SITES_ONLY), 'shpo'))
    expect(e.message).toBe('/srv/fleet/infra.yaml: there is no site "shpo" (sites: shop, blog)')
    expect(e.hint).toBe('Did you mean shop?')
    const far = usageError(() => resolveTarget(loaded(SITES_ONLY), 'newsletter'))
    expect(far.hint).toMatch(/^Add one with `infra site add NAME/)
    expect(usageError(() => resolveTarget(loaded(APP_ONLY), 'shop')).message).toBe('/srv/fleet/infra.yaml: there is no site "shop" (no "sites:" section)')
  })

  it('an unknown environment: exit 2 listing the site\'s environments, prod first', () => {
    const e = usageError(() => resolveTarget(loaded(SITES_ONLY), 'shop', 'preprd'))
    expect(e.message).toBe('site shop has no environment "preprd" (it has prod, preprod, debug)')
    expect(e.hint).toBe('Did you mean preprod?')
    const other = usageError(() => resolveTarget(loaded(SITES_ONLY), 'blog', 'staging'))
    expect(other.message).toBe('site blog has no environment "staging" (it has prod, dev)')
    expect(other.hint).toBe('Declare it under sites.blog.environments in /srv/fleet/infra.yaml, then run `infra provision`.')
  })

  it('a site, with or without --env prod: its prod unit', () => {
    expect(resolveTarget(loaded(SITES_ONLY), 'shop').unit).toEqual(siteUnit(SITES_ONLY, 'shop'))
    expect(resolveTarget(loaded(SITES_ONLY), 'shop', 'prod').unit.key).toBe('shop')
    expect(resolveTarget(loaded(APP_AND_SITES), 'blog', 'dev').unit.key).toBe('blog--dev')
  })

  it('the inventory seen from the unit: its app (merged values, its secrets file) and its nodes only', () => {
    const l = loaded(SITES_ONLY)
    const debug = resolveTarget(l, 'shop', 'debug')
    expect(debug.unit.key).toBe('shop--debug')
    const inv = debug.loaded.inventory
    expect(inv.web.nodes.map((n) => n.name)).toEqual(['web1', 'web3'])
    expect(inv.web.nodes[1]).toEqual({name: 'web3', address: '10.10.0.13', standby: true})
    expect(inv.app).toMatchObject({image: 'shop', port: 3000, env: {STAGE: 'prod', LOG: 'info'}, secrets: ['DEBUG_TOKEN'], secretsFile: 'debug.env'})
    expect(debug.loaded).toMatchObject({path: l.path, dir: l.dir, knownHostsPath: l.knownHostsPath})
    // The rest of the inventory is unchanged, and the loaded one is not touched.
    expect(inv.domain).toBe('example.com')
    expect(inv.web.port).toBe(SITES_ONLY.web.port)
    expect(SITES_ONLY.app).toBeUndefined()
    expect(SITES_ONLY.web.nodes).toHaveLength(3)
    const preprod = resolveTarget(l, 'shop', 'preprod').loaded.inventory
    expect(preprod.app).toMatchObject({env: {STAGE: 'preprod', LOG: 'info', FEATURE: '1'}, secretsFile: 'secrets.shop.preprod.env'})
    expect(preprod.web.nodes.map((n) => n.name)).toEqual(['web1', 'web2', 'web3'])
  })

  it('unitView of a preview: the site\'s nodes only', () => {
    const inv = valid(FLEET + SITES.replace('    nodes: [web2, web1]\n', '    nodes: [web2]\n    previews: {domain: pr.blog.example.org}\n'))
    const unit: DeployUnit = previewUnit(inv, 'blog', 'fix/x', 'fix-x')
    const view = unitView(loaded(inv), unit).inventory
    expect(view.web.nodes.map((n) => n.name)).toEqual(['web2'])
    expect(view.app).toMatchObject({image: 'blog', secretsFile: 'secrets.env'})
  })
})
