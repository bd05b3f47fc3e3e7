/**
 * The terminal side of provision/plan: progress, confirmation, the printed plan and summary.
 * Kept out of the command class so it stays thin; tests call `provision()` in run.ts directly.
 */
import {durationFlag} from '../inventory/flags.js'
import type {LoadedInventory} from '../inventory/load.js'
import {UsageError} from '../lib/errors.js'
import {hostProgress, progressMode} from '../lib/progress.js'
import type {ProvisionResult} from './provision.js'
import {provision, summaryLine} from './run.js'
import {MAX_GUARD_SECONDS, MIN_GUARD_SECONDS} from './script.js'

export interface ProvisionCommandOptions {
  dryRun: boolean
  yes: boolean
  only?: string[]
  guardSeconds?: number
  json: boolean
  commandName: string
}

function interactive(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY && !process.env.CI)
}

const err = (s: string) => process.stderr.write(s + '\n')
const out = (s: string) => process.stdout.write(s + '\n')

export async function runProvisionCommand(loaded: LoadedInventory, opts: ProvisionCommandOptions): Promise<ProvisionResult> {
  if (!opts.dryRun && !opts.yes && !interactive()) {
    throw new UsageError('provision changes hosts and there is no terminal to confirm it', {
      hint: 'Pass --yes to apply (see the changes first with `infra plan`).',
    })
  }
  const {hostsOf} = await import('../inventory/schema.js')
  const names = hostsOf(loaded.inventory)
    .map((h) => h.name)
    .filter((n) => !opts.only?.length || opts.only.includes(n))

  // Interactive apply without --yes: show the plan, then ask (Terraform's way).
  if (!opts.dryRun && !opts.yes) {
    const planned = await runOnce(loaded, {...opts, dryRun: true}, names)
    if (planned.totalChanges === 0 || planned.failed.length > 0) return planned
    const {confirm} = await import('@inquirer/prompts')
    const go = await confirm({message: `Apply ${planned.totalChanges} change(s) to ${planned.hosts.filter((h) => h.changeCount > 0).length} host(s)?`, default: false})
    if (!go) {
      err('Nothing applied.')
      return planned
    }
  }
  return runOnce(loaded, opts, names)
}

async function runOnce(loaded: LoadedInventory, opts: ProvisionCommandOptions, names: string[]): Promise<ProvisionResult> {
  const progress = await hostProgress(names, progressMode(opts.json))
  const result = await provision(loaded, {dryRun: opts.dryRun, only: opts.only, guardSeconds: opts.guardSeconds, onProgress: progress.update})
  await progress.finish()
  if (opts.json) return result
  printResult(result)
  return result
}

export function printResult(result: ProvisionResult): void {
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
