/**
 * The sites (`sites`; docs/SITES.md) on the bastion: one certificate per site chosen by SNI (a
 * crt-list), routing by host name to one backend per deploy unit (src/inventory/units.ts) and one
 * per site's previews, redirects, each site's own error pages, and the non-production names
 * (X-Robots-Tag; basic auth where `protect` says so). Pure: (inventory, the sites'
 * PEMs and error pages, already read by the caller) => template data and files.
 */
import {configOf} from '../inventory/config.js'
import type {Inventory} from '../inventory/schema.js'
import type {SiteSpec} from '../inventory/schema/sites.js'
import {declaredUnits, type DeployUnit, previewsBackend, siteUnit} from '../inventory/units.js'
import {ConfigError} from '../lib/errors.js'
import type {HostPaths} from '../host/paths.js'
import type {DesiredFile} from '../plan/types.js'
import {MANAGED, pathsOf, type RenderContext} from './common.js'
import {checkOverride, checkSize} from './error-pages.js'
import {siteCertNames} from '../tls/sites.js'

/** The crt-list of the https frontend once there are sites: the main certificate, then one line per site. */
export function crtListPath(p: Pick<HostPaths, 'haproxyCertDir'>): string {
  return `${p.haproxyCertDir}/crt-list.txt`
}

/** A site's PEM (certificate + key) on the bastion, named after its domain like the main one. */
export function sitePemPath(p: Pick<HostPaths, 'haproxyCertDir'>, site: SiteSpec): string {
  return `${p.haproxyCertDir}/${site.domain.toLowerCase()}.pem`
}

/** A site's error page on the bastion: `<error pages folder>/<site>/<code>.http`. */
export function siteErrorPagePath(p: Pick<HostPaths, 'haproxyErrorDir'>, name: string, code: number): string {
  return `${p.haproxyErrorDir}/${name}/${code}.http`
}

/** The `http-errors` section of a site's error pages. */
export function siteErrorsSection(name: string): string {
  return `site_${name}`
}

function lower(names: readonly string[]): string[] {
  return [...new Set(names.map((n) => n.toLowerCase()))]
}

/** A site's error pages: status code → the file named in the inventory. Only error statuses HAProxy can serve from a file. */
export function siteErrorCodes(site: SiteSpec, name: string): number[] {
  const codes = Object.keys(site.errorPages).map(Number).sort((a, b) => a - b)
  for (const code of codes) {
    if (code < 400) {
      throw new ConfigError(`sites.${name}.errorPages.${code}: ${code} is not an error status`, {
        hint: 'Give pages for error statuses only (4xx, 5xx), e.g. 404, 500, 503.',
      })
    }
  }
  return codes
}

function errorPageLabel(site: SiteSpec, name: string, code: number): string {
  return `sites.${name}.errorPages.${code} (${site.errorPages[String(code)]})`
}

/** The raw HTTP response HAProxy serves for a site's error page (an HTML file gets our status line and headers). */
export function renderSiteErrorPage(ctx: RenderContext, name: string, code: number): string {
  const site = ctx.inventory.sites[name]
  const label = errorPageLabel(site, name, code)
  const text = ctx.siteErrorPages?.[name]?.[code]
  if (text === undefined) throw new ConfigError(`${label}: the file was not read`, {hint: 'Provision, plan and doctor read it beside the inventory.'})
  return checkSize(checkOverride(code, text, label), label)
}

interface Server {
  name: string
  address: string
  port: number
  standby: boolean
}

/** A load-balanced backend as the template's `pool` section renders it (backend web too). */
export interface PoolData {
  name: string
  healthPath: string
  hostHeader: string
  servers: Server[]
  /** The http-errors section it uses ('' for none) and the codes whose server responses it replaces. */
  errors: string
  errorCodes: number[]
  /** Explain the settings in comments (backend web only: the same settings follow for each site). */
  explain: boolean
}

/** The servers of a backend: the named web nodes, in web.nodes order, standby ones disabled. */
export function poolServers(inv: Inventory, names?: readonly string[]): Server[] {
  return inv.web.nodes
    .filter((n) => names === undefined || names.includes(n.name))
    .map((n) => ({name: n.name, address: n.address, port: inv.web.port, standby: n.standby}))
}

