import {createPrivateKey, X509Certificate} from 'node:crypto'

/**
 * Reading PEM material with Node's own X.509 parser (it handles RSA and ECDSA certificates alike,
 * unlike node-forge, so real certificates from any CA can be checked).
 */

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** The CERTIFICATE blocks of a PEM file, in order (leaf first in a chain file), each ending with a newline. */
export function splitPemCerts(text: string): string[] {
  return [...text.matchAll(PEM_CERT)].map((m) => m[0] + '\n')
}

export interface CertInfo {
  subject: string
  /** DNS names from subjectAltName. */
  dnsNames: string[]
  notBefore: Date
  notAfter: Date
  /** Key algorithm of the certificate's public key, e.g. "rsa", "ec". */
  keyType: string
  /** Bits of an RSA key (undefined for other key types). */
  bits?: number
}

export function certInfo(certPem: string): CertInfo {
  const x = new X509Certificate(certPem)
  const dnsNames = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4))
  const pub = x.publicKey
  return {
    subject: x.subject,
    dnsNames,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    keyType: pub.asymmetricKeyType ?? 'unknown',
    bits: pub.asymmetricKeyDetails?.modulusLength,
  }
}

/** The names the certificate does not cover (checked as a TLS client would, wildcards included). */
export function uncoveredNames(certPem: string, names: readonly string[]): string[] {
  const x = new X509Certificate(certPem)
  return names.filter((n) => x.checkHost(n, {subject: 'default'}) === undefined)
}

export type KeyCheck = {ok: true} | {ok: false; reason: string}

/** Whether the private key belongs to the certificate. Never includes key material in the reason. */
export function checkKeyPair(certPem: string, keyPem: string): KeyCheck {
  let key
  try {
    key = createPrivateKey(keyPem)
  } catch (error) {
    const msg = String((error as Error).message ?? error)
    if (/passphrase|encrypted/i.test(msg) || /ENCRYPTED/.test(keyPem)) {
      return {ok: false, reason: 'the private key is encrypted (HAProxy needs it without a passphrase)'}
    }
    return {ok: false, reason: 'not a PEM private key'}
  }
  try {
    const x = new X509Certificate(certPem)
    return x.checkPrivateKey(key) ? {ok: true} : {ok: false, reason: 'the private key does not belong to the certificate'}
  } catch {
    return {ok: false, reason: 'the private key does not belong to the certificate'}
  }
}

/** Whole days from `now` until `d` (negative when past). */
export function daysUntil(d: Date, now = new Date()): number {
  return Math.floor((d.getTime() - now.getTime()) / 86_400_000)
}
