/**
 * `infra scale`: runs the scaler's own verbs on the bastion (`infra-scaler status --json`,
 * `infra-scaler up`, ...) over SSH, so the scaling logic lives in one place (the script that
 * provision installed, docs/AGENTS.md). This task only maps the script's exit codes and output.
 */
import {AGENT_PATHS} from '../host/paths.js'
import type {LoadedInventory} from '../inventory/load.js'
import {HostError, UsageError} from '../lib/errors.js'
import {checkTarget, renderStatus, type ScaleAction, scalerCommand, type ScaleStatus} from '../roles/scaler.js'
import type {HostConnection} from '../ssh/connection.js'
import {onBastion} from './bastion.js'

export interface ScaleResult {
  action: ScaleAction['verb']
  /** The script's own lines (what it did, or the status table). */
  output: string
  status?: ScaleStatus
  /** With an app: standby nodes that were given the current release first. */
  standbyUpdated?: string[]
}

/** The scaler's verb on the bastion, its exit codes mapped to errors. */
async function scalerOn(conn: HostConnection, bastion: string, loaded: LoadedInventory, action: ScaleAction, json: boolean | undefined): Promise<ScaleResult> {
  const wantJson = action.verb === 'status'
  const r = await conn.exec(scalerCommand(action, wantJson), {timeoutMs: 10 * 60_000})
  const message = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' ')
  if (r.code === 127) {
    throw new HostError(bastion, `the agents are not installed on ${bastion} (${AGENT_PATHS.scaler} is missing)`, {hint: 'Run `infra provision` first.'})
  }
  if (r.code === 2) throw new UsageError(message.replace(/^infra-scaler: /, ''), {hint: `scaling.min/max are in ${loaded.path}.`})
  if (r.code !== 0) throw new HostError(bastion, `${action.verb} failed on ${bastion}: ${message || `exit ${r.code}`}`, {hint: `See \`infra exec ${bastion} -- journalctl -t infra-scaler -n 50\`.`})
  if (wantJson) {
    const status = JSON.parse(r.stdout) as ScaleStatus
    return {action: action.verb, output: json ? '' : renderStatus(status), status}
  }
  return {action: action.verb, output: r.stdout.trim()}
}

export async function runScale(loaded: LoadedInventory, action: ScaleAction, opts: {json?: boolean; log?: (line: string) => void} = {}): Promise<ScaleResult> {
  if (action.verb === 'to') checkTarget(loaded, action.count)
  // With an app, a standby node must have the current release before the scaler may start it:
  // the sync and the scaler share one fleet (one connection to the bastion).
  if (loaded.inventory.app && (action.verb === 'up' || action.verb === 'to')) {
    const [{openFleet}, {syncStandbyNodes}] = await Promise.all([import('../ssh/fleet.js'), import('./deploy/standby.js')])
    const fleet = openFleet(loaded)
    try {
      const synced = (await syncStandbyNodes(loaded, fleet, opts.log)).updated
      const bastion = loaded.inventory.bastion.name
      const result = await scalerOn(await fleet.connect(bastion), bastion, loaded, action, opts.json)
      return synced.length > 0 ? {...result, standbyUpdated: synced} : result
    } finally {
      await fleet.close()
    }
  }
  return onBastion(loaded, (conn, bastion) => scalerOn(conn, bastion, loaded, action, opts.json))
}
