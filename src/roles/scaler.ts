/**
 * The scaler's contract as `infra scale` uses it (pure): its verbs as command lines, the status it
 * prints with --json, and that status as a table. src/tasks/scale.ts runs them on the bastion.
 */
import type {LoadedInventory} from '../inventory/load.js'
import {UsageError} from '../lib/errors.js'
import {shellWord} from '../host/quote.js'
import {AGENT_PATHS} from '../host/paths.js'

export type ScaleAction = {verb: 'status'} | {verb: 'up'} | {verb: 'down'} | {verb: 'to'; count: number} | {verb: 'pause'} | {verb: 'resume'}

export interface ScaleNode {
  name: string
  state: 'active' | 'standby' | 'draining' | 'failed' | 'unknown'
  /** HAProxy's status (UP, DOWN, MAINT, DRAIN, ...). */
  haproxy: string
  /** Last CPU sample (percent) of an active node. */
  cpu: number | null
  sessions: number
  standbyInInventory: boolean
}

export interface ScaleStatus {
  /** Epoch seconds when the scaler was paused, or null. */
  paused: number | null
  min: number
  max: number
  cpuPercent: number
  /** Epoch seconds of the scaler's last run. */
  heartbeat: number | null
  nodes: ScaleNode[]
  decisions: {time: number; decision: string; reason: string}[]
}

/** The command line run on the bastion for an action (pure). */
export function scalerCommand(action: ScaleAction, json = false): string {
  const bin = AGENT_PATHS.scaler
  switch (action.verb) {
    case 'status':
      return json ? `${bin} status --json` : `${bin} status`
    case 'to':
      return `${bin} to ${shellWord(String(action.count))}`
    default:
      return `${bin} ${action.verb}`
  }
}

/** Refuse a target count outside scaling.min..max before touching a host (exit 2). */
export function checkTarget(loaded: LoadedInventory, count: number): void {
  const {min, max} = loaded.inventory.scaling
  if (!Number.isInteger(count) || count < min || count > max) {
    throw new UsageError(`--to ${count}: the number of active web nodes must stay within scaling.min..scaling.max (${min}..${max}) of ${loaded.path}`, {
      hint: `Pick a number from ${min} to ${max}, or change scaling.min/max in the inventory and run \`infra provision\`.`,
    })
  }
}

/** The status as a table for people. */
export function renderStatus(s: ScaleStatus): string {
  const lines = [
    s.paused ? `scaler: PAUSED since ${new Date(s.paused * 1000).toISOString()} (infra scale resume)` : 'scaler: running',
    `active nodes: ${s.nodes.filter((n) => n.state === 'active').length} (min ${s.min}, max ${s.max}); scale out at ${s.cpuPercent}% CPU`,
    '',
    `${'NODE'.padEnd(16)} ${'STATE'.padEnd(9)} ${'HAPROXY'.padEnd(10)} ${'CPU'.padStart(5)} ${'SESSIONS'.padStart(8)}`,
    ...s.nodes.map(
      (n) =>
        `${n.name.padEnd(16)} ${n.state.padEnd(9)} ${n.haproxy.padEnd(10)} ${(n.cpu === null ? '-' : `${n.cpu}%`).padStart(5)} ${String(n.sessions).padStart(8)}`,
    ),
  ]
  if (s.decisions.length > 0) {
    lines.push('', 'last decisions:')
    for (const d of s.decisions.slice(-5)) lines.push(`  ${new Date(d.time * 1000).toISOString()} ${d.decision}: ${d.reason}`)
  }
  return lines.join('\n')
}
