/**
 * JWT key material for the bastion (inventory `auth`): the PEM public key file beside the
 * inventory (RS*, ES*) or the HMAC secret from an environment variable (HS*), read by provision on
 * this machine. The secret is never printed: it goes to the bastion as a secret file only.
 */
import {createPublicKey} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {LoadedInventory} from '../inventory/load.js'
import {ConfigError} from '../lib/errors.js'

export interface AuthMaterial {
  /** PEM public key (RS*, ES*). */
  key?: string
  /** HMAC secret (HS*). Secret. */
  secret?: string
}

function resolvePath(dir: string, p: string): string {
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2))
  return path.resolve(dir, p)
}

/** Check a PEM public key for the algorithm; returns it. An X.509 certificate is refused (HAProxy 2.6 fails with -5 at run time). */
export function checkPublicKey(pem: string, alg: string, where = 'auth.key'): string {
  if (/-----BEGIN CERTIFICATE-----/.test(pem)) {
    throw new ConfigError(`${where}: is a certificate; HAProxy 2.6 needs the public key itself`, {
      hint: 'Extract it: openssl x509 -in cert.pem -pubkey -noout > public.pem',
    })
  }
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError(`${where}: is a private key; give the public key (it is copied to the bastion)`, {
      hint: 'Extract it: openssl pkey -in private.pem -pubout > public.pem',
    })
  }
  let type: string | undefined
  try {
    type = createPublicKey(pem).asymmetricKeyType
  } catch {
    throw new ConfigError(`${where}: is not a PEM public key`, {hint: 'It should start with "-----BEGIN PUBLIC KEY-----".'})
  }
  const want = alg.startsWith('RS') ? 'rsa' : 'ec'
  if (type !== want) {
    throw new ConfigError(`${where}: is ${type === undefined ? 'an unknown' : `an ${type.toUpperCase()}`} key; auth.alg ${alg} needs an ${want.toUpperCase()} key`)
  }
  return pem
}

/** An HMAC secret as HAProxy's map file can hold it (one line, no surrounding spaces). */
export function checkSecret(secret: string | undefined, env: string): string {
  if (secret === undefined || secret === '') {
    throw new ConfigError(`auth.secretEnv: the environment variable ${env} is not set (it holds the JWT HMAC secret)`, {
      hint: `Set it before running infra, e.g. export ${env}=... (never put the secret in infra.yaml).`,
    })
  }
  if (/[\r\n]/.test(secret) || secret.trim() !== secret) {
    throw new ConfigError(`auth.secretEnv: the secret in ${env} has line breaks or leading/trailing spaces`, {hint: 'Use a single-line secret.'})
  }
  if (Buffer.byteLength(secret) < 32) {
    throw new ConfigError(`auth.secretEnv: the secret in ${env} is shorter than 32 bytes`, {hint: 'Use at least 32 random bytes, e.g. openssl rand -base64 48.'})
  }
  return secret
}

/** Read the key or the secret the inventory's `auth` names; {} when auth is off. */
export async function readAuthMaterial(loaded: LoadedInventory, env: NodeJS.ProcessEnv = process.env): Promise<AuthMaterial> {
  const auth = loaded.inventory.auth
  if (!auth) return {}
  if (auth.alg.startsWith('HS')) return {secret: checkSecret(env[auth.secretEnv ?? ''], auth.secretEnv ?? '')}
  const file = resolvePath(loaded.dir, auth.key ?? '')
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (error) {
    throw new ConfigError(`auth.key: cannot read ${file}: ${(error as Error).message}`, {hint: 'Give the path of the PEM public key, relative to the inventory.'})
  }
  return {key: checkPublicKey(pem, auth.alg, `auth.key (${file})`)}
}
