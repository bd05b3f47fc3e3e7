import {homedir} from 'node:os'
import path from 'node:path'

import {crossCheck as inventoryCrossCheck, type CrossIssue} from '../inventory/cross-check.js'
import {hostname, ipv4, nodeName, sshSchema} from '../inventory/schema.js'
import {ConfigError, UsageError} from '../lib/errors.js'
import {DEFAULT_DAYS} from '../tls/self-signed.js'

/**
 * What `infra init` needs to know, first as given (flags, environment, all optional), then complete.
 * Checking a value here names the flag, so the user knows what to fix.
 */

export type TlsMode = 'self-signed' | 'files'

/** Values as given on the command line (or by the environment). Paths are relative to the working directory. */
export interface InitInput {
  domain?: string
  aliases?: string[]
  sshUser?: string
  sshPort?: number
  sshKey?: string
  bastionPublic?: string
  bastionPrivate?: string
  /** `name=address[:standby]` values. */
  web?: string[]
  tls?: TlsMode
  tlsCert?: string
  tlsKey?: string
  tlsDays?: number
}

export interface WebNodeAnswer {
  name: string
  address: string
  standby: boolean
}

export type TlsAnswer = {mode: 'self-signed'; days: number} | {mode: 'files'; cert: string; key: string}

/** Everything init needs, checked. Paths are absolute. */
export interface InitAnswers {
  domain: string
  aliases: string[]
  sshUser: string
  sshPort: number
  sshKey: string
  bastionPublic: string
  bastionPrivate: string
  web: WebNodeAnswer[]
  tls: TlsAnswer
}

export const DEFAULTS = {sshUser: 'root', sshPort: 22, tlsDays: DEFAULT_DAYS} as const

/** The operator key infra creates when none is named: `.infra/id_ed25519` beside the inventory. */
export function defaultKeyPath(inventoryDir: string): string {
  return path.join(inventoryDir, '.infra', 'id_ed25519')
}

/** Resolve a path typed by the user: `~/` is the home folder, anything relative is from `cwd`. */
export function userPath(p: string, cwd = process.cwd()): string {
  if (p === '~') return homedir()
  if (p.startsWith('~/')) return path.join(homedir(), p.slice(2))
  return path.resolve(cwd, p)
}

/**
 * How a path is written in infra.yaml: relative to the inventory when inside its folder, `~/...`
 * when inside the home folder (the loader expands it), absolute otherwise.
 */
export function inventoryPath(inventoryDir: string, abs: string, home = homedir()): string {
  const inside = (base: string) => {
    const rel = path.relative(base, abs)
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : undefined
  }
  const rel = inside(inventoryDir)
  if (rel !== undefined) return rel
  const inHome = inside(home)
  return inHome === undefined ? abs : `~/${inHome}`
}

// ---- single values: each returns an error text (the schema's, which shows the value) or undefined ----

const firstMessage = (r: {success: boolean; error?: {issues: {message: string}[]}}): string | undefined =>
  r.success ? undefined : r.error!.issues[0].message

export function checkDomain(v: string): string | undefined {
  return firstMessage(hostname.safeParse(v))
}

export function checkIPv4(v: string): string | undefined {
  const m = firstMessage(ipv4.safeParse(v))
  return m && `${m} (e.g. "10.0.0.11")`
}

export function checkNodeName(v: string): string | undefined {
  return firstMessage(nodeName.safeParse(v))
}

export function checkSshUser(v: string): string | undefined {
  return firstMessage(sshSchema.shape.user.safeParse(v))
}

export function checkPort(v: number): string | undefined {
  return Number.isInteger(v) && v >= 1 && v <= 65_535 ? undefined : `${v} is not a port number from 1 to 65535`
}

export function checkDays(v: number): string | undefined {
  return Number.isInteger(v) && v >= 1 && v <= 825 ? undefined : `${v} is not a whole number of days from 1 to 825`
}

