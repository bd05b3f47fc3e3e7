import {chmod, mkdir, readFile, rename, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {fileLabel, type LoadedInventory, resolveFrom} from '../inventory/load.js'
import {whyUnreadable} from '../inventory/validate.js'
import {ConfigError} from '../lib/errors.js'
import {certInfo, checkKeyPair, daysUntil, splitPemCerts, uncoveredNames} from './inspect.js'
import {certNames, createSelfSignedCert, DEFAULT_DAYS, isoDay} from './self-signed.js'
import {pathExists} from '../lib/fs.js'

/** The certificate material HAProxy serves. Never print or log `keyPem`. */
export interface TlsMaterial {
  /** The leaf certificate (PEM). */
  certPem: string
  /** The private key (PEM). */
  keyPem: string
  /** Intermediate certificates following the leaf in a `files` certificate, if any (PEM, concatenated). */
  chainPem?: string
  notAfter: Date
  certPath: string
  keyPath: string
  /** True when this call generated a new self-signed certificate (and wrote it). */
  created: boolean
  /** Why a self-signed certificate was (re)made or kept, for the user: e.g. "new", "no longer covers www.example.com". */
  reason: string
  /** Things the user should know that do not stop provisioning (e.g. a real certificate expiring soon). */
  warnings: string[]
}

/** A self-signed certificate is remade when it has this many days left or fewer. */
export const RENEW_WITHIN_DAYS = 30

/** Where the self-signed certificate and key live: `tls/<domain>.crt` and `tls/<domain>.key` beside the inventory. */
export function selfSignedPaths(dir: string, domain: string): {certPath: string; keyPath: string} {
  const base = path.join(dir, 'tls', domain.toLowerCase())
  return {certPath: `${base}.crt`, keyPath: `${base}.key`}
}

/** One file for HAProxy's `crt`: leaf, chain, key. */
export function haproxyPem(m: Pick<TlsMaterial, 'certPem' | 'chainPem' | 'keyPem'>): string {
  const nl = (s: string) => (s.endsWith('\n') ? s : s + '\n')
  return nl(m.certPem) + (m.chainPem ? nl(m.chainPem) : '') + nl(m.keyPem)
}

const sentence = (s: string) => s.charAt(0).toUpperCase() + s.slice(1) + (s.endsWith('.') ? '' : '.')

/** A file problem as a ConfigError: `LABEL: cannot read PATH: REASON`, the fix first in the hint. */
function unreadableError(label: string, file: string, error: unknown, hint?: string): ConfigError {
  const u = whyUnreadable(error, file)
  return new ConfigError(`${label}: cannot read ${file}: ${u.reason}`, {hint: [sentence(u.fix), hint].filter(Boolean).join(' '), code: 'ETLSFILE', cause: error})
}

/** The file's text; any failure is a ConfigError naming the setting (`label`) and the path. */
async function readNamed(file: string, label: string, hint?: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    throw unreadableError(label, file, error, hint)
  }
}

/** The file's text, undefined when it does not exist; any other failure is a ConfigError. */
async function readIfExists(file: string, label: string, hint?: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw unreadableError(label, file, error, hint)
  }
}

async function modeOf(file: string, label: string): Promise<number> {
  try {
    return (await stat(file)).mode & 0o777
  } catch (error) {
    throw unreadableError(label, file, error)
  }
}

/** Why an existing self-signed pair cannot be kept, or undefined when it can. */
function whyRenew(certPem: string, keyPem: string, names: string[], now: Date): string | undefined {
  const certs = splitPemCerts(certPem)
  if (certs.length === 0) return 'the certificate file holds no certificate'
  let info
  try {
    info = certInfo(certs[0])
  } catch {
    return 'the certificate file cannot be parsed'
  }
  const pair = checkKeyPair(certs[0], keyPem)
  if (!pair.ok) return pair.reason
  const missing = uncoveredNames(certs[0], names)
  if (missing.length > 0) return `it no longer covers ${missing.join(', ')}`
  const left = daysUntil(info.notAfter, now)
  if (left <= RENEW_WITHIN_DAYS) return left < 0 ? `it expired on ${isoDay(info.notAfter)}` : `it expires in ${left} days`
  if (info.notBefore.getTime() > now.getTime() + 5 * 60_000) return 'it is not valid yet (clock change?)'
  return undefined
}

