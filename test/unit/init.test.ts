import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {answersFromInput, inventoryPath, parseWebFlag} from '../../src/init/answers.js'
import {renderInventory} from '../../src/init/render.js'
import {fingerprintOf} from '../../src/init/ssh-key.js'
import {suggestAddress} from '../../src/init/wizard.js'
import {loadInventory} from '../../src/inventory/load.js'
import {TSX, writeInitRunner} from './command-helpers.js'

/**
 * `infra init` run as a user runs it: the command in a child process (stdin not a terminal), in a
 * temporary folder, checked with ssh-keygen and openssl.
 */

let tmp: string
let runner: string

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'infra-init-'))
  runner = writeInitRunner(tmp)
})
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

function newDir(name: string): string {
  const d = path.join(tmp, name)
  mkdirSync(d, {recursive: true})
  return d
}

/** Run `infra init ARGS` in `cwd` with stdin not a terminal and CI unset (unless env sets it). */
async function init(cwd: string, args: string[], env: Record<string, string> = {}) {
  const base = {...process.env}
  delete base.CI
  delete base.NODE_ENV // vitest sets "test", which puts oclif in development mode
  for (const k of Object.keys(base)) if (k.startsWith('INFRA_')) delete base[k]
  const r = await execa(process.execPath, ['--import', TSX, runner, ...args], {
    cwd,
    env: {...base, ...env},
    extendEnv: false,
    stdin: 'ignore',
    reject: false,
  })
  return {code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr)}
}

const FLEET = ['--domain', 'example.com', '--alias', 'www.example.com', '--bastion-public', '203.0.113.10', '--bastion-private', '10.0.0.1']
const WEB = ['--web', 'web1=10.0.0.11', '--web', 'web2=10.0.0.12:standby']
const DAY = 86_400_000
const mode = (p: string) => statSync(p).mode & 0o777

