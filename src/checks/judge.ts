/**
 * `infra doctor`'s pure half: which hosts and checks a run covers, and the verdicts from the
 * gathered evidence (host-checks.ts, external.ts). src/tasks/doctor.ts gathers the evidence.
 */
import type {HostSpec, Inventory} from '../inventory/schema.js'
import {UsageError} from '../lib/errors.js'
import type {HostDesiredState} from '../plan/types.js'
import {EXTERNAL_CHECK_IDS, EXTERNAL_CHECKS, type ExternalFacts, INTERNET} from './external.js'
import type {DoctorFacts} from './facts.js'
import {checksFor, HOST_CHECK_IDS, runHostChecks} from './host-checks.js'
import type {CheckResult, Thresholds} from './types.js'

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

/** What a doctor run gathers and judges, from the selection (--host, --check). */
export interface Selection {
  /** The hosts whose checks are reported. */
  selected: HostSpec[]
  /** The hosts to read facts from (the bastion too when web nodes or the internet checks need its view). */
  gather: HostSpec[]
  only?: Set<string>
  wantExternal: boolean
  wantsHostChecks: boolean
}

export function selectionOf(all: HostSpec[], opts: Pick<DoctorOptions, 'hosts' | 'checks'>): Selection {
  validateSelection(all, opts)
  const only = opts.checks && opts.checks.length > 0 ? new Set(opts.checks) : undefined
  const wantHost = (name: string) => !opts.hosts || opts.hosts.length === 0 || opts.hosts.includes(name)
  const selected = all.filter((h) => wantHost(h.name))
  const wantExternal = wantHost(INTERNET) && (!only || EXTERNAL_CHECK_IDS.some((id) => only.has(id)))
  const wantsHostChecks = !only || [REACHABLE, ...HOST_CHECK_IDS].some((id) => only.has(id))
  // The bastion's view (HAProxy's server states) judges web nodes, and decides whether the
  // internet checks can mean anything: gather it whenever anything needs it.
  const bastion = all[0]
  const needBastion = wantExternal || selected.some((h) => h.role === 'web')
  const gather = wantsHostChecks || wantExternal ? [...new Set([...(needBastion ? [bastion] : []), ...(wantsHostChecks ? selected : [])])] : []
  return {selected, gather, only, wantExternal, wantsHostChecks}
}

/** One host's gathered facts (or why there are none). */
export interface Gathered {
  host: HostSpec
  facts?: DoctorFacts
  localTime: number
  error?: Error & {hint?: string; kind?: string}
  ms: number
}

/** Everything a doctor run read, for the verdicts. */
export interface Evidence {
  inventory: Inventory
  bastion: HostSpec
  desired: Map<string, HostDesiredState>
  gathered: Map<string, Gathered>
  external?: ExternalFacts
  thresholds: Thresholds
}

/** A host that could not be read: `reachable` fails and its other checks are skipped. */
function unreachable(h: HostSpec, g: Gathered, ids: string[], ev: Evidence, only?: Set<string>): CheckResult[] {
  const e = g.error
  const bastionDown = e?.kind === 'bastion-down'
  const out: CheckResult[] = []
  if (!only || only.has(REACHABLE)) {
    out.push({
      id: REACHABLE,
      host: h.name,
      status: 'fail',
      value: e?.kind ?? 'error',
      message: e?.message.replace(`${h.name}: `, '') ?? 'unreachable',
      fix: e?.hint ?? (bastionDown ? `fix the bastion first (\`infra doctor --host ${ev.bastion.name}\`)` : `check that ${h.address} is up and sshd runs on it`),
    })
  }
  for (const id of ids) out.push({id, host: h.name, status: 'skip', value: '-', message: bastionDown ? 'skipped: bastion unreachable' : 'skipped: unreachable', fix: ''})
  return out
}

function hostResults(sel: Selection, ev: Evidence): CheckResult[] {
  const {only} = sel
  const inv = ev.inventory
  const checks: CheckResult[] = []
  const bastionFacts = ev.gathered.get(ev.bastion.name)?.facts
  for (const h of sel.selected) {
    const g = ev.gathered.get(h.name)!
    const ids = checksFor({inventory: inv, host: h}, only).map((c) => c.id)
    if (!g.facts) {
      checks.push(...unreachable(h, g, ids, ev, only))
      continue
    }
    if (!only || only.has(REACHABLE)) {
      checks.push({id: REACHABLE, host: h.name, status: 'pass', value: `${g.ms} ms`, message: `SSH as ${inv.ssh.user} with the pinned host key${h.role === 'web' ? ', through the bastion' : ''}`, fix: ''})
    }
    const input = {inventory: inv, host: h, desired: ev.desired.get(h.name)!, facts: g.facts, localTime: g.localTime, bastion: bastionFacts, thresholds: ev.thresholds}
    for (const {id, verdict} of runHostChecks(input, only)) checks.push({id, host: h.name, ...verdict})
  }
  return checks
}

function externalResults(sel: Selection, ev: Evidence): CheckResult[] {
  const b = ev.gathered.get(ev.bastion.name)
  const name = ev.bastion.name
  const reason = !b?.facts ? `skipped: ${name} unreachable` : b.facts.services.get('haproxy') !== 'active' ? `skipped: HAProxy is not running on ${name}` : undefined
  const checks: CheckResult[] = []
  for (const c of EXTERNAL_CHECKS) {
    if (sel.only && !sel.only.has(c.id)) continue
    if (reason && c.id !== 'private-unreachable') checks.push({id: c.id, host: INTERNET, status: 'skip', value: '-', message: reason, fix: ''})
    else checks.push({id: c.id, host: INTERNET, ...c.run(ev.external!, ev.inventory)})
  }
  return checks
}

/** Every verdict of a doctor run, in report order (pure: the evidence is gathered by src/tasks/doctor.ts). */
export function judge(sel: Selection, ev: Evidence): CheckResult[] {
  return [...(sel.wantsHostChecks ? hostResults(sel, ev) : []), ...(sel.wantExternal ? externalResults(sel, ev) : [])]
}

/** Exit status: 1 when a check failed (or warned, with strict), else 0. */
export function doctorExitCode(report: Pick<DoctorReport, 'summary'>, strict = false): 0 | 1 {
  return report.summary.fail > 0 || (strict && report.summary.warn > 0) ? 1 : 0
}
