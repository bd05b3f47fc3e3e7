/**
 * Provision's value as people read it: the plan's diffs, errors with their details, the HAProxy
 * backends, a summary line. The commands (provision, plan) print it; nothing here runs anything.
 */
import {durationFlag} from '../../inventory/flags.js'
import {MAX_GUARD_SECONDS, MIN_GUARD_SECONDS} from '../../plan/script.js'
import type {ProvisionResult} from './types.js'

const err = (s: string) => process.stderr.write(s + '\n')
const out = (s: string) => process.stdout.write(s + '\n')

/** "3 changes on 4 hosts", "0 changes on 4 hosts". */
export function summaryLine(r: ProvisionResult): string {
  const n = r.hosts.length
  const verb = r.dryRun ? 'planned' : 'applied'
  const changes = `${r.totalChanges} change${r.totalChanges === 1 ? '' : 's'}`
  const base = r.totalChanges === 0 ? `0 changes on ${n} host${n === 1 ? '' : 's'}` : `${changes} ${verb} on ${n} host${n === 1 ? '' : 's'}`
  const failed = r.failed.length ? `; ${r.failed.length} failed: ${r.failed.join(', ')}` : ''
  return `${base}${failed} (${(r.durationMs / 1000).toFixed(1)}s)`
}

/** The plan (dry run) on stdout; the rest on stderr. */
export function printResult(result: ProvisionResult): void {
  for (const w of result.warnings ?? []) err(`⚠ ${w}`)
  for (const h of result.hosts) {
    if (result.dryRun && h.changeCount > 0) {
      out(`# ${h.host}: ${h.changeCount} change(s)`)
      out(h.diff ?? '')
    }
    if (!h.ok) {
      err(`✖ ${h.host}: ${h.error}`)
      for (const line of (h.details ?? []).slice(-20)) err(`    ${line}`)
    }
  }
  if (result.backends) {
    const list = result.backends.servers.map((s) => `${s.server} ${s.status}`).join(', ')
    if (result.backends.settled) err(`HAProxy: ${list}`)
    else err(`⚠ HAProxy: not every node in rotation passed its health check yet: ${list} (see \`infra exec bastion -- "echo 'show stat' | socat stdio /run/haproxy/admin.sock"\`)`)
  }
  err('')
  err(summaryLine(result))
  if (result.dryRun && result.totalChanges > 0) err('Run `infra provision --yes` to apply.')
  if (result.failed.length > 0) err('Fix the errors above and run `infra provision` again: hosts that succeeded are not changed twice.')
}

/**
 * --confirm-timeout in seconds, from 10 s (a new SSH connection needs time to be made and checked:
 * below that a healthy change could be reverted) to 30 min (an unconfirmed firewall should not
 * wait longer to revert): the apply script's bounds.
 */
export function confirmTimeoutSeconds(value: string): number {
  const ms = durationFlag('confirm-timeout', value, {
    units: 's|m',
    min: {value: `${MIN_GUARD_SECONDS}s`, why: 'so a new SSH connection has time to confirm the change'},
    max: `${MAX_GUARD_SECONDS / 60}m`,
    hint: 'Use seconds or minutes from 10s to 30m, e.g. 30s or 2m.',
  })
  return Math.round(ms / 1000)
}
