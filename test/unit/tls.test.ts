import {execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fileLabel, loadInventory} from '../../src/inventory/load.js'
import {ConfigError} from '../../src/lib/errors.js'
import {ensureSelfSigned, ensureTls, haproxyPem, readCertFiles, selfSignedPaths} from '../../src/tls/ensure.js'
import {certInfo, checkKeyPair, splitPemCerts, uncoveredNames} from '../../src/tls/inspect.js'
import {createSelfSignedCert} from '../../src/tls/self-signed.js'

// Certificates are checked with the real openssl binary, as a user would.
const openssl = (args: string[], input?: string) => execFileSync('openssl', args, {encoding: 'utf8', input})
const x509Text = (pem: string) => openssl(['x509', '-noout', '-text'], pem)
const DAY = 86_400_000

let tmp: string
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'infra-tls-'))
})
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

function newDir(name: string): string {
  const d = path.join(tmp, name)
  execFileSync('mkdir', ['-p', d])
  return d
}

const inventoryText = (aliases: string[], tls = '') => `domain: example.com
aliases: [${aliases.join(', ')}]
bastion:
  publicAddress: 203.0.113.10
  privateAddress: 10.0.0.1
web:
  nodes:
    - name: web1
      address: 10.0.0.11
${tls}`

describe('createSelfSignedCert', () => {
  it('makes a SHA-256 signed RSA-2048 certificate for the domain and every alias, valid for the days asked', () => {
    const before = Date.now()
    const c = createSelfSignedCert({domain: 'example.com', aliases: ['www.example.com', 'shop.example.com'], days: 90})
    const text = x509Text(c.certPem)
    expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/)
    expect(text).toMatch(/Public-Key: \(2048 bit\)/)
    expect(text).toMatch(/Subject: CN ?= ?example\.com/)
    expect(text).toMatch(/DNS:example\.com, DNS:www\.example\.com, DNS:shop\.example\.com/)
    expect(text).toMatch(/TLS Web Server Authentication/)
    expect(text).toMatch(/CA:FALSE/)
    // notAfter as openssl reads it: 90 days from now.
    const end = new Date(openssl(['x509', '-noout', '-enddate'], c.certPem).trim().replace('notAfter=', ''))
    expect(Math.abs(end.getTime() - (before + 90 * DAY))).toBeLessThan(60_000)
    expect(Math.abs(c.notAfter.getTime() - end.getTime())).toBeLessThan(1000)
    // The key is the certificate's: same public key.
    const fromCert = openssl(['x509', '-noout', '-pubkey'], c.certPem)
    const fromKey = openssl(['pkey', '-pubout'], c.keyPem)
    expect(fromKey).toBe(fromCert)
    expect(c.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/)
  })

  it('takes a bigger key and refuses one under 2048 bits', () => {
    const c = createSelfSignedCert({domain: 'example.org', bits: 3072, days: 1})
    expect(x509Text(c.certPem)).toMatch(/Public-Key: \(3072 bit\)/)
    expect(() => createSelfSignedCert({domain: 'example.org', bits: 1024})).toThrow(/at least 2048/)
  })

  it('is readable by Node (names, key match) and lists each name once', () => {
    const c = createSelfSignedCert({domain: 'Example.com', aliases: ['example.com', 'www.example.com']})
    expect(certInfo(c.certPem).dnsNames).toEqual(['example.com', 'www.example.com'])
    expect(uncoveredNames(c.certPem, ['example.com', 'www.example.com', 'api.example.com'])).toEqual(['api.example.com'])
    expect(checkKeyPair(c.certPem, c.keyPem)).toEqual({ok: true})
    const other = createSelfSignedCert({domain: 'example.com'})
    expect(checkKeyPair(c.certPem, other.keyPem)).toMatchObject({ok: false})
  })
})

