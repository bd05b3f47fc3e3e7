import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {ConfigError} from '../lib/errors.js'
import {Inventory} from './schema.js'
import {InventoryIssue, resolveInventoryPath, validateInventoryText} from './validate.js'

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

export interface LoadOptions {
  /**
   * Check the files the inventory names (ssh.privateKey, tls.cert, tls.key, auth.key): they exist, can be
   * read, and private keys are not readable by other users. Default true.
   */
  checkFiles?: boolean
}

/** An invalid inventory: `issues` holds every problem found (exit 2). */
export class InventoryError extends ConfigError {
  readonly issues: InventoryIssue[]
  readonly file: string

  constructor(file: string, issues: InventoryIssue[], lines: string[]) {
    const n = issues.length
    super(`${file} is not valid (${n} ${n === 1 ? 'error' : 'errors'}):\n${lines.join('\n')}`, {
      hint: `Fix the ${n === 1 ? 'key' : 'keys'} above in ${file}; \`infra validate\` checks the file without touching any host.`,
      code: 'EINVENTORY',
    })
    this.file = file
    this.issues = issues
  }
}

export interface InventoryCheck {
  /** Absolute path of the inventory file. */
  path: string
  /** The file as named in messages: relative to the working folder when inside it. */
  label: string
  issues: InventoryIssue[]
  /** `file:line:column path: message`, one per issue, sorted by position. */
  errors: string[]
  /** Set when there is no issue. */
  inventory?: Inventory
}

/** Resolve a path from the inventory against the inventory's folder (`~/` is the home folder). */
export function resolveFrom(loaded: LoadedInventory, p: string): string {
  return resolveInventoryPath(loaded.dir, p)
}

/** How a file is named in messages: relative to the working folder when inside it, else absolute. */
export function fileLabel(abs: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, abs)
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs
}

/**
 * Reads and validates an inventory file without throwing on validation problems (for
 * `infra validate`). Throws a ConfigError only when the file cannot be read.
 */
export async function checkInventoryFile(file: string, opts: LoadOptions = {}): Promise<InventoryCheck> {
  const abs = path.resolve(file)
  const label = fileLabel(abs)
  let text: string
  try {
    text = await readFile(abs, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new ConfigError(`${label}: no such inventory file (looked for ${abs})`, {
        hint: 'Run `infra init` to write one, or pass --config PATH (or set INFRA_CONFIG).',
        code: 'ENOINVENTORY',
      })
    }
    if (code === 'EISDIR') {
      throw new ConfigError(`${label} is a folder, not an inventory file`, {hint: `Pass the file itself, e.g. --config ${path.join(label, 'infra.yaml')}.`, code: 'ENOINVENTORY'})
    }
    throw new ConfigError(`${label}: cannot read the inventory (${code ?? String(error)})`, {code: 'ENOINVENTORY', cause: error})
  }
  const dir = path.dirname(abs)
  const r = validateInventoryText(text, label, {baseDir: opts.checkFiles === false ? undefined : dir})
  return {path: abs, label, issues: r.issues, errors: r.errors, inventory: r.inventory}
}

/**
 * Loads the inventory: every problem is reported at once as an InventoryError (a ConfigError,
 * exit 2) whose message has one `file:line:column path: message` line per problem. The inventory
 * is returned deep-frozen: copy it to change it.
 */
export async function loadInventory(file: string, opts: LoadOptions = {}): Promise<LoadedInventory> {
  const r = await checkInventoryFile(file, opts)
  if (!r.inventory) throw new InventoryError(r.label, r.issues, r.errors)
  const dir = path.dirname(r.path)
  return {path: r.path, dir, inventory: deepFreeze(r.inventory), knownHostsPath: path.join(dir, 'known_hosts')}
}

/**
 * Freezes a value and everything it holds (plain objects and arrays): the loaded inventory is read
 * only, so what is derived from it once (src/inventory/config.ts) stays true.
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