function unitPool(inv: Inventory, unit: DeployUnit, errors: string, errorCodes: number[]): PoolData {
  return {
    name: unit.backend,
    healthPath: unit.app.healthCheck.path ?? configOf(inv).healthPath,
    hostHeader: unit.hosts[0],
    servers: poolServers(inv, unit.nodes),
    errors,
    errorCodes,
    explain: false,
  }
}

/** The site's previews backend: its nodes' default server answers the health path for the previews domain. */
function previewsPool(inv: Inventory, name: string, errors: string, errorCodes: number[]): PoolData | undefined {
  const site = inv.sites[name]
  if (!site.previews) return undefined
  return {
    name: previewsBackend(name),
    healthPath: configOf(inv).healthPath,
    hostHeader: site.previews.domain.toLowerCase(),
    servers: poolServers(inv, site.nodes),
    errors,
    errorCodes,
    explain: false,
  }
}

/** A host-name pattern for HAProxy's `-m reg`: dots as `[.]` (the config parser eats backslashes). */
function regexLiteral(s: string): string {
  return s.replaceAll('.', '[.]')
}

/** Every backend of the sites, by site (the units' backends, then the previews backend). */
function sitePools(inv: Inventory): {name: string; pools: PoolData[]}[] {
  const units = declaredUnits(inv)
  return Object.entries(inv.sites ?? {}).map(([name, site]) => {
    const codes = siteErrorCodes(site, name)
    const errors = codes.length > 0 ? siteErrorsSection(name) : ''
    const pools = units.filter((u) => u.site === name).map((u) => unitPool(inv, u, errors, codes))
    const previews = previewsPool(inv, name, errors, codes)
    return {name, pools: previews ? [...pools, previews] : pools}
  })
}

/** The HAProxy backends the agents drive (scaler, healer): web, then every site's. */
export function agentBackends(inv: Inventory): string[] {
  const names = ['web', ...sitePools(inv).flatMap((s) => s.pools.map((p) => p.name))]
  const seen = new Set<string>()
  for (const n of names) {
    if (seen.has(n)) throw new ConfigError(`sites: two deploy units would share the HAProxy backend ${n}`, {hint: 'Rename the environment (an environment cannot be named "previews" when the site has previews).'})
    seen.add(n)
  }
  return names
}

/** A protected unit in the https frontend: its host names, its realm and the digests of the allowed Authorization headers. */
interface ProtectData {
  name: string
  match: string
  realm: string
  digests: readonly string[]
}

function protectDigests(key: string, digests: readonly string[] | undefined, usersEnv: string): readonly string[] {
  if (digests === undefined || digests.length === 0) {
    throw new ConfigError(`${key}: the users were not read`, {hint: `Provision, plan and doctor read them from the environment variable ${usersEnv}.`})
  }
  return digests
}

/**
 * The non-production names of the sites (each environment's host, each site's previews) as
 * HAProxy matches (`-m str` names, `-m end` a previews suffix): never indexed; and those behind
 * basic auth (`protect`), with the digests prepare.ts read (ctx.siteAuth).
 */
function nonProd(ctx: RenderContext): {noindex: {match: string}[]; protect: ProtectData[]} {
  const inv = ctx.inventory
  const noindex: {match: string}[] = []
  const protect: ProtectData[] = []
  for (const [name, site] of Object.entries(inv.sites ?? {})) {
    for (const [env, e] of Object.entries(site.environments)) {
      const u = siteUnit(inv, name, env)
      const match = `-m str ${u.hosts.join(' ')}`
      noindex.push({match})
      if (e.protect) {
        const key = `sites.${name}.environments.${env}.protect.usersEnv`
        protect.push({name: u.backend, match, realm: `${name} ${env}`, digests: protectDigests(key, ctx.siteAuth?.[name]?.environments[env], e.protect.usersEnv)})
      }
    }
    if (site.previews) {
      const match = `-m end .${site.previews.domain.toLowerCase()}`
      noindex.push({match})
      const p = site.previews.protect
      if (p) protect.push({name: previewsBackend(name), match, realm: `${name} preview`, digests: protectDigests(`sites.${name}.previews.protect.usersEnv`, ctx.siteAuth?.[name]?.previews, p.usersEnv)})
    }
  }
  return {noindex, protect}
}

/**
 * What haproxy.cfg gets for the sites (`sites.*` in the template), or false without sites (the
 * configuration is then exactly what it was before sites existed).
 */
