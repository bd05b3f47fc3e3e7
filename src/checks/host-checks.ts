/**
 * The judgement of each host check: pure functions of (facts, inventory, desired state).
 * Unit-tested with fixed facts; no SSH needed.
 */
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
]

export const HOST_CHECK_IDS = HOST_CHECKS.map((c) => c.id)

export function runHostChecks(ctx: HostCheckContext, only?: Set<string>): {id: string; verdict: Verdict}[] {
  return HOST_CHECKS.filter((c) => c.roles.includes(ctx.host.role) && (!only || only.has(c.id))).map((c) => {
    try {
      return {id: c.id, verdict: c.run(ctx)}
    } catch (error) {
      return {id: c.id, verdict: fail('error', `check crashed: ${(error as Error).message}`, 'report this as a bug in infra')}
    }
  })
}

export type {HostCheckContext}
