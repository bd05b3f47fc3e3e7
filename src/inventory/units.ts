/**
 * Deploy units (docs/SITES.md): what `infra deploy` deploys, derived from the inventory. The
 * single app of an inventory with `app` is one unit (key undefined, the historical layout); each
 * site is one (key = its name, environment "prod"), each of its environments one more
 * ("shop--preprod"), and each preview of a branch one ("shop--p-<slug>", made at deploy time).
 */
import {type UnitPaths, unitPaths} from '../host/paths.js'
import type {Inventory} from './schema.js'
import {PROD_ENV, type SiteSpec} from './schema/sites.js'

export type AppSpec = NonNullable<Inventory['app']>

export interface DeployUnit {
  /** undefined for the single app. */
  readonly key: string | undefined
  /** The site's name (undefined for the single app). */
  readonly site: string | undefined
  /** "prod", an environment's name, or "preview". */
  readonly env: string
  /** The branch of a preview. */
  readonly branch?: string
  /** The host names routed to the unit, the canonical one first (aliases are redirected, never routed). */
  readonly hosts: readonly string[]
  /** The site's aliases (prod only): redirected to hosts[0]. */
  readonly aliases: readonly string[]
  /** The application, with the environment's values merged in. */
  readonly app: AppSpec
  /** The secrets file (relative to the inventory's folder). */
  readonly secretsFile: string
  /** The web nodes the unit runs on, in web.nodes order. */
  readonly nodes: readonly string[]
  readonly paths: UnitPaths
  /** The HAProxy backend that serves it. */
  readonly backend: string
  /** The site's Docker network on the nodes (undefined for the single app: Docker's default bridge). */
  readonly network: string | undefined
  /** A human name: "shop", "shop (preprod)", "app". */
  readonly label: string
}

/** The key of a site's environment: the site's name for prod, "SITE--ENV" otherwise. */
export function unitKey(site: string, env: string): string {
  return env === PROD_ENV ? site : `${site}--${env}`
}

/** The HAProxy backend of a site's environment: "site_shop", "site_shop__preprod". */
export function siteBackend(site: string, env: string = PROD_ENV): string {
  return env === PROD_ENV ? `site_${site}` : `site_${site}__${env}`
}

/** The backend every preview of a site shares (nginx on the nodes routes by host name). */
export function previewsBackend(site: string): string {
  return `site_${site}__previews`
}

/** The Docker network of a site on its nodes: its containers see each other, no other site's. */
export function siteNetwork(site: string): string {
  return `infra-${site}`
}

function nodesOf(inv: Inventory, wanted: readonly string[] | undefined): string[] {
  const all = inv.web.nodes.map((n) => n.name)
  return wanted ? all.filter((n) => wanted.includes(n)) : all
}

export function singleAppUnit(inv: Inventory): DeployUnit | undefined {
  if (!inv.app) return undefined
  return Object.freeze({
    key: undefined,
    site: undefined,
    env: PROD_ENV,
    hosts: [inv.domain.toLowerCase()],
    aliases: inv.aliases.map((a) => a.toLowerCase()),
    app: inv.app,
    secretsFile: inv.app.secretsFile,
    nodes: nodesOf(inv, undefined),
    paths: unitPaths(undefined),
    backend: 'web',
    network: undefined,
    label: 'app',
  })
}

export function siteUnit(inv: Inventory, name: string, env: string = PROD_ENV): DeployUnit {
  const site: SiteSpec | undefined = (inv.sites ?? {})[name]
  if (!site) throw new Error(`no site ${name}`)
  const key = unitKey(name, env)
  const common = {key, site: name, paths: unitPaths(key), network: siteNetwork(name)}
  if (env === PROD_ENV) {
    return Object.freeze({
      ...common,
      env,
      hosts: [site.domain.toLowerCase()],
      aliases: site.aliases.map((a) => a.toLowerCase()),
      app: site.app,
      secretsFile: site.app.secretsFile,
      nodes: nodesOf(inv, site.nodes),
      backend: siteBackend(name),
      label: name,
    })
  }
  const e = site.environments[env]
  if (!e) throw new Error(`no environment ${env} in site ${name}`)
  return Object.freeze({
    ...common,
    env,
    hosts: [(e.domain ?? `${env}.${site.domain}`).toLowerCase()],
    aliases: [],
    app: {...site.app, env: {...site.app.env, ...e.env}, secrets: e.secrets ?? site.app.secrets},
    secretsFile: e.secretsFile ?? `secrets.${name}.${env}.env`,
    nodes: nodesOf(inv, e.nodes ?? site.nodes),
    backend: siteBackend(name, env),
    label: `${name} (${env})`,
  })
}

/** A preview of a site: its slug's host under previews.domain, the site's prod values and nodes. */
export function previewUnit(inv: Inventory, name: string, branch: string, slug: string): DeployUnit {
  const site = (inv.sites ?? {})[name]
  if (!site?.previews) throw new Error(`site ${name} has no previews`)
  const key = `${name}--p-${slug}`
  return Object.freeze({
    key,
    site: name,
    env: 'preview',
    branch,
    hosts: [`${slug}.${site.previews.domain.toLowerCase()}`],
    aliases: [],
    app: site.app,
    secretsFile: site.app.secretsFile,
    nodes: nodesOf(inv, site.nodes),
    paths: unitPaths(key),
    backend: previewsBackend(name),
    network: siteNetwork(name),
    label: `${name} (preview ${slug})`,
  })
}

/** Every unit the inventory declares (previews are made at deploy time): the single app, then each site's prod and environments. */
export function declaredUnits(inv: Inventory): DeployUnit[] {
  const units: DeployUnit[] = []
  const single = singleAppUnit(inv)
  if (single) units.push(single)
  for (const name of Object.keys(inv.sites ?? {})) {
    units.push(siteUnit(inv, name))
    for (const env of Object.keys(inv.sites[name].environments)) units.push(siteUnit(inv, name, env))
  }
  return units
}

/** Does any host run containers (an app or a site)? */
export function hasApps(inv: Inventory): boolean {
  return inv.app !== undefined || Object.keys(inv.sites ?? {}).length > 0
}
