/**
 * Provision: for each host, facts (one round trip) → desired state → plan → apply → confirm.
 * The bastion goes first (its firewall must be in place before connections are opened through it);
 * web nodes then run in parallel, bounded by `ssh.parallel`. One host failing does not stop the others.
 * Everything here is callable from tests; the oclif command only renders progress and results.
 */
import {randomBytes} from 'node:crypto'
import {hostname, userInfo} from 'node:os'
import {createTwoFilesPatch} from 'diff'

import {parseShowStat, runtimeCommand} from '../host/haproxy.js'
import type {HostSpec} from '../inventory/schema.js'
import type {LoadedInventory} from '../inventory/load.js'
import {isNonPublicIPv4} from '../host/ipv4.js'
import {countChanges, type HostPlan, planHost} from './diff.js'
import {factScript, type HostFacts, parseFacts} from './facts.js'
import {applyScript, checkGuardSeconds, confirmScript, parseApplyOutput, rollbackUnit} from './script.js'
import {LOCK_FILE, STATE_DIR} from '../host/paths.js'
import type {HostDesiredState} from './types.js'

/** What the provisioner needs from an SSH connection (src/ssh provides it). */
export interface Conn {
  exec(cmd: string, opts?: {stdin?: string | Buffer; timeoutMs?: number}): Promise<{code: number; stdout: string; stderr: string}>
}

/** What the provisioner needs from the fleet of connections (src/ssh provides it). */
export interface FleetLike {
  connect(name: string): Promise<Conn>
  /** A NEW connection (new TCP session), used to prove the operator can still log in after a guarded change. */
  connectFresh(name: string): Promise<Conn & {close(): Promise<void> | void}>
  close(): Promise<void>
  /** The operator's host key pins as they are now (known_hosts beside the inventory), if the fleet keeps any. */
  knownHosts?(): Promise<string>
}

/**
 * The bastion, planned with the pins the web nodes' connections make (a first contact pins them):
 * once its facts are read, it waits for those connections (opened meanwhile, so the two overlap)
 * and re-renders from the pins as they are then.
 */
function withFreshPins(fleet: FleetLike, bastion: PreparedHost, webs: PreparedHost[]): PreparedHost {
  const {withPins} = bastion
  if (!withPins || !fleet.knownHosts || webs.length === 0) return bastion
  const connected = Promise.allSettled(webs.map((w) => fleet.connect(w.spec.name)))
  return {
    ...bastion,
    refresh: async () => {
      await connected
      const pins = await fleet.knownHosts!().catch(() => undefined)
      return pins === undefined ? bastion.desired : {...bastion.desired, ...withPins(pins)}
    },
  }
}

export type HostPhase = 'waiting' | 'connecting' | 'facts' | 'planning' | 'applying' | 'confirming' | 'settling' | 'done' | 'failed'

export interface ProvisionOptions {
  dryRun?: boolean
  /** Limit to these host names. */
  only?: string[]
  /** Seconds before an unconfirmed firewall/sshd change reverts by itself. */
  guardSeconds?: number
  concurrency?: number
  onProgress?: (host: string, phase: HostPhase, detail?: string) => void
  /** How long to wait after changes for every node in rotation to pass HAProxy's health check. */
  settleMs?: number
}

export interface HostResult {
  host: string
  role: 'bastion' | 'web'
  ok: boolean
  /** One line per change (planned in a dry run, applied otherwise). */
  changes: string[]
  changeCount: number
  durationMs: number
  /** Unified diffs of files and lists of package/service changes (dry run). */
  diff?: string
  error?: string
  /** Tool output that explains the error (validator lines, apt, systemctl). */
  details?: string[]
  /** A guarded change (firewall, sshd) was reverted because no new connection could confirm it. */
  reverted?: boolean
}

/** A web node as HAProxy sees it after the run. */
export interface BackendServer {
  server: string
  /** UP, DOWN, MAINT, DRAIN, `UP 1/2` (going up)... */
  status: string
  check: string
}

