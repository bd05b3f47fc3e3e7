/**
 * The judgement of each host check: pure functions of (facts, inventory, desired state).
 * Unit-tested with fixed facts; no SSH needed.
 */
import {APP_CHECKS} from './app-checks.js'
import {BASTION_CHECKS} from './bastion-checks.js'
import {firewallCheck, sshdCheck} from './ssh-firewall-checks.js'
import {diskCheck, loadCheck, memoryCheck, osCheck, timeCheck, unattendedUpgradesCheck} from './system-checks.js'
import type {HostCheck, HostCheckContext, Verdict} from './types.js'
import {fail} from './verdict.js'
import {WEB_CHECKS} from './web-checks.js'

export {normalizeRuleset} from './ssh-firewall-checks.js'

/** Every host check, in the order doctor runs and reports them: every host, then the bastion, then the web nodes. */
export const HOST_CHECKS: HostCheck[] = [
  osCheck,
  timeCheck,
  sshdCheck,
  firewallCheck,
  diskCheck,
  memoryCheck,
  loadCheck,
  unattendedUpgradesCheck,
  ...BASTION_CHECKS,
  ...WEB_CHECKS,
  ...APP_CHECKS,
]

export const HOST_CHECK_IDS = HOST_CHECKS.map((c) => c.id)

/** The checks of a host of this role, for this inventory (`only`: those ids). */
export function checksFor(ctx: Pick<HostCheckContext, 'inventory' | 'host'>, only?: Set<string>): HostCheck[] {
  return HOST_CHECKS.filter((c) => c.roles.includes(ctx.host.role) && (!only || only.has(c.id)) && (!c.applies || c.applies(ctx)))
}

export function runHostChecks(ctx: HostCheckContext, only?: Set<string>): {id: string; verdict: Verdict}[] {
  return checksFor(ctx, only).map((c) => {
    try {
      return {id: c.id, verdict: c.run(ctx)}
    } catch (error) {
      return {id: c.id, verdict: fail('error', `check crashed: ${(error as Error).message}`, 'report this as a bug in infra')}
    }
  })
}

export type {HostCheckContext}
