import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadInventory, LoadedInventory} from '../../src/inventory/load.js'
import {UsageError} from '../../src/lib/errors.js'
import {fingerprint, formatEntry} from '../../src/ssh/known-hosts.js'
import {forgetHostPin, listHostPins} from '../../src/tasks/hosts.js'
import {hostPrefix, LinePrefixer} from '../../src/ui/stream.js'

describe('LinePrefixer', () => {
  it('prefixes whole lines and holds a partial line until flush', () => {
    let out = ''
    const p = new LinePrefixer(hostPrefix('web1', 7), (t) => (out += t))
    p.push('one\ntw')
    expect(out).toBe('web1    | one\n')
    p.push(Buffer.from('o\r\nthree'))
    expect(out).toBe('web1    | one\nweb1    | two\n')
    p.flush()
    expect(out).toBe('web1    | one\nweb1    | two\nweb1    | three\n')
    p.flush()
    expect(out).toBe('web1    | one\nweb1    | two\nweb1    | three\n')
  })

  it('keeps a multi-byte character split across chunks whole', () => {
    let out = ''
    const p = new LinePrefixer('h | ', (t) => (out += t))
    const bytes = Buffer.from('héllo\n')
    p.push(bytes.subarray(0, 2))
    p.push(bytes.subarray(2))
    expect(out).toBe('h | héllo\n')
  })
})

describe('hosts list / forget (known_hosts beside the inventory, no connection)', () => {
  let dir: string
  let loaded: LoadedInventory
  let keyA: Buffer
  let keyB: Buffer

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'infs-hosts-'))
    for (const k of ['a', 'b']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, k)])
    keyA = Buffer.from(readFileSync(path.join(dir, 'a.pub'), 'utf8').split(' ')[1], 'base64')
    keyB = Buffer.from(readFileSync(path.join(dir, 'b.pub'), 'utf8').split(' ')[1], 'base64')
    writeFileSync(
      path.join(dir, 'infra.yaml'),
      [
        'domain: example.com',
        'bastion: {publicAddress: 198.51.100.10, privateAddress: 10.42.0.1}',
        'web:',
        '  nodes:',
        '    - {name: web1, address: 10.42.0.11}',
        '    - {name: web2, address: 10.42.0.12, standby: true}',
        '',
      ].join('\n'),
    )
    loaded = await loadInventory(path.join(dir, 'infra.yaml'), {checkFiles: false})
    writeFileSync(
      loaded.knownHostsPath,
      [
        '# pins',
        formatEntry({names: ['bastion', '198.51.100.10'], port: 22}, keyA),
        formatEntry({names: ['web1', '10.42.0.11'], port: 22}, keyB),
        formatEntry({names: ['old9', '10.42.0.19'], port: 22}, keyB),
        '',
      ].join('\n'),
    )
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it('lists each host with its pinned fingerprint', async () => {
    const hosts = await listHostPins(loaded)
    expect(hosts.map((h) => [h.name, h.role, h.address, h.standby, h.fingerprint])).toEqual([
      ['bastion', 'bastion', '198.51.100.10', false, fingerprint(keyA)],
      ['web1', 'web', '10.42.0.11', false, fingerprint(keyB)],
      ['web2', 'web', '10.42.0.12', true, null],
    ])
    expect(hosts[1].pinned).toEqual([{keyType: 'ssh-ed25519', fingerprint: fingerprint(keyB), line: 3}])
  })

  it('forgets a host, keeps the rest of the file, and is a no-op the second time', async () => {
    const r = await forgetHostPin(loaded, 'web1')
    expect(r.removed).toEqual([{keyType: 'ssh-ed25519', fingerprint: fingerprint(keyB), line: 3}])
    const text = readFileSync(loaded.knownHostsPath, 'utf8')
    expect(text).toContain('# pins\n')
    expect(text).toContain('bastion,198.51.100.10 ')
    expect(text).not.toContain('web1')
    expect((await forgetHostPin(loaded, 'web1')).removed).toEqual([])
  })

  it('forgets a host that left the inventory but is still pinned', async () => {
    expect((await forgetHostPin(loaded, 'old9')).removed).toHaveLength(1)
  })

  it('an unknown name is a usage error (exit 2) naming the hosts', async () => {
    const err = await forgetHostPin(loaded, 'nope').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).exitCode).toBe(2)
    expect((err as UsageError).hint).toBe('Hosts of this inventory: bastion, web1, web2.')
  })
})
