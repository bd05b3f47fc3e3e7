import {execFileSync} from 'node:child_process'
import {createHmac, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  addEntry,
  findEntries,
  fingerprint,
  formatEntry,
  hostKeyAlgorithmsFor,
  hostPattern,
  hostsFieldMatches,
  keyTypeOf,
  parseKnownHosts,
  removeHost,
  verifyHostKey,
} from '../../src/ssh/known-hosts.js'
import {checkAndPin, forgetHost, identityOf, pinnedKeys} from '../../src/ssh/pins.js'

let dir: string
/** Real host keys made by ssh-keygen: their blobs, as a host presents them. */
const keys: Record<string, {blob: Buffer; pub: string; file: string}> = {}

function makeKey(name: string, type: string): void {
  const file = path.join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', '', '-f', file])
  const pub = readFileSync(file + '.pub', 'utf8').trim()
  keys[name] = {blob: Buffer.from(pub.split(' ')[1], 'base64'), pub, file}
}

function keygenFingerprint(pubFile: string): string {
  // "256 SHA256:abc... comment (ED25519)"
  return execFileSync('ssh-keygen', ['-lf', pubFile], {encoding: 'utf8'}).split(' ')[1]
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'infs-kh-'))
  makeKey('a', 'ed25519')
  makeKey('b', 'ed25519')
  makeKey('e', 'ecdsa')
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const web1 = {names: ['web1', '10.42.0.11'], port: 22}

