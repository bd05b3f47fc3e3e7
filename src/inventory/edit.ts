/**
 * Edits of the inventory's text (`infra site add`, `infra site rm`) that keep the rest of the file
 * as it was, byte for byte: comments, blank lines, key order, quoting, the
 * `# yaml-language-server: $schema=…` line. Pure: text in, text out.
 *
 * The file is parsed with yaml's Document API, which says where each key is; the edit is then made
 * on those lines (a block of lines inserted or removed), and the result is parsed again and checked
 * to hold exactly the data intended. When it does not (a layout the line edit does not know, e.g.
 * `sites` written as a flow mapping `{…}`), the edit is made on the Document itself and the
 * document is written back from it, which keeps the comments but may re-indent or re-space the file.
 *
 * What a line edit takes with a key: the lines of its value, the comment lines right above it at
 * its own indentation (they describe it), and one run of blank lines that separated it from a
 * neighbour. The comments above the file's first key are the file's header and always stay.
 */
import {isDeepStrictEqual} from 'node:util'
import {Document, isMap, isScalar, type Node, type Pair, parseDocument, type ToStringOptions, type YAMLMap} from 'yaml'

import {ConfigError} from '../lib/errors.js'
import {didYouMean} from '../lib/text.js'

/** What `infra site add` writes: `sites.<name>` with its domain, aliases and app. */
export interface NewSite {
  domain: string
  /** Written only when non-empty. */
  aliases?: readonly string[]
  image: string
  /** Written only when given (the schema's default is 8080). */
  port?: number
}

type Data = Record<string, unknown>
type AnyPair = Pair<unknown, unknown>

/**
 * The text with `sites.<name>` added after the other sites (`sites:` is created at the end of the
 * file when absent). Throws a ConfigError when the site exists or `sites` is not a mapping.
 */
export function addSite(text: string, name: string, site: NewSite): string {
  const inv = open(text)
  const value = siteValue(site)
  const sites = inv.top ? inv.top.get('sites', true) : undefined
  if (sites !== undefined && !isMap(sites) && !isNull(sites)) {
    throw new ConfigError(`sites is not a mapping (it is ${JSON.stringify(inv.data.sites)})`, {
      hint: 'sites maps each site\'s name to its settings, e.g.\nsites:\n  shop:\n    domain: shop.example.com',
    })
  }
  if (isMap(sites) && sites.has(name)) {
    throw new ConfigError(`sites.${name} already exists`, {hint: `choose another name, or remove that site first: infra site rm ${name}`})
  }
  const expected = {...inv.data, sites: {...((inv.data.sites ?? {}) as Data), [name]: value}}
  const lines = new Lines(inv.text)
  const spliced = isMap(sites) && sites.items.length > 0 ? appendItem(lines, sites, name, value) : addSites(lines, inv.top, name, value)
  const out = checked(spliced, expected) ?? rewrite(inv, (doc) => {
    const node = doc.get('sites', true)
    if (isMap(node)) node.set(doc.createNode(name), doc.createNode(value))
    else doc.set('sites', doc.createNode({[name]: value}))
  })
  return sameEnding(text, out)
}

/**
 * The text without `sites.<name>`; the `sites` key goes too when it was the last site. Throws a
 * ConfigError when there is no such site.
 */
export function removeSite(text: string, name: string): string {
  const inv = open(text)
  const sites = inv.top ? inv.top.get('sites', true) : undefined
  const index = isMap(sites) ? sites.items.findIndex((p) => keyName(p) === name) : -1
  if (!inv.top || !isMap(sites) || index < 0) {
    const names = isMap(sites) ? sites.items.map(keyName).filter((n): n is string => n !== undefined) : []
    const near = didYouMean(name, names)
    throw new ConfigError(`sites.${name} does not exist`, {hint: `${near ? `did you mean ${near}? ` : ''}\`infra sites\` lists the sites`})
  }
  const {[name]: _gone, ...rest} = inv.data.sites as Data
  const {sites: _all, ...others} = inv.data
  const last = sites.items.length === 1
  const expected = last ? others : {...others, sites: rest}
  const lines = new Lines(inv.text)
  const top = inv.top
  const spliced = last ? removeItem(lines, top, top.items.findIndex((p) => keyName(p) === 'sites'), true) : removeItem(lines, sites, index, false)
  const out = checked(spliced, expected) ?? rewrite(inv, (doc) => {
    if (last) doc.delete('sites')
    else doc.deleteIn(['sites', name])
  })
  return sameEnding(text, out)
}

