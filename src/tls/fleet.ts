/**
 * The fleet's own PKI for the bastion's image registry (an inventory with `app`): a CA that the
 * nodes' Docker trusts (certs.d), the registry's certificate for its private address, and the
 * registry's password (htpasswd, bcrypt). Kept beside the inventory in `fleet/` (keys and the
 * password 0600), made once by provision and reused; `plan` and `doctor` never write it.
 */
import {createHash, createHmac, generateKeyPairSync, randomBytes} from 'node:crypto'
import {chmod, mkdir, readFile, rename, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import bcrypt from 'bcryptjs'
import forge from 'node-forge'

import {ConfigError} from '../lib/errors.js'
import {pathExists} from '../lib/fs.js'

export const REGISTRY_USER = 'infra'

/** Never print or log `caKeyPem`, `keyPem`, `password` or `htpasswd`'s hash source. */
export interface FleetPki {
  caCertPem: string
  /** The registry's certificate (for `address`) and key. */
  certPem: string
  keyPem: string
  /** The registry user's password (random, 32 characters). */
  password: string
  /** `infra:$2b$...`: the registry's htpasswd line (same for the same password, so re-runs change nothing). */
  htpasswd: string
  /** Docker's `auths` entry value: base64 of user:password. */
  dockerAuth: string
  dir: string
  created: boolean
  warnings: string[]
}

const DAY_MS = 86_400_000

export function fleetDir(inventoryDir: string): string {
  return path.join(inventoryDir, 'fleet')
}

function serial(): string {
  const s = randomBytes(16)
  s[0] = (s[0] & 0x7f) | 0x01
  return s.toString('hex')
}

function keyPair(): {pem: string; key: forge.pki.rsa.PrivateKey} {
  const {privateKey} = generateKeyPairSync('rsa', {modulusLength: 2048, publicExponent: 0x10001})
  const pem = privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
  return {pem, key: forge.pki.privateKeyFromPem(pem)}
}

function lf(pem: string): string {
  return pem.replace(/\r\n/g, '\n')
}

/** A CA for 10 years. */
export function createFleetCa(now = new Date()): {certPem: string; keyPem: string} {
  const {pem, key} = keyPair()
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  cert.serialNumber = serial()
  cert.validity.notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3_600_000)
  cert.validity.notAfter = new Date(Math.floor(now.getTime() / 1000) * 1000 + 3650 * DAY_MS)
  const subject = [
    {name: 'commonName', value: 'infra fleet CA'},
    {name: 'organizationName', value: 'infra'},
  ]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    {name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true},
    {name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true},
    {name: 'subjectKeyIdentifier'},
  ])
  cert.sign(key, forge.md.sha256.create())
  return {certPem: lf(forge.pki.certificateToPem(cert)), keyPem: pem}
}

/** The registry's server certificate for an IP address, signed by the fleet CA, for 2 years. */
export function createRegistryCert(ca: {certPem: string; keyPem: string}, address: string, now = new Date()): {certPem: string; keyPem: string} {
  const {pem, key} = keyPair()
  const caCert = forge.pki.certificateFromPem(ca.certPem)
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem)
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  cert.serialNumber = serial()
  cert.validity.notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3_600_000)
  cert.validity.notAfter = new Date(Math.floor(now.getTime() / 1000) * 1000 + 730 * DAY_MS)
  cert.setSubject([{name: 'commonName', value: address}])
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([
    {name: 'basicConstraints', cA: false, critical: true},
    {name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true},
    {name: 'extKeyUsage', serverAuth: true},
    {name: 'subjectAltName', altNames: [{type: 7, ip: address}]},
  ])
  cert.sign(caKey, forge.md.sha256.create())
  return {certPem: lf(forge.pki.certificateToPem(cert)), keyPem: pem}
}

/** The htpasswd line: bcrypt with a salt derived from the password, so the same password gives the same line. */
export function htpasswdLine(password: string, user = REGISTRY_USER): string {
  const saltBytes = [...createHmac('sha256', password).update('infra registry htpasswd salt').digest().subarray(0, 16)]
  const salt = `$2b$10$${bcrypt.encodeBase64(saltBytes, 16)}`
  return `${user}:${bcrypt.hashSync(password, salt)}`
}

