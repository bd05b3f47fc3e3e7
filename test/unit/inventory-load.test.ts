import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import Validate from '../../src/commands/validate.js'
import {checkInventoryFile, fileLabel, InventoryError, loadInventory, resolveFrom} from '../../src/inventory/load.js'
import {whyUnreadable} from '../../src/inventory/validate.js'
import {ConfigError} from '../../src/lib/errors.js'
import {runCommand} from './command-helpers.js'

const VALID = `domain: example.com
bastion:
  publicAddress: 203.0.113.10
  privateAddress: 10.10.0.1
web:
  nodes:
    - {name: web1, address: 10.10.0.11}
    - {name: web2, address: 10.10.0.12, standby: true}
    - {name: web3, address: 10.10.0.13, standby: true}
`
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n'
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

let dir: string
let n = 0
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'infra-inventory-'))
})
afterAll(async () => {
  await rm(dir, {recursive: true, force: true})
})

/** A fresh folder with an infra.yaml and the given files (name → [content, mode]). */
async function fleet(yaml: string, files: Record<string, [string, number]> = {}): Promise<string> {
  const d = path.join(dir, `f${++n}`)
  await mkdir(d, {recursive: true})
  for (const [name, [content, mode]] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(d, name)), {recursive: true})
    await writeFile(path.join(d, name), content)
    await chmod(path.join(d, name), mode)
  }
  await writeFile(path.join(d, 'infra.yaml'), yaml)
  return path.join(d, 'infra.yaml')
}

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (error) {
    return error as Error
  }
  throw new Error('expected a rejection')
}

describe('loadInventory', () => {
  it('loads a valid inventory with its folder and known_hosts path', async () => {
    const file = await fleet(VALID)
    const loaded = await loadInventory(file)
    expect(loaded.path).toBe(file)
    expect(loaded.dir).toBe(path.dirname(file))
    expect(loaded.knownHostsPath).toBe(path.join(path.dirname(file), 'known_hosts'))
    expect(loaded.inventory.web.nodes.map((x) => x.name)).toEqual(['web1', 'web2', 'web3'])
    expect(resolveFrom(loaded, 'keys/id')).toBe(path.join(loaded.dir, 'keys/id'))
    expect(resolveFrom(loaded, '~/.ssh/id_ed25519')).toBe(path.join(os.homedir(), '.ssh/id_ed25519'))
    expect(resolveFrom(loaded, '/etc/x')).toBe('/etc/x')
  })

  it('a missing file is a ConfigError (exit 2) that points to infra init', async () => {
    const err = await errorOf(loadInventory(path.join(dir, 'nope', 'infra.yaml')))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    expect(err.message).toBe(`${path.join(dir, 'nope', 'infra.yaml')}: no such inventory file (looked for ${path.join(dir, 'nope', 'infra.yaml')})`)
    expect((err as ConfigError).hint).toContain('infra init')
  })

  it('an invalid inventory lists every error line and a hint, exit 2', async () => {
    const file = await fleet(VALID.replace('10.10.0.12', '10.0.0').replace('domain:', 'domian:'))
    const err = (await errorOf(loadInventory(file))) as InventoryError
    expect(err).toBeInstanceOf(InventoryError)
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.exitCode).toBe(2)
    expect(err.message).toBe(
      [
        `${file} is not valid (3 errors):`,
        `${file}:1:1 domain: is missing (expected a domain name, e.g. "example.com")`,
        `${file}:1:1 domian: unknown key (did you mean "domain"?)`,
        `${file}:8:29 web.nodes[1].address: "10.0.0" is not an IPv4 address`,
      ].join('\n'),
    )
    expect(err.hint).toBe(`Fix the keys above in ${file}; \`infra validate\` checks the file without touching any host.`)
    expect(err.issues.map((i) => [i.line, i.column, i.path])).toEqual([
      [1, 1, 'domain'],
      [1, 1, 'domian'],
      [8, 29, 'web.nodes[1].address'],
    ])
  })

  it('names the file relative to the working folder when inside it', () => {
    expect(fileLabel('/srv/fleet/infra.yaml', '/srv/fleet')).toBe('infra.yaml')
    expect(fileLabel('/srv/fleet/prod/infra.yaml', '/srv/fleet')).toBe('prod/infra.yaml')
    expect(fileLabel('/srv/other/infra.yaml', '/srv/fleet')).toBe('/srv/other/infra.yaml')
  })
})

