import {accessSync, constants, readFileSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, Node, parseDocument} from 'yaml'

import {didYouMean} from '../lib/text.js'
import {crossCheck, CrossIssue, pathText} from './cross-check.js'
import {Inventory, inventoryObject, inventoryShapeSchema, show} from './schema.js'

/**
 * Validation of an inventory text: YAML syntax, the zod schema, the cross-field checks and
 * (when a folder is given) the files it names. Every problem becomes one line:
 *
 *     infra.yaml:12:5 web.nodes[1].address: "10.0.0" is not an IPv4 address
 *
 * The position is the value's; for a missing key, the mapping that should hold it; for an
 * unknown key, the key itself.
 *
 * Length: over 350 lines with its comments, kept together because every step maps its problems
 * back to the same YAML positions (line:col) with the same helpers.
 */

export interface InventoryIssue {
  /** The file as shown to the user (relative to the working folder when inside it). */
  file: string
  /** 1-based. */
  line: number
  /** 1-based. */
  column: number
  /** Key path, e.g. `web.nodes[1].address`; empty for YAML syntax errors and for the whole file. */
  path: string
  /** What is wrong and what would be valid, e.g. `"10.0.0" is not an IPv4 address`. */
  message: string
}

export interface ValidationResult {
  /** Set only when there is no issue. */
  inventory?: Inventory
  /** One line per issue, sorted by position: `file:line:column path: message`. */
  errors: string[]
  issues: InventoryIssue[]
}

export interface ValidateOptions {
  /**
   * The inventory's folder. When given, the files the inventory names (ssh.privateKey, tls.cert,
   * tls.key, auth.key) must exist and be readable, and private keys must not be readable by other users.
   */
  baseDir?: string
}

export function formatIssue(i: InventoryIssue): string {
  return `${i.file}:${i.line}:${i.column} ${i.path ? `${i.path}: ` : ''}${i.message}`
}

/** Pure validation of an inventory text; `fileLabel` is the name used in messages. */
export function validateInventoryText(text: string, fileLabel = 'infra.yaml', opts: ValidateOptions = {}): ValidationResult {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: true})
  const issues: InventoryIssue[] = []
  const at = (pos: {line: number; col: number}, p: string, message: string) =>
    issues.push({file: fileLabel, line: pos.line, column: pos.col, path: p, message})

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      // The parser places an unclosed quote where it gave up (often the end of the file); the opening quote is more useful.
      const quote = /Missing closing (["'])quote/.exec(e.message)?.[1]
      const pos = (quote && unclosedQuote(text, quote)) || e.linePos?.[0] || {line: 1, col: 1}
      at(pos, '', syntaxMessage(e.code, e.message, text, e.pos[0]))
    }
    return done(issues)
  }

  const loc = new Locator(doc, lineCounter)
  const raw: unknown = doc.toJS()

  if (raw === null || raw === undefined) {
    at({line: 1, col: 1}, '', 'the file is empty; expected a mapping with at least domain, bastion and web (`infra init` writes a starting point)')
    return done(issues)
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    at(loc.position([], 'value'), '', `the top level is ${show(raw)}; expected a mapping with at least domain, bastion and web`)
    return done(issues)
  }

  const parsed = inventoryShapeSchema.safeParse(raw)
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      const p = iss.path as (string | number)[]
      if (iss.code === 'unrecognized_keys') {
        for (const key of iss.keys) at(loc.position([...p, key], 'key'), pathText([...p, key]), `unknown key${suggestKey(key, p)}`)
        continue
      }
      const value = getIn(raw, p)
      at(loc.position(p, 'value'), pathText(p), valueMessage(iss.message, value, loc.source(p)))
    }
  }

  // A value the schema rejected is not judged again against other keys.
  const rejected = new Set(issues.map((i) => i.path))
  const extra: CrossIssue[] = [...crossCheck(raw), ...(opts.baseDir === undefined ? [] : checkFiles(raw, opts.baseDir))]
  for (const c of extra) {
    const p = pathText(c.path)
    if (!rejected.has(p)) at(loc.position(c.path, 'value'), p, c.message)
  }

  const result = done(issues)
  if (result.issues.length === 0 && parsed.success) result.inventory = parsed.data
  return result
}