describe('infra init without a terminal', {timeout: 60_000}, () => {
  it('writes a valid inventory, a 0600 ed25519 key and a SHA-256 self-signed certificate for domain + aliases', async () => {
    const dir = newDir('full')
    const r = await init(dir, [...FLEET, ...WEB, '--tls-days', '90'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)

    // The inventory: schema comment first, loads with the project's loader, only the values given.
    const yaml = readFileSync(path.join(dir, 'infra.yaml'), 'utf8')
    expect(yaml.split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=\S+infra\.schema\.json$/)
    const loaded = await loadInventory(path.join(dir, 'infra.yaml'))
    expect(loaded.inventory.domain).toBe('example.com')
    expect(loaded.inventory.aliases).toEqual(['www.example.com'])
    expect(loaded.inventory.bastion).toMatchObject({publicAddress: '203.0.113.10', privateAddress: '10.0.0.1'})
    expect(loaded.inventory.web.nodes).toEqual([
      {name: 'web1', address: '10.0.0.11', standby: false},
      {name: 'web2', address: '10.0.0.12', standby: true},
    ])
    expect(loaded.inventory.ssh).toMatchObject({user: 'root', port: 22, privateKey: '.infra/id_ed25519'})
    expect(loaded.inventory.tls).toEqual({mode: 'self-signed', days: 90})
    expect(yaml).not.toMatch(/^\s*(user|port): /m)

    // The operator key: ed25519, 0600, .pub beside it, readable by ssh-keygen.
    const key = path.join(dir, '.infra/id_ed25519')
    expect(mode(key)).toBe(0o600)
    expect(execFileSync('ssh-keygen', ['-lf', key], {encoding: 'utf8'})).toMatch(/^256 SHA256:\S+ infra-operator \(ED25519\)/)
    const pub = readFileSync(`${key}.pub`, 'utf8').trim()
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/)
    expect(r.stdout).toContain(pub)
    // Private keys stay out of git: both folders made for them ignore them.
    expect(readFileSync(path.join(dir, '.infra/.gitignore'), 'utf8')).toMatch(/^\*$/m)
    expect(readFileSync(path.join(dir, 'tls/.gitignore'), 'utf8')).toMatch(/^\*\.key$/m)
    expect(r.stdout).toContain('/root/.ssh/authorized_keys')
    expect(r.stdout).toMatch(/Next: infra provision --dry-run/)

    // The certificate, as openssl sees it.
    const cert = path.join(dir, 'tls/example.com.crt')
    const certKey = path.join(dir, 'tls/example.com.key')
    expect(mode(certKey)).toBe(0o600)
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', cert], {encoding: 'utf8'})
    expect(text).toMatch(/DNS:example\.com, DNS:www\.example\.com/)
    expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/)
    const bits = Number(/Public-Key: \((\d+) bit\)/.exec(text)?.[1])
    expect(bits).toBeGreaterThanOrEqual(2048)
    const end = new Date(execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', cert], {encoding: 'utf8'}).trim().replace('notAfter=', ''))
    expect(Math.abs(end.getTime() - (Date.now() + 90 * DAY))).toBeLessThan(120_000)
    expect(r.stdout).toContain(`valid until ${end.toISOString().slice(0, 10)}`)
    // The private keys are never printed.
    expect(r.stdout + r.stderr).not.toMatch(/PRIVATE KEY/)
  })

  it('prints {config, key, publicKey, cert, notAfter} with --json', async () => {
    const dir = newDir('json')
    const r = await init(dir, [...FLEET, '--web', 'web1=10.0.0.11', '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(Object.keys(out).sort()).toEqual(['cert', 'config', 'key', 'notAfter', 'publicKey'])
    expect(out.config).toBe(path.join(dir, 'infra.yaml'))
    expect(out.key).toBe(path.join(dir, '.infra/id_ed25519'))
    expect(out.publicKey).toBe(readFileSync(path.join(dir, '.infra/id_ed25519.pub'), 'utf8').trim())
    expect(out.cert).toBe(path.join(dir, 'tls/example.com.crt'))
    expect(Math.abs(new Date(out.notAfter).getTime() - (Date.now() + 365 * DAY))).toBeLessThan(120_000)
  })

  it('fails with exit 2 naming every missing flag, and writes nothing', async () => {
    const dir = newDir('missing')
    const r = await init(dir, ['--bastion-public', '203.0.113.10', '--bastion-private', '10.0.0.1', '--web', 'web1=10.0.0.11'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Missing --domain (required without a terminal; pass it or run infra init in a terminal)')
    expect(readdirSync(dir)).toEqual([])

    const ci = await init(dir, ['--domain', 'example.com'], {CI: 'true'})
    expect(ci.code).toBe(2)
    expect(ci.stderr).toContain('Missing --bastion-public, --bastion-private, --web (required when CI is set')
    expect(readdirSync(dir)).toEqual([])
  })

  it('names the flag of a bad value (exit 2, nothing written)', async () => {
    const dir = newDir('bad')
    const cases: [string[], RegExp][] = [
      [['--web', 'web1'], /--web "web1": expected NAME=ADDRESS\[:standby\]/],
      [['--web', 'web1=10.0.0.300'], /--web "web1=10.0.0.300": "10\.0\.0\.300" is not an IPv4 address/],
      [['--web', 'web1=10.0.0.11:spare'], /--web "web1=10\.0\.0\.11:spare": unknown suffix ":spare"/],
      [['--web', 'web1=10.0.1.11'], /--web "web1=10\.0\.1\.11": "10\.0\.1\.11" is outside the private network 10\.0\.0\.0\/24/],
      [['--web', 'web1=10.0.0.11', '--web', 'web1=10.0.0.12'], /--web "web1=10\.0\.0\.12": "web1" is already used/],
      [['--web', 'web1=10.0.0.11', '--tls', 'files'], /Missing --tls-cert, --tls-key/],
      [['--web', 'web1=10.0.0.11', '--ssh-port', '70000'], /--ssh-port: 70000 is not a port number from 1 to 65535/],
      [['--web', 'web1=10.0.0.11', '--ssh-port', '443'], /--ssh-port: 443 is taken by HAProxy/],
      [['--web', 'web1=10.0.0.11', '--tls-days', 'soon'], /--tls-days: "soon" is not a whole number of days/],
    ]
    const results = await Promise.all(cases.map(([extra]) => init(dir, [...FLEET, ...extra])))
    for (const [i, [extra, re]] of cases.entries()) {
      expect(results[i].stderr, extra.join(' ')).toMatch(re)
      expect(results[i].code, extra.join(' ')).toBe(2)
    }
    const domain = await init(dir, ['--domain', 'exa mple.com', ...FLEET.slice(2), '--web', 'web1=10.0.0.11'])
    expect(domain.stderr).toMatch(/--domain: "exa mple\.com" is not a domain name/)
    expect(domain.code).toBe(2)
    expect(readdirSync(dir)).toEqual([])
  })

  it('refuses to overwrite an inventory without --force; with --force keeps the existing key and certificate', async () => {
    const dir = newDir('force')
    writeFileSync(path.join(dir, 'infra.yaml'), 'domain: old.example\n')
    const refused = await init(dir, [...FLEET, ...WEB])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/infra\.yaml already exists/)
    expect(refused.stderr).toMatch(/--force/)
    expect(readFileSync(path.join(dir, 'infra.yaml'), 'utf8')).toBe('domain: old.example\n')
    expect(readdirSync(dir)).toEqual(['infra.yaml'])

    const first = await init(dir, [...FLEET, ...WEB, '--force'])
    expect(first.code).toBe(0)
    const pub = readFileSync(path.join(dir, '.infra/id_ed25519.pub'), 'utf8')
    const cert = readFileSync(path.join(dir, 'tls/example.com.crt'), 'utf8')
    expect(first.stdout).toMatch(/Created operator key/)

    const second = await init(dir, [...FLEET, ...WEB, '--force', '--alias', 'shop.example.com'])
    expect(second.code).toBe(0)
    expect(second.stdout).toMatch(/Using operator key \.infra\/id_ed25519/)
    expect(readFileSync(path.join(dir, '.infra/id_ed25519.pub'), 'utf8')).toBe(pub)
    // The new alias is not covered by the old certificate: a new one is made.
    expect(second.stdout).toMatch(/no longer covers shop\.example\.com/)
    expect(readFileSync(path.join(dir, 'tls/example.com.crt'), 'utf8')).not.toBe(cert)

    const third = await init(dir, [...FLEET, ...WEB, '--force', '--alias', 'shop.example.com'])
    expect(third.stdout).toMatch(/Kept self-signed certificate tls\/example\.com\.crt/)
  })

  it('takes every value from the environment (INFRA_*), lists comma-separated', async () => {
    const dir = newDir('env')
    const r = await init(dir, [], {
      INFRA_DOMAIN: 'example.net',
      INFRA_ALIASES: 'www.example.net,api.example.net',
      INFRA_SSH_USER: 'deploy',
      INFRA_SSH_PORT: '2222',
      INFRA_BASTION_PUBLIC: '198.51.100.7',
      INFRA_BASTION_PRIVATE: '192.168.10.1',
      INFRA_WEB: 'app1=192.168.10.21,app2=192.168.10.22:standby',
      INFRA_CONFIG: 'fleet/infra.yaml',
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const inv = (await loadInventory(path.join(dir, 'fleet/infra.yaml'))).inventory
    expect(inv.aliases).toEqual(['www.example.net', 'api.example.net'])
    expect(inv.ssh).toMatchObject({user: 'deploy', port: 2222, privateKey: '.infra/id_ed25519'})
    expect(inv.web.nodes.map((n) => `${n.name}:${n.standby}`)).toEqual(['app1:false', 'app2:true'])
    expect(existsSync(path.join(dir, 'fleet/.infra/id_ed25519'))).toBe(true)
    expect(existsSync(path.join(dir, 'fleet/tls/example.net.crt'))).toBe(true)
    expect(r.stdout).toContain('~deploy/.ssh/authorized_keys')
    expect(r.stdout).toContain('Next: infra provision --dry-run -c fleet/infra.yaml')
  })

  it('uses your own certificate and key (--tls files) and an existing SSH key, writing paths relative to the inventory', async () => {
    const dir = newDir('files')
    const certs = path.join(dir, 'certs')
    mkdirSync(certs)
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=example.com', '-addext', 'subjectAltName=DNS:example.com,DNS:www.example.com', '-keyout', path.join(certs, 'privkey.pem'), '-out', path.join(certs, 'fullchain.pem'), '-days', '60'], {stdio: 'ignore'})
    chmodSync(path.join(certs, 'privkey.pem'), 0o600)
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mine', '-f', path.join(dir, 'mykey')])
    const fp = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'mykey')], {encoding: 'utf8'}).split(' ')[1]

    const r = await init(dir, [...FLEET, ...WEB, '--tls', 'files', '--tls-cert', 'certs/fullchain.pem', '--tls-key', 'certs/privkey.pem', '--ssh-key', 'mykey'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const inv = (await loadInventory(path.join(dir, 'infra.yaml'))).inventory
    expect(inv.tls).toEqual({mode: 'files', cert: 'certs/fullchain.pem', key: 'certs/privkey.pem'})
    expect(inv.ssh.privateKey).toBe('mykey')
    expect(existsSync(path.join(dir, 'tls'))).toBe(false)
    expect(r.stdout).toContain(`Using operator key mykey (ssh-ed25519, ${fp})`)

    // A key that is not the certificate's: exit 2 naming --tls-key, nothing written.
    const other = newDir('files-bad')
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path.join(other, 'wrong.pem')], {stdio: 'ignore'})
    chmodSync(path.join(other, 'wrong.pem'), 0o600)
    const bad = await init(other, [...FLEET, ...WEB, '--tls-cert', path.join(certs, 'fullchain.pem'), '--tls-key', 'wrong.pem'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--tls-key: .*wrong\.pem: the private key does not belong to the certificate/)
    expect(readdirSync(other)).toEqual(['wrong.pem'])
  })
})

describe('init pieces', () => {
  it('parses --web values', () => {
    expect(parseWebFlag('web1=10.0.0.11')).toEqual({name: 'web1', address: '10.0.0.11', standby: false})
    expect(parseWebFlag(' web-2=10.0.0.12:standby ')).toEqual({name: 'web-2', address: '10.0.0.12', standby: true})
    expect(() => parseWebFlag('Web1=10.0.0.11')).toThrow(/--web "Web1=10.0.0.11": "Web1" is not a host name/)
    expect(() => parseWebFlag('=10.0.0.11')).toThrow(/expected NAME=ADDRESS/)
  })

  it('says why nothing is asked when a value is missing', () => {
    expect(() => answersFromInput({}, '/x', 'yes')).toThrow('Missing --domain, --bastion-public, --bastion-private, --web (required with --yes; pass them, or drop --yes to be asked)')
    expect(() => answersFromInput({domain: 'example.com', bastionPublic: '203.0.113.1', bastionPrivate: '10.0.0.1', web: ['a=10.0.0.2']}, '/x', 'json')).not.toThrow()
  })

  it('writes paths relative to the inventory, ~/ in the home folder, else absolute', () => {
    expect(inventoryPath('/srv/fleet', '/srv/fleet/.infra/id_ed25519', '/home/me')).toBe('.infra/id_ed25519')
    expect(inventoryPath('/srv/fleet', '/home/me/.ssh/id_ed25519', '/home/me')).toBe('~/.ssh/id_ed25519')
    expect(inventoryPath('/srv/fleet', '/etc/keys/k', '/home/me')).toBe('/etc/keys/k')
  })

  it('renders only what differs from the defaults, quoting when YAML needs it', () => {
    const text = renderInventory(
      {
        domain: 'example.com',
        aliases: [],
        sshUser: 'root',
        sshPort: 22,
        sshKey: '/srv/fleet/keys/op #1',
        bastionPublic: '203.0.113.10',
        bastionPrivate: '10.0.0.1',
        web: [{name: 'web1', address: '10.0.0.11', standby: false}],
        tls: {mode: 'self-signed', days: 365},
      },
      {dir: '/srv/fleet', schemaComment: '# schema'},
    )
    expect(text).not.toMatch(/^aliases:|^\s+user:|^\s+port:|^tls:|standby/m)
    expect(text).toMatch(/^ {2}privateKey: "?keys\/op #1"?$/m)
    expect(text).toMatch(/^# {3}mode: files$/m)
  })

  it('suggests the next free address in the bastion /24', () => {
    expect(suggestAddress('10.0.0.1', [])).toBe('10.0.0.11')
    expect(suggestAddress('10.0.0.1', ['10.0.0.11', '10.0.0.12'])).toBe('10.0.0.13')
  })

  it('computes the fingerprint ssh-keygen prints', () => {
    const dir = newDir('fp')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')])
    const expected = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'k.pub')], {encoding: 'utf8'}).split(' ')[1]
    expect(fingerprintOf(readFileSync(path.join(dir, 'k.pub'), 'utf8'))).toBe(expected)
  })
})