export interface ProvisionResult {
  dryRun: boolean
  hosts: HostResult[]
  /** After changes: the web backend once every node in rotation passed its health check (or the wait ran out). */
  backends?: {settled: boolean; servers: BackendServer[]}
  totalChanges: number
  failed: string[]
  durationMs: number
}

export interface PreparedHost {
  spec: HostSpec
  desired: HostDesiredState & {absent?: string[]}
  /**
   * Bastion fact hook (agents, issue 4): on the bastion, a command whose output the web nodes'
   * desired state depends on (the agents' public key, created on the bastion and never copied off
   * it). provisionFleet runs it after the bastion is applied (first, in a dry run) and before the
   * web nodes are planned. `dryRun` asks for a read-only command.
   */
  bastionFact?: (dryRun: boolean) => string
  /** Web nodes: the desired state given the bastion fact's output (replaces `desired`). */
  withBastionFact?: (output: string) => HostDesiredState
  /**
   * Bastion: its desired state given the operator's host key pins as they are once the web nodes
   * are connected (the agents' known_hosts is seeded from them; a first contact pins them during
   * the run). provisionFleet calls it with `FleetLike.knownHosts()` before planning the bastion.
   */
  withPins?: (knownHosts: string) => HostDesiredState
  /** The desired state to plan with, awaited after the facts are read (set by provisionFleet). */
  refresh?: () => Promise<HostDesiredState & {absent?: string[]}>
}

/** Runs the bastion fact hook (see PreparedHost.bastionFact): its output, or undefined when it cannot be read. */
async function readBastionFact(fleet: FleetLike, all: PreparedHost[], dryRun: boolean): Promise<string | undefined> {
  const bastion = all.find((h) => h.spec.role === 'bastion' && h.bastionFact)
  if (!bastion) return undefined
  try {
    const conn = await fleet.connect(bastion.spec.name)
    const r = await conn.exec(bastion.bastionFact!(dryRun), {timeoutMs: 30_000})
    return r.code === 0 ? r.stdout : undefined
  } catch {
    // The bastion is unreachable: the web nodes fail on their own connection through it.
    return undefined
  }
}

/** Re-renders the web nodes that depend on the bastion fact's output. */
function withBastionFact(webs: PreparedHost[], output: string | undefined): PreparedHost[] {
  if (output === undefined) return webs
  return webs.map((h) => (h.withBastionFact ? {...h, desired: h.withBastionFact(output)} : h))
}

/** Runs the bastion fact hook and re-renders the web nodes that depend on it. */
export async function applyBastionFact(fleet: FleetLike, all: PreparedHost[], webs: PreparedHost[], dryRun: boolean): Promise<PreparedHost[]> {
  if (!webs.some((h) => h.withBastionFact)) return webs
  return withBastionFact(webs, await readBastionFact(fleet, all, dryRun))
}

/** Human lines for a plan (used in both dry run and apply summaries). */
export function describePlan(plan: HostPlan): string[] {
  return [
    ...plan.packages.map((p) => `install package ${p}`),
    ...plan.files.map((f) => `${f.kind === 'create' ? 'create' : f.kind === 'update' ? 'update' : 'fix owner/mode of'} ${f.file.path}`),
    ...plan.remove.map((p) => `remove ${p}`),
    ...plan.services.map((s) => `${s.actions.join(' + ')} ${s.name} (${s.reason})`),
  ]
}

/** The dry-run text: a unified diff per file, and package/service changes. Secrets are never shown. */
export function renderPlanDiff(plan: HostPlan): string {
  const parts: string[] = []
  for (const p of plan.packages) parts.push(`+ package ${p}`)
  for (const change of plan.files) {
    const {file, before} = change
    if (change.kind === 'mode') {
      parts.push(`~ ${file.path}: mode ${before?.mode?.toString(8)} ${before?.owner}:${before?.group} → ${file.mode.toString(8)} ${file.owner}:${file.group}`)
      continue
    }
    if (file.secret) {
      parts.push(`~ ${file.path}: secret content ${change.kind === 'create' ? 'created' : 'changed'} (not shown)`)
      continue
    }
    const old = before?.exists ? (before.content ?? '(content not fetched: file too large)\n') : ''
    parts.push(
      createTwoFilesPatch(before?.exists ? `a${file.path}` : '/dev/null', `b${file.path}`, old, file.content, '', '', {context: 3})
        .split('\n')
        .filter((l) => !l.startsWith('====='))
        .map((l) => (l.startsWith('--- ') || l.startsWith('+++ ') ? l.trimEnd() : l))
        .join('\n')
        .trimEnd(),
    )
  }
  for (const p of plan.remove) parts.push(`- ${p}`)
  for (const s of plan.services) parts.push(`~ service ${s.name}: ${s.actions.join(', ')} (${s.reason})`)
  return parts.join('\n')
}

