/**
 * `infra provision` and `infra plan` as a task list: the TLS certificate (provision only: the one
 * step that writes a file on this machine), the desired state of every host (pure), then the hosts
 * (facts → plan → apply → confirm, src/tasks/provision/hosts.ts). A plain function: the tests call
 * it; the commands render its value (src/tasks/provision/render.ts).
 */
import type {FleetPki} from '../../tls/fleet.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {hostsOf} from '../../inventory/schema.js'
import {UsageError} from '../../lib/errors.js'
import type {TlsMaterial} from '../../tls/ensure.js'
import {type ProgressMode, runSteps} from '../../ui/tasks.js'
import {provisionFleet} from './hosts.js'
import {fleetPkiOf, prepareFleet} from './prepare.js'
import {hasApps} from '../../inventory/units.js'
import type {PreparedHost, ProvisionOptions, ProvisionResult} from './types.js'

export type {HostResult, ProvisionOptions, ProvisionResult} from './types.js'

export interface ProvisionTaskOptions extends Omit<ProvisionOptions, 'onProgress'> {
  /** How progress is shown (default: nothing, as a test or --json wants). */
  progress?: ProgressMode
  /**
   * Apply only after this approves the plan (an interactive `infra provision` without --yes): the
   * hosts are planned first (a dry run), and applied only if it resolves to true.
   */
  confirm?: (planned: ProvisionResult) => Promise<boolean>
}

interface Run {
  tls?: TlsMaterial
  fleet?: FleetPki
  hosts: PreparedHost[]
  warnings: string[]
  result?: ProvisionResult
}

/** Plans or applies the inventory on its hosts. Usage errors (an unknown --host) come before any connection. */
export async function provision(loaded: LoadedInventory, opts: ProvisionTaskOptions = {}): Promise<ProvisionResult> {
  const known = hostsOf(loaded.inventory).map((h) => h.name)
  for (const name of opts.only ?? []) {
    if (!known.includes(name)) throw new UsageError(`--host ${name}: no such host in ${loaded.path}`, {hint: `Known hosts: ${known.join(', ')}.`})
  }
  if (opts.confirm && !opts.dryRun) {
    const planned = await provision(loaded, {...opts, dryRun: true, confirm: undefined})
    if (planned.totalChanges === 0 || planned.failed.length > 0 || !(await opts.confirm(planned))) return {...planned, declined: planned.totalChanges > 0 && planned.failed.length === 0}
  }
  const names = known.filter((n) => !opts.only?.length || opts.only.includes(n))
  const run: Run = {hosts: [], warnings: []}
  await runSteps(
    run,
    [
      {
        title: 'TLS certificate',
        enabled: () => !opts.dryRun,
        run: async (r) => {
          const {ensureTls} = await import('../../tls/ensure.js')
          r.tls = await ensureTls(loaded)
          // With an app: the fleet CA, the registry's certificate and password (fleet/ beside the inventory).
          if (hasApps(loaded.inventory)) r.fleet = await fleetPkiOf(loaded, true)
        },
      },
      {
        title: `Render ${names.length} host${names.length === 1 ? '' : 's'}`,
        run: async (r) => {
          const prepared = await prepareFleet(loaded, {tls: r.tls, fleet: r.fleet})
          r.hosts = prepared.hosts
          r.warnings = prepared.warnings
        },
      },
      {
        title: opts.dryRun ? 'Plan' : 'Apply',
        hosts: () => names,
        run: async (r, update) => {
          const {openFleet} = await import('../../ssh/fleet.js')
          const fleet = openFleet(loaded)
          try {
            r.result = await provisionFleet(fleet, r.hosts, {concurrency: loaded.inventory.ssh.parallel, ...opts, onProgress: update})
          } finally {
            await fleet.close()
          }
        },
      },
    ],
    opts.progress,
  )
  return {...run.result!, ...(run.warnings.length ? {warnings: run.warnings} : {})}
}
