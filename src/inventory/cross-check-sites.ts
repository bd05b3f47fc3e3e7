/**
 * Cross-key checks of `sites` (src/inventory/cross-check.ts runs them): every name the fleet
 * serves belongs to one site (or the top-level domain) only; nodes name web nodes; `prod` is the
 * site itself. Like the other checks they read the raw document and skip values of a wrong shape.
 */
import {imageRegistryHost} from './schema/app.js'

type Rec = Record<string, unknown>
interface Issue {
  path: (string | number)[]
  message: string
}

const rec = (v: unknown): Rec | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : undefined)
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v.toLowerCase() : undefined)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const q = JSON.stringify

/** A name and where it was first declared, as a key path. */
type Seen = Map<string, string>

function claim(seen: Seen, name: string | undefined, where: string, path: (string | number)[], issues: Issue[]): void {
  if (name === undefined) return
  const before = seen.get(name)
  if (before !== undefined) issues.push({path, message: `${q(name)} is already served by ${before}; each name belongs to one site or environment`})
  else seen.set(name, where)
}

function checkNodes(v: unknown, webNames: Set<string>, path: (string | number)[], issues: Issue[]): void {
  list(v).forEach((n, i) => {
    const name = typeof n === 'string' ? n : undefined
    if (name !== undefined && webNames.size > 0 && !webNames.has(name)) {
      issues.push({path: [...path, i], message: `${q(name)} is not a web node (web.nodes has ${[...webNames].join(', ')})`})
    }
  })
}

function checkSite(name: string, site: Rec, seen: Seen, webNames: Set<string>, issues: Issue[]): void {
  const at = ['sites', name]
  const domain = str(site.domain)
  claim(seen, domain, `sites.${name}.domain`, [...at, 'domain'], issues)
  list(site.aliases).forEach((a, i) => claim(seen, str(a), `sites.${name}.aliases[${i}]`, [...at, 'aliases', i], issues))
  checkNodes(site.nodes, webNames, [...at, 'nodes'], issues)
  const envs = rec(site.environments) ?? {}
  for (const [env, raw] of Object.entries(envs)) {
    const e = rec(raw)
    if (env === 'prod') {
      issues.push({path: [...at, 'environments', env], message: '"prod" is the site itself (its domain, app and nodes); name the other environments, e.g. preprod'})
      continue
    }
    if (env === 'previews') {
      issues.push({path: [...at, 'environments', env], message: '"previews" is the name of the site\'s previews backend; name the environment otherwise (e.g. preview, review)'})
      continue
    }
    if (!e) continue
    const host = str(e.domain) ?? (domain ? `${env}.${domain}` : undefined)
    claim(seen, host, `sites.${name}.environments.${env}`, [...at, 'environments', env, e.domain === undefined ? 'domain (default)' : 'domain'], issues)
    checkNodes(e.nodes, webNames, [...at, 'environments', env, 'nodes'], issues)
  }
  const previews = str(rec(site.previews)?.domain)
  if (previews !== undefined) claim(seen, `*.${previews}`, `sites.${name}.previews.domain`, [...at, 'previews', 'domain'], issues)
  const app = rec(site.app)
  const image = typeof app?.image === 'string' ? app.image : undefined
  if (app && rec(app.registry) && image !== undefined && imageRegistryHost(image) === undefined) {
    issues.push({path: [...at, 'app', 'registry'], message: `is for an image in an outside registry, but ${q(image)} is in the fleet registry; name the registry host in the image or remove registry`})
  }
}

/** Once every name is claimed (whatever the order of the sites): a previews domain must not take a name something else serves. */
function checkPreviewShadows(name: string, site: Rec, seen: Seen, issues: Issue[]): void {
  const previews = str(rec(site.previews)?.domain)
  if (previews === undefined) return
  const domain = str(site.domain)
  for (const [n, where] of seen) {
    if (n.endsWith(`.${previews}`) && !n.startsWith('*.')) issues.push({path: ['sites', name, 'previews', 'domain'], message: `${q(previews)} would take ${q(n)} (${where}): a preview name could shadow it; choose a domain of its own, e.g. "preview.${domain ?? 'example.com'}"`})
  }
}

/** Every issue of `sites` against the rest of the inventory. */
export function checkSites(inv: Rec): Issue[] {
  const sites = rec(inv.sites)
  if (!sites) return []
  const issues: Issue[] = []
  const seen: Seen = new Map()
  claim(seen, str(inv.domain), 'domain', ['domain'], issues)
  list(inv.aliases).forEach((a, i) => claim(seen, str(a), `aliases[${i}]`, ['aliases', i], issues))
  const webNames = new Set(list(rec(inv.web)?.nodes).map((n) => rec(n)?.name).filter((n): n is string => typeof n === 'string'))
  for (const [name, raw] of Object.entries(sites)) {
    const site = rec(raw)
    if (site) checkSite(name, site, seen, webNames, issues)
  }
  for (const [name, raw] of Object.entries(sites)) {
    const site = rec(raw)
    if (site) checkPreviewShadows(name, site, seen, issues)
  }
  return issues
}
