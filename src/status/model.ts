/**
 * From the bastion's raw samples to the fleet status people and scripts read (pure).
 */
import type {Inventory, WebNode} from '../inventory/schema.js'
import type {NodeSample, RawStatus, Sample} from './collect.js'

export type NodeState = 'active' | 'standby' | 'draining' | 'failed' | 'down'

export interface NodeStatus {
  name: string
  address: string
  /** active: in rotation and healthy; standby: parked (maintenance); draining; failed: in rotation
   * but its health check fails, or parked by the healthchecker after failing; down: the host does
   * not answer at all (node exporter and web service both silent). */
  state: NodeState
  /** A spare in the inventory (`standby: true`). */
  standbyInInventory: boolean
  health: {
    /** HAProxy's server status (UP, DOWN, MAINT, DRAIN, `UP 1/3`, ...). */
    haproxy: string
    /** HAProxy's last check result (L7OK, L4CON, ...). */
    check: string
    /** HTTP status of a probe of the health path from the bastion, now; null when it did not answer. */
    probe: number | null
  }
  requestsPerSecond: number | null
  sessions: number
  cpuPercent: number | null
  memoryPercent: number | null
  load1: number | null
  /** With an app: the node's current release and its container (null: the node did not say). */
  app?: {release: string | null; state: string; health: string; restarts: number} | null
}

export interface BastionStatus {
  name: string
  requestsPerSecond: number | null
  sessions: number
  requestsTotal: number
  responses5xx: number
  cpuPercent: number | null
  memoryPercent: number | null
  /** The HTTPS certificate: end date and whole days left (negative once expired). */
  certificate: {notAfter: string; daysLeft: number} | null
}

export interface ScalerSummary {
  paused: boolean
  /** ISO time of the scaler's last run. */
  lastRun: string | null
  lastDecision: {time: string; decision: string; reason: string} | null
  min: number
  max: number
}

export interface FleetStatus {
  time: string
  domain: string
  bastion: BastionStatus
  nodes: NodeStatus[]
  activeNodes: number
  /** With an app: the current release of the history on the bastion (null: none deployed yet). */
  release?: {current: string | null}
  scaler: ScalerSummary | null
  /** One line per thing that needs a look (empty when all is well). */
  problems: string[]
}

const num = (s: string | undefined): number => {
  const n = Number(s)
  return s === undefined || s === '' || !Number.isFinite(n) ? 0 : n
}
const round1 = (n: number) => Math.round(n * 10) / 10

function cpuPercent(cur: NodeSample | undefined, prev: NodeSample | undefined): number | null {
  if (!cur?.up || !prev?.up || cur.cpuTotal === null || prev.cpuTotal === null || cur.cpuIdle === null || prev.cpuIdle === null) return null
  const total = cur.cpuTotal - prev.cpuTotal
  if (total <= 0) return null
  return round1(Math.min(100, Math.max(0, (100 * (total - (cur.cpuIdle - prev.cpuIdle))) / total)))
}

function memPercent(s: NodeSample | undefined): number | null {
  if (!s?.up || !s.memTotal || s.memAvailable === null) return null
  return round1((100 * (s.memTotal - s.memAvailable)) / s.memTotal)
}

type Stat = Record<string, string>[]

function row(stat: Stat, px: string, sv: string) {
  return stat.find((r) => r.pxname === px && r.svname === sv)
}

/** Requests per second between two samples from `req_tot` (null without two samples or on a reset). */
function rate(cur: Sample, prev: Sample | undefined, pick: (stat: Stat) => number | null): number | null {
  if (!prev || cur.time <= prev.time) return null
  const a = pick(prev.stat)
  const b = pick(cur.stat)
  if (a === null || b === null || b < a) return null
  return round1(((b - a) * 1000) / (cur.time - prev.time))
}

/**
 * Build the status. `prev` is an earlier sample (the previous --watch frame) used for rates when
 * the raw status holds a single sample.
 */
export function buildStatus(inv: Inventory, raw: RawStatus, prev?: Sample): FleetStatus {
  const cur = raw.samples.at(-1)
  if (!cur) throw new Error('the status script printed no sample')
  const before = raw.samples.length > 1 ? raw.samples.at(-2) : prev
  const problems: string[] = []
  if (cur.stat.length === 0) problems.push(`HAProxy's runtime API did not answer on ${inv.bastion.name}: run \`infra doctor\``)

  const scalerNodes = new Map((raw.scaler?.nodes ?? []).map((n) => [n.name, n]))
  const nodes = inv.web.nodes.map((n) => {
    const {status, problem} = nodeStatus(n, cur, before, scalerNodes.get(n.name)?.state)
    if (problem) problems.push(problem)
    return status
  })
  const bastion = bastionStatus(inv.bastion.name, raw, cur, before, problems)
  const scaler = scalerSummary(inv.bastion.name, raw, cur, problems)
  const activeNodes = nodes.filter((n) => n.state === 'active').length
  if (cur.stat.length > 0 && activeNodes === 0) problems.unshift('no web node is serving: `infra doctor`')
  const release = inv.app ? appStatus(raw, nodes, problems) : undefined
  return {time: new Date(cur.time).toISOString(), domain: inv.domain, bastion, nodes, activeNodes, ...(release ? {release} : {}), scaler, problems}
}