interface Opened {
  /** The text, ending with a line break unless empty. */
  text: string
  doc: Document.Parsed
  /** The top-level mapping (undefined for a file without any key). */
  top: YAMLMap | undefined
  data: Data
}

function open(original: string): Opened {
  const text = original === '' || original.endsWith('\n') ? original : original + (original.includes('\r\n') ? '\r\n' : '\n')
  const doc = parseDocument(text)
  if (doc.errors.length > 0) {
    throw new ConfigError(`the inventory is not valid YAML: ${doc.errors[0].message.split('\n')[0]}`, {
      hint: '`infra validate` shows every problem with its line',
    })
  }
  const top: unknown = doc.contents
  if (top !== null && !isMap(top)) {
    throw new ConfigError('the inventory is not a mapping of keys', {hint: '`infra validate` shows every problem with its line'})
  }
  const data: unknown = doc.toJS()
  return {text, doc, top: top ?? undefined, data: (data ?? {}) as Data}
}

/** `out` without its final line break when `original` had none. */
function sameEnding(original: string, out: string): string {
  return original === '' || original.endsWith('\n') ? out : out.replace(/\r?\n$/, '')
}

function isNull(node: unknown): boolean {
  return isScalar(node) && node.value === null
}

function keyName(p: AnyPair): string | undefined {
  return isScalar(p.key) ? String(p.key.value) : undefined
}

/** The site as written: domain, aliases when there are some, app {image, port when given}. */
function siteValue(site: NewSite): Data {
  const app: Data = {image: site.image}
  if (site.port !== undefined) app.port = site.port
  const value: Data = {domain: site.domain}
  if (site.aliases && site.aliases.length > 0) value.aliases = [...site.aliases]
  value.app = app
  return value
}

/** `out` when it parses to exactly `expected`, else undefined. */
function checked(out: string | undefined, expected: unknown): string | undefined {
  if (out === undefined) return undefined
  const doc = parseDocument(out)
  return doc.errors.length === 0 && isDeepStrictEqual(doc.toJS() ?? {}, expected) ? out : undefined
}

/** The fallback: the edit made on the Document, written back whole in the file's own indentation. */
function rewrite(inv: Opened, edit: (doc: Document.Parsed) => void): string {
  edit(inv.doc)
  return inv.doc.toString(new Lines(inv.text).style())
}

/** `sites.<name>` after the last site of a block mapping with sites. */
function appendItem(lines: Lines, sites: YAMLMap, name: string, value: Data): string | undefined {
  const last = sites.items.at(-1) as AnyPair
  const at = sites.flow ? undefined : lines.keyAt(last)
  if (!at) return undefined
  const end = lines.end(at.line, at.col)
  const gap = lines.blank(lines.start(at.line, at.col, false) - 1) ? [''] : []
  return lines.insert(end, [...gap, ...lines.block({[name]: value}, at.col)])
}

/** `sites:` with the site, for a file without sites, or with an empty `sites:`/`sites: {}`. */
function addSites(lines: Lines, top: YAMLMap | undefined, name: string, value: Data): string | undefined {
  if (!top || top.items.length === 0) return lines.insert(lines.count - 1, lines.block({sites: {[name]: value}}, 0))
  if (top.flow) return undefined
  const pair = top.items.find((p) => keyName(p) === 'sites')
  if (!pair) {
    const last = lines.keyAt(top.items.at(-1) as AnyPair)
    if (!last) return undefined
    const gap = lines.blank(lines.start(last.line, last.col, top.items.length === 1) - 1) ? [''] : []
    return lines.insert(lines.end(last.line, last.col), [...gap, ...lines.block({sites: {[name]: value}}, last.col)])
  }
  // An empty value on the key's line (`sites:`, `sites: {}`, `sites: ~`): take it off, put the site below.
  const at = lines.keyAt(pair)
  const range = (pair.value as Node | null)?.range
  if (!at || !range || lines.lineOf(range[0]) !== at.line || lines.lineOf(range[1]) !== at.line) return undefined
  const from = range[0] - lines.offset(at.line)
  const to = range[1] - lines.offset(at.line)
  const keyLine = lines.get(at.line)
  if (to > from) lines.set(at.line, keyLine.slice(0, from).replace(/[ \t]+$/, '') + keyLine.slice(to))
  return lines.insert(lines.end(at.line, at.col), lines.block({[name]: value}, at.col + lines.unit()))
}