/** Write atomically (temp file + rename) with the given mode. */
async function writeSecure(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, text, {mode})
  await chmod(tmp, mode)
  await rename(tmp, file)
}

export interface SelfSignedRequest {
  /** Folder of the inventory; files go to `<dir>/tls/`. */
  dir: string
  /** How the setting is named in messages, e.g. "infra.yaml: tls.mode self-signed". Default "tls.mode self-signed". */
  label?: string
  domain: string
  aliases?: readonly string[]
  days?: number
  /** For tests. */
  now?: Date
  /**
   * false: never write (plan, doctor): a certificate that would be made is made in memory only, with
   * a warning that provision will write it. Default true (provision, init).
   */
  write?: boolean
}

/**
 * Reuse `tls/<domain>.crt` + `.key` when they belong together, cover the domain and every alias and
 * stay valid for more than 30 days; otherwise make a new pair (key 0600) and write it.
 */
export async function ensureSelfSigned(req: SelfSignedRequest): Promise<TlsMaterial> {
  const now = req.now ?? new Date()
  const names = certNames(req.domain, req.aliases)
  const {certPath, keyPath} = selfSignedPaths(req.dir, req.domain)
  const label = req.label ?? 'tls.mode self-signed'
  const own = 'infra keeps its self-signed certificate and key there; remove what is in the way, or set tls.mode files.'
  const [oldCert, oldKey] = await Promise.all([readIfExists(certPath, label, own), readIfExists(keyPath, label, own)])
  let reason = 'new'
  if (oldCert !== undefined && oldKey !== undefined) {
    const keyMode = await modeOf(keyPath, label)
    const why = keyMode & 0o077 ? `its key could be read by other users (mode ${keyMode.toString(8).padStart(4, '0')})` : whyRenew(oldCert, oldKey, names, now)
    if (why === undefined) {
      const leaf = splitPemCerts(oldCert)[0]
      return {certPem: leaf, keyPem: oldKey, notAfter: certInfo(leaf).notAfter, certPath, keyPath, created: false, reason: 'kept', warnings: []}
    }
    reason = why
  } else if (oldCert !== undefined || oldKey !== undefined) {
    reason = `${path.basename(oldCert === undefined ? certPath : keyPath)} was missing`
  }

  const made = createSelfSignedCert({domain: req.domain, aliases: [...(req.aliases ?? [])], days: req.days ?? DEFAULT_DAYS, now})
  if (req.write === false) {
    const warning = `${label}: ${certPath} ${reason === 'new' ? 'does not exist yet' : `is to be replaced (${reason})`}; \`infra provision\` writes a new certificate.`
    return {certPem: made.certPem, keyPem: made.keyPem, notAfter: made.notAfter, certPath, keyPath, created: false, reason, warnings: [warning]}
  }
  const tlsDir = path.dirname(certPath)
  let writing = tlsDir
  try {
    if (!(await pathExists(tlsDir))) {
      await mkdir(tlsDir, {recursive: true})
      await writeFile(path.join(tlsDir, '.gitignore'), '# made by infra: private keys, never commit\n*.key\n')
    }
    // Key first: a certificate never sits beside a key it does not match for long.
    writing = keyPath
    await writeSecure(keyPath, made.keyPem, 0o600)
    writing = certPath
    await writeSecure(certPath, made.certPem, 0o644)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new ConfigError(`${label}: cannot write ${writing}: ${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code}`, {
      hint: `infra writes the self-signed certificate to ${tlsDir}: make that folder writable by the user running infra, or set tls.mode files.`,
      code: 'ETLSFILE',
      cause: error,
    })
  }
  return {certPem: made.certPem, keyPem: made.keyPem, notAfter: made.notAfter, certPath, keyPath, created: true, reason, warnings: []}
}

export interface CertFilesRequest {
  certPath: string
  keyPath: string
  /** Names the certificate must cover. */
  names: readonly string[]
  /** How the files are named to the user, e.g. "infra.yaml: tls.cert" / "--tls-cert". */
  certLabel: string
  keyLabel: string
  now?: Date
}

/**
 * Read and check a certificate (with its chain) and key supplied by the user.
 * Throws ConfigError (exit 2) naming the setting when a file is missing, unparsable, mismatched,
 * expired or does not cover a name.
 */
