/**
 * Provision's host work: for each host, facts (one round trip) → desired state → plan → apply →
 * confirm. The bastion goes first (its firewall must be in place before connections are opened
 * through it); web nodes then run in parallel, bounded by `ssh.parallel`. One host failing does
 * not stop the others.
 */
import {parseShowStat, runtimeCommand} from '../../host/haproxy.js'
import {STATE_DIR} from '../../host/paths.js'
import {countChanges, planHost} from '../../plan/diff.js'
import {factScript, parseFacts} from '../../plan/facts.js'
import {preflight} from '../../plan/preflight.js'
import {describePlan, renderPlanDiff} from '../../plan/render.js'
import {applyScript, checkGuardSeconds, confirmScript, rollbackUnit} from '../../plan/script.js'
import {parseApplyOutput} from '../../plan/apply-report.js'
import {mapLimit} from '../../lib/pool.js'
import {holderIsGone, holderName, lockedMessage, newRunId} from './lock.js'
import type {BackendServer, Conn, FleetLike, HostResult, PreparedHost, ProvisionOptions, ProvisionResult} from './types.js'

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
