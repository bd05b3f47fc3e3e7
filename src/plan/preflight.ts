/** Facts that make provisioning a host unsafe (a wrong OS, a public address on a web node). */
import {isNonPublicIPv4} from '../host/ipv4.js'
import type {HostSpec} from '../inventory/schema.js'
import type {HostFacts} from './facts.js'

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