function done(issues: InventoryIssue[]): ValidationResult {
  const seen = new Set<string>()
  const sorted = issues
    .map((issue, i) => ({issue, i}))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.i - b.i)
    .map((x) => x.issue)
    .filter((i) => {
      const line = formatIssue(i)
      if (seen.has(line)) return false
      seen.add(line)
      return true
    })
  return {issues: sorted, errors: sorted.map((i) => formatIssue(i))}
}

/** zod messages from `expected()` start with the value as `show()` renders it; prefer the YAML source (e.g. `10.0`, not `10`). */
function valueMessage(message: string, value: unknown, source: string | undefined): string {
  const shown = show(value)
  if (/^(Invalid|Too |Unrecognized|Expected)/.test(message)) return `${value === undefined ? 'is missing' : `${shown} is not valid`} (${message})`
  if (source !== undefined && typeof value !== 'string' && message.startsWith(shown + ' ')) return source + message.slice(shown.length)
  return message
}

function syntaxMessage(code: string, message: string, text: string, offset: number): string {
  const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
  if (code === 'DUPLICATE_KEY') {
    const key = /^\s*(?:-\s+)?["']?([^"':#]+?)["']?\s*:/.exec(text.slice(offset).split('\n')[0])?.[1]
    return `${key ? `duplicate key ${JSON.stringify(key)}` : 'duplicate key'}; a key may appear only once in a mapping`
  }
  return `YAML syntax error: ${first}`
}

/** The first opening quote of this kind left open at the end of its line (comments skipped). */
function unclosedQuote(text: string, quote: string): {line: number; col: number} | undefined {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    let open: string | undefined
    let start = 0
    for (let j = 0; j < line.length; j++) {
      const c = line[j]
      if (open === undefined) {
        if (c === '#' && (j === 0 || /\s/.test(line[j - 1]))) break
        if (c === '"' || (c === "'" && (j === 0 || /[\s:[{,-]/.test(line[j - 1])))) [open, start] = [c, j]
      } else if (c === open && !(open === '"' && line[j - 1] === '\\')) {
        if (open === "'" && line[j + 1] === "'") j++
        else open = undefined
      }
    }
    if (open === quote) return {line: i + 1, col: start + 1}
  }
  return undefined
}

function getIn(value: unknown, p: readonly (string | number)[]): unknown {
  let cur = value
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string | number, unknown>)[seg]
  }
  return cur
}

