/**
 * What a deploy, a rollback or a promotion works on (docs/SITES.md): the single app, a site's
 * environment or a preview, as a deploy unit plus the inventory seen from it (its app, its nodes),
 * so the deploy steps read `inventory.app` and `web.nodes` whatever the unit.
 */
import type {LoadedInventory} from '../../inventory/load.js'
import {PROD_ENV} from '../../inventory/schema/sites.js'
import {type DeployUnit, singleAppUnit, siteUnit} from '../../inventory/units.js'
import {ConfigError, UsageError} from '../../lib/errors.js'
import {didYouMean} from '../../lib/text.js'

export interface DeployTarget {
  /** The inventory as the unit sees it: `app` is the unit's (environment values merged), `web.nodes` its nodes. */
  loaded: LoadedInventory
  unit: DeployUnit
}

/** The inventory seen from a unit. */
export function unitView(loaded: LoadedInventory, unit: DeployUnit): LoadedInventory {
  const inv = loaded.inventory
  return {
    ...loaded,
    inventory: {
      ...inv,
      app: {...unit.app, secretsFile: unit.secretsFile},
      web: {...inv.web, nodes: inv.web.nodes.filter((n) => unit.nodes.includes(n.name))},
    },
  }
}

function siteNames(loaded: LoadedInventory): string[] {
  return Object.keys(loaded.inventory.sites ?? {})
}

/** The site `name`, or a usage error (exit 2) naming the sites there are. */
export function requireSite(loaded: LoadedInventory, name: string) {
  const site = (loaded.inventory.sites ?? {})[name]
  if (site) return site
  const names = siteNames(loaded)
  const hint = didYouMean(name, names)
  throw new UsageError(`${loaded.path}: there is no site ${JSON.stringify(name)}${names.length > 0 ? ` (sites: ${names.join(', ')})` : ' (no "sites:" section)'}`, {
    hint: hint ? `Did you mean ${hint}?` : 'Add one with `infra site add NAME --domain D --image I`, or list them with `infra sites`.',
  })
}

/** The unit `infra deploy [SITE] [--env ENV]` means. */
export function resolveTarget(loaded: LoadedInventory, site?: string, env?: string): DeployTarget {
  if (site === undefined) {
    if (env !== undefined) throw new UsageError('--env needs a site: `infra deploy SITE --env ENV`', {hint: `Sites: ${siteNames(loaded).join(', ') || 'none'}.`})
    const unit = singleAppUnit(loaded.inventory)
    if (!unit) {
      const names = siteNames(loaded)
      if (names.length > 0) throw new UsageError(`name the site to deploy (sites: ${names.join(', ')})`, {hint: `e.g. \`infra deploy ${names[0]} --build .\``})
      throw new ConfigError(`${loaded.path}: there is no app to deploy (no "app:" section)`, {
        hint: 'Add an app, e.g.\n  app:\n    image: shop\n    port: 8080\nthen run `infra provision` (it installs Docker and the registry) and `infra deploy --build DIR`.',
      })
    }
    return {loaded, unit}
  }
  const spec = requireSite(loaded, site)
  const e = env ?? PROD_ENV
  if (e !== PROD_ENV && !spec.environments[e]) {
    const envs = [PROD_ENV, ...Object.keys(spec.environments)]
    const hint = didYouMean(e, envs)
    throw new UsageError(`site ${site} has no environment ${JSON.stringify(e)} (it has ${envs.join(', ')})`, {
      hint: hint ? `Did you mean ${hint}?` : `Declare it under sites.${site}.environments in ${loaded.path}, then run \`infra provision\`.`,
    })
  }
  const unit = siteUnit(loaded.inventory, site, e)
  return {loaded: unitView(loaded, unit), unit}
}