/** The text without the mapping's item at `index`, with its comments above and one blank-line gap. */
function removeItem(lines: Lines, map: YAMLMap, index: number, topLevel: boolean): string | undefined {
  const pair = map.items[index] as AnyPair | undefined
  const at = pair && !map.flow ? lines.keyAt(pair) : undefined
  if (!at) return undefined
  // The comments above the file's first key are its header.
  let start = lines.start(at.line, at.col, topLevel && index === 0)
  let end = lines.end(at.line, at.col)
  if (index > 0) while (start > 0 && lines.blank(start - 1)) start--
  else while (end < lines.count - 1 && lines.blank(end)) end++
  return lines.remove(start, end)
}

/** The file's lines (split at "\n": a "\r" stays on its line) and what the edits need to know about them. */
class Lines {
  private readonly lines: string[]
  private readonly offsets: number[] = []
  private readonly eol: string

  constructor(text: string) {
    this.lines = text.split('\n')
    let offset = 0
    for (const l of this.lines) {
      this.offsets.push(offset)
      offset += l.length + 1
    }
    this.eol = text.includes('\r\n') ? '\r' : ''
  }

  get count(): number {
    return this.lines.length
  }

  get(i: number): string {
    return this.lines[i]
  }

  set(i: number, line: string): void {
    this.lines[i] = line
  }

  offset(i: number): number {
    return this.offsets[i]
  }

  lineOf(offset: number): number {
    let i = 0
    while (i + 1 < this.offsets.length && this.offsets[i + 1] <= offset) i++
    return i
  }

  blank(i: number): boolean {
    return i >= 0 && i < this.lines.length && /^\s*$/.test(this.lines[i])
  }

  private indent(i: number): number {
    return /^ */.exec(this.lines[i])![0].length
  }

  private comment(i: number): boolean {
    return /^\s*#/.test(this.lines[i])
  }

  /** Where a block mapping's key is: its line and column, when only spaces precede it on its line. */
  keyAt(pair: AnyPair): {line: number; col: number} | undefined {
    const range = (pair.key as Node | null)?.range
    if (!range) return undefined
    const line = this.lineOf(range[0])
    const col = range[0] - this.offsets[line]
    return /^ *$/.test(this.lines[line].slice(0, col)) ? {line, col} : undefined
  }

  /** The first line of the key at (line, col): the key, or the comment lines right above it at its indentation. */
  start(line: number, col: number, keepComments: boolean): number {
    let s = line
    if (!keepComments) while (s > 0 && this.comment(s - 1) && this.indent(s - 1) === col) s--
    return s
  }

  /** The line after the key's value (more indented lines, not counting the blank lines that end them). */
  end(line: number, col: number): number {
    let e = line + 1
    while (e < this.lines.length && (this.blank(e) || this.indent(e) > col)) e++
    while (e > line + 1 && this.blank(e - 1)) e--
    return e
  }

  /** The smallest indentation step of the file (2 when nothing is indented). */
  unit(): number {
    const steps = this.lines.filter((l) => /^ +[^\s#]/.test(l)).map((l) => /^ */.exec(l)![0].length)
    return steps.length > 0 ? Math.min(...steps, 8) : 2
  }

  /** How the file is written, for yaml's stringifier: its indentation, sequences indented or not. */
  style(): ToStringOptions {
    const indentless = /^( *)[^\s#-][^\n]*:[ \t]*(#[^\n]*)?\r?\n\1- /m.test(this.lines.join('\n'))
    return {indent: this.unit(), indentSeq: !indentless, lineWidth: 0, flowCollectionPadding: false}
  }

  /** `value` as block-style lines, indented by `col`. */
  block(value: Data, col: number): string[] {
    const text = new Document(value).toString(this.style())
    return text.replace(/\n$/, '').split('\n').map((l) => (l === '' ? this.eol : ' '.repeat(col) + l + this.eol))
  }

  insert(at: number, added: string[]): string {
    this.lines.splice(at, 0, ...added.map((l) => (l === '' ? this.eol : l)))
    return this.lines.join('\n')
  }

  remove(from: number, to: number): string {
    this.lines.splice(from, to - from)
    return this.lines.join('\n')
  }
}