/** Maps a key path to a line and column in the YAML document. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private deref(n: unknown): unknown {
    return isAlias(n) ? n.resolve(this.doc) : n
  }

  /** The deepest node along the path, with the key node of the last step when it was found. */
  private walk(p: readonly (string | number)[]): {node: unknown; key?: Node; found: boolean; parent: unknown} {
    let node: unknown = this.deref(this.doc.contents)
    let parent: unknown = node
    let key: Node | undefined
    for (const seg of p) {
      parent = node
      if (isMap(node)) {
        const pair = node.items.find((it) => isPair(it) && String(isScalar(it.key) ? it.key.value : it.key) === String(seg))
        if (!pair) return {node, found: false, parent}
        key = pair.key as Node
        node = this.deref(pair.value)
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        key = undefined
        node = this.deref(node.items[seg])
      } else {
        return {node, found: false, parent}
      }
    }
    return {node, key, found: true, parent}
  }

  private pos(n: unknown): {line: number; col: number} | undefined {
    const range = (n as {range?: [number, number, number]} | null)?.range
    return range ? this.lines.linePos(range[0]) : undefined
  }

  position(p: readonly (string | number)[], want: 'key' | 'value'): {line: number; col: number} {
    const r = this.walk(p)
    const fallback = {line: 1, col: 1}
    if (!r.found) return this.pos(r.node) ?? fallback
    if (want === 'key' && r.key) return this.pos(r.key) ?? fallback
    const empty = r.node === null || r.node === undefined || (isScalar(r.node) && r.node.value === null && !r.node.source)
    if (empty && r.key) return this.pos(r.key) ?? fallback
    return this.pos(r.node) ?? this.pos(r.parent) ?? fallback
  }

  /** The source text of a plain scalar value (e.g. `10.0`), if the path leads to one. */
  source(p: readonly (string | number)[]): string | undefined {
    const r = this.walk(p)
    return r.found && isScalar(r.node) && r.node.type === 'PLAIN' && typeof r.node.source === 'string' ? r.node.source : undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Unknown keys: "did you mean".

/** zod internals walked to list the keys allowed at a path (objects, arrays and wrappers only). */
type AnySchema = {_zod: {def: {type: string; innerType?: AnySchema; in?: AnySchema; element?: AnySchema; shape?: Record<string, AnySchema>}}}

function unwrap(s: AnySchema | undefined): AnySchema | undefined {
  while (s) {
    const def = s._zod.def
    if (def.innerType && ['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(def.type)) s = def.innerType
    else if (def.type === 'pipe' && def.in) s = def.in
    else return s
  }
  return undefined
}

function schemaAt(p: readonly (string | number)[]): AnySchema | undefined {
  let s = unwrap(inventoryObject)
  for (const seg of p) {
    const def = s?._zod.def
    s = unwrap(typeof seg === 'number' ? def?.element : def?.shape?.[seg])
  }
  return s
}

export function keysAt(p: readonly (string | number)[]): string[] {
  return Object.keys(schemaAt(p)?._zod.def.shape ?? {})
}

/** Every mapping of the schema with its keys, e.g. ["web.nodes[]", ["name", "address", "standby"]]. */
function allMappings(): [string, string[]][] {
  const out: [string, string[]][] = []
  const visit = (s: AnySchema | undefined, at: string) => {
    const def = unwrap(s)?._zod.def
    if (def?.shape) {
      out.push([at, Object.keys(def.shape)])
      for (const [k, v] of Object.entries(def.shape)) visit(v, at ? `${at}.${k}` : k)
    } else if (def?.element) visit(def.element, `${at}[]`)
  }
  visit(inventoryObject, '')
  return out
}

function suggestKey(key: string, parent: readonly (string | number)[]): string {
  const valid = keysAt(parent)
  const near = didYouMean(key, valid)
  if (near) return ` (did you mean ${JSON.stringify(near)}?)`
  const here = pathText(parent)
  const elsewhere = allMappings()
    .filter(([at, keys]) => keys.includes(key) && at.replaceAll('[]', '') !== here.replace(/\[\d+\]/g, ''))
    .map(([at]) => (at ? at : 'the top level'))
  if (elsewhere.length > 0) return ` here (${JSON.stringify(key)} belongs under ${elsewhere.join(' or ')}); valid keys here: ${valid.join(', ')}`
  return ` (valid keys${here ? ` in ${here.replace(/\[\d+\]/g, '[]')}` : ''}: ${valid.join(', ')})`
}

// ---------------------------------------------------------------------------------------------
// Files named by the inventory.

/** Resolves a path from the inventory: relative to its folder; `~` and `~/...` are the home folder. */
export function resolveInventoryPath(dir: string, p: string): string {
  if (p === '~') return os.homedir()
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2))
  return path.resolve(dir, p)
}

/**
 * Why a file cannot be read, from the error of a stat, open or read of `abs`: a short reason
 * (`cannot read ABS: REASON`) and what to do, so no one sees a bare errno.
 */
export function whyUnreadable(error: unknown, abs: string): {reason: string; fix: string} {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case 'ENOENT':
      return {reason: 'no such file', fix: 'check the path (in the inventory, a path is relative to its folder; ~/ is your home folder)'}
    case 'EISDIR':
      return {reason: 'it is a folder, not a file', fix: 'name the file itself, not its folder'}
    case 'EACCES':
    case 'EPERM':
      return {reason: 'permission denied', fix: `make it readable by the user running infra (e.g. chmod u+r ${abs}; every folder above it needs x)`}
    case 'ENOTDIR':
      return {reason: 'a part of the path is a file, not a folder', fix: 'check the path'}
    case 'ELOOP':
      return {reason: 'too many levels of symbolic links (a loop?)', fix: `check where the links lead: ls -l ${abs}`}
    default:
      return {reason: code ?? (error instanceof Error ? error.message : String(error)), fix: `check that ${abs} is a readable file`}
  }
}

