/**
 * `infra doctor`: gather facts (one SSH connection and one exec per host, all hosts in parallel,
 * plus the internet's view from this machine at the same time), then judge with the pure checks
 * of host-checks.ts and external.ts.
 */
import type {LoadedInventory} from '../inventory/load.js'
import {hostsOf, type HostSpec} from '../inventory/schema.js'
import {UsageError} from '../lib/errors.js'
import type {HostDesiredState} from '../plan/types.js'
import {EXTERNAL_CHECK_IDS, EXTERNAL_CHECKS, type ExternalFacts, gatherExternal, INTERNET} from './external.js'
import {type DoctorFacts, doctorScript, parseDoctorFacts} from './facts.js'
import {HOST_CHECK_IDS, HOST_CHECKS, runHostChecks} from './host-checks.js'
import {type CheckResult, DEFAULT_THRESHOLDS, type Thresholds} from './types.js'

export const REACHABLE = 'reachable'
/** Every check id, in report order. */
export const CHECK_IDS = [REACHABLE, ...HOST_CHECK_IDS, ...EXTERNAL_CHECK_IDS]

export interface DoctorOptions {
  /** Only these hosts (inventory names, or `internet` for the checks from this machine). */
  hosts?: string[]
  /** Only these check ids. */
  checks?: string[]
  thresholds?: Partial<Thresholds>
  /** Called with a host name when a host's pinned key is new (first contact). */
  onHostKeyNew?: (message: string) => void
}

export interface DoctorSummary {
  pass: number
  warn: number
  fail: number
  skip: number
}

export interface DoctorReport {
  checks: CheckResult[]
  summary: DoctorSummary
  durationMs: number
}

export function summarize(checks: CheckResult[]): DoctorSummary {
  const s = {pass: 0, warn: 0, fail: 0, skip: 0}
  for (const c of checks) s[c.status]++
  return s
}

export function validateSelection(all: HostSpec[], opts: Pick<DoctorOptions, 'hosts' | 'checks'>): void {
  for (const id of opts.checks ?? []) {
    if (!CHECK_IDS.includes(id)) throw new UsageError(`--check ${id}: no such check`, {hint: `Valid checks: ${CHECK_IDS.join(', ')}.`})
  }
  const names = [...all.map((h) => h.name), INTERNET]
  for (const h of opts.hosts ?? []) {
    if (!names.includes(h)) throw new UsageError(`--host ${h}: no such host`, {hint: `Hosts: ${names.join(', ')}.`})
  }
}

interface Gathered {
  host: HostSpec
  facts?: DoctorFacts
  localTime: number
  error?: Error & {hint?: string; kind?: string}
  ms: number
}

