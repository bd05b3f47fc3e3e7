/**
 * Preview environments per branch (docs/SITES.md): `infra preview deploy SITE --branch B`
 * deploys the site's app as the unit SITE--p-SLUG at https://SLUG.<previews.domain> (HAProxy's
 * previews backend, nginx routes by name), `infra preview rm`, `infra previews`. The bastion keeps
 * each preview's preview.json; its timer removes previews idle for longer than previews.ttl.
 */
import {destroyUnitCommand, listPreviewsScript, parsePreviews, planPreview, type PreviewMeta, writeMetaScript} from '../app/previews.js'
import {isBranchName} from '../app/slug.js'
import {UNITS_DIR} from '../host/paths.js'
import {shq} from '../host/quote.js'
import type {LoadedInventory} from '../inventory/load.js'
import {previewUnit, siteUnit} from '../inventory/units.js'
import {HostError, UsageError} from '../lib/errors.js'
import type {HostConnection} from '../ssh/connection.js'
import type {ProgressMode} from '../ui/tasks.js'
import type {DeployResult} from './deploy/index.js'
import {operator} from './deploy/steps.js'
import {requireSite, unitView} from './deploy/target.js'

function previewsOf(loaded: LoadedInventory, site: string) {
  const spec = requireSite(loaded, site)
  if (!spec.previews) {
    throw new UsageError(`site ${site} has no previews (no sites.${site}.previews)`, {hint: `Add e.g.\n  previews:\n    domain: preview.${spec.domain}\nunder sites.${site} in ${loaded.path}, then run \`infra provision\`.`})
  }
  return spec.previews
}

function checkBranch(branch: string): void {
  const why = isBranchName(branch)
  if (why) throw new UsageError(`--branch ${JSON.stringify(branch)}: ${why}`, {hint: 'Give the git branch name, e.g. --branch "$GITHUB_REF_NAME".'})
}

async function readPreviews(conn: HostConnection, site?: string): Promise<PreviewMeta[]> {
  const r = await conn.exec(listPreviewsScript(site), {timeoutMs: 15_000})
  return parsePreviews(r.stdout)
}

/** Removes a preview: its unit on every node of the site, then its folder on the bastion. */
async function destroyPreview(loaded: LoadedInventory, meta: PreviewMeta, bastion: HostConnection, connect: (n: string) => Promise<HostConnection>): Promise<void> {
  requireSite(loaded, meta.site)
  await Promise.all(
    siteUnit(loaded.inventory, meta.site).nodes.map(async (n) => {
      const r = await (await connect(n)).exec(destroyUnitCommand(meta.key), {timeoutMs: 5 * 60_000})
      if (r.code !== 0) throw new HostError(n, `removing the preview ${meta.slug} failed: ${(r.stderr || r.stdout).trim()}`)
    }),
  )
  await bastion.exec(`rm -rf ${shq(`${UNITS_DIR}/${meta.key}`)}`, {timeoutMs: 30_000})
}

export interface PreviewDeployResult {
  site: string
  branch: string
  slug: string
  url: string
  evicted?: string
  deploy: DeployResult
}

export async function previewDeploy(loaded: LoadedInventory, site: string, branch: string, opts: {build?: string; version?: string; progress?: ProgressMode} = {}): Promise<PreviewDeployResult> {
  const limits = previewsOf(loaded, site)
  checkBranch(branch)
  if (!opts.build && !opts.version) throw new UsageError('nothing to deploy: give --build DIR or --version V', {hint: `e.g. \`infra preview deploy ${site} --branch ${branch} --build .\``})
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded)
  let plan
  try {
    const bastion = await fleet.connect(loaded.inventory.bastion.name)
    plan = planPreview(site, branch, await readPreviews(bastion, site), limits)
    if (plan.refused) throw new UsageError(`no room for a preview of ${branch}: ${plan.refused}`, {hint: `Remove one (\`infra preview rm ${site} --branch NAME\`), or set sites.${site}.previews.onLimit: evict.`, code: 'EPREVIEWLIMIT'})
    if (plan.evict) await destroyPreview(loaded, plan.evict, bastion, (n) => fleet.connect(n))
  } finally {
    await fleet.close()
  }
  const unit = previewUnit(loaded.inventory, site, branch, plan.slug)
  const {runDeploy} = await import('./deploy/index.js')
  const version = opts.version ?? undefined
  const deploy = await runDeploy(loaded, {target: {loaded: unitView(loaded, unit), unit}, build: opts.build, version, progress: opts.progress})
  const url = `https://${unit.hosts[0]}`
  const meta: PreviewMeta = {site, branch, slug: plan.slug, key: plan.key, url, deployedAt: new Date().toISOString(), by: operator(), release: deploy.release.id}
  const {onBastion} = await import('./bastion.js')
  await onBastion(loaded, async (conn) => {
    const r = await conn.exec('bash -s', {stdin: writeMetaScript(meta), timeoutMs: 15_000})
    if (r.code !== 0) throw new HostError(conn.host.name, `recording the preview failed: ${r.stderr.trim()}`)
  })
  return {site, branch, slug: plan.slug, url, ...(plan.evict ? {evicted: plan.evict.branch} : {}), deploy}
}

export async function previewRemove(loaded: LoadedInventory, site: string, branch: string): Promise<{site: string; branch: string; removed: string | null}> {
  previewsOf(loaded, site)
  checkBranch(branch)
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded)
  try {
    const bastion = await fleet.connect(loaded.inventory.bastion.name)
    const meta = (await readPreviews(bastion, site)).find((m) => m.branch === branch)
    if (!meta) return {site, branch, removed: null}
    await destroyPreview(loaded, meta, bastion, (n) => fleet.connect(n))
    return {site, branch, removed: meta.url}
  } finally {
    await fleet.close()
  }
}

export async function listPreviews(loaded: LoadedInventory, site?: string): Promise<PreviewMeta[]> {
  if (site !== undefined) previewsOf(loaded, site)
  const {onBastion} = await import('./bastion.js')
  return onBastion(loaded, (conn) => readPreviews(conn, site))
}