describe('ensureTls (self-signed)', () => {
  it('writes tls/<domain>.crt and a 0600 key, reuses them, and remakes them when an alias is added', async () => {
    const dir = newDir('selfsigned')
    const file = path.join(dir, 'infra.yaml')
    writeFileSync(file, inventoryText(['www.example.com']))

    const first = await ensureTls(await loadInventory(file))
    const {certPath, keyPath} = selfSignedPaths(dir, 'example.com')
    expect(first.created).toBe(true)
    expect(first.certPath).toBe(certPath)
    expect(statSync(keyPath).mode & 0o777).toBe(0o600)
    expect(readFileSync(certPath, 'utf8')).toBe(first.certPem)
    expect(x509Text(first.certPem)).toMatch(/DNS:example\.com, DNS:www\.example\.com/)
    // Default validity: 365 days.
    expect(Math.abs(first.notAfter.getTime() - (Date.now() + 365 * DAY))).toBeLessThan(60_000)

    const again = await ensureTls(await loadInventory(file))
    expect(again.created).toBe(false)
    expect(again.certPem).toBe(first.certPem)
    expect(again.keyPem).toBe(first.keyPem)

    writeFileSync(file, inventoryText(['www.example.com', 'shop.example.com']))
    const renewed = await ensureTls(await loadInventory(file))
    expect(renewed.created).toBe(true)
    expect(renewed.reason).toMatch(/no longer covers shop\.example\.com/)
    expect(renewed.certPem).not.toBe(first.certPem)
    expect(x509Text(readFileSync(certPath, 'utf8'))).toMatch(/DNS:example\.com, DNS:www\.example\.com, DNS:shop\.example\.com/)
    expect(statSync(keyPath).mode & 0o777).toBe(0o600)
  })

  it('remakes a certificate with 30 days or fewer left, and uses tls.days', async () => {
    const dir = newDir('expiring')
    const short = createSelfSignedCert({domain: 'example.com', days: 20})
    const {certPath, keyPath} = selfSignedPaths(dir, 'example.com')
    execFileSync('mkdir', ['-p', path.dirname(certPath)])
    writeFileSync(certPath, short.certPem)
    writeFileSync(keyPath, short.keyPem, {mode: 0o600})
    writeFileSync(path.join(dir, 'infra.yaml'), inventoryText([], 'tls:\n  mode: self-signed\n  days: 100\n'))

    const m = await ensureTls(await loadInventory(path.join(dir, 'infra.yaml')))
    expect(m.created).toBe(true)
    expect(m.reason).toMatch(/expires in (19|20) days/)
    expect(Math.abs(m.notAfter.getTime() - (Date.now() + 100 * DAY))).toBeLessThan(60_000)
  })

  it('remakes a pair whose key others can read or whose key does not match', async () => {
    const dir = newDir('badpair')
    const a = createSelfSignedCert({domain: 'example.com'})
    const b = createSelfSignedCert({domain: 'example.com'})
    const {certPath, keyPath} = selfSignedPaths(dir, 'example.com')
    execFileSync('mkdir', ['-p', path.dirname(certPath)])
    writeFileSync(certPath, a.certPem)
    writeFileSync(keyPath, b.keyPem, {mode: 0o600})
    const m1 = await ensureSelfSigned({dir, domain: 'example.com'})
    expect(m1.created).toBe(true)
    expect(m1.reason).toMatch(/does not belong/)
    chmodSync(keyPath, 0o644)
    const m2 = await ensureSelfSigned({dir, domain: 'example.com'})
    expect(m2.reason).toMatch(/other users/)
    expect(statSync(keyPath).mode & 0o777).toBe(0o600)
  })
})