/** Why a registry certificate cannot be kept for `address` (undefined: keep it). */
function whyRenew(certPem: string, caPem: string, address: string, now: Date): string | undefined {
  try {
    const cert = forge.pki.certificateFromPem(certPem)
    const ca = forge.pki.certificateFromPem(caPem)
    if (!ca.verify(cert)) return 'it was not signed by the fleet CA'
    const san: unknown = cert.getExtension('subjectAltName')
    const names = (san as {altNames?: {ip?: string}[]} | undefined)?.altNames ?? []
    if (!names.some((n) => n.ip === address)) return `it does not cover ${address}`
    if (cert.validity.notAfter.getTime() - now.getTime() < 30 * DAY_MS) return 'it expires within 30 days'
    return undefined
  } catch {
    return 'it cannot be parsed'
  }
}

async function readOr(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      hint: 'infra keeps the fleet CA, the registry\'s certificate and its password there: make the folder readable by the user running infra.',
      code: 'EFLEETPKI',
    })
  }
}

async function writeSecure(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, text, {mode})
  await chmod(tmp, mode)
  await rename(tmp, file)
}

async function secretModeProblem(file: string): Promise<string | undefined> {
  const mode = (await stat(file)).mode & 0o777
  return mode & 0o077 ? `${file} could be read by other users (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}` : undefined
}

/**
 * The fleet PKI for a registry at `address`: reused from `<dir>/fleet/` when present and valid,
 * else made (and written unless `write` is false: then made in memory with a warning).
 */
export async function ensureFleetPki(inventoryDir: string, address: string, opts: {write?: boolean; now?: Date} = {}): Promise<FleetPki> {
  const now = opts.now ?? new Date()
  const dir = fleetDir(inventoryDir)
  const files = {caCert: path.join(dir, 'ca.crt'), caKey: path.join(dir, 'ca.key'), cert: path.join(dir, 'registry.crt'), key: path.join(dir, 'registry.key'), password: path.join(dir, 'registry.password')}
  const [caCert, caKey, cert, key, pw] = await Promise.all([readOr(files.caCert), readOr(files.caKey), readOr(files.cert), readOr(files.key), readOr(files.password)])
  for (const f of [files.caKey, files.key, files.password]) {
    if (await pathExists(f)) {
      const problem = await secretModeProblem(f)
      if (problem) throw new ConfigError(`fleet PKI: ${problem.split(':')[0]}`, {hint: `Run \`${problem.split(': ')[1]}\` (it is a secret of the fleet registry).`, code: 'EFLEETPKI'})
    }
  }
  const warnings: string[] = []
  let created = false
  let ca = caCert && caKey ? {certPem: caCert, keyPem: caKey} : undefined
  const changes: [string, string, number][] = []
  if (!ca) {
    ca = createFleetCa(now)
    changes.push([files.caKey, ca.keyPem, 0o600], [files.caCert, ca.certPem, 0o644])
  }
  let leaf = cert && key ? {certPem: cert, keyPem: key} : undefined
  const why = leaf ? whyRenew(leaf.certPem, ca.certPem, address, now) : 'new'
  if (!leaf || why) {
    leaf = createRegistryCert(ca, address, now)
    changes.push([files.key, leaf.keyPem, 0o600], [files.cert, leaf.certPem, 0o644])
  }
  const password = pw?.trim() || randomBytes(24).toString('base64url')
  if (!pw?.trim()) changes.push([files.password, password + '\n', 0o600])
  if (changes.length > 0) {
    if (opts.write === false) {
      warnings.push(`fleet PKI: ${dir} ${why === 'new' && !caCert ? 'does not exist yet' : `is to be updated (${why ?? 'incomplete'})`}; \`infra provision\` writes it.`)
    } else {
      if (!(await pathExists(dir))) {
        await mkdir(dir, {recursive: true, mode: 0o700})
        await writeFile(path.join(dir, '.gitignore'), '# made by infra: the fleet CA and registry secrets, never commit\n*.key\n*.password\n')
      }
      for (const [file, text, mode] of changes) await writeSecure(file, text, mode)
      created = true
    }
  }
  return {
    caCertPem: ca.certPem,
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    password,
    htpasswd: htpasswdLine(password),
    dockerAuth: Buffer.from(`${REGISTRY_USER}:${password}`).toString('base64'),
    dir,
    created,
    warnings,
  }
}

/** A short fingerprint of the CA (for status lines), never of a secret. */
export function caFingerprint(caCertPem: string): string {
  return createHash('sha256').update(caCertPem).digest('hex').slice(0, 16)
}
