/**
 * Compare the desired state of a host with its facts and list only the changes still needed.
 * Pure: (desired, facts) => plan. A dry run prints the plan; apply executes it.
 */
import {sha256} from '../host/hash.js'

import type {FileFact, HostFacts} from './facts.js'
import type {DesiredFile, DesiredService, HostDesiredState} from './types.js'

export type FileChangeKind = 'create' | 'update' | 'mode'

export interface FileChange {
  kind: FileChangeKind
  file: DesiredFile
  before?: FileFact
}

export interface ServiceChange {
  name: string
  /** What to do, in order. */
  actions: ('enable' | 'disable' | 'start' | 'stop' | 'reload' | 'restart')[]
  reason: string
}

export interface HostPlan {
  host: string
  packages: string[]
  files: FileChange[]
  remove: string[]
  services: ServiceChange[]
}

/** Why a service is reloaded although no file changed in this run. */
export const PENDING_REASON = 'an earlier run installed its files but was interrupted before this'


export function countChanges(plan: HostPlan): number {
  return plan.packages.length + plan.files.length + plan.remove.length + plan.services.length
}

export function planHost(desired: HostDesiredState & {absent?: string[]}, facts: HostFacts): HostPlan {
  const packages = desired.packages.filter((p) => !facts.installed.has(p))

  const files: FileChange[] = []
  // An ifAbsent file's content is runtime data once it exists: only its mode and owner are compared.
  for (const file of desired.files) {
    const before = facts.files.get(file.path)
    if (!before || !before.exists) {
      files.push({kind: 'create', file, before})
    } else if (!file.ifAbsent && before.sha256 !== sha256(file.content)) {
      files.push({kind: 'update', file, before})
    } else if (before.mode !== file.mode || before.owner !== file.owner || before.group !== file.group) {
      files.push({kind: 'mode', file, before})
    }
  }

  const remove = (desired.absent ?? []).filter((p) => facts.present.has(p))

  // Services: notifications from changed files first, then the wanted enabled/running state.
  const notified = new Map<string, 'reload' | 'restart'>()
  for (const change of files) {
    if (change.kind === 'mode') continue
    for (const n of change.file.notify ?? []) {
      if (notified.get(n.service) !== 'restart') notified.set(n.service, n.action)
    }
  }
  // An earlier apply that installed files but was cut before its reload: finish it now.
  const pending = new Set<string>()
  for (const [service, action] of facts.pending) {
    if (!notified.has(service)) pending.add(service)
    if (notified.get(service) !== 'restart') notified.set(service, action)
  }
  const packagesInstalled = packages.length > 0
  const services: ServiceChange[] = []
  for (const svc of desired.services) {
    const change = serviceChange(svc, facts, notified.get(svc.name), packagesInstalled)
    if (change) services.push(pending.has(svc.name) ? {...change, reason: PENDING_REASON} : change)
    notified.delete(svc.name)
  }
  // A notified service without a desired entry is still reloaded (e.g. nftables, ssh).
  for (const [name, action] of notified) services.push({name, actions: [action], reason: pending.has(name) ? PENDING_REASON : 'configuration changed'})

  return {host: desired.host.name, packages, files, remove, services}
}

function serviceChange(
  svc: DesiredService,
  facts: HostFacts,
  notify: 'reload' | 'restart' | undefined,
  packagesInstalled: boolean,
): ServiceChange | undefined {
  const fact = facts.services.get(svc.name)
  const enabledNow = fact?.enabled ?? 'not-found'
  const activeNow = fact?.active ?? 'unknown'
  const missing = enabledNow === 'not-found'
  // A unit that is not there and should be off is fine as it is (e.g. nginx on a bastion).
  if (missing && !svc.enabled && svc.running !== true) return undefined

  const actions: ServiceChange['actions'] = []
  const reasons: string[] = []
  if (svc.enabled && enabledNow !== 'enabled') {
    actions.push('enable')
    reasons.push(`is ${enabledNow}`)
  }
  if (!svc.enabled && enabledNow === 'enabled') {
    actions.push('disable')
    reasons.push('is enabled')
  }
  const running = activeNow === 'active' || activeNow === 'reloading' || activeNow === 'activating'
  // 'keep' leaves the state to its owner (the scaler), except on a host never provisioned, where `initial` applies.
  const wantRunning = svc.running === 'keep' ? (facts.provisioned ? undefined : svc.initial) : svc.running
  if (wantRunning === true && (!running || missing)) {
    // restart, not start, when our files changed: a package installed in this run may already run its defaults.
    actions.push(notify ? 'restart' : 'start')
    reasons.push(`is ${missing && packagesInstalled ? 'being installed' : activeNow}`)
  } else if (wantRunning === false && running) {
    actions.push('stop')
    reasons.push('is running')
  } else if (notify && (running || missing)) {
    // A service being installed in this run is started by the package; reload it so it reads our files.
    actions.push(notify)
    reasons.push('configuration changed')
  }
  if (actions.length === 0) return undefined
  return {name: svc.name, actions, reason: reasons.join(', ')}
}
