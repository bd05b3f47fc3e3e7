/** `infra status` for people: one table of web nodes, the bastion's totals, the scaler (pure). */
import type {FleetStatus, NodeState, NodeStatus} from './model.js'

const STATE_COLOR: Record<NodeState, number> = {active: 32, standby: 2, draining: 33, failed: 31, down: 31}

export function renderStatus(s: FleetStatus, opts: {color?: boolean} = {}): string {
  const c = (code: number, t: string) => (opts.color ? `\u001B[${code}m${t}\u001B[0m` : t)
  const pct = (n: number | null) => (n === null ? '-' : `${n.toFixed(1)}%`)
  const rps = (n: number | null) => (n === null ? '-' : n.toFixed(1))
  const time = s.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
  const scale = s.scaler ? ` (min ${s.scaler.min}, max ${s.scaler.max})` : ''
  const release = s.release ? `; release ${s.release.current ?? 'none deployed yet'}` : ''
  const out = [`${s.domain} at ${time}: ${s.activeNodes} active web node${s.activeNodes === 1 ? '' : 's'}${scale}${release}`, '']
  const rows = s.nodes.map((n) => [
    n.name,
    n.state,
    `${n.health.haproxy}${n.health.check ? ` ${n.health.check}` : ''}, ${n.health.probe === null ? 'no answer' : `http ${n.health.probe}`}`,
    rps(n.requestsPerSecond),
    String(n.sessions),
    pct(n.cpuPercent),
    pct(n.memoryPercent),
    ...(s.release ? [appCell(n.app)] : []),
  ])
  const head = ['NODE', 'STATE', 'HEALTH', 'REQ/S', 'SESSIONS', 'CPU', 'MEM', ...(s.release ? ['RELEASE'] : [])]
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const right = new Set([3, 4, 5, 6])
  const fmt = (cells: string[], state?: NodeState) =>
    cells
      .map((cell, i) => {
        const padded = right.has(i) ? cell.padStart(w[i]) : cell.padEnd(w[i])
        return i === 1 && state ? c(STATE_COLOR[state], padded) : padded
      })
      .join('  ')
      .trimEnd()
  out.push(c(1, fmt(head)))
  s.nodes.forEach((n, i) => out.push(fmt(rows[i], n.state)))
  const b = s.bastion
  const cert = b.certificate ? `certificate ${b.certificate.daysLeft} days left (until ${b.certificate.notAfter.slice(0, 10)})` : 'certificate unreadable'
  out.push(
    '',
    `bastion ${b.name}: ${rps(b.requestsPerSecond)} req/s, ${b.sessions} sessions, ${b.requestsTotal} requests, ${b.responses5xx} 5xx, CPU ${pct(b.cpuPercent)}, memory ${pct(b.memoryPercent)}`,
    `  ${b.certificate && b.certificate.daysLeft < 14 ? c(31, cert) : cert}`,
  )
  if (s.scaler) {
    const d = s.scaler.lastDecision
    const last = d ? `last decision ${d.time.replace('T', ' ').replace(/\.\d+Z$/, '')} ${d.decision}: ${d.reason}` : 'no decision yet'
    out.push(`scaler: ${s.scaler.paused ? c(33, 'PAUSED (infra scale resume)') : 'running'}; ${last}`)
  } else out.push('scaler: not installed')
  if (s.problems.length > 0) {
    out.push('', c(31, 'needs a look:'))
    for (const p of s.problems) out.push(`  - ${p}`)
  }
  return out.join('\n')
}

/** `v2 running` (`v2 running, unhealthy` / `v2 created` / `-` when the node did not say). */
function appCell(a: NodeStatus['app']): string {
  if (!a) return '-'
  if (!a.release) return 'none'
  const extra = a.state === 'running' && a.health !== 'ok' ? ', unhealthy' : a.restarts > 0 ? `, ${a.restarts} restarts` : ''
  return `${a.release} ${a.state}${extra}`
}