const WEB_FORMAT = 'expected NAME=ADDRESS[:standby], e.g. --web web1=10.0.0.11 or --web web2=10.0.0.12:standby'

/** Parse one `--web` value: `name=address[:standby]`. Throws a UsageError naming the flag. */
export function parseWebFlag(value: string): WebNodeAnswer {
  const m = /^([^=\s]+)=([^:\s]+)(?::(\w+))?$/.exec(value.trim())
  if (!m) throw new UsageError(`--web "${value}": ${WEB_FORMAT}`)
  const [, name, address, suffix] = m
  if (suffix !== undefined && suffix !== 'standby') throw new UsageError(`--web "${value}": unknown suffix ":${suffix}" (only ":standby"); ${WEB_FORMAT}`)
  const bad = checkNodeName(name) ?? checkIPv4(address)
  if (bad) throw new UsageError(`--web "${value}": ${bad}`)
  return {name, address, standby: suffix === 'standby'}
}

/** Values known so far, for the checks across keys. */
export interface PartialAnswers {
  domain?: string
  aliases?: string[]
  sshPort?: number
  bastionPublic?: string
  bastionPrivate?: string
  web?: WebNodeAnswer[]
}

/**
 * The inventory's own checks across keys (duplicates, private network, a node's address outside
 * the bastion's network...) run on the values known so far: one source of truth with `infra validate`.
 */
export function crossIssues(a: PartialAnswers): CrossIssue[] {
  const raw = {
    domain: a.domain,
    aliases: a.aliases,
    ssh: {port: a.sshPort},
    bastion: {publicAddress: a.bastionPublic, privateAddress: a.bastionPrivate},
    web: {nodes: a.web},
  }
  return inventoryCrossCheck(raw)
}

/** The flag behind an inventory key path (for messages when values came from flags). */
export function flagFor(p: readonly (string | number)[], webValues?: readonly string[]): string {
  const [a, b, i] = p
  if (a === 'aliases') return '--alias'
  if (a === 'ssh' && b === 'port') return '--ssh-port'
  if (a === 'bastion' && b === 'publicAddress') return '--bastion-public'
  if (a === 'bastion') return '--bastion-private'
  if (a === 'web' && typeof i === 'number' && webValues?.[i] !== undefined) return `--web "${webValues[i]}"`
  if (a === 'web') return '--web'
  if (a === 'domain') return '--domain'
  return p.join('.')
}

/** The first cross-key problem as a message naming the flag, or undefined. */
export function crossCheck(a: PartialAnswers, webValues?: readonly string[]): string | undefined {
  const issue = crossIssues(a)[0]
  return issue && `${flagFor(issue.path, webValues)}: ${issue.message}`
}

/** Check every value that was given; throws a UsageError (exit 2) naming the first bad flag. */
export function checkInput(input: InitInput): {web?: WebNodeAnswer[]} {
  const fail = (flag: string, msg: string | undefined) => {
    if (msg) throw new UsageError(`${flag}: ${msg}`)
  }
  if (input.domain !== undefined) fail('--domain', checkDomain(input.domain))
  for (const a of input.aliases ?? []) fail('--alias', checkDomain(a))
  if (input.sshUser !== undefined) fail('--ssh-user', checkSshUser(input.sshUser))
  if (input.sshPort !== undefined) fail('--ssh-port', checkPort(input.sshPort))
  if (input.sshKey !== undefined && input.sshKey.trim() === '') fail('--ssh-key', 'is empty (expected a path to a private key file)')
  if (input.sshKey?.endsWith('.pub')) fail('--ssh-key', `"${input.sshKey}" is a public key; give the private key (without .pub)`)
  if (input.bastionPublic !== undefined) fail('--bastion-public', checkIPv4(input.bastionPublic))
  if (input.bastionPrivate !== undefined) fail('--bastion-private', checkIPv4(input.bastionPrivate))
  if (input.tlsDays !== undefined) fail('--tls-days', checkDays(input.tlsDays))
  if (input.tls === 'self-signed' && (input.tlsCert !== undefined || input.tlsKey !== undefined)) {
    throw new UsageError('--tls-cert/--tls-key go with --tls files, not --tls self-signed')
  }
  if (input.tls === 'files' && input.tlsDays !== undefined) throw new UsageError('--tls-days goes with --tls self-signed (a real certificate has its own validity)')
  const web = input.web?.map((w) => parseWebFlag(w))
  const cross = crossCheck({...input, web}, input.web)
  if (cross) throw new UsageError(cross)
  return {web}
}

