/** The readable doctor report: grouped by host, one line per check, a fix line per ⚠/✖, a summary. */
import type {CheckResult} from './types.js'
import type {DoctorReport} from './judge.js'

const MARK = {pass: '✔', warn: '⚠', fail: '✖', skip: '-'} as const

export function renderReport(report: DoctorReport, opts: {color?: boolean; details?: boolean; strict?: boolean} = {}): string {
  const c = (code: number, s: string) => (opts.color ? `\u001B[${code}m${s}\u001B[0m` : s)
  const colorOf = {pass: 32, warn: 33, fail: 31, skip: 2} as const
  const groups = new Map<string, CheckResult[]>()
  for (const r of report.checks) {
    if (!groups.has(r.host)) groups.set(r.host, [])
    groups.get(r.host)!.push(r)
  }
  const width = Math.max(0, ...report.checks.map((r) => r.id.length))
  const out: string[] = []
  for (const [host, rows] of groups) {
    out.push(c(1, host === 'internet' ? 'internet (from this machine)' : host))
    for (const r of rows) {
      const value = r.status === 'skip' ? r.message : `${r.value}${r.status === 'pass' ? '' : ` — ${r.message}`}`
      out.push(`  ${c(colorOf[r.status], MARK[r.status])} ${r.id.padEnd(width)}  ${value}`)
      if ((r.status === 'warn' || r.status === 'fail') && r.fix) out.push(`      ${c(36, '→')} ${r.fix}`)
      if (opts.details !== false && r.detail && r.status !== 'pass') {
        for (const l of r.detail.split('\n').filter((x) => x && !x.startsWith('====')).slice(0, 60)) out.push(`        ${l}`)
      }
    }
    out.push('')
  }
  const s = report.summary
  const verdict = s.fail > 0 || (opts.strict && s.warn > 0) ? c(31, 'unhealthy') : c(32, 'healthy')
  out.push(`${verdict}: ${s.pass} passed, ${s.warn} warning${s.warn === 1 ? '' : 's'}, ${s.fail} failed, ${s.skip} skipped in ${(report.durationMs / 1000).toFixed(1)} s`)
  return out.join('\n') + '\n'
}
