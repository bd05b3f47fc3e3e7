import {confirm, input, select} from '@inquirer/prompts'
import {readFile, stat} from 'node:fs/promises'

import type {CrossIssue} from '../inventory/cross-check.js'
import {InfraError} from '../lib/errors.js'
import {readCertFiles} from '../tls/ensure.js'
import {splitPemCerts} from '../tls/inspect.js'
import {certNames} from '../tls/self-signed.js'
import {
  checkDomain,
  checkInput,
  checkIPv4,
  checkNodeName,
  checkSshUser,
  crossIssues,
  defaultKeyPath,
  DEFAULTS,
  type InitAnswers,
  type InitInput,
  type TlsAnswer,
  tlsModeOf,
  userPath,
  type WebNodeAnswer,
} from './answers.js'
import {displayPath} from './render.js'

/**
 * The interactive side of `infra init`: one question per value the flags did not give.
 * Prompts read `ctx.input` and draw on `ctx.output` (the terminal's stderr), so stdout stays for results.
 */

export interface WizardContext {
  input?: NodeJS.ReadableStream
  output?: NodeJS.WritableStream
  cwd?: string
}

const asValidator =
  (check: (v: string) => string | undefined) =>
  (v: string): string | true =>
    check(v.trim()) ?? true

/** Ctrl-C / closed input → a plain "Aborted" (exit 1) with nothing written. */
async function ask<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (error) {
    const name = (error as Error)?.name
    if (name === 'ExitPromptError' || name === 'AbortPromptError') {
      throw new InfraError('Aborted: nothing was written.', {code: 'EABORT'})
    }
    throw error
  }
}

/** The message of the first cross-key issue whose path starts with `prefix`. */
function issueAt(issues: CrossIssue[], prefix: readonly (string | number)[]): string | undefined {
  return issues.find((i) => prefix.every((p, k) => i.path[k] === p))?.message
}

function splitList(v: string): string[] {
  return v
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean)
}

/** A suggestion for the next web node address: the bastion's /24, from .11 up, skipping used ones. */
export function suggestAddress(bastionPrivate: string, used: readonly string[]): string | undefined {
  const parts = bastionPrivate.split('.')
  if (parts.length !== 4) return undefined
  const last = used.length > 0 ? used.at(-1)!.split('.') : undefined
  const base = last && last.slice(0, 3).join('.') === parts.slice(0, 3).join('.') ? Number(last[3]) + 1 : 11
  for (let i = base; i < 255; i++) {
    const a = `${parts.slice(0, 3).join('.')}.${i}`
    if (a !== bastionPrivate && !used.includes(a)) return a
  }
  return undefined
}

/** Where prompts read and draw, and the folder relative paths are read from. */
interface Prompting {
  io: {input: NodeJS.ReadableStream | undefined; output: NodeJS.WritableStream | undefined}
  cwd: string
}

/** The domain and the names redirected to it. */
async function askNames(given: InitInput, {io}: Prompting): Promise<{domain: string; aliases: string[]}> {
  const domain =
    given.domain?.toLowerCase() ??
    (await ask(input({message: 'Domain the fleet serves (e.g. example.com)', required: true, validate: asValidator(checkDomain)}, io))).trim().toLowerCase()

  let aliases = given.aliases?.map((a) => a.toLowerCase())
  if (aliases === undefined) {
    const v = await ask(
      input(
        {
          message: `Other names redirected to ${domain} (e.g. www.${domain}; separate with spaces, empty for none)`,
          validate: (s) => {
            const list = splitList(s)
            for (const a of list) {
              const bad = checkDomain(a)
              if (bad) return bad
            }
            return issueAt(crossIssues({domain, aliases: list}), ['aliases']) ?? true
          },
        },
        io,
      ),
    )
    aliases = splitList(v).map((s) => s.toLowerCase())
  }
  return {domain, aliases}
}

/** The SSH user and the operator's private key (a path, resolved against the working folder). */
async function askSsh(given: InitInput, inventoryDir: string, {io, cwd}: Prompting): Promise<{sshUser: string; sshKey: string}> {
  const sshUser =
    given.sshUser ??
    (await ask(input({message: 'SSH user on every host (root, or a user with passwordless sudo)', default: DEFAULTS.sshUser, validate: asValidator(checkSshUser)}, io))).trim()

  if (given.sshKey !== undefined) return {sshUser, sshKey: userPath(given.sshKey, cwd)}
  const answer = await ask(
    input(
      {
        message: 'Operator SSH private key (made if missing)',
        default: displayPath(defaultKeyPath(inventoryDir), cwd),
        validate: async (s) => {
          const p = s.trim()
          if (p === '') return 'Give a path'
          if (p.endsWith('.pub')) return 'Give the private key, not the .pub'
          const mode = await stat(userPath(p, cwd)).then((st) => st.mode & 0o777, () => undefined)
          if (mode !== undefined && mode & 0o077) return `${p} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${p} or choose another`
          return true
        },
      },
      io,
    ),
  )
  return {sshUser, sshKey: userPath(answer.trim(), cwd)}
}

/** The bastion's public and private addresses. */
async function askBastion(given: InitInput, {io}: Prompting): Promise<{bastionPublic: string; bastionPrivate: string}> {
  const bastionPublic =
    given.bastionPublic ?? (await ask(input({message: 'Bastion public address (the only public address)', required: true, validate: asValidator(checkIPv4)}, io))).trim()
  const bastionPrivate =
    given.bastionPrivate ??
    (
      await ask(
        input(
          {
            message: 'Bastion private address (the web nodes route through it)',
            required: true,
            validate: (s) => checkIPv4(s.trim()) ?? issueAt(crossIssues({bastionPublic, bastionPrivate: s.trim()}), ['bastion']) ?? true,
          },
          io,
        ),
      )
    ).trim()
  return {bastionPublic, bastionPrivate}
}