export async function readCertFiles(req: CertFilesRequest): Promise<TlsMaterial> {
  const now = req.now ?? new Date()
  const certText = await readNamed(req.certPath, req.certLabel, 'Point it at your PEM certificate (with its chain), or use tls mode self-signed.')
  const keyText = await readNamed(req.keyPath, req.keyLabel, 'Point it at the PEM private key of the certificate.')
  const certs = splitPemCerts(certText)
  if (certs.length === 0) {
    throw new ConfigError(`${req.certLabel}: ${req.certPath} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`, {
      hint: 'Convert it to PEM, e.g. `openssl x509 -inform der -in cert.der -out cert.pem`.',
    })
  }
  let info
  try {
    info = certInfo(certs[0])
  } catch {
    throw new ConfigError(`${req.certLabel}: the first certificate in ${req.certPath} cannot be parsed`)
  }
  const pair = checkKeyPair(certs[0], keyText)
  if (!pair.ok) {
    throw new ConfigError(`${req.keyLabel}: ${req.keyPath}: ${pair.reason}`, {
      hint: 'Put the certificate first in the certificate file, and give the key it was issued for (decrypt it with `openssl pkey -in KEY -out KEY.plain`).',
    })
  }
  const mode = await modeOf(req.keyPath, req.keyLabel)
  if (mode & 0o077) {
    throw new ConfigError(`${req.keyLabel}: ${req.keyPath} can be read by other users (mode ${mode.toString(8).padStart(4, '0')})`, {
      hint: `Run chmod 600 ${req.keyPath}`,
    })
  }
  if (info.notAfter.getTime() <= now.getTime()) {
    throw new ConfigError(`${req.certLabel}: ${req.certPath} expired on ${isoDay(info.notAfter)}`, {hint: 'Renew the certificate and point tls.cert at the new file.'})
  }
  const missing = uncoveredNames(certs[0], req.names)
  if (missing.length > 0) {
    throw new ConfigError(`${req.certLabel}: ${req.certPath} does not cover ${missing.join(', ')} (it covers ${info.dnsNames.join(', ') || info.subject})`, {
      hint: 'Use a certificate issued for the domain and every alias, or remove the aliases it does not cover.',
    })
  }
  const warnings: string[] = []
  const left = daysUntil(info.notAfter, now)
  if (left <= RENEW_WITHIN_DAYS) warnings.push(`${req.certPath} expires in ${left} days (${isoDay(info.notAfter)}): renew it soon.`)
  if (info.notBefore.getTime() > now.getTime()) warnings.push(`${req.certPath} is not valid before ${info.notBefore.toISOString()}.`)
  const chain = certs.slice(1).join('')
  return {
    certPem: certs[0],
    keyPem: keyText,
    ...(chain ? {chainPem: chain} : {}),
    notAfter: info.notAfter,
    certPath: req.certPath,
    keyPath: req.keyPath,
    created: false,
    reason: 'files',
    warnings,
  }
}

/**
 * The PEM material for the inventory's TLS setting, as the provisioner needs it.
 * - `tls.mode: files`: reads and checks the configured files (relative to the inventory).
 * - `tls.mode: self-signed`: reuses `tls/<domain>.crt|.key` beside the inventory while they cover the
 *   domain and aliases and stay valid for more than 30 days; otherwise generates and writes new ones
 *   (`write: false`: only in memory, with a warning; what plan and doctor do).
 */
export async function ensureTls(loaded: LoadedInventory, opts: {write?: boolean} = {}): Promise<TlsMaterial> {
  const inv = loaded.inventory
  const tls = inv.tls
  if (tls.mode === 'files') {
    const file = fileLabel(loaded.path)
    return readCertFiles({
      certPath: resolveFrom(loaded, tls.cert),
      keyPath: resolveFrom(loaded, tls.key),
      names: certNames(inv.domain, inv.aliases),
      certLabel: `${file}: tls.cert`,
      keyLabel: `${file}: tls.key`,
    })
  }
  return ensureSelfSigned({dir: loaded.dir, domain: inv.domain, aliases: inv.aliases, days: tls.days, label: `${fileLabel(loaded.path)}: tls.mode self-signed`, write: opts.write})
}
