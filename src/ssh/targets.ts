import path from 'node:path'

import {fileLabel, type LoadedInventory} from '../inventory/load.js'
import {hostsOf, type HostSpec, type Inventory} from '../inventory/schema.js'
import {ConfigError, UsageError} from '../lib/errors.js'
import {didYouMean} from '../lib/text.js'

/** Which hosts a command works on: targets, host names, and the flag to repeat in suggested commands. */

/** How to pass `-c` in a suggested command, when the inventory is not ./infra.yaml. */
export function configFlag(loaded: LoadedInventory): string {
  if (path.resolve('infra.yaml') === loaded.path) return ''
  return ` -c ${fileLabel(loaded.path)}`
}

/** The UsageError for a name that is neither a host of the inventory nor a target word. */
export function unknownHost(name: string, all: HostSpec[]): UsageError {
  const names = all.map((h) => h.name)
  const near = didYouMean(name, [...names, 'all', 'web', 'bastion'], 2)
  const mean = near === undefined ? '' : ` Did you mean "${near}"?`
  return new UsageError(`unknown host or target "${name}".${mean}`, {
    hint: `Valid targets: all, web, bastion, or a host name (${names.join(', ')}); separate several with commas.`,
  })
}

/**
 * ssh.hostKeys may name only hosts of the inventory (a typo would leave a host unchecked):
 * ConfigError (exit 2) before anything connects.
 */
export function checkHostKeys(loaded: LoadedInventory, all: HostSpec[] = hostsOf(loaded.inventory)): void {
  const names = all.map((h) => h.name)
  for (const name of Object.keys(loaded.inventory.ssh.hostKeys ?? {})) {
    if (names.includes(name)) continue
    const near = didYouMean(name, names, 2)
    throw new ConfigError(`${fileLabel(loaded.path)}: ssh.hostKeys.${name}: no host of this inventory is named "${name}"`, {
      hint: `${near === undefined ? '' : `Did you mean "${near}"? `}The keys of ssh.hostKeys are host names: ${names.join(', ')}.`,
    })
  }
}

/**
 * The hosts a target names: a host name, `bastion` (the bastion whatever its name), `web`
 * (every web node, standby included), `all`, or several of these separated by commas.
 * Unknown names throw a UsageError listing the valid ones. Result in inventory order.
 */
export function resolveTarget(inv: Inventory, target: string): HostSpec[] {
  const all = hostsOf(inv)
  const picked = new Set<string>()
  const parts = target
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (parts.length === 0) throw unknownHost(target, all)
  for (const part of parts) {
    if (part === 'all') for (const h of all) picked.add(h.name)
    else if (part === 'web') for (const h of all.filter((x) => x.role === 'web')) picked.add(h.name)
    else if (part === 'bastion') picked.add(all[0].name)
    else {
      const h = all.find((x) => x.name === part)
      if (!h) throw unknownHost(part, all)
      picked.add(h.name)
    }
  }
  return all.filter((h) => picked.has(h.name))
}