/** The TLS mode implied by the flags: --tls, or files when a certificate or key file is given. */
export function tlsModeOf(input: InitInput): TlsMode | undefined {
  return input.tls ?? (input.tlsCert !== undefined || input.tlsKey !== undefined ? 'files' : undefined)
}

/** Why nothing is asked: --yes, --json, CI set, or stdin/stdout not a terminal. */
export type NoPromptReason = 'yes' | 'json' | 'ci' | 'tty'

function reasonText(reason: NoPromptReason, n: number): string {
  const it = n > 1 ? 'them' : 'it'
  switch (reason) {
    case 'tty':
      return `required without a terminal; pass ${it} or run infra init in a terminal`
    case 'ci':
      return `required when CI is set; pass ${it}, or run infra init in a terminal without CI`
    case 'json':
      return `required with --json, which asks nothing; pass ${it}`
    case 'yes':
      return `required with --yes; pass ${it}, or drop --yes to be asked`
  }
}

/**
 * Complete answers without asking anything (--yes, CI, or no terminal).
 * A missing required value is a UsageError (exit 2) naming every missing flag.
 */
export function answersFromInput(input: InitInput, inventoryDir: string, reason: NoPromptReason, cwd = process.cwd()): InitAnswers {
  const {web} = checkInput(input)
  const mode = tlsModeOf(input) ?? 'self-signed'
  const missing: string[] = []
  if (input.domain === undefined) missing.push('--domain')
  if (input.bastionPublic === undefined) missing.push('--bastion-public')
  if (input.bastionPrivate === undefined) missing.push('--bastion-private')
  if (!web || web.length === 0) missing.push('--web')
  if (mode === 'files' && input.tlsCert === undefined) missing.push('--tls-cert')
  if (mode === 'files' && input.tlsKey === undefined) missing.push('--tls-key')
  if (missing.length > 0) {
    throw new UsageError(`Missing ${missing.join(', ')} (${reasonText(reason, missing.length)})`, {
      hint: 'e.g. infra init --yes --domain example.com --bastion-public 203.0.113.10 --bastion-private 10.0.0.1 --web web1=10.0.0.11',
    })
  }
  return {
    domain: input.domain!.toLowerCase(),
    aliases: (input.aliases ?? []).map((a) => a.toLowerCase()),
    sshUser: input.sshUser ?? DEFAULTS.sshUser,
    sshPort: input.sshPort ?? DEFAULTS.sshPort,
    sshKey: input.sshKey === undefined ? defaultKeyPath(inventoryDir) : userPath(input.sshKey, cwd),
    bastionPublic: input.bastionPublic!,
    bastionPrivate: input.bastionPrivate!,
    web: web!,
    tls:
      mode === 'files'
        ? {mode, cert: userPath(input.tlsCert!, cwd), key: userPath(input.tlsKey!, cwd)}
        : {mode, days: input.tlsDays ?? DEFAULTS.tlsDays},
  }
}

/** Thrown when the target inventory exists and --force was not given. */
export function existsError(file: string): ConfigError {
  return new ConfigError(`${file} already exists; infra init does not overwrite it`, {
    hint: 'Pass --force to replace it, or -c PATH to write another inventory.',
    code: 'EEXIST',
  })
}
