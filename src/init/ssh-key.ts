import {sshFingerprint} from '../host/hash.js'
import {constants} from 'node:fs'
import {access, chmod, mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {ConfigError} from '../lib/errors.js'
import {pathExists} from '../lib/fs.js'

/**
 * The operator's SSH key: an ed25519 key in OpenSSH format (what ssh2 reads), made by ssh-keygen
 * when the chosen path holds none. Private key 0600, `.pub` beside it.
 */

export const KEY_COMMENT = 'infra-operator'

export interface OperatorKey {
  privateKeyPath: string
  publicKeyPath: string
  /** The `.pub` line: `ssh-ed25519 AAAA... comment`. */
  publicKey: string
  /** `SHA256:...`, as `ssh-keygen -lf` prints it. */
  fingerprint: string
  /** True when this run made the key. */
  created: boolean
}

/** Find an executable on PATH (no process spawned). */
export async function findExecutable(name: string, envPath = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of envPath.split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, name)
    try {
      await access(p, constants.X_OK)
      return p
    } catch {
      // next
    }
  }
  return undefined
}

/** `SHA256:<unpadded base64>` of the key blob in a public key line. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1]
  if (!blob) throw new Error('not an OpenSSH public key line')
  return sshFingerprint(Buffer.from(blob, 'base64'))
}

async function sshKeygen(): Promise<string> {
  const bin = await findExecutable('ssh-keygen')
  if (!bin) {
    throw new ConfigError('ssh-keygen was not found on PATH; infra init needs it to make the operator key', {
      hint: 'Install OpenSSH (Debian/Ubuntu: apt-get install openssh-client; macOS has it), or pass --ssh-key with an existing ed25519 key.',
    })
  }
  return bin
}

export type KeyPlan = {exists: true; key: OperatorKey} | {exists: false; privateKeyPath: string}

/**
 * Look at the chosen key path without writing anything: an existing key is read (its `.pub`, or
 * `ssh-keygen -y` when the `.pub` is missing); a missing one needs ssh-keygen, checked here so
 * that init fails before writing any file.
 */
export async function planOperatorKey(privateKeyPath: string, label = '--ssh-key'): Promise<KeyPlan> {
  const publicKeyPath = `${privateKeyPath}.pub`
  if (!(await pathExists(privateKeyPath))) {
    await sshKeygen()
    return {exists: false, privateKeyPath}
  }
  const mode = (await stat(privateKeyPath)).mode & 0o777
  if (mode & 0o077) {
    throw new ConfigError(`${label}: ${privateKeyPath} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); ssh refuses such keys`, {
      hint: `Run chmod 600 ${privateKeyPath}`,
    })
  }
  let publicKey: string
  if (await pathExists(publicKeyPath)) {
    publicKey = (await readFile(publicKeyPath, 'utf8')).trim()
  } else {
    const {execa} = await import('execa')
    const r = await execa(await sshKeygen(), ['-y', '-P', '', '-f', privateKeyPath], {reject: false, stdin: 'ignore'})
    if (r.exitCode !== 0) {
      throw new ConfigError(`${label}: cannot read the public key of ${privateKeyPath} (${r.stderr.trim().split('\n')[0] || 'ssh-keygen -y failed'})`, {
        hint: `Put its public key in ${publicKeyPath}, or choose another key path (a missing one is created).`,
      })
    }
    publicKey = r.stdout.trim()
  }
  if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(publicKey)) {
    throw new ConfigError(`${label}: ${publicKeyPath} is not an OpenSSH public key`, {hint: 'Choose another key path (a missing one is created).'})
  }
  return {exists: true, key: {privateKeyPath, publicKeyPath, publicKey, fingerprint: fingerprintOf(publicKey), created: false}}
}

/**
 * Make an ed25519 key with `ssh-keygen -t ed25519 -N '' -C infra-operator -f PATH` (key 0600; a new
 * folder is made 0700 with a `.gitignore` that ignores everything in it).
 */
export async function createOperatorKey(privateKeyPath: string): Promise<OperatorKey> {
  const bin = await sshKeygen()
  const dir = path.dirname(privateKeyPath)
  if (!(await pathExists(dir))) {
    await mkdir(dir, {recursive: true, mode: 0o700})
    // A folder made for the key: keep it out of git.
    await writeFile(path.join(dir, '.gitignore'), '# made by infra init: private keys, never commit\n*\n')
  }
  const {execa} = await import('execa')
  const r = await execa(bin, ['-q', '-t', 'ed25519', '-N', '', '-C', KEY_COMMENT, '-f', privateKeyPath], {reject: false, stdin: 'ignore'})
  if (r.exitCode !== 0) {
    throw new ConfigError(`ssh-keygen could not create ${privateKeyPath}: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
  }
  await chmod(privateKeyPath, 0o600)
  const publicKeyPath = `${privateKeyPath}.pub`
  const publicKey = (await readFile(publicKeyPath, 'utf8')).trim()
  return {privateKeyPath, publicKeyPath, publicKey, fingerprint: fingerprintOf(publicKey), created: true}
}

/** Use the key at the path, or make one. */
export async function ensureOperatorKey(privateKeyPath: string): Promise<OperatorKey> {
  const plan = await planOperatorKey(privateKeyPath)
  return plan.exists ? plan.key : createOperatorKey(privateKeyPath)
}
