/**
 * Sites on the fly (docs/SITES.md): `infra sites` (domains, release, health), `infra site add`
 * (writes the site into infra.yaml keeping its comments, provisions what changed, optionally
 * deploys) and `infra site rm` (HAProxy stops routing it first, then its containers, nginx files
 * and release history go). Another site never loses a request: HAProxy and nginx reload gracefully.
 */
import {readFile, rename, rm, writeFile} from 'node:fs/promises'

import {parseSites, type SiteRow, sitesScript} from '../app/sites.js'
import {APP_PATHS, UNITS_DIR} from '../host/paths.js'
import {shq} from '../host/quote.js'
import {addSite as addSiteText, removeSite as removeSiteText} from '../inventory/edit.js'
import {type LoadedInventory, loadInventory} from '../inventory/load.js'
import {declaredUnits} from '../inventory/units.js'
import {HostError} from '../lib/errors.js'
import type {ProgressMode} from '../ui/tasks.js'
import type {DeployResult} from './deploy/index.js'
import {requireSite} from './deploy/target.js'
import type {ProvisionResult} from './provision/index.js'

/** Every site unit (prod and environments) with its release and health, in one round trip to the bastion. */
export async function listSites(loaded: LoadedInventory): Promise<SiteRow[]> {
  const units = declaredUnits(loaded.inventory).filter((u) => u.site !== undefined)
  if (units.length === 0) return []
  const {onBastion} = await import('./bastion.js')
  return onBastion(loaded, async (conn) => {
    const r = await conn.exec('bash -s', {stdin: sitesScript(units), timeoutMs: 20_000})
    return parseSites(units, r.stdout)
  })
}

/** Writes the new inventory text after checking it loads (schema and cross-checks); returns the loaded result and the previous text. */
async function rewriteInventory(loaded: LoadedInventory, edit: (text: string) => string): Promise<{next: LoadedInventory; before: string}> {
  const before = await readFile(loaded.path, 'utf8')
  const after = edit(before)
  const tmp = `${loaded.path}.infra-new`
  await writeFile(tmp, after, {mode: 0o600})
  try {
    // Validated as the file it will be (same folder: relative paths resolve the same); a bad
    // result throws the loader's own error (file:line key: message) and nothing is written.
    await loadInventory(tmp)
  } catch (error) {
    await rm(tmp, {force: true})
    throw error
  }
  await writeFile(`${loaded.path}.bak`, before, {mode: 0o600})
  await rename(tmp, loaded.path)
  return {next: await loadInventory(loaded.path), before}
}

function failedProvision(r: ProvisionResult): string | undefined {
  return r.failed.length > 0 ? r.failed.join(', ') : undefined
}

export interface SiteAddOptions {
  domain: string
  aliases?: string[]
  image: string
  port?: number
  /** Deploy after provisioning: a build directory, or a version already in the registry. */
  build?: string
  version?: string
  progress?: ProgressMode
}

export interface SiteAddResult {
  site: string
  url: string
  provisioned: {changes: number; hosts: number}
  deployed?: DeployResult
}

export async function addSite(loaded: LoadedInventory, name: string, opts: SiteAddOptions): Promise<SiteAddResult> {
  const {next, before} = await rewriteInventory(loaded, (text) => addSiteText(text, name, {domain: opts.domain, aliases: opts.aliases, image: opts.image, port: opts.port}))
  const {provision} = await import('./provision/index.js')
  const r = await provision(next, {progress: opts.progress})
  const bad = failedProvision(r)
  if (bad) {
    // The fleet kept (or restored) its previous state: so does the inventory.
    await writeFile(loaded.path, before)
    throw new HostError(bad.split(',')[0], `provisioning the new site failed on ${bad}; ${loaded.path} is back as it was`, {hint: 'See the host\'s error above; fix it and run `infra site add` again.'})
  }
  const result: SiteAddResult = {site: name, url: `https://${opts.domain.toLowerCase()}`, provisioned: {changes: r.totalChanges, hosts: r.hosts.length}}
  if (opts.build || opts.version) {
    const {runDeploy} = await import('./deploy/index.js')
    result.deployed = await runDeploy(next, {site: name, build: opts.build, version: opts.version, progress: opts.progress})
  }
  return result
}

export interface SiteRemoveResult {
  site: string
  units: string[]
  nodes: string[]
}

/** On a node: every unit of the site (prod, environments, previews) is destroyed. */
function destroyScript(site: string): string {
  return [
    `for d in ${UNITS_DIR}/${site} ${UNITS_DIR}/${site}--*; do`,
    '  [ -d "$d" ] || continue',
    `  ${APP_PATHS.script} -u "$(basename "$d")" destroy || exit 1`,
    'done',
  ].join('\n')
}

export async function removeSite(loaded: LoadedInventory, name: string, opts: {progress?: ProgressMode} = {}): Promise<SiteRemoveResult> {
  requireSite(loaded, name)
  const units = declaredUnits(loaded.inventory).filter((u) => u.site === name)
  const nodes = [...new Set(units.flatMap((u) => u.nodes))]
  const {next} = await rewriteInventory(loaded, (text) => removeSiteText(text, name))
  // HAProxy stops routing the site first (a graceful reload: requests in flight finish).
  const {provision} = await import('./provision/index.js')
  const r = await provision(next, {progress: opts.progress})
  const bad = failedProvision(r)
  if (bad) throw new HostError(bad.split(',')[0], `provisioning without ${name} failed on ${bad}; its containers are left running`, {hint: `Fix the host's error above, then run \`infra provision\` and \`infra site rm ${name}\` again (the site is already out of ${loaded.path}: restore ${loaded.path}.bak to keep it).`})
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded)
  try {
    await Promise.all(
      nodes.map(async (n) => {
        const conn = await fleet.connect(n)
        const out = await conn.exec('bash -s', {stdin: destroyScript(name), timeoutMs: 5 * 60_000})
        if (out.code !== 0) throw new HostError(n, `removing ${name}'s containers failed: ${(out.stderr || out.stdout).trim()}`)
      }),
    )
    const bastion = await fleet.connect(loaded.inventory.bastion.name)
    await bastion.exec(`rm -rf ${shq(`${UNITS_DIR}/${name}`)} ${UNITS_DIR}/${shq(name)}--*`, {timeoutMs: 30_000})
  } finally {
    await fleet.close()
  }
  return {site: name, units: units.map((u) => u.key!), nodes}
}
