import {generateKeyPairSync, randomBytes} from 'node:crypto'
import forge from 'node-forge'

/**
 * A self-signed server certificate for the fleet's domain and aliases.
 *
 * The RSA key comes from Node's crypto (native, fast); node-forge builds and signs the certificate,
 * with SHA-256 given explicitly (forge would otherwise sign with SHA-1).
 */
export interface SelfSignedOptions {
  /** The apex domain: subject CN and first subjectAltName. */
  domain: string
  /** Other DNS names the certificate must cover. */
  aliases?: string[]
  /** Days of validity from now (tls.days, default 365). */
  days?: number
  /** RSA modulus length; at least 2048 (default 2048). */
  bits?: number
  /** Start of validity (defaults to now); the certificate is back-dated 5 minutes for clock skew. */
  now?: Date
}

export interface SelfSignedCert {
  certPem: string
  /** PKCS#8 PEM. Never print or log it. */
  keyPem: string
  notBefore: Date
  notAfter: Date
}

export const DEFAULT_DAYS = 365
export const MIN_RSA_BITS = 2048
const DAY_MS = 86_400_000
const BACKDATE_MS = 5 * 60_000

/** The DNS names a certificate for this domain must cover: the domain first, then the aliases, without repeats. */
export function certNames(domain: string, aliases: readonly string[] = []): string[] {
  const names: string[] = []
  for (const n of [domain, ...aliases].map((s) => s.toLowerCase())) if (!names.includes(n)) names.push(n)
  return names
}

export function createSelfSignedCert(opts: SelfSignedOptions): SelfSignedCert {
  const bits = opts.bits ?? MIN_RSA_BITS
  const days = opts.days ?? DEFAULT_DAYS
  if (!Number.isInteger(bits) || bits < MIN_RSA_BITS) throw new RangeError(`RSA key size must be at least ${MIN_RSA_BITS} bits (got ${bits})`)
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`validity must be a whole number of days >= 1 (got ${days})`)
  const names = certNames(opts.domain, opts.aliases)

  const {privateKey} = generateKeyPairSync('rsa', {modulusLength: bits, publicExponent: 0x10001})
  const keyPem = privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
  const key = forge.pki.privateKeyFromPem(keyPem)

  const now = opts.now ?? new Date()
  const notBefore = new Date(now.getTime() - BACKDATE_MS)
  const notAfter = new Date(now.getTime() + days * DAY_MS)
  // X.509 keeps whole seconds.
  notBefore.setMilliseconds(0)
  notAfter.setMilliseconds(0)

  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  // A positive 128-bit serial (the leading byte below 0x80 keeps the DER integer positive).
  const serial = randomBytes(16)
  serial[0] = (serial[0] & 0x7f) | 0x01
  cert.serialNumber = serial.toString('hex')
  cert.validity.notBefore = notBefore
  cert.validity.notAfter = notAfter
  const subject = [
    {name: 'commonName', value: names[0]},
    {name: 'organizationName', value: 'infra self-signed'},
  ]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    {name: 'basicConstraints', cA: false, critical: true},
    {name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true},
    {name: 'extKeyUsage', serverAuth: true},
    {name: 'subjectAltName', altNames: names.map((value) => ({type: 2, value}))},
    {name: 'subjectKeyIdentifier'},
  ])
  cert.sign(key, forge.md.sha256.create())

  // forge writes CRLF line ends; PEM files here use LF.
  return {certPem: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), keyPem, notBefore, notAfter}
}

/** YYYY-MM-DD (UTC). */
export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10)
}