describe('files named by the inventory', () => {
  const withKey = (p: string) => VALID.replace('domain: example.com\n', `domain: example.com\nssh:\n  privateKey: ${p}\n`)

  it('accepts a private key with mode 0600, relative to the inventory folder', async () => {
    const file = await fleet(withKey('keys/id_ed25519'), {'keys/id_ed25519': [KEY, 0o600]})
    const loaded = await loadInventory(file)
    expect(resolveFrom(loaded, loaded.inventory.ssh.privateKey!)).toBe(path.join(path.dirname(file), 'keys/id_ed25519'))
  })

  it('a missing private key names the key and the resolved path', async () => {
    const file = await fleet(withKey('keys/id_ed25519'))
    const r = await checkInventoryFile(file)
    expect(r.errors).toEqual([`${file}:3:15 ssh.privateKey: "keys/id_ed25519" does not exist (looked for ${path.join(path.dirname(file), 'keys/id_ed25519')})`])
  })

  it('a private key readable by others asks for chmod 600', async () => {
    const file = await fleet(withKey('id'), {id: [KEY, 0o644]})
    const abs = path.join(path.dirname(file), 'id')
    const r = await checkInventoryFile(file)
    expect(r.errors).toEqual([`${file}:3:15 ssh.privateKey: "id" can be read by other users (mode 0644); run chmod 600 ${abs}`])
  })

  it('a public key given as private key is recognised', async () => {
    const file = await fleet(withKey('id.pub'), {'id.pub': ['ssh-ed25519 AAAAC3Nza me@host\n', 0o644]})
    const r = await checkInventoryFile(file)
    expect(r.errors).toEqual([
      `${file}:3:15 ssh.privateKey: "id.pub" is a public key; ssh.privateKey must name the private key (usually the same path without .pub)`,
    ])
  })

  it('checkFiles: false skips the file checks (pure tests, CI)', async () => {
    const file = await fleet(withKey('absent'))
    expect((await loadInventory(file, {checkFiles: false})).inventory.ssh.privateKey).toBe('absent')
  })

  it('tls files must exist and hold a certificate and a key', async () => {
    const tls = (cert: string, key: string) => `${VALID}tls:\n  mode: files\n  cert: ${cert}\n  key: ${key}\n`
    const ok = await fleet(tls('tls/site.crt', 'tls/site.key'), {'tls/site.crt': [CERT, 0o644], 'tls/site.key': [KEY, 0o600]})
    expect((await loadInventory(ok)).inventory.tls).toEqual({mode: 'files', cert: 'tls/site.crt', key: 'tls/site.key'})

    const bad = await fleet(tls('site.crt', 'site.key'), {'site.crt': ['hello\n', 0o644], 'site.key': [KEY, 0o640]})
    const d = path.dirname(bad)
    expect((await checkInventoryFile(bad)).errors).toEqual([
      `${bad}:12:9 tls.cert: "site.crt" does not hold a PEM certificate (${d}/site.crt has no "-----BEGIN CERTIFICATE-----")`,
      `${bad}:13:8 tls.key: "site.key" can be read by other users (mode 0640); run chmod 600 ${d}/site.key`,
    ])
  })

  it('a tls path that is a folder or goes through a file says so in words, with a fix', async () => {
    const text = `${VALID}tls:\n  mode: files\n  cert: certs\n  key: site.crt/site.key\n`
    const file = await fleet(text, {'certs/readme': ['', 0o644], 'site.crt': [CERT, 0o644]})
    const d = path.dirname(file)
    expect((await checkInventoryFile(file)).errors).toEqual([
      `${file}:12:9 tls.cert: "certs" is a folder, not a file (${d}/certs); name the file itself, not its folder`,
      `${file}:13:8 tls.key: "site.crt/site.key" cannot be read (${d}/site.crt/site.key: a part of the path is a file, not a folder); check the path`,
    ])
    const err = await errorOf(loadInventory(file))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
  })

  it('auth.key (RS*, ES*) must exist and hold a PEM public key', async () => {
    const auth = (key: string, alg = 'RS256') => `${VALID}auth:\n  alg: ${alg}\n  key: ${key}\n  rules: [{path: /api/}]\n`
    const pub = '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n'
    expect((await loadInventory(await fleet(auth('jwt.pem'), {'jwt.pem': [pub, 0o644]}))).inventory.auth?.key).toBe('jwt.pem')
    const missing = await fleet(auth('keys/jwt.pem'))
    expect((await checkInventoryFile(missing)).errors).toEqual([
      `${missing}:12:8 auth.key: "keys/jwt.pem" does not exist (looked for ${path.dirname(missing)}/keys/jwt.pem)`,
    ])
    const cert = await fleet(auth('jwt.pem'), {'jwt.pem': [CERT, 0o644]})
    expect((await checkInventoryFile(cert)).errors).toEqual([
      `${cert}:12:8 auth.key: "jwt.pem" does not hold a PEM public key (${path.dirname(cert)}/jwt.pem has no "-----BEGIN PUBLIC KEY-----")`,
    ])
    // With HS* the key is refused by the cross-field check alone (not also as a missing file).
    const hs = await fleet(auth('absent.pem', 'HS256').replace('  rules:', '  secretEnv: JWT_SECRET\n  rules:'))
    expect((await checkInventoryFile(hs)).errors).toEqual([`${hs}:12:8 auth.key: is only used with RS* and ES* algorithms; HS256 takes its secret from auth.secretEnv`])
  })
})