export async function doctor(loaded: LoadedInventory, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const t0 = Date.now()
  const inv = loaded.inventory
  const all = hostsOf(inv)
  validateSelection(all, opts)
  const thresholds = {...DEFAULT_THRESHOLDS, ...opts.thresholds}
  const only = opts.checks && opts.checks.length > 0 ? new Set(opts.checks) : undefined
  const wantHost = (name: string) => !opts.hosts || opts.hosts.length === 0 || opts.hosts.includes(name)
  const selected = all.filter((h) => wantHost(h.name))
  const wantExternal = wantHost(INTERNET) && (!only || EXTERNAL_CHECK_IDS.some((id) => only.has(id)))
  const wantsHostChecks = !only || [REACHABLE, ...HOST_CHECK_IDS].some((id) => only.has(id))
  // The bastion's view (HAProxy's server states) judges web nodes, and decides whether the
  // internet checks can mean anything: gather it whenever anything needs it.
  const bastion = all[0]
  const gatherHosts = wantsHostChecks || wantExternal ? [...new Set([...(wantExternal || selected.some((h) => h.role === 'web') ? [bastion] : []), ...(wantsHostChecks ? selected : [])])] : []

  const [{prepareHosts}, {openFleet}] = await Promise.all([import('../plan/prepare.js'), import('../ssh/fleet.js')])
  const prepared = await prepareHosts(loaded)
  const desiredOf = new Map<string, HostDesiredState>(prepared.map((p) => [p.spec.name, p.desired]))

  const fleet = openFleet(loaded, {
    onHostKeyNew: (e) => opts.onHostKeyNew?.(e.message),
  })
  let gathered: Map<string, Gathered>
  let external: ExternalFacts | undefined
  try {
    const externalP = wantExternal ? gatherExternal(inv) : Promise.resolve(undefined)
    const results = await fleet.forEach(
      async (conn) => {
        const h = conn.host
        const script = doctorScript({
          role: h.role,
          desired: desiredOf.get(h.name),
          health: h.role === 'web' ? {address: h.privateAddress, port: inv.web.port, path: inv.web.healthCheck.path} : undefined,
        })
        const start = Date.now()
        const r = await conn.exec('bash -s', {stdin: script, timeoutMs: 20_000})
        const end = Date.now()
        return {facts: parseDoctorFacts(r.stdout), localTime: (start + end) / 2000, ms: end - start}
      },
      {hosts: gatherHosts.map((h) => h.name), concurrency: Math.max(gatherHosts.length, 1)},
    )
    gathered = new Map(
      gatherHosts.map((h) => {
        const r = results.get(h.name)!
        return [h.name, r.ok ? {host: h, ...r.value} : {host: h, localTime: Date.now() / 1000, error: r.error as Gathered['error'], ms: 0}]
      }),
    )
    external = await externalP
  } finally {
    await fleet.close()
  }

  const checks: CheckResult[] = []
  const bastionFacts = gathered.get(bastion.name)?.facts
  if (wantsHostChecks) {
    for (const h of selected) {
      const g = gathered.get(h.name)!
      const ids = HOST_CHECKS.filter((c) => c.roles.includes(h.role) && (!only || only.has(c.id))).map((c) => c.id)
      if (!g.facts) {
        const e = g.error
        const bastionDown = e?.kind === 'bastion-down'
        if (!only || only.has(REACHABLE)) {
          checks.push({
            id: REACHABLE,
            host: h.name,
            status: 'fail',
            value: e?.kind ?? 'error',
            message: e?.message.replace(`${h.name}: `, '') ?? 'unreachable',
            fix: e?.hint ?? (bastionDown ? `fix the bastion first (\`infra doctor --host ${bastion.name}\`)` : `check that ${h.address} is up and sshd runs on it`),
          })
        }
        for (const id of ids) checks.push({id, host: h.name, status: 'skip', value: '-', message: bastionDown ? 'skipped: bastion unreachable' : 'skipped: unreachable', fix: ''})
        continue
      }
      if (!only || only.has(REACHABLE)) {
        checks.push({id: REACHABLE, host: h.name, status: 'pass', value: `${g.ms} ms`, message: `SSH as ${inv.ssh.user} with the pinned host key${h.role === 'web' ? ', through the bastion' : ''}`, fix: ''})
      }
      for (const {id, verdict} of runHostChecks(
        {inventory: inv, host: h, desired: desiredOf.get(h.name)!, facts: g.facts, localTime: g.localTime, bastion: bastionFacts, thresholds},
        only,
      )) {
        checks.push({id, host: h.name, ...verdict})
      }
    }
  }
  if (wantExternal) {
    const b = gathered.get(bastion.name)
    const reason = !b?.facts ? `skipped: ${bastion.name} unreachable` : b.facts.services.get('haproxy') !== 'active' ? `skipped: HAProxy is not running on ${bastion.name}` : undefined
    for (const c of EXTERNAL_CHECKS) {
      if (only && !only.has(c.id)) continue
      if (reason && c.id !== 'private-unreachable') {
        checks.push({id: c.id, host: INTERNET, status: 'skip', value: '-', message: reason, fix: ''})
        continue
      }
      checks.push({id: c.id, host: INTERNET, ...c.run(external!, inv)})
    }
  }
  return {checks, summary: summarize(checks), durationMs: Date.now() - t0}
}

/** Exit status: 1 when a check failed (or warned, with strict), else 0. */
export function doctorExitCode(report: Pick<DoctorReport, 'summary'>, strict = false): 0 | 1 {
  return report.summary.fail > 0 || (strict && report.summary.warn > 0) ? 1 : 0
}