/** Facts that make provisioning a host unsafe, as error messages. */
export function preflight(spec: HostSpec, facts: HostFacts): string[] {
  const errors: string[] = []
  if (facts.os.id !== 'debian') errors.push(`${spec.name} runs ${facts.os.id || 'an unknown OS'} ${facts.os.versionId}; infra supports Debian 12`)
  if (spec.role === 'web') {
    for (const a of facts.addresses) {
      if (!isNonPublicIPv4(a.address)) {
        errors.push(
          `${spec.name} has the public address ${a.address} on ${a.iface}; web nodes must only be on the private network ` +
            `(remove it: ip addr del ${a.address}/${a.prefix} dev ${a.iface})`,
        )
      }
    }
  }
  return errors
}

function newRunId(): string {
  const t = new Date().toISOString().replaceAll(/[-:]/g, '').slice(0, 15)
  return `${t}-${randomBytes(3).toString('hex')}`
}

/** Who runs this provision, as the host's lock records it: `user@machine pid N`. */
export function holderName(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (a container): keep "unknown"
  }
  return `${user}@${hostname()} pid ${process.pid}`
}

/**
 * A lock holder that is a process of this machine which no longer runs (a provision killed with
 * Ctrl-C or SIGKILL): its lock can be taken over rather than waited out.
 */