export function sitesTemplateData(ctx: RenderContext) {
  const inv = ctx.inventory
  const names = Object.keys(inv.sites ?? {})
  if (names.length === 0) return false
  const p = pathsOf(ctx)
  agentBackends(inv)
  const units = declaredUnits(inv).filter((u) => u.site !== undefined)
  const sites = names.map((name) => ({name, site: inv.sites[name]}))
  return {
    crtList: crtListPath(p),
    // Port 80: each of a site's names goes to its unit's canonical https:// name (aliases to the apex).
    redirects: units.map((u) => ({hosts: lower([...u.hosts, ...u.aliases]).join(' '), location: `https://${u.hosts[0]}`})),
    // Only one DNS label before the previews domain: the Location is built from the Host header.
    previewRedirects: sites.flatMap(({site}) => (site.previews ? [{pattern: `^[a-z0-9-]+[.]${regexLiteral(site.previews.domain.toLowerCase())}$`}] : [])),
    // Port 443: aliases go to the apex (path and query kept).
    aliases: sites.filter(({site}) => site.aliases.length > 0).map(({site}) => ({hosts: lower(site.aliases).join(' '), apex: site.domain.toLowerCase()})),
    routes: units.map((u) => ({backend: u.backend, hosts: u.hosts.join(' ')})),
    previewRoutes: sites.flatMap(({name, site}) => (site.previews ? [{backend: previewsBackend(name), suffix: `.${site.previews.domain.toLowerCase()}`}] : [])),
    errorSections: sites.flatMap(({name, site}) => {
      const codes = siteErrorCodes(site, name)
      return codes.length > 0 ? [{name: siteErrorsSection(name), site: name, files: codes.map((code) => ({code, path: siteErrorPagePath(p, name, code)}))}] : []
    }),
    backends: sitePools(inv).flatMap((s) => s.pools),
    // Port 443: X-Robots-Tag on the non-production names, basic auth on the protected ones.
    ...nonProd(ctx),
  }
}

function checkSitePem(name: string, pem: string | undefined): string {
  if (pem === undefined) throw new ConfigError(`sites.${name}: no certificate was read for the site`, {hint: 'Provision, plan and doctor make or read it in tls/ beside the inventory.'})
  if (!/-----BEGIN CERTIFICATE-----/.test(pem) || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError(`sites.${name}: the site's PEM for HAProxy must hold the certificate and its private key`)
  }
  return pem
}

/**
 * The crt-list: the main certificate first (HAProxy's default, for a client without SNI or with
 * a name no site has), then each site's PEM with the names it serves as SNI filters. The main one
 * is listed with `!*`: its own names are not looked up, it is only the fallback, so a site's
 * certificate wins for the site's names even when the main one covers them too (a wildcard
 * `*.example.com` in tls.cert and a site at shop.example.com).
 */
export function renderCrtList(ctx: RenderContext): string {
  const inv = ctx.inventory
  const p = pathsOf(ctx)
  const lines = [`# ${MANAGED}`, '# The main certificate first (the default: any name no site has), then each site\'s with its SNI names.', `${configOf(inv).tlsPemPath(p)} !*`]
  for (const name of Object.keys(inv.sites ?? {})) lines.push(`${sitePemPath(p, inv.sites[name])} ${siteCertNames(inv, name).join(' ')}`)
  return lines.join('\n') + '\n'
}

/** The sites' files on the bastion: each site's PEM, the crt-list, each site's error pages. None without sites. */
export function siteBastionFiles(ctx: RenderContext): DesiredFile[] {
  const inv = ctx.inventory
  const names = Object.keys(inv.sites ?? {})
  if (names.length === 0) return []
  const p = pathsOf(ctx)
  const reload = [{service: 'haproxy', action: 'reload' as const}]
  const files: DesiredFile[] = names.map((name) => ({
    path: sitePemPath(p, inv.sites[name]),
    content: checkSitePem(name, ctx.siteCerts?.[name]),
    mode: 0o600,
    owner: 'root',
    group: 'root',
    secret: true,
    notify: reload,
  }))
  files.push({path: crtListPath(p), content: renderCrtList(ctx), mode: 0o644, owner: 'root', group: 'root', notify: reload})
  for (const name of names) {
    for (const code of siteErrorCodes(inv.sites[name], name)) {
      // Read at start-up only: a reload picks up a changed page.
      files.push({path: siteErrorPagePath(p, name, code), content: renderSiteErrorPage(ctx, name, code), mode: 0o644, owner: 'root', group: 'root', notify: reload})
    }
  }
  return files
}