describe('whyUnreadable: an errno in words, with a fix', () => {
  it('covers the ways a file cannot be read', () => {
    const at = '/srv/fleet/tls/site.crt'
    const of = (code: string) => whyUnreadable(Object.assign(new Error(code), {code}), at)
    expect(of('ENOENT').reason).toBe('no such file')
    expect(of('EISDIR')).toEqual({reason: 'it is a folder, not a file', fix: 'name the file itself, not its folder'})
    expect(of('EACCES')).toEqual({reason: 'permission denied', fix: `make it readable by the user running infra (e.g. chmod u+r ${at}; every folder above it needs x)`})
    expect(of('EPERM').reason).toBe('permission denied')
    expect(of('ENOTDIR').reason).toBe('a part of the path is a file, not a folder')
    expect(of('ELOOP').reason).toBe('too many levels of symbolic links (a loop?)')
    expect(of('EIO')).toEqual({reason: 'EIO', fix: `check that ${at} is a readable file`})
  })

  // Root reads any file: the real permission check needs an ordinary user.
  it.skipIf(process.getuid?.() === 0)('a tls key without read permission names the key, the path and the fix', async () => {
    const file = await fleet(`${VALID}tls: {mode: files, cert: site.crt, key: site.key}\n`, {'site.crt': [CERT, 0o644], 'site.key': [KEY, 0o000]})
    const abs = path.join(path.dirname(file), 'site.key')
    expect((await checkInventoryFile(file)).errors).toEqual([
      `${file}:10:45 tls.key: "site.key" cannot be read (${abs}: permission denied); make it readable by the user running infra (e.g. chmod u+r ${abs}; every folder above it needs x)`,
    ])
  })
})

describe('infra validate', () => {
  const run = (argv: string[]) => runCommand(Validate, argv)

  it('says how many hosts a valid inventory has', async () => {
    const file = await fleet(VALID)
    const r = await run(['--config', file])
    expect(r).toEqual({out: `${file} is valid: 1 bastion, 3 web nodes (1 active, 2 standby)\n`, err: '', code: 0})
  })

  it('prints the errors and exits 2', async () => {
    const file = await fleet(VALID.replace('10.10.0.12', '10.0.0'))
    const r = await run(['--config', file])
    expect(r.out).toBe('')
    expect(r.code).toBe(2)
    expect(r.err.split('\n').slice(0, 2)).toEqual([`${file} is not valid (1 error):`, `${file}:8:29 web.nodes[1].address: "10.0.0" is not an IPv4 address`])
  })

  it('--json gives {valid, errors[]} and still exits 2', async () => {
    const file = await fleet(VALID.replace('10.10.0.12', '10.0.0'))
    const r = await run(['--config', file, '--json'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.out)).toEqual({
      valid: false,
      file,
      errors: [{file, line: 8, column: 29, path: 'web.nodes[1].address', message: '"10.0.0" is not an IPv4 address'}],
    })
    const good = await run(['--config', await fleet(VALID), '--json'])
    expect(good.code).toBe(0)
    expect(JSON.parse(good.out)).toMatchObject({valid: true, errors: [], hosts: {bastion: 1, web: 3, active: 1, standby: 2}})
  })

  it('refuses what a host would refuse (a duration past its maximum, a health path, a tls folder): exit 2, and loadInventory throws a ConfigError', async () => {
    const text = VALID.replace('web:\n', 'web:\n  timeout: 1000h\n  healthCheck: {path: /health?x}\n') + 'tls: {mode: files, cert: tls, key: tls}\n'
    const file = await fleet(text, {'tls/readme': ['', 0o644]})
    const d = path.dirname(file)
    const r = await run(['--config', file])
    expect(r.code).toBe(2)
    expect(r.err.split('\n').slice(0, 6)).toEqual([
      `${file} is not valid (4 errors):`,
      `${file}:6:12 web.timeout: "1000h" is too long (at most 1h)`,
      `${file}:7:23 web.healthCheck.path: "/health?x" is not a plain URL path ("/" then letters, digits and . _ ~ / - only, at most 128 characters, e.g. "/healthz")`,
      `${file}:12:26 tls.cert: "tls" is a folder, not a file (${d}/tls); name the file itself, not its folder`,
      `${file}:12:36 tls.key: "tls" is a folder, not a file (${d}/tls); name the file itself, not its folder`,
      '  → Fix the keys above; the reference of every key is in docs/INVENTORY.md.',
    ])
    const err = await errorOf(loadInventory(file))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    expect(err.message).toContain(`${file}:6:12 web.timeout: "1000h" is too long (at most 1h)`)
  })

  it('--skip-files leaves out the file checks', async () => {
    const file = await fleet(VALID.replace('domain: example.com\n', 'domain: example.com\nssh: {privateKey: gone}\n'))
    expect((await run(['--config', file])).code).toBe(2)
    expect((await run(['--config', file, '--skip-files'])).code).toBe(0)
  })
})