/** Each node's release and container (set on `nodes`), the current release, and their problems. */
function appStatus(raw: RawStatus, nodes: NodeStatus[], problems: string[]): {current: string | null} {
  const current = raw.app?.current ?? null
  for (const n of nodes) {
    const a = raw.app?.nodes.get(n.name)
    n.app = a ? {release: a.release, state: a.state, health: a.health, restarts: a.restarts} : null
    const serving = n.state === 'active' || n.state === 'draining'
    if (!a || !serving || current === null) continue
    if (a.release !== current) problems.push(`${n.name} serves ${a.release ?? 'no release'}, not the current ${current}: \`infra doctor --host ${n.name}\``)
    else if (a.state !== 'running' || a.health !== 'ok') problems.push(`${n.name}: the app's container is ${a.state}, health ${a.health}: \`infra logs ${n.name} --unit app\``)
  }
  if (raw.app?.current === null && nodes.length > 0) problems.push('no release of the app is deployed yet: `infra deploy --build DIR`')
  return {current}
}

/** One web node's status, and the problem to report about it (if any). `scalerState`: what the scaler says of the node. */
function nodeStatus(n: WebNode, cur: Sample, before: Sample | undefined, scalerState: string | undefined): {status: NodeStatus; problem?: string} {
  const r = row(cur.stat, 'web', n.name)
  // Without the runtime API (reported once by buildStatus) the probe alone decides.
  const haproxy = r?.status ?? (cur.stat.length === 0 ? 'unknown' : 'missing')
  const exporter = cur.nodes.get(n.name)
  const probeText = cur.probes.get(n.name) ?? ''
  const probe = /^[1-5]\d\d$/.test(probeText) ? Number(probeText) : null
  let state: NodeState
  if (!exporter?.up && probe === null) state = 'down'
  else if (haproxy.startsWith('MAINT')) state = scalerState === 'failed' ? 'failed' : 'standby'
  else if (haproxy.startsWith('DRAIN')) state = 'draining'
  else if (probe === 200 && !/^(DOWN|NOLB|missing)/.test(haproxy)) state = 'active'
  else state = 'failed'
  const status: NodeStatus = {
    name: n.name,
    address: n.address,
    state,
    standbyInInventory: n.standby,
    health: {haproxy, check: r?.check_status ?? '', probe},
    requestsPerSecond: rate(cur, before, (stat) => {
      const x = row(stat, 'web', n.name)
      return x ? num(x.req_tot) : null
    }),
    sessions: num(r?.scur),
    cpuPercent: cpuPercent(exporter, before?.nodes.get(n.name)),
    memoryPercent: memPercent(exporter),
    load1: exporter?.up ? exporter.load1 : null,
  }
  let problem: string | undefined
  if (state === 'down') problem = `${n.name} does not answer (node exporter and web service): is the host up? \`infra doctor --host ${n.name}\``
  else if (state === 'failed' && haproxy === 'MAINT' && probe === 200) {
    problem = `${n.name} was taken out of rotation by the healthchecker and answers again: \`infra scale status\`, then \`infra scale up\` if needed`
  } else if (state === 'failed') {
    problem = `${n.name} fails its health check (HAProxy ${haproxy}, probe ${probe ?? 'no answer'}): \`infra logs ${n.name} --unit nginx --since 10m\``
  } else if (!exporter?.up) problem = `${n.name}: its node exporter does not answer: \`infra provision\``
  return {status, problem}
}

/** Requests through the public frontends (null when HAProxy listed none). */
function frontends(stat: Stat): number | null {
  const rows = stat.filter((r) => r.svname === 'FRONTEND' && (r.pxname === 'https' || r.pxname === 'http'))
  return rows.length > 0 ? rows.reduce((a, r) => a + num(r.req_tot), 0) : null
}

/** The bastion's status; its certificate problems go to `problems`. */
function bastionStatus(name: string, raw: RawStatus, cur: Sample, before: Sample | undefined, problems: string[]): BastionStatus {
  const https = row(cur.stat, 'https', 'FRONTEND')
  const bx = cur.nodes.get(name)
  let certificate: BastionStatus['certificate'] = null
  if (raw.certNotAfter) {
    const end = Date.parse(raw.certNotAfter)
    if (Number.isFinite(end)) {
      certificate = {notAfter: new Date(end).toISOString(), daysLeft: Math.floor((end - cur.time) / 86_400_000)}
      if (certificate.daysLeft < 14) problems.push(`the certificate expires in ${certificate.daysLeft} days: renew it and run \`infra provision\``)
    }
  }
  if (!certificate) problems.push(`the certificate on ${name} could not be read: \`infra doctor\``)
  return {
    name,
    requestsPerSecond: rate(cur, before, frontends),
    sessions: num(https?.scur),
    requestsTotal: frontends(cur.stat) ?? 0,
    responses5xx: num(row(cur.stat, 'web', 'BACKEND')?.hrsp_5xx),
    cpuPercent: cpuPercent(bx, before?.nodes.get(name)),
    memoryPercent: memPercent(bx),
    certificate,
  }
}

/** The scaler's summary (null when the agents are not installed); its problems go to `problems`. */
function scalerSummary(bastionName: string, raw: RawStatus, cur: Sample, problems: string[]): ScalerSummary | null {
  if (!raw.scaler) {
    problems.push(`the agents are not installed on ${bastionName}: \`infra provision\``)
    return null
  }
  const d = raw.scaler.decisions.at(-1)
  if (raw.scaler.heartbeat && cur.time / 1000 - raw.scaler.heartbeat > 180) {
    problems.push(`the scaler last ran ${Math.round(cur.time / 1000 - raw.scaler.heartbeat)} s ago: is cron running on ${bastionName}? \`infra doctor\``)
  }
  return {
    paused: raw.scaler.paused !== null,
    lastRun: raw.scaler.heartbeat ? new Date(raw.scaler.heartbeat * 1000).toISOString() : null,
    lastDecision: d ? {time: new Date(d.time * 1000).toISOString(), decision: d.decision, reason: d.reason} : null,
    min: raw.scaler.min,
    max: raw.scaler.max,
  }
}