export function holderIsGone(holder: string, machine = hostname(), alive = pidAlive): boolean {
  const m = /^\S+@(\S+) pid (\d+)$/.exec(holder)
  if (!m || m[1] !== machine) return false
  return Number(m[2]) !== process.pid && !alive(Number(m[2]))
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The error for a host another run holds (its lock names who and until when). */
export function lockedMessage(host: string, locked: {holder: string; run?: string; until?: number}): string {
  const until = locked.until ? new Date(locked.until * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : undefined
  return (
    `${host} is being provisioned by ${locked.holder || 'another run'}${locked.run ? ` (run ${locked.run})` : ''}: nothing was changed. ` +
    `Run again when it has finished${until ? `; if that run died, its lock expires at ${until}, or remove it: infra exec ${host} -- rm ${LOCK_FILE}` : ''}`
  )
}

export async function provisionFleet(fleet: FleetLike, hosts: PreparedHost[], opts: ProvisionOptions = {}): Promise<ProvisionResult> {
  if (!opts.dryRun) checkGuardSeconds(opts.guardSeconds ?? 30)
  const start = Date.now()
  const progress = opts.onProgress ?? (() => {})
  const selected = opts.only?.length ? hosts.filter((h) => opts.only!.includes(h.spec.name)) : hosts
  const bastion = selected.find((h) => h.spec.role === 'bastion')
  let webs = selected.filter((h) => h.spec.role === 'web')
  for (const h of selected) progress(h.spec.name, 'waiting')

  const results: HostResult[] = []
  // A dry run changes nothing, so every host can be read at once.
  if (opts.dryRun) {
    webs = await applyBastionFact(fleet, hosts, webs, true)
    const b = bastion ? withFreshPins(fleet, bastion, webs) : undefined
    results.push(...(await mapLimit([...(b ? [b] : []), ...webs], opts.concurrency ?? 10, (h) => runHost(fleet, h, opts))))
  } else {
    let early: Promise<string | undefined> | undefined
    if (bastion) {
      // While the bastion is read (and changed if it must be), open the web nodes' connections
      // through it and read its fact without side effects: when the bastion has nothing to change,
      // the web nodes start at once (what keeps a no-change re-run to about two round trips).
      const viaBastion = fleet.connect(bastion.spec.name)
      viaBastion.then(
        () => {
          for (const w of webs) fleet.connect(w.spec.name).catch(() => {})
        },
        () => {},
      )
      if (webs.some((h) => h.withBastionFact)) early = readBastionFact(fleet, hosts, true)
      // Web nodes never contacted before are pinned by those connections: the bastion's agents
      // get the pins in this run, not the next one.
      results.push(await runHost(fleet, withFreshPins(fleet, bastion, webs), opts))
    }
    if (!bastion || results[0]?.ok) {
      const known = results[0]?.changeCount === 0 ? await early : undefined
      webs = known?.trim() ? withBastionFact(webs, known) : await applyBastionFact(fleet, hosts, webs, false)
    }
    results.push(...(await mapLimit(webs, opts.concurrency ?? 10, (h) => runHost(fleet, h, opts))))
  }
  const order = new Map(selected.map((h, i) => [h.spec.name, i]))
  results.sort((a, b) => order.get(a.host)! - order.get(b.host)!)
  // Changes done: wait until HAProxy's health checks agree, so "done" means serving.
  let backends: ProvisionResult['backends']
  const bastionName = hosts.find((h) => h.spec.role === 'bastion')?.spec.name
  const bastionOk = !bastion || results.find((r) => r.host === bastion.spec.name)?.ok
  if (!opts.dryRun && bastionName && bastionOk && results.some((r) => r.changeCount > 0)) {
    progress(bastionName, 'settling')
    backends = await waitForBackends(fleet, bastionName, opts.settleMs ?? 20_000)
  }
  return {
    dryRun: Boolean(opts.dryRun),
    hosts: results,
    ...(backends ? {backends} : {}),
    totalChanges: results.reduce((n, r) => n + r.changeCount, 0),
    failed: results.filter((r) => !r.ok).map((r) => r.host),
    durationMs: Date.now() - start,
  }
}

async function runHost(fleet: FleetLike, prepared: PreparedHost, opts: ProvisionOptions): Promise<HostResult> {
  const {spec} = prepared
  let {desired} = prepared
  const progress = opts.onProgress ?? (() => {})
  const t0 = Date.now()
  const result: HostResult = {host: spec.name, role: spec.role, ok: false, changes: [], changeCount: 0, durationMs: 0}
  const fail = (error: string, details?: string[]) => {
    result.error = error
    if (details?.length) result.details = details
    result.durationMs = Date.now() - t0
    progress(spec.name, 'failed', error)
    return result
  }
  try {
    progress(spec.name, 'connecting')
    const conn = await fleet.connect(spec.name)
    progress(spec.name, 'facts')
    const factsOut = await conn.exec('bash -s', {stdin: factScript(desired)})
    if (factsOut.code !== 0) return fail(`gathering facts failed (exit ${factsOut.code})`, factsOut.stderr.split('\n').filter(Boolean))
    const facts = parseFacts(factsOut.stdout)
    const unsafe = preflight(spec, facts)
    if (unsafe.length > 0) return fail(unsafe.join('; '))

    progress(spec.name, 'planning')
    if (prepared.refresh) desired = await prepared.refresh()
    const plan = planHost(desired, facts)
    result.changeCount = countChanges(plan)
    result.changes = describePlan(plan)
    if (opts.dryRun) {
      result.diff = renderPlanDiff(plan)
      result.ok = true
      result.durationMs = Date.now() - t0
      progress(spec.name, 'done', result.changeCount === 0 ? 'no changes' : `${result.changeCount} change(s) planned`)
      return result
    }
    if (result.changeCount === 0) {
      result.ok = true
      result.durationMs = Date.now() - t0
      progress(spec.name, 'done', 'no changes')
      return result
    }

    progress(spec.name, 'applying', `${result.changeCount} change(s)`)
    const runId = newRunId()
    const scriptFor = (takeOver?: string) =>
      applyScript(plan, {runId, guardSeconds: opts.guardSeconds ?? 30, services: desired.services, holder: holderName(), ...(takeOver ? {takeOver} : {})})
    let applied = await conn.exec('bash -s', {stdin: scriptFor(), timeoutMs: 15 * 60_000})
    let report = parseApplyOutput(applied.stdout)
    if (report.locked?.run && holderIsGone(report.locked.holder)) {
      // The holder was a provision of this machine that died: take its lock over (the host
      // refuses while one of its firewall/sshd changes still waits for its timer).
      applied = await conn.exec('bash -s', {stdin: scriptFor(report.locked.run), timeoutMs: 15 * 60_000})
      report = parseApplyOutput(applied.stdout)
    }
    if (report.locked) return fail(lockedMessage(spec.name, report.locked))
    if (!report.ok) {
      const why = report.invalid.length
        ? `${report.invalid.join(', ')} failed validation; nothing was changed and the live configuration keeps serving`
        : report.errors.join('; ') || `apply script exited ${applied.code}: ${applied.stderr.trim().split('\n').slice(-3).join(' ')}`
      return fail(report.reapplied ? `${why}; the previous firewall/sshd settings are back in effect` : why, report.output)
    }
    if (report.armed) {
      progress(spec.name, 'confirming', 'opening a new SSH connection to confirm the firewall/sshd change')
      const confirmed = await confirmGuard(fleet, spec.name, runId)
      if (!confirmed) {
        result.reverted = true
        const reverted = await waitForRevert(fleet, spec.name, conn, runId, report.armed.seconds)
        return fail(
          `the firewall/sshd change would have locked the operator out: a new SSH connection failed after it, ` +
            (reverted ? 'and it was reverted automatically; the previous rules are back' : `and the automatic rollback (${rollbackUnit(runId)}) has not confirmed yet`),
        )
      }
    }
    result.ok = true
    result.durationMs = Date.now() - t0
    progress(spec.name, 'done', `${result.changeCount} change(s) applied`)
    return result
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error))
  }
}

