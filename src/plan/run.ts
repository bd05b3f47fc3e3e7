/** Provision from an inventory: prepare locally, open the fleet, provision, close. Called by the commands and the tests. */
import type {LoadedInventory} from '../inventory/load.js'
import {UsageError} from '../lib/errors.js'
import {prepareHosts} from './prepare.js'
import {type ProvisionOptions, type ProvisionResult, provisionFleet} from './provision.js'

export async function provision(loaded: LoadedInventory, opts: ProvisionOptions = {}): Promise<ProvisionResult> {
  const hosts = await prepareHosts(loaded)
  const known = hosts.map((h) => h.spec.name)
  for (const name of opts.only ?? []) {
    if (!known.includes(name)) throw new UsageError(`--host ${name}: no such host in ${loaded.path}`, {hint: `Known hosts: ${known.join(', ')}.`})
  }
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded)
  try {
    return await provisionFleet(fleet, hosts, {concurrency: loaded.inventory.ssh.parallel, ...opts})
  } finally {
    await fleet.close()
  }
}

/** "3 changes on 4 hosts", "0 changes on 4 hosts". */
export function summaryLine(r: ProvisionResult): string {
  const n = r.hosts.length
  const verb = r.dryRun ? 'planned' : 'applied'
  const changes = `${r.totalChanges} change${r.totalChanges === 1 ? '' : 's'}`
  const base = r.totalChanges === 0 ? `0 changes on ${n} host${n === 1 ? '' : 's'}` : `${changes} ${verb} on ${n} host${n === 1 ? '' : 's'}`
  const failed = r.failed.length ? `; ${r.failed.length} failed: ${r.failed.join(', ')}` : ''
  return `${base}${failed} (${(r.durationMs / 1000).toFixed(1)}s)`
}
