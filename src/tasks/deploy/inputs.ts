/**
 * What a deploy reads on this machine before it touches a host: the secrets' values, the build
 * directory's git commit, the build context as a tar stream, the archive. Problems are ConfigErrors
 * (exit 2) that name the key or the flag, raised before any connection.
 */
import {spawn} from 'node:child_process'
import {createReadStream} from 'node:fs'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'

import {configOf} from '../../inventory/config.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {ConfigError, UsageError} from '../../lib/errors.js'

/** KEY=value lines (# comments, blank lines, optional `export `, optional surrounding quotes). */
export function parseSecretsFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (!m) continue
    let v = m[2]
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1)
    out[m[1]] = v
  }
  return out
}

/**
 * The value of every app.secrets name: the operator's environment first, then app.secretsFile
 * (which must be 0600 or stricter). A name with no value anywhere is a ConfigError naming it.
 */
export async function readSecrets(loaded: LoadedInventory, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const app = loaded.inventory.app
  if (!app || app.secrets.length === 0) return {}
  const values: Record<string, string> = {}
  const missing = app.secrets.filter((n) => {
    const v = env[n]
    if (v !== undefined && v !== '') values[n] = v
    return values[n] === undefined
  })
  if (missing.length === 0) return values
  const file = path.resolve(loaded.dir, app.secretsFile)
  let text: string | undefined
  try {
    const st = await stat(file)
    if (st.mode & 0o077) {
      throw new ConfigError(`${loaded.path}: app.secretsFile: ${file} can be read by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`, {
        hint: `Run \`chmod 600 ${file}\`: it holds the app's secrets.`,
        code: 'ESECRETS',
      })
    }
    text = await readFile(file, 'utf8')
  } catch (error) {
    if (error instanceof ConfigError) throw error
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${loaded.path}: app.secretsFile: cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`, {code: 'ESECRETS'})
  }
  const fromFile = text === undefined ? {} : parseSecretsFile(text)
  const still = missing.filter((n) => {
    if (fromFile[n] !== undefined && fromFile[n] !== '') values[n] = fromFile[n]
    return values[n] === undefined
  })
  if (still.length > 0) {
    throw new ConfigError(`${loaded.path}: app.secrets: no value for ${still.join(', ')} (not in the environment${text === undefined ? `; ${file} does not exist` : `, nor in ${file}`})`, {
      hint: `Export ${still[0]}=... before deploying, or add a line ${still[0]}=... to ${file} (chmod 600).`,
      code: 'ESECRETS',
    })
  }
  if (Object.values(values).some((v) => /[\n\r\0]/.test(v))) {
    throw new ConfigError(`${loaded.path}: app.secrets: a value holds a line break, which an env file cannot carry`, {hint: 'Encode it (e.g. base64) and decode it in the app.', code: 'ESECRETS'})
  }
  return values
}

export interface RegistryLogin {
  registry: string
  user: string
  /** Secret: only ever a command's stdin. */
  password: string
}

/** app.registry's credentials from the operator's environment (undefined without app.registry); a ConfigError names what is missing. */
export function readRegistryLogin(loaded: LoadedInventory, env: NodeJS.ProcessEnv = process.env): RegistryLogin | undefined {
  const app = loaded.inventory.app
  const auth = app?.registry
  if (!app || !auth) return undefined
  const missing = [auth.usernameEnv, auth.passwordEnv].filter((n) => !env[n])
  if (missing.length > 0) {
    throw new ConfigError(`${loaded.path}: app.registry: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set in the environment`, {
      hint: `Export ${missing.map((n) => `${n}=...`).join(' ')} (the registry's user name and a token) before deploying.`,
      code: 'ESECRETS',
    })
  }
  return {registry: configOf(loaded.inventory).app!.registryHost, user: env[auth.usernameEnv]!, password: env[auth.passwordEnv]!}
}

function runOut(cmd: string, args: string[], cwd?: string): Promise<{code: number; out: string}> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {cwd, stdio: ['ignore', 'pipe', 'ignore']})
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', () => resolve({code: 127, out: ''}))
    child.on('close', (code) => resolve({code: code ?? 1, out: out.trim()}))
  })
}

/** The short git commit of `dir` (with `-dirty` when it has uncommitted changes), or null outside git. */
export async function gitCommit(dir: string): Promise<string | null> {
  const head = await runOut('git', ['rev-parse', '--short=12', 'HEAD'], dir)
  if (head.code !== 0 || !head.out) return null
  const dirty = await runOut('git', ['status', '--porcelain', '--untracked-files=no', '.'], dir)
  return dirty.code === 0 && dirty.out ? `${head.out}-dirty` : head.out
}

/** `--build DIR` checked: a directory with a Dockerfile. */
export async function checkBuildDir(dir: string): Promise<string> {
  const abs = path.resolve(dir)
  const st = await stat(abs).catch(() => undefined)
  if (!st?.isDirectory()) throw new UsageError(`--build ${dir}: not a directory`, {hint: 'Give the folder that holds the Dockerfile.'})
  if (!(await stat(path.join(abs, 'Dockerfile')).catch(() => undefined))) {
    throw new UsageError(`--build ${dir}: no Dockerfile in ${abs}`, {hint: 'The build context must hold a Dockerfile at its top (see examples/hello).'})
  }
  return abs
}

export async function checkArchive(file: string): Promise<string> {
  const abs = path.resolve(file)
  const st = await stat(abs).catch(() => undefined)
  if (!st?.isFile()) throw new UsageError(`--archive ${file}: no such file`, {hint: 'Give a `docker save` archive, e.g. `docker save shop:v2 -o shop.tar`.'})
  return abs
}

/** The build context as a tar stream (without .git), made by this machine's tar. */
export function tarStream(dir: string): {stream: Readable; done: Promise<number>} {
  const child = spawn('tar', ['-C', dir, '--exclude=./.git', '-cf', '-', '.'], {stdio: ['ignore', 'pipe', 'inherit']})
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)))
  return {stream: child.stdout, done}
}

export function archiveStream(file: string): Readable {
  return createReadStream(file)
}