describe('fingerprint and key type', () => {
  it('prints the fingerprint ssh-keygen -lf prints', () => {
    for (const k of ['a', 'e']) expect(fingerprint(keys[k].blob)).toBe(keygenFingerprint(keys[k].file + '.pub'))
    expect(fingerprint(keys.a.blob.toString('base64'))).toBe(fingerprint(keys.a.blob))
    expect(fingerprint(keys.a.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  it('reads the key type from the blob', () => {
    expect(keyTypeOf(keys.a.blob)).toBe('ssh-ed25519')
    expect(keyTypeOf(keys.e.blob)).toBe('ecdsa-sha2-nistp256')
    expect(() => keyTypeOf(Buffer.from('xx'))).toThrow(/not an SSH public key/)
  })
})

describe('parse', () => {
  it('finds entries and keeps every line, comments and markers included', () => {
    const text = [
      '# pinned by infra',
      '',
      `web1,10.42.0.11 ssh-ed25519 ${keys.a.blob.toString('base64')} a comment`,
      `@revoked * ssh-ed25519 ${keys.b.blob.toString('base64')}`,
      'garbage line',
      `@unknown-marker web2 ssh-ed25519 ${keys.b.blob.toString('base64')}`,
    ].join('\n')
    const f = parseKnownHosts(text + '\n')
    expect(f.lines).toHaveLength(6)
    expect(f.entries.map((e) => [e.line, e.hosts, e.marker])).toEqual([
      [3, 'web1,10.42.0.11', undefined],
      [4, '*', '@revoked'],
    ])
    expect(f.entries[0].comment).toBe('a comment')
  })
})

describe('host patterns', () => {
  it('uses [host]:port when the port is not 22', () => {
    expect(hostPattern('web1', 22)).toBe('web1')
    expect(hostPattern('10.42.0.11', 2222)).toBe('[10.42.0.11]:2222')
  })

  it('matches wildcards and honours negation', () => {
    expect(hostsFieldMatches('web*', 'web1')).toBe(true)
    expect(hostsFieldMatches('10.42.0.?', '10.42.0.1')).toBe(true)
    expect(hostsFieldMatches('10.42.0.?', '10.42.0.11')).toBe(false)
    expect(hostsFieldMatches('web*,!web2', 'web2')).toBe(false)
    expect(hostsFieldMatches('web*,!web2', 'web3')).toBe(true)
    expect(hostsFieldMatches('10.42.0.1', '10x42x0x1')).toBe(false)
  })

  it('matches hashed names (|1|salt|hmac)', () => {
    const salt = randomBytes(20)
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.42.0.11]:2222').digest('base64')}`
    expect(hostsFieldMatches(hashed, '[10.42.0.11]:2222')).toBe(true)
    expect(hostsFieldMatches(hashed, '10.42.0.11')).toBe(false)
  })
})

describe('verify', () => {
  it('first use: a host with no entry is new; once added it matches', () => {
    const empty = parseKnownHosts('')
    const r = verifyHostKey(empty, web1, keys.a.blob)
    expect(r).toEqual({status: 'new', keyType: 'ssh-ed25519', fingerprint: fingerprint(keys.a.blob)})
    const text = addEntry('', web1, keys.a.blob)
    expect(text).toBe(`web1,10.42.0.11 ssh-ed25519 ${keys.a.blob.toString('base64')}\n`)
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.a.blob).status).toBe('match')
  })

  it('matches by address alone and by name alone', () => {
    const byAddr = addEntry('', {names: ['10.42.0.11'], port: 22}, keys.a.blob)
    const byName = addEntry('', {names: ['web1'], port: 22}, keys.a.blob)
    expect(verifyHostKey(parseKnownHosts(byAddr), web1, keys.a.blob).status).toBe('match')
    expect(verifyHostKey(parseKnownHosts(byName), web1, keys.a.blob).status).toBe('match')
  })

  it('a changed key is a mismatch naming the pinned and presented fingerprints', () => {
    const text = '# keep me\n' + addEntry('', web1, keys.a.blob)
    const r = verifyHostKey(parseKnownHosts(text), web1, keys.b.blob)
    expect(r).toEqual({
      status: 'mismatch',
      keyType: 'ssh-ed25519',
      fingerprint: fingerprint(keys.b.blob),
      pinned: [{keyType: 'ssh-ed25519', fingerprint: fingerprint(keys.a.blob), line: 2}],
    })
  })

  it('a key of another type than the pinned one is a mismatch too', () => {
    const text = addEntry('', web1, keys.a.blob)
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.e.blob).status).toBe('mismatch')
  })

  it('another host’s entry does not count', () => {
    const text = addEntry('', {names: ['web2', '10.42.0.12'], port: 22}, keys.a.blob)
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.b.blob).status).toBe('new')
  })

  it('the port is part of the identity', () => {
    const text = addEntry('', {...web1, port: 2222}, keys.a.blob)
    expect(text.startsWith('[web1]:2222,[10.42.0.11]:2222 ssh-ed25519 ')).toBe(true)
    expect(verifyHostKey(parseKnownHosts(text), {...web1, port: 2222}, keys.a.blob).status).toBe('match')
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.b.blob).status).toBe('new')
  })

  it('hashed entries written by ssh-keygen -H are matched', () => {
    const file = path.join(dir, 'hashed')
    writeFileSync(file, addEntry('', web1, keys.a.blob))
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], {stdio: 'pipe'})
    const text = readFileSync(file, 'utf8')
    expect(text).toMatch(/^\|1\|/m)
    expect(text).not.toContain('web1')
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.a.blob).status).toBe('match')
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.b.blob).status).toBe('mismatch')
    expect(removeHost(text, web1).removed).toHaveLength(2) // -H writes one hashed line per name
  })

  it('a key marked @revoked is refused', () => {
    const text = addEntry('', web1, keys.a.blob) + `@revoked * ${keys.a.pub}\n`
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.a.blob).status).toBe('revoked')
  })
})