function checkFiles(raw: unknown, dir: string): CrossIssue[] {
  const issues: CrossIssue[] = []
  const inv = raw as {ssh?: {privateKey?: unknown}; tls?: {mode?: unknown; cert?: unknown; key?: unknown}; auth?: {alg?: unknown; key?: unknown}}
  const key = inv.ssh?.privateKey
  if (typeof key === 'string' && key !== '') {
    const problem = checkFile(dir, key, 'private-key')
    if (problem) issues.push({path: ['ssh', 'privateKey'], message: problem})
  }
  if (inv.tls?.mode === 'files') {
    for (const [k, kind] of [
      ['cert', 'certificate'],
      ['key', 'tls-key'],
    ] as const) {
      const v = inv.tls[k]
      if (typeof v !== 'string' || v === '') continue
      const problem = checkFile(dir, v, kind)
      if (problem) issues.push({path: ['tls', k], message: problem})
    }
  }
  // auth.key (RS*, ES*): read by provision and copied to the bastion. With HS* it is refused by the cross-field checks.
  const authKey = inv.auth?.key
  if (typeof authKey === 'string' && authKey !== '' && !(typeof inv.auth?.alg === 'string' && inv.auth.alg.startsWith('HS'))) {
    const problem = checkFile(dir, authKey, 'public-key')
    if (problem) issues.push({path: ['auth', 'key'], message: problem})
  }
  return issues
}

function checkFile(dir: string, p: string, kind: 'private-key' | 'certificate' | 'tls-key' | 'public-key'): string | undefined {
  const abs = resolveInventoryPath(dir, p)
  const shown = JSON.stringify(p)
  const unreadable = (error: unknown) => {
    const u = whyUnreadable(error, abs)
    return `${shown} cannot be read (${abs}: ${u.reason}); ${u.fix}`
  }
  let st
  try {
    st = statSync(abs)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${shown} does not exist (looked for ${abs})` : unreadable(error)
  }
  if (st.isDirectory()) return `${shown} is a folder, not a file (${abs}); ${whyUnreadable({code: 'EISDIR'}, abs).fix}`
  let head: string
  try {
    accessSync(abs, constants.R_OK)
    head = readFileSync(abs, 'utf8').slice(0, 100_000)
  } catch (error) {
    return unreadable(error)
  }
  if (kind === 'public-key') {
    return /-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(head) ? undefined : `${shown} does not hold a PEM public key (${abs} has no "-----BEGIN PUBLIC KEY-----")`
  }
  if (kind === 'certificate') {
    return head.includes('-----BEGIN CERTIFICATE-----') ? undefined : `${shown} does not hold a PEM certificate (${abs} has no "-----BEGIN CERTIFICATE-----")`
  }
  if (kind === 'private-key' && (/^(ssh-|ecdsa-)/.test(head) || abs.endsWith('.pub'))) {
    return `${shown} is a public key; ssh.privateKey must name the private key (usually the same path without .pub)`
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(head)) {
    return `${shown} does not hold a private key (${abs} has no "-----BEGIN ... PRIVATE KEY-----")`
  }
  const mode = st.mode & 0o777
  if (mode & 0o077) {
    return `${shown} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${abs}`
  }
  return undefined
}
