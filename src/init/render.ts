import path from 'node:path'
import {stringify} from 'yaml'

import {type Inventory, schemaComment} from '../inventory/schema.js'
import {formatIssue, validateInventoryText} from '../inventory/validate.js'
import {ConfigError} from '../lib/errors.js'
import {selfSignedPaths} from '../tls/ensure.js'
import {DEFAULTS, inventoryPath, type InitAnswers} from './answers.js'

/**
 * infra.yaml as `infra init` writes it: the required values and those that differ from the
 * defaults, each section with a short comment. Pure: answers in, text out.
 */

/** A YAML scalar, quoted only when it must be. */
function scalar(v: string | number | boolean): string {
  return stringify(v, {lineWidth: 0}).trimEnd()
}

export interface RenderOptions {
  /** Folder of the inventory file: paths are written relative to it. */
  dir: string
  /** The first line; default: the inventory module's `# yaml-language-server: $schema=...` for `dir`. */
  schemaComment?: string
}

export function renderInventory(a: InitAnswers, opts: RenderOptions): string {
  const L: string[] = []
  L.push(opts.schemaComment ?? schemaComment(opts.dir))
  L.push('# The fleet, as written by `infra init`. Settings left out take their defaults;')
  L.push('# the schema above lists them all (an editor with YAML support shows them as you type).')
  L.push('')
  L.push('# The apex domain the fleet serves.')
  L.push(`domain: ${scalar(a.domain)}`)
  if (a.aliases.length > 0) {
    L.push('# Other names, redirected to the domain.')
    L.push('aliases:')
    for (const al of a.aliases) L.push(`  - ${scalar(al)}`)
  }
  L.push('')
  L.push('# How infra reaches the hosts: SSH with keys only.')
  L.push('ssh:')
  if (a.sshUser !== DEFAULTS.sshUser) L.push(`  user: ${scalar(a.sshUser)} # needs passwordless sudo`)
  if (a.sshPort !== DEFAULTS.sshPort) L.push(`  port: ${a.sshPort}`)
  L.push('  # Operator key; its .pub belongs in authorized_keys on every host.')
  L.push(`  privateKey: ${scalar(inventoryPath(opts.dir, a.sshKey))}`)
  L.push('')
  L.push('# The only host with a public address: HAProxy, firewall and NAT for the web nodes.')
  L.push('bastion:')
  L.push(`  publicAddress: ${scalar(a.bastionPublic)}`)
  L.push(`  privateAddress: ${scalar(a.bastionPrivate)}`)
  L.push('')
  L.push('# Web nodes (nginx) on the private network, reached only through the bastion.')
  L.push('web:')
  L.push('  nodes:')
  for (const n of a.web) {
    L.push(`    - name: ${scalar(n.name)}`)
    L.push(`      address: ${scalar(n.address)}`)
    if (n.standby) L.push('      standby: true # installed, kept stopped until needed')
  }
  L.push('')
  if (a.tls.mode === 'self-signed') {
    const {certPath} = selfSignedPaths(opts.dir, a.domain)
    const rel = inventoryPath(opts.dir, certPath)
    L.push(`# TLS: infra makes a self-signed certificate (${rel}) for the domain and aliases.`)
    if (a.tls.days !== DEFAULTS.tlsDays) {
      L.push('tls:')
      L.push('  mode: self-signed')
      L.push(`  days: ${a.tls.days} # validity of each certificate made`)
    }
    L.push('# To serve a real certificate instead:')
    L.push('# tls:')
    L.push('#   mode: files')
    L.push('#   cert: tls/fullchain.pem # certificate, then its chain (PEM)')
    L.push('#   key: tls/privkey.pem')
  } else {
    L.push('# TLS: your certificate (PEM, chain after it) and its key, relative to this file.')
    L.push('tls:')
    L.push('  mode: files')
    L.push(`  cert: ${scalar(inventoryPath(opts.dir, a.tls.cert))}`)
    L.push(`  key: ${scalar(inventoryPath(opts.dir, a.tls.key))}`)
  }
  return L.join('\n') + '\n'
}

export interface ValidateRenderedOptions {
  /** The inventory's folder: check the files it names too, as loadInventory will. */
  baseDir?: string
  /** Key paths (e.g. "ssh.privateKey") whose file checks are skipped: files this run has yet to make. */
  skip?: readonly string[]
}

/**
 * Check rendered inventory text with the project's validation (schema, checks across keys and,
 * with `baseDir`, the files it names). Throws a ConfigError with the inventory's error lines when
 * invalid; returns the inventory otherwise.
 */
export function validateRendered(text: string, file: string, opts: ValidateRenderedOptions = {}): Inventory | undefined {
  const r = validateInventoryText(text, file, {baseDir: opts.baseDir})
  const issues = r.issues.filter((i) => !opts.skip?.includes(i.path))
  if (issues.length === 0) return r.inventory
  throw new ConfigError(`infra init would write an invalid inventory, so nothing was written:\n${issues.map((i) => formatIssue(i)).join('\n')}`, {
    hint: 'Change the values named above (their flags or answers) and run infra init again.',
    code: 'EINVENTORY',
  })
}

export function displayPath(abs: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, abs)
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs
}