describe('remove', () => {
  it('removes every line naming the host and keeps comments and other hosts', () => {
    const text = [
      '# infra known_hosts',
      formatEntry(web1, keys.a.blob),
      '# web2 below',
      formatEntry({names: ['web2', '10.42.0.12'], port: 22}, keys.b.blob),
      formatEntry({names: ['10.42.0.11'], port: 22}, keys.e.blob),
      '',
    ].join('\n')
    const r = removeHost(text, web1)
    expect(r.removed.map((e) => e.line)).toEqual([2, 5])
    expect(r.text).toBe(['# infra known_hosts', '# web2 below', formatEntry({names: ['web2', '10.42.0.12'], port: 22}, keys.b.blob), ''].join('\n'))
    expect(removeHost(r.text, web1)).toEqual({text: r.text, removed: []})
  })

  it('add keeps existing text and adds a newline where one is missing', () => {
    expect(addEntry('# c', web1, keys.a.blob)).toBe(`# c\n${formatEntry(web1, keys.a.blob)}\n`)
  })
})

describe('OpenSSH reads what we write', () => {
  it('ssh-keygen -F finds the host by name and by address; -lf prints our fingerprints', () => {
    const file = path.join(dir, 'kh-openssh')
    let text = '# pinned by infra\n'
    text = addEntry(text, web1, keys.a.blob)
    text = addEntry(text, {names: ['web2', '10.42.0.12'], port: 2222}, keys.e.blob)
    writeFileSync(file, text)
    const byName = execFileSync('ssh-keygen', ['-F', 'web1', '-f', file], {encoding: 'utf8'})
    expect(byName).toContain(keys.a.blob.toString('base64'))
    const byAddr = execFileSync('ssh-keygen', ['-F', '[10.42.0.12]:2222', '-f', file], {encoding: 'utf8'})
    expect(byAddr).toContain(keys.e.blob.toString('base64'))
    const listed = execFileSync('ssh-keygen', ['-lf', file], {encoding: 'utf8'})
    expect(listed).toContain(fingerprint(keys.a.blob))
    expect(listed).toContain(fingerprint(keys.e.blob))
  })
})

describe('known_hosts file', () => {
  it('pins on first use, then matches, then refuses a changed key; forget removes the pin', async () => {
    const file = path.join(dir, 'kh-file')
    writeFileSync(file, '# my comment\n')
    const id = identityOf({name: 'web1', address: '10.42.0.11'}, 22)
    expect((await checkAndPin(file, id, keys.a.blob)).status).toBe('new')
    expect(readFileSync(file, 'utf8')).toBe(`# my comment\n${formatEntry(web1, keys.a.blob)}\n`)
    expect((await checkAndPin(file, id, keys.a.blob)).status).toBe('match')
    expect((await checkAndPin(file, id, keys.b.blob)).status).toBe('mismatch')
    expect(pinnedKeys(readFileSync(file, 'utf8'), id)).toEqual([{keyType: 'ssh-ed25519', fingerprint: fingerprint(keys.a.blob), line: 2}])
    expect(await forgetHost(file, id)).toHaveLength(1)
    expect(readFileSync(file, 'utf8')).toBe('# my comment\n')
    expect((await checkAndPin(file, id, keys.b.blob)).status).toBe('new')
  })

  it('hosts pinned in parallel all end up in the file', async () => {
    const file = path.join(dir, 'kh-parallel')
    const ids = Array.from({length: 8}, (_, i) => identityOf({name: `web${i}`, address: `10.42.0.${i + 11}`}, 22))
    const results = await Promise.all(ids.map((id) => checkAndPin(file, id, keys.a.blob)))
    expect(results.every((r) => r.status === 'new')).toBe(true)
    const f = parseKnownHosts(readFileSync(file, 'utf8'))
    expect(f.entries).toHaveLength(8)
    for (const id of ids) expect(findEntries(f, id)).toHaveLength(1)
  })
})

describe('host key algorithms', () => {
  it('offers pinned types first', () => {
    expect(hostKeyAlgorithmsFor([])[0]).toBe('ssh-ed25519')
    const algos = hostKeyAlgorithmsFor(['ssh-rsa'])
    expect(algos.slice(0, 2)).toEqual(['rsa-sha2-512', 'rsa-sha2-256'])
    expect(algos).toContain('ssh-ed25519')
    expect(new Set(algos).size).toBe(algos.length)
    expect(algos).not.toContain('ssh-rsa') // SHA-1 signatures are never offered
  })
})
