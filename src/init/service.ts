import {mkdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {loadInventory} from '../inventory/load.js'
import {ConfigError, InfraError, UsageError} from '../lib/errors.js'
import {ensureSelfSigned, readCertFiles, selfSignedPaths} from '../tls/ensure.js'
import {certNames, isoDay} from '../tls/self-signed.js'
import {answersFromInput, crossCheck, existsError, type InitAnswers, type InitInput, type NoPromptReason} from './answers.js'
import {displayPath, renderInventory, validateRendered} from './render.js'
import {createOperatorKey, type KeyPlan, type OperatorKey, planOperatorKey} from './ssh-key.js'
import {pathExists} from '../lib/fs.js'

/**
 * `infra init`: gather answers (flags, then prompts when a person is there), render and validate
 * infra.yaml, check that the key and certificate can be had, and only then write:
 * the operator key (if missing), the self-signed certificate (if chosen), the inventory.
 * The inventory is finally loaded back with the project's loader; if that fails, what this run
 * wrote is removed again.
 */

export interface InitOptions {
  /** Where infra.yaml goes (relative to cwd). */
  configPath: string
  input: InitInput
  force?: boolean
  /** Ask for missing values (a terminal, no CI, no --yes); otherwise the reason nothing is asked. */
  interactive: true | NoPromptReason
  /** Prompt streams (interactive only). */
  io?: {input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream}
  cwd?: string
}

export interface InitResult {
  /** Absolute path of the inventory written. */
  config: string
  /** Absolute path of the operator private key. */
  key: string
  publicKey: string
  /** Absolute path of the certificate (self-signed only). */
  cert?: string
  /** Expiry of the self-signed certificate (ISO 8601). */
  notAfter?: string
}

/** Everything a run did, for the command's human output. */
export interface InitReport extends InitResult {
  answers: InitAnswers
  yaml: string
  operatorKey: OperatorKey
  certCreated?: boolean
  certReason?: string
  certPath?: string
  certKeyPath?: string
  warnings: string[]
}

/** Where this run writes, worked out from the options. */
interface InitTarget {
  cwd: string
  /** The inventory file (absolute). */
  file: string
  /** Its folder. */
  dir: string
  /** The file as the operator sees it (relative to cwd). */
  shown: string
  /** The file was there before this run (then --force was given). */
  existed: boolean
}

/** Steps 1 and 2: answers from flags alone, or flags + questions; then what else is needed, checked without writing. */
async function gatherAnswers(opts: InitOptions, {dir, cwd}: InitTarget): Promise<{answers: InitAnswers; keyPlan: KeyPlan; warnings: string[]}> {
  let answers: InitAnswers
  if (opts.interactive === true) {
    const {askAnswers} = await import('./wizard.js')
    answers = await askAnswers(opts.input, dir, {...opts.io, cwd})
  } else {
    answers = answersFromInput(opts.input, dir, opts.interactive, cwd)
  }
  const cross = crossCheck(answers)
  if (cross) throw new UsageError(cross)

  // The key (ssh-keygen present, or the existing key readable), TLS files.
  const keyPlan = await planOperatorKey(answers.sshKey)
  const warnings: string[] = []
  if (answers.tls.mode === 'files') {
    const m = await readCertFiles({
      certPath: answers.tls.cert,
      keyPath: answers.tls.key,
      names: certNames(answers.domain, answers.aliases),
      certLabel: '--tls-cert',
      keyLabel: '--tls-key',
    })
    warnings.push(...m.warnings)
  }
  return {answers, keyPlan, warnings}
}

/** Step 4: a person sees the file and confirms what will be written. */
async function confirmByPerson(opts: InitOptions, target: InitTarget, answers: InitAnswers, keyPlan: KeyPlan, yaml: string): Promise<void> {
  const {shown, cwd, dir} = target
  const out = opts.io?.output ?? process.stderr
  out.write(`\n${shown}:\n\n${yaml.replace(/^(?=.)/gm, '  ')}\n`)
  const toWrite = [shown]
  if (!keyPlan.exists) toWrite.push(`${displayPath(answers.sshKey, cwd)} (+ .pub)`)
  if (answers.tls.mode === 'self-signed') {
    const p = selfSignedPaths(dir, answers.domain)
    toWrite.push(`${displayPath(p.certPath, cwd)} (+ .key)`)
  }
  const {confirmWrite} = await import('./wizard.js')
  const ok = await confirmWrite(`${target.existed ? 'Overwrite' : 'Write'} ${toWrite.join(', ')}?`, {...opts.io, cwd})
  if (!ok) throw new InfraError('Aborted: nothing was written.', {code: 'EABORT'})
}

/** The self-signed certificate (made or kept), noting in `made` what this run created. */
async function writeSelfSigned(answers: InitAnswers, days: number, dir: string, made: string[]): Promise<Partial<InitReport>> {
  const p = selfSignedPaths(dir, answers.domain)
  const hadCert = (await pathExists(p.certPath)) || (await pathExists(p.keyPath))
  const m = await ensureSelfSigned({dir, domain: answers.domain, aliases: answers.aliases, days})
  if (m.created && !hadCert) made.push(m.certPath, m.keyPath)
  return {
    cert: m.certPath,
    notAfter: m.notAfter.toISOString(),
    certCreated: m.created,
    certReason: m.reason,
    certPath: m.certPath,
    certKeyPath: m.keyPath,
  }
}

/** Step 5: key, certificate, inventory, loaded back. On a failure, what this run made is removed. */
async function writeAll(target: InitTarget, gathered: {answers: InitAnswers; keyPlan: KeyPlan; warnings: string[]}, yaml: string): Promise<InitReport> {
  const {file, dir} = target
  const {answers, keyPlan, warnings} = gathered
  const made: string[] = []
  const previous = target.existed ? await readFile(file, 'utf8') : undefined
  // Folders this run will make (removed again on failure).
  const folders = [dir, path.dirname(answers.sshKey), path.join(dir, 'tls')]
  const newFolders = (await Promise.all(folders.map(async (d) => ((await pathExists(d)) ? undefined : d)))).filter((d): d is string => d !== undefined)
  try {
    let operatorKey: OperatorKey
    if (keyPlan.exists) {
      operatorKey = keyPlan.key
    } else {
      operatorKey = await createOperatorKey(answers.sshKey)
      made.push(operatorKey.privateKeyPath, operatorKey.publicKeyPath)
    }

    const tlsPart = answers.tls.mode === 'self-signed' ? await writeSelfSigned(answers, answers.tls.days, dir, made) : {}

    await mkdir(dir, {recursive: true})
    await writeFile(file, yaml, {mode: 0o644})
    made.push(file)
    await loadInventory(file)

    return {
      config: file,
      key: operatorKey.privateKeyPath,
      publicKey: operatorKey.publicKey,
      ...(tlsPart.cert ? {cert: tlsPart.cert, notAfter: tlsPart.notAfter} : {}),
      ...tlsPart,
      answers,
      yaml,
      operatorKey,
      warnings,
    }
  } catch (error) {
    for (const p of made.reverse()) {
      if (p === file && previous !== undefined) await writeFile(file, previous).catch(() => {})
      else await rm(p, {force: true}).catch(() => {})
    }
    for (const d of newFolders.reverse()) await rm(d, {recursive: true, force: true}).catch(() => {})
    throw error
  }
}

export async function runInit(opts: InitOptions): Promise<InitReport> {
  const cwd = opts.cwd ?? process.cwd()
  const file = path.resolve(cwd, opts.configPath)
  const dir = path.dirname(file)
  const shown = displayPath(file, cwd)

  const existed = await pathExists(file)
  if (existed && (await stat(file)).isDirectory()) {
    throw new ConfigError(`${shown} is a folder`, {hint: `Name the inventory file itself, e.g. -c ${path.join(shown, 'infra.yaml')}.`})
  }
  if (existed && !opts.force) throw existsError(shown)
  const target: InitTarget = {cwd, file, dir, shown, existed}

  // 1, 2. Answers, and what else is needed.
  const gathered = await gatherAnswers(opts, target)

  // 3. The file, validated as the loader will (files included, but for the key this run makes) before anything is written.
  const yaml = renderInventory(gathered.answers, {dir})
  validateRendered(yaml, shown, {baseDir: dir, skip: gathered.keyPlan.exists ? [] : ['ssh.privateKey']})

  // 4. A person confirms what will be written.
  if (opts.interactive === true) await confirmByPerson(opts, target, gathered.answers, gathered.keyPlan, yaml)

  // 5. Write: key, certificate, inventory.
  return writeAll(target, gathered, yaml)
}

/** The lines `infra init` prints when done (no secrets: public key and paths only). */
export function summary(r: InitReport, opts: {cwd?: string; configFlag?: string} = {}): string {
  const cwd = opts.cwd ?? process.cwd()
  const a = r.answers
  const L: string[] = []
  L.push(`Wrote ${displayPath(r.config, cwd)}`)
  const k = r.operatorKey
  L.push(`${k.created ? 'Created' : 'Using'} operator key ${displayPath(k.privateKeyPath, cwd)} (${k.publicKey.split(' ')[0]}, ${k.fingerprint})`)
  if (r.certPath && r.notAfter) {
    const names = certNames(a.domain, a.aliases).join(', ')
    const until = `valid until ${isoDay(new Date(r.notAfter))}`
    if (r.certCreated) {
      const why = r.certReason && r.certReason !== 'new' ? ` (the old one: ${r.certReason})` : ''
      L.push(`Created self-signed certificate ${displayPath(r.certPath, cwd)} for ${names}, ${until}${why}`)
      L.push(`  key ${displayPath(r.certKeyPath!, cwd)} (RSA, mode 0600); browsers will warn until you use a real certificate (docs/INIT.md)`)
    } else {
      L.push(`Kept self-signed certificate ${displayPath(r.certPath, cwd)} for ${names}, ${until}`)
    }
  } else if (a.tls.mode === 'files') {
    L.push(`Using certificate ${displayPath(a.tls.cert, cwd)} and key ${displayPath(a.tls.key, cwd)}`)
  }
  for (const w of r.warnings) L.push(`Warning: ${w}`)
  const home = a.sshUser === 'root' ? '/root' : `~${a.sshUser}`
  const hosts = ['bastion', ...a.web.map((w) => w.name)].join(', ')
  L.push('')
  L.push(`Add this public key to ${home}/.ssh/authorized_keys on every host (${hosts}) before \`infra provision\`:`)
  L.push('')
  L.push(`  ${r.publicKey}`)
  L.push('')
  const port = a.sshPort === 22 ? '' : ` -p ${a.sshPort}`
  L.push(
    `  e.g. ssh-copy-id -i ${displayPath(k.publicKeyPath, cwd)}${port} ${a.sshUser}@${a.bastionPublic}` +
      ` (web nodes: add -o ProxyJump=${a.sshUser}@${a.bastionPublic}${a.sshPort === 22 ? '' : ':' + a.sshPort})`,
  )
  L.push('')
  const c = opts.configFlag ? ` -c ${opts.configFlag}` : ''
  L.push(`Next: infra provision --dry-run${c}`)
  return L.join('\n')
}
