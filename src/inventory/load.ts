import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {parse} from 'yaml'

import {ConfigError} from '../lib/errors.js'
import {Inventory, inventorySchema} from './schema.js'

/** An inventory together with where it came from; paths in it resolve against `dir`. */
export interface LoadedInventory {
  /** Absolute path of the inventory file. */
  path: string
  /** Folder of the inventory file. */
  dir: string
  inventory: Inventory
  /** `known_hosts` beside the inventory (OpenSSH format). */
  knownHostsPath: string
}

/** Resolve a path from the inventory against the inventory's folder. */
export function resolveFrom(loaded: LoadedInventory, p: string): string {
  return path.resolve(loaded.dir, p)
}

// STUB (to be replaced by the inventory work): line/column errors, did-you-mean, cross-field checks.
export async function loadInventory(file: string): Promise<LoadedInventory> {
  const abs = path.resolve(file)
  let text: string
  try {
    text = await readFile(abs, 'utf8')
  } catch {
    throw new ConfigError(`${file}: no such inventory file`, {hint: 'Run `infra init` to write one, or pass --config PATH.'})
  }
  const r = inventorySchema.safeParse(parse(text))
  if (!r.success) throw new ConfigError(`${file}: ${r.error.message}`)
  return {path: abs, dir: path.dirname(abs), inventory: r.data, knownHostsPath: path.join(path.dirname(abs), 'known_hosts')}
}