async function waitForBackends(fleet: FleetLike, bastion: string, timeoutMs: number): Promise<{settled: boolean; servers: BackendServer[]}> {
  const deadline = Date.now() + timeoutMs
  let servers: BackendServer[] = []
  try {
    const conn = await fleet.connect(bastion)
    for (;;) {
      const r = await conn.exec(runtimeCommand('show stat'), {timeoutMs: 5000})
      servers = parseShowStat(r.stdout)
        .filter((row) => row.backend === 'web')
        .map((row) => ({server: row.server, status: row.status, check: row.check ?? ''}))
      const inRotation = servers.filter((s) => !s.status.startsWith('MAINT'))
      if (servers.length > 0 && inRotation.every((s) => s.status === 'UP')) return {settled: true, servers}
      if (Date.now() > deadline) return {settled: false, servers}
      await new Promise((res) => setTimeout(res, 500))
    }
  } catch {
    return {settled: false, servers}
  }
}

async function confirmGuard(fleet: FleetLike, name: string, runId: string): Promise<boolean> {
  let fresh: (Conn & {close(): Promise<void> | void}) | undefined
  try {
    fresh = await fleet.connectFresh(name)
    const r = await fresh.exec(confirmScript(runId))
    return r.code === 0 && r.stdout.trim().split('\n').at(-1) === 'confirmed'
  } catch {
    return false
  } finally {
    await fresh?.close()
  }
}

async function waitForRevert(fleet: FleetLike, name: string, old: Conn, runId: string, seconds: number): Promise<boolean> {
  const deadline = Date.now() + (seconds + 15) * 1000
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000))
    try {
      const r = await old.exec(`cat ${STATE_DIR}/rollback-${runId}.done 2>/dev/null`, {timeoutMs: 3000})
      if (r.stdout.includes('reverted')) return true
    } catch {
      // The old connection may have been cut too: try a new one once the timer has fired.
      try {
        const fresh = await fleet.connectFresh(name)
        const r = await fresh.exec(`cat ${STATE_DIR}/rollback-${runId}.done 2>/dev/null`)
        await fresh.close()
        if (r.stdout.includes('reverted')) return true
      } catch {
        // keep waiting
      }
    }
  }
  return false
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return out
}