describe('ensureTls (files)', () => {
  let dir: string
  beforeAll(() => {
    dir = newDir('files')
    // A real ECDSA certificate (as Let's Encrypt issues) with a CA certificate after it as the chain.
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=Test CA', '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem'), '-days', '30'])
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=example.com', '-keyout', path.join(dir, 'leaf.key'), '-out', path.join(dir, 'leaf.csr')])
    writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:example.com,DNS:www.example.com\n')
    openssl(['x509', '-req', '-in', path.join(dir, 'leaf.csr'), '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-days', '20', '-extfile', path.join(dir, 'ext.cnf'), '-out', path.join(dir, 'leaf.pem')])
    writeFileSync(path.join(dir, 'fullchain.pem'), readFileSync(path.join(dir, 'leaf.pem'), 'utf8') + readFileSync(path.join(dir, 'ca.pem'), 'utf8'))
    chmodSync(path.join(dir, 'leaf.key'), 0o600)
    chmodSync(path.join(dir, 'ca.key'), 0o600)
  })

  it('reads the configured files: leaf, chain and key, with a warning when it expires within 30 days', async () => {
    writeFileSync(path.join(dir, 'infra.yaml'), inventoryText(['www.example.com'], 'tls:\n  mode: files\n  cert: fullchain.pem\n  key: leaf.key\n'))
    const m = await ensureTls(await loadInventory(path.join(dir, 'infra.yaml')))
    expect(m.created).toBe(false)
    expect(m.certPem).toBe(readFileSync(path.join(dir, 'leaf.pem'), 'utf8'))
    expect(m.chainPem).toBe(readFileSync(path.join(dir, 'ca.pem'), 'utf8'))
    expect(m.keyPem).toBe(readFileSync(path.join(dir, 'leaf.key'), 'utf8'))
    expect(m.warnings.join('\n')).toMatch(/expires in 1[89] days/)
    expect(splitPemCerts(haproxyPem(m))).toHaveLength(2)
    expect(haproxyPem(m)).toMatch(/-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----/)
  })

  it('names the inventory key when the certificate does not cover an alias or the key is not its own', async () => {
    writeFileSync(path.join(dir, 'infra.yaml'), inventoryText(['www.example.com', 'shop.example.com'], 'tls:\n  mode: files\n  cert: fullchain.pem\n  key: leaf.key\n'))
    await expect(ensureTls(await loadInventory(path.join(dir, 'infra.yaml')))).rejects.toThrow(/infra\.yaml: tls\.cert: .*does not cover shop\.example\.com/)

    writeFileSync(path.join(dir, 'infra.yaml'), inventoryText([], 'tls:\n  mode: files\n  cert: fullchain.pem\n  key: ca.key\n'))
    const err = await ensureTls(await loadInventory(path.join(dir, 'infra.yaml'))).catch((error: unknown) => error)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    expect((err as ConfigError).message).toMatch(/tls\.key: .*ca\.key: the private key does not belong to the certificate/)
    expect((err as ConfigError).message).not.toMatch(/PRIVATE KEY-----/)
  })

  it('refuses a key file others can read, an expired certificate and a file without a certificate', async () => {
    const base = {names: ['example.com'], certLabel: '--tls-cert', keyLabel: '--tls-key'}
    writeFileSync(path.join(dir, 'open.key'), readFileSync(path.join(dir, 'leaf.key')), {mode: 0o644})
    chmodSync(path.join(dir, 'open.key'), 0o644)
    await expect(readCertFiles({...base, certPath: path.join(dir, 'leaf.pem'), keyPath: path.join(dir, 'open.key')})).rejects.toThrow(/--tls-key: .*other users \(mode 0644\)/)
    await expect(
      readCertFiles({...base, certPath: path.join(dir, 'leaf.pem'), keyPath: path.join(dir, 'leaf.key'), now: new Date(Date.now() + 40 * DAY)}),
    ).rejects.toThrow(/--tls-cert: .*expired on/)
    await expect(readCertFiles({...base, certPath: path.join(dir, 'ext.cnf'), keyPath: path.join(dir, 'leaf.key')})).rejects.toThrow(/--tls-cert: .*holds no PEM certificate/)
    await expect(readCertFiles({...base, certPath: path.join(dir, 'missing.pem'), keyPath: path.join(dir, 'leaf.key')})).rejects.toThrow(/--tls-cert: cannot read/)
  })

  it('an unreadable tls.cert or tls.key (missing, a folder, through a file) is a ConfigError naming the inventory, the key, the path and the fix', async () => {
    execFileSync('mkdir', ['-p', path.join(dir, 'a-folder')])
    const cases: [cert: string, key: string, message: string, hint: RegExp][] = [
      ['gone.pem', 'leaf.key', `infra.yaml: tls.cert: cannot read ${dir}/gone.pem: no such file`, /^Check the path \(in the inventory, a path is relative to its folder; ~\/ is your home folder\)\. Point it at your PEM certificate/],
      ['fullchain.pem', 'a-folder', `infra.yaml: tls.key: cannot read ${dir}/a-folder: it is a folder, not a file`, /^Name the file itself, not its folder\. Point it at the PEM private key/],
      ['leaf.pem/x', 'leaf.key', `infra.yaml: tls.cert: cannot read ${dir}/leaf.pem/x: a part of the path is a file, not a folder`, /^Check the path\. /],
    ]
    for (const [cert, key, message, hint] of cases) {
      writeFileSync(path.join(dir, 'infra.yaml'), inventoryText(['www.example.com'], `tls:\n  mode: files\n  cert: ${cert}\n  key: ${key}\n`))
      // Without the loader's file checks, as when a file changes between validation and provision.
      const err = await ensureTls(await loadInventory(path.join(dir, 'infra.yaml'), {checkFiles: false})).catch((error: unknown) => error)
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).exitCode).toBe(2)
      expect((err as ConfigError).message).toBe(message.replace('infra.yaml', fileLabel(path.join(dir, 'infra.yaml'))))
      expect((err as ConfigError).hint).toMatch(hint)
    }
  })
})

describe('ensureTls (self-signed): unreadable files', () => {
  it('a folder where the key should be is a ConfigError naming the inventory and the path, not a bare errno', async () => {
    const dir = newDir('self-signed-folder')
    writeFileSync(path.join(dir, 'infra.yaml'), inventoryText([]))
    const {certPath, keyPath} = selfSignedPaths(dir, 'example.com')
    execFileSync('mkdir', ['-p', keyPath])
    writeFileSync(certPath, '')
    const err = await ensureTls(await loadInventory(path.join(dir, 'infra.yaml'))).catch((error: unknown) => error)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    expect((err as ConfigError).message).toMatch(new RegExp(`infra\\.yaml: tls\\.mode self-signed: cannot read ${keyPath}: it is a folder, not a file$`))
    expect((err as ConfigError).hint).toMatch(/infra keeps its self-signed certificate and key there/)
  })
})
