/**
 * `infra status` against the fleet: one SSH connection to the bastion, one exec per frame
 * (src/status builds the script, parses its output and judges it).
 */
import type {LoadedInventory} from '../inventory/load.js'
import {HostError} from '../lib/errors.js'
import {parseStatusOutput, type Sample, statusScript} from '../status/collect.js'
import {buildStatus, type FleetStatus} from '../status/model.js'

export interface StatusSession {
  /** One frame: the first takes two samples a second apart (for rates); later ones use the previous frame's. */
  next(): Promise<FleetStatus>
  close(): Promise<void>
}

export async function openStatus(loaded: LoadedInventory, opts: {gapMs?: number} = {}): Promise<StatusSession> {
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded)
  const inv = loaded.inventory
  const name = inv.bastion.name
  let prev: Sample | undefined
  return {
    async next() {
      const conn = await fleet.connect(name)
      const script = statusScript(inv, prev ? {samples: 1} : {samples: 2, gapMs: opts.gapMs ?? 1000})
      const r = await conn.exec(script, {timeoutMs: 20_000})
      const raw = parseStatusOutput(r.stdout)
      if (raw.samples.length === 0) {
        throw new HostError(name, `the status script failed on ${name} (exit ${r.code}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`, {
          hint: 'Run `infra doctor` to see what is wrong on the bastion.',
        })
      }
      const status = buildStatus(inv, raw, prev)
      prev = raw.samples.at(-1)
      return status
    },
    close: () => fleet.close(),
  }
}

export async function fleetStatus(loaded: LoadedInventory, opts: {gapMs?: number} = {}): Promise<FleetStatus> {
  const s = await openStatus(loaded, opts)
  try {
    return await s.next()
  } finally {
    await s.close()
  }
}
