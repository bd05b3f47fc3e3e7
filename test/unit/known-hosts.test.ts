import {execFileSync} from 'node:child_process'
import {createHmac, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  addEntry,
  addPending,
  findEntries,
  findPending,
  fingerprint,
  formatEntry,
  formatPending,
  hostKeyAlgorithmsFor,
  hostPattern,
  hostsFieldMatches,
  keyTypeOf,
  parseKnownHosts,
  pinKey,
  removeHost,
  verifyHostKey,
} from '../../src/ssh/known-hosts.js'
import {checkAndPin, forgetHost, forgetHostAll, identityOf, pendingFingerprints, pinAnnouncedKey, pinnedKeys, trustHost} from '../../src/ssh/pins.js'

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

describe('expected keys: ssh.hostKeys and pending pins (infra hosts trust)', () => {
  it('ssh.hostKeys: a listed key is pinned as expected on first contact; an unlisted one is refused, first contact or not', () => {
    const a = fingerprint(keys.a.blob)
    const listed = [fingerprint(keys.e.blob), a]
    expect(verifyHostKey(parseKnownHosts(''), web1, keys.a.blob, listed)).toEqual({status: 'expected', keyType: 'ssh-ed25519', fingerprint: a, by: 'inventory'})
    expect(verifyHostKey(parseKnownHosts(''), web1, keys.b.blob, listed)).toEqual({
      status: 'unexpected',
      keyType: 'ssh-ed25519',
      fingerprint: fingerprint(keys.b.blob),
      listed,
      pending: [],
    })
    // Pinned already: the list still has the last word (a pin made before the list was written is checked too).
    const pinned = addEntry('', web1, keys.b.blob)
    expect(verifyHostKey(parseKnownHosts(pinned), web1, keys.b.blob, listed).status).toBe('unexpected')
    expect(verifyHostKey(parseKnownHosts(addEntry('', web1, keys.a.blob)), web1, keys.a.blob, listed).status).toBe('match')
    // No list: trust on first use, as before.
    expect(verifyHostKey(parseKnownHosts(''), web1, keys.b.blob, []).status).toBe('new')
  })

  it('a pending pin is a comment line OpenSSH ignores, naming the host as an entry would', () => {
    const fp = fingerprint(keys.a.blob)
    const line = formatPending({...web1, port: 2222}, fp)
    expect(line).toBe(`#infra-trust [web1]:2222,[10.42.0.11]:2222 ${fp} (infra hosts trust: the first connection must present this key)`)
    expect(() => formatPending(web1, 'SHA256:short')).toThrow(/not a SHA256 fingerprint/)
    const text = addPending('# mine\n', web1, fp)
    expect(addPending(text, web1, fp)).toBe(text) // once per fingerprint
    const f = parseKnownHosts(text)
    expect(f.entries).toEqual([])
    expect(findPending(f, web1)).toEqual([{line: 2, hosts: 'web1,10.42.0.11', fingerprint: fp}])
    expect(findPending(f, {names: ['web2', '10.42.0.12'], port: 22})).toEqual([])
    // ssh-keygen lists no key from it, and `ssh-keygen -R` of another host keeps it.
    const file = path.join(dir, 'kh-pending')
    writeFileSync(file, addEntry(text, {names: ['web2'], port: 22}, keys.b.blob))
    expect(execFileSync('ssh-keygen', ['-lf', file], {encoding: 'utf8'}).trim().split('\n')).toHaveLength(1)
    execFileSync('ssh-keygen', ['-R', 'web2', '-f', file], {stdio: 'pipe'})
    expect(readFileSync(file, 'utf8')).toBe(text)
  })

  it('first contact with a pending pin: the matching key is expected, any other refused; pinning replaces the line by the full key', () => {
    const text = addPending('# mine\n', web1, fingerprint(keys.a.blob))
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.a.blob)).toEqual({status: 'expected', keyType: 'ssh-ed25519', fingerprint: fingerprint(keys.a.blob), by: 'pending'})
    const other = verifyHostKey(parseKnownHosts(text), web1, keys.b.blob)
    expect(other).toMatchObject({status: 'unexpected', fingerprint: fingerprint(keys.b.blob), listed: [], pending: [{line: 2, fingerprint: fingerprint(keys.a.blob)}]})
    // Both a list and a pending pin: the key must satisfy both.
    expect(verifyHostKey(parseKnownHosts(text), web1, keys.a.blob, [fingerprint(keys.b.blob)]).status).toBe('unexpected')
    const pinned = pinKey(text, web1, keys.a.blob)
    expect(pinned).toBe(`# mine\n${formatEntry(web1, keys.a.blob)}\n`)
    expect(verifyHostKey(parseKnownHosts(pinned), web1, keys.a.blob).status).toBe('match')
  })

  it('trustHost writes pending pins, only compares a host already pinned, and forget removes both kinds', async () => {
    const file = path.join(dir, 'kh-trust')
    const id = identityOf({name: 'web1', address: '10.42.0.11'}, 22)
    const a = fingerprint(keys.a.blob)
    const e = fingerprint(keys.e.blob)
    expect(await trustHost(file, id, [a, e])).toEqual({status: 'pending', added: [a, e], pending: [a, e]})
    expect(await trustHost(file, id, [a])).toEqual({status: 'pending', added: [], pending: [a, e]})
    expect(pendingFingerprints(readFileSync(file, 'utf8'), id)).toEqual([a, e])
    // The first contact presents one of them: pinned, and every pending line of the host is gone.
    expect((await checkAndPin(file, id, keys.e.blob)).status).toBe('expected')
    expect(readFileSync(file, 'utf8')).toBe(`${formatEntry(web1, keys.e.blob)}\n`)
    expect(await trustHost(file, id, [e])).toMatchObject({status: 'pinned'})
    const conflict = await trustHost(file, id, [a])
    expect(conflict).toEqual({status: 'conflict', pinned: [{keyType: 'ecdsa-sha2-nistp256', fingerprint: e, line: 1}]})
    expect(readFileSync(file, 'utf8')).toBe(`${formatEntry(web1, keys.e.blob)}\n`) // nothing written
    await forgetHost(file, id)
    await trustHost(file, id, [a])
    expect(await forgetHostAll(file, id)).toMatchObject({entries: [], pending: [{fingerprint: a}]})
    expect(readFileSync(file, 'utf8')).toBe('')
  })

  it('a key the host announced is pinned next to a pin of another type only, and never against ssh.hostKeys', async () => {
    const file = path.join(dir, 'kh-announced')
    const id = identityOf({name: 'web1', address: '10.42.0.11'}, 22)
    // Nothing pinned yet: not this function's job (the first contact pins).
    expect(await pinAnnouncedKey(file, id, keys.a.blob)).toBe(false)
    writeFileSync(file, addEntry('', web1, keys.e.blob))
    expect(await pinAnnouncedKey(file, id, keys.a.blob, [fingerprint(keys.e.blob)])).toBe(false) // not listed
    expect(await pinAnnouncedKey(file, id, keys.a.blob)).toBe(true)
    expect(await pinAnnouncedKey(file, id, keys.b.blob)).toBe(false) // an Ed25519 key is pinned now
    expect(pinnedKeys(readFileSync(file, 'utf8'), id).map((k) => k.keyType)).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519'])
    expect(hostKeyAlgorithmsFor(['ecdsa-sha2-nistp256', 'ssh-ed25519'])[0]).toBe('ssh-ed25519')
  })
})

describe('host key algorithms', () => {
  it('among pinned types, asks for Ed25519 first, then RSA, then ECDSA (whatever the file order)', () => {
    expect(hostKeyAlgorithmsFor(['ssh-rsa', 'ssh-ed25519']).slice(0, 3)).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'])
    expect(hostKeyAlgorithmsFor(['ecdsa-sha2-nistp256', 'ssh-rsa']).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ecdsa-sha2-nistp256'])
    expect(hostKeyAlgorithmsFor([])).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'])
  })

  it('offers pinned types first', () => {
    expect(hostKeyAlgorithmsFor([])[0]).toBe('ssh-ed25519')
    const algos = hostKeyAlgorithmsFor(['ssh-rsa'])
    expect(algos.slice(0, 2)).toEqual(['rsa-sha2-512', 'rsa-sha2-256'])
    expect(algos).toContain('ssh-ed25519')
    expect(new Set(algos).size).toBe(algos.length)
    expect(algos).not.toContain('ssh-rsa') // SHA-1 signatures are never offered
  })
})