/** One more web node (the `n`th): its name, private address, and (after the first) whether it is a standby. */
async function askWebNode(nodes: WebNodeAnswer[], bastion: {bastionPublic: string; bastionPrivate: string}, {io}: Prompting): Promise<WebNodeAnswer> {
  const n = nodes.length + 1
  const usedNames = nodes.map((w) => w.name)
  const usedAddrs = nodes.map((w) => w.address)
  let defName = `web${n}`
  for (let i = n; usedNames.includes(defName); i++) defName = `web${i + 1}`
  const name = (
    await ask(
      input(
        {
          message: `Web node ${n}: name`,
          default: defName,
          validate: (s) => checkNodeName(s.trim()) ?? issueAt(crossIssues({web: [...nodes, {name: s.trim(), address: '', standby: false}]}), ['web', 'nodes', n - 1, 'name']) ?? true,
        },
        io,
      ),
    )
  ).trim()
  const address = (
    await ask(
      input(
        {
          message: `Web node ${n}: private address`,
          default: suggestAddress(bastion.bastionPrivate, usedAddrs),
          validate: (s) =>
            checkIPv4(s.trim()) ??
            issueAt(crossIssues({...bastion, web: [...nodes, {name, address: s.trim(), standby: false}]}), ['web', 'nodes', n - 1, 'address']) ??
            true,
        },
        io,
      ),
    )
  ).trim()
  // At least one node serves: the first is always active.
  const standby =
    n > 1 && (await ask(confirm({message: `Web node ${n}: standby (installed, kept stopped until the scaler or healer needs it)?`, default: false}, io)))
  return {name, address, standby}
}

/** Web nodes, one at a time, until the operator has enough. */
async function askWebNodes(bastion: {bastionPublic: string; bastionPrivate: string}, prompting: Prompting): Promise<WebNodeAnswer[]> {
  const web: WebNodeAnswer[] = []
  for (;;) {
    web.push(await askWebNode(web, bastion, prompting))
    const more = await ask(confirm({message: 'Add another web node?', default: web.length < 2}, prompting.io))
    if (!more) return web
  }
}

/** The certificate and key files of `tls.mode: files`; the key is checked against the certificate and the names. */
async function askTlsFiles(given: InitInput, names: string[], {io, cwd}: Prompting): Promise<{cert: string; key: string}> {
  const cert =
    given.tlsCert === undefined
      ? userPath(
          (
            await ask(
              input(
                {
                  message: 'Certificate file (PEM, chain after the certificate)',
                  required: true,
                  validate: async (s) => {
                    try {
                      const text = await readFile(userPath(s.trim(), cwd), 'utf8')
                      return splitPemCerts(text).length > 0 ? true : 'No PEM certificate in that file'
                    } catch {
                      return `Cannot read ${s.trim()}`
                    }
                  },
                },
                io,
              ),
            )
          ).trim(),
          cwd,
        )
      : userPath(given.tlsCert, cwd)
  if (given.tlsKey !== undefined) return {cert, key: userPath(given.tlsKey, cwd)}
  const answer = await ask(
    input(
      {
        message: 'Private key file of that certificate (PEM)',
        required: true,
        validate: async (s) => {
          try {
            await readCertFiles({certPath: cert, keyPath: userPath(s.trim(), cwd), names, certLabel: 'certificate', keyLabel: 'key'})
            return true
          } catch (error) {
            return (error as Error).message
          }
        },
      },
      io,
    ),
  )
  return {cert, key: userPath(answer.trim(), cwd)}
}

/** The TLS mode, and for `files` the certificate and key. */
async function askTls(given: InitInput, names: {domain: string; aliases: string[]}, prompting: Prompting): Promise<TlsAnswer> {
  const mode =
    tlsModeOf(given) ??
    (await ask(
      select<'self-signed' | 'files'>(
        {
          message: 'TLS certificate',
          choices: [
            {name: 'Self-signed, made by infra (browsers warn; fine to start)', value: 'self-signed'},
            {name: 'My own certificate and key (PEM files)', value: 'files'},
          ],
          default: 'self-signed',
        },
        prompting.io,
      ),
    ))
  if (mode === 'self-signed') return {mode, days: given.tlsDays ?? DEFAULTS.tlsDays}
  const {cert, key} = await askTlsFiles(given, certNames(names.domain, names.aliases), prompting)
  return {mode, cert, key}
}

export async function askAnswers(given: InitInput, inventoryDir: string, ctx: WizardContext = {}): Promise<InitAnswers> {
  const prompting: Prompting = {io: {input: ctx.input, output: ctx.output}, cwd: ctx.cwd ?? process.cwd()}
  const {web: givenWeb} = checkInput(given)
  const {domain, aliases} = await askNames(given, prompting)
  const {sshUser, sshKey} = await askSsh(given, inventoryDir, prompting)
  const bastion = await askBastion(given, prompting)
  const web = givenWeb && givenWeb.length > 0 ? givenWeb : await askWebNodes(bastion, prompting)
  const tls = await askTls(given, {domain, aliases}, prompting)
  return {domain, aliases, sshUser, sshPort: given.sshPort ?? DEFAULTS.sshPort, sshKey, ...bastion, web, tls}
}

export async function confirmWrite(message: string, ctx: WizardContext = {}): Promise<boolean> {
  return ask(confirm({message, default: true}, {input: ctx.input, output: ctx.output}))
}
