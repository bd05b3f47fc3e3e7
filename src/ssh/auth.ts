import {readFileSync, statSync} from 'node:fs'

import {fileLabel, LoadedInventory, resolveFrom} from '../inventory/load.js'
import {ConfigError} from '../lib/errors.js'

/**
 * How the tool logs in: the private key named in the inventory, or the ssh-agent when none is
 * named. Keys only; no password and no keyboard-interactive method is ever offered.
 */
export type SshAuth =
  | {kind: 'key'; path: string; /** as written in the inventory */ display: string; text: Buffer}
  | {kind: 'agent'; socket: string}

export function describeAuth(auth: SshAuth): string {
  return auth.kind === 'key' ? `key ${auth.display} (ssh.privateKey)` : `the ssh-agent's keys (SSH_AUTH_SOCK=${auth.socket})`
}

/** Is this private key protected by a passphrase? (OpenSSH format or PEM.) */
export function isEncryptedPrivateKey(text: string): boolean {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(text)) return true
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text)
  if (!m) return false
  const buf = Buffer.from(m[1].replaceAll(/\s+/g, ''), 'base64')
  const magic = 'openssh-key-v1\0'
  if (buf.length < magic.length + 4 || buf.subarray(0, magic.length).toString('latin1') !== magic) return false
  const len = buf.readUInt32BE(magic.length)
  const cipher = buf.subarray(magic.length + 4, magic.length + 4 + len).toString('latin1')
  return cipher !== 'none'
}

/**
 * Read the auth settings of an inventory. Throws ConfigError (exit 2) when the key file is
 * missing, unreadable, a public key or passphrase-protected, or when no key is configured and
 * no agent is running. The key's content is never put in a message.
 */
export function authFromInventory(loaded: LoadedInventory, env: NodeJS.ProcessEnv = process.env): SshAuth {
  const where = fileLabel(loaded.path)
  const configured = loaded.inventory.ssh.privateKey
  if (configured !== undefined) {
    const abs = resolveFrom(loaded, configured)
    let text: Buffer
    try {
      text = readFileSync(abs)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      throw new ConfigError(
        `${where}: ssh.privateKey: cannot read ${abs} (${code === 'ENOENT' ? 'no such file' : code ?? String(error)})`,
        {hint: 'The path is relative to the inventory folder. Fix it, or remove ssh.privateKey to use the ssh-agent.'},
      )
    }
    const s = text.toString('utf8')
    if (/^(ssh-|ecdsa-|sk-)/.test(s.trimStart())) {
      throw new ConfigError(`${where}: ssh.privateKey: ${abs} is a public key`, {
        hint: `Point ssh.privateKey at the private key (usually the same path without ".pub").`,
      })
    }
    if (!s.includes('PRIVATE KEY-----')) {
      throw new ConfigError(`${where}: ssh.privateKey: ${abs} is not a private key file`, {
        hint: 'Use an OpenSSH or PEM private key, e.g. one made with `ssh-keygen -t ed25519 -f keys/id_ed25519 -N ""`.',
      })
    }
    if (isEncryptedPrivateKey(s)) {
      throw new ConfigError(`${where}: ssh.privateKey: ${abs} is protected by a passphrase`, {
        hint: `infra does not ask for passphrases. Load the key into an agent (\`eval "$(ssh-agent)"; ssh-add ${configured}\`) and remove ssh.privateKey from the inventory.`,
      })
    }
    return {kind: 'key', path: abs, display: configured, text}
  }
  const socket = env.SSH_AUTH_SOCK
  if (!socket) {
    throw new ConfigError(`${where}: no ssh.privateKey is set and no ssh-agent is running (SSH_AUTH_SOCK is not set)`, {
      hint: 'Set ssh.privateKey (a path relative to the inventory) in the inventory, or start an agent and add your key: eval "$(ssh-agent)"; ssh-add ~/.ssh/id_ed25519',
    })
  }
  try {
    statSync(socket)
  } catch {
    throw new ConfigError(`${where}: SSH_AUTH_SOCK points to ${socket}, which does not exist (the ssh-agent is gone)`, {
      hint: 'Start an agent and add your key (eval "$(ssh-agent)"; ssh-add), or set ssh.privateKey in the inventory.',
    })
  }
  return {kind: 'agent', socket}
}
