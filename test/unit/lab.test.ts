/** The lab's pure parts: topology, address checks, mirror discovery, inventory, cgroups, image key. */
import {mkdtempSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {currentPath, parseHierarchies} from '../../src/lab/cgroups.js'
import {imageKey} from '../../src/lab/image.js'
import {isLabInventory, LAB_MARKER, renderLabInventory} from '../../src/lab/inventory.js'
import {parseDeb822, parseOneLine, pickMirror, readMirror} from '../../src/lab/mirror.js'
import {mountsUnder} from '../../src/lab/mounts.js'
import {aptInstall, missingPackages} from '../../src/lab/prereq.js'
import {overlaps, planLab, rangeCollisions, switchPort} from '../../src/lab/topology.js'
import {labImagePackages} from '../../src/roles/packages.js'
import {labRank} from '../lab/sequencer.js'

describe('planLab', () => {
  it('plans a bastion, active then standby web nodes, and every namespace with the lab prefix', () => {
    const p = planLab(2, 1)
    expect(p.hosts.map((h) => [h.name, h.role, h.netns, h.publicAddress ?? null, h.privateAddress, h.standby])).toEqual([
      ['bastion', 'bastion', 'infl-bastion', '198.51.100.10', '10.42.0.1', false],
      ['web1', 'web', 'infl-web1', null, '10.42.0.11', false],
      ['web2', 'web', 'infl-web2', null, '10.42.0.12', false],
      ['web3', 'web', 'infl-web3', null, '10.42.0.13', true],
    ])
    expect(p.namespaces).toEqual(['infl-bastion', 'infl-web1', 'infl-web2', 'infl-web3', 'infl-sw', 'infl-inet'])
    expect(p.namespaces.every((n) => n.startsWith('infl-') && n.length <= 15)).toBe(true)
    expect(switchPort(p.hosts[3])).toBe('p-web3')
  })

  it('rejects impossible counts', () => {
    expect(() => planLab(0, 1)).toThrow(/--web/)
    expect(() => planLab(1, -1)).toThrow(/--standby/)
    expect(() => planLab(30, 20)).toThrow(/at most/)
    expect(() => planLab(1.5, 0)).toThrow(/whole number/)
  })
})

describe('rangeCollisions', () => {
  it('finds a machine route inside a lab range, and ignores default routes, IPv6 and the lab link', () => {
    expect(overlaps('198.51.100.0/24', '198.51.0.0/16')).toBe(true)
    expect(overlaps('198.51.100.0/24', '198.51.101.0/24')).toBe(false)
    expect(overlaps('10.42.0.0/24', '10.42.0.7')).toBe(true)
    // This machine's real uplink is on 192.0.2.0/24, which is why the lab's public side is not.
    const machine = [
      {dst: 'default', gateway: '192.0.2.1', dev: 'eth0'},
      {dst: '192.0.2.0/24', dev: 'eth0'},
      {dst: '198.51.100.0/24', dev: 'infl-pub0'},
      {dst: 'fd00::/64', dev: 'eth0'},
    ]
    expect(rangeCollisions(machine)).toEqual([])
    const clash = rangeCollisions([...machine, {dst: '10.0.0.0/8', dev: 'ens5'}])
    expect(clash.map((c) => [c.range, c.route.dst])).toEqual([['10.42.0.0/24', '10.0.0.0/8']])
  })
})

describe('debootstrap mirror from the apt sources', () => {
  const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`

  it('reads deb822 and one-line sources', () => {
    const s = parseDeb822(deb822, 'debian.sources')
    expect(s.map((x) => [x.uri, x.suites])).toEqual([
      ['http://mirror.example/debian', ['bookworm', 'bookworm-updates']],
      ['http://mirror.example/debian-security', ['bookworm-security']],
    ])
    expect(s[0].signedBy).toBe('/usr/share/keyrings/debian-archive-keyring.gpg')
    const l = parseOneLine('# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main contrib\ndeb-src http://x bookworm main\n', 'sources.list')
    expect(l).toEqual([{uri: 'http://m.example/debian', suites: ['trixie'], components: ['main', 'contrib'], signedBy: '/k.gpg', file: 'sources.list'}])
  })

  it('picks the main archive, preferring one that lists bookworm; never the security archive', () => {
    const s = parseDeb822(deb822, 'a')
    expect(pickMirror(s)?.uri).toBe('http://mirror.example/debian')
    expect(pickMirror(s.slice(1))).toBeUndefined()
    // A trixie machine: the same mirror serves bookworm.
    expect(pickMirror(parseOneLine('deb http://m.example/debian trixie main\n', 'x'))?.uri).toBe('http://m.example/debian')
  })

  it('reads a machine root: sources.list.d/*.sources first, INFRA_LAB_MIRROR overrides', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'lab-mirror-'))
    mkdirSync(path.join(root, 'etc/apt/sources.list.d'), {recursive: true})
    writeFileSync(path.join(root, 'etc/apt/sources.list.d/debian.sources'), deb822)
    expect(readMirror(root, {})).toMatchObject({uri: 'http://mirror.example/debian', from: '/etc/apt/sources.list.d/debian.sources'})
    expect(readMirror(root, {INFRA_LAB_MIRROR: 'http://override.example/debian'})?.uri).toBe('http://override.example/debian')
    expect(readMirror(mkdtempSync(path.join(tmpdir(), 'lab-empty-')), {})).toBeUndefined()
  })
})

describe('lab inventory', () => {
  it('is valid for the inventory loader, with the marker on line 2', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lab-inv-'))
    const text = renderLabInventory(planLab(1, 2), '# yaml-language-server: $schema=./infra.schema.json')
    expect(text.split('\n')[1]).toBe(LAB_MARKER)
    expect(isLabInventory(text)).toBe(true)
    expect(isLabInventory('domain: example.com\n')).toBe(false)
    writeFileSync(path.join(dir, 'infra.yaml'), text)
    const {inventory} = await loadInventory(path.join(dir, 'infra.yaml'), {checkFiles: false})
    expect(inventory.web.nodes.map((n) => [n.name, n.standby])).toEqual([
      ['web1', false],
      ['web2', true],
      ['web3', true],
    ])
    expect(inventory.scaling.max).toBe(3)
    expect(inventory.ssh).toMatchObject({user: 'root', privateKey: '.infra-lab/id_ed25519'})
  })

  it('caps scaling.max at the number of web nodes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lab-inv-'))
    writeFileSync(path.join(dir, 'infra.yaml'), renderLabInventory(planLab(1, 0), '# schema'))
    expect((await loadInventory(path.join(dir, 'infra.yaml'), {checkFiles: false})).inventory.scaling.max).toBe(1)
  })
})

describe('cgroups, mounts, image key, prerequisites', () => {
  const procMounts = [
    'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
    'cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0',
    'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
    'cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0',
    'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
    'overlay /var/lib/infra-lab/hosts/web1/merged overlay rw,lowerdir=/x 0 0',
    'overlay /var/lib/infra-lab/hosts/web10/merged overlay rw,lowerdir=/x 0 0',
    'proc /var/lib/infra-lab-other/proc proc rw 0 0',
  ].join('\n')

  it('finds each hierarchy and this process\'s place in it', () => {
    const hs = parseHierarchies(procMounts)
    expect(hs.map((h) => [h.mount, h.version, h.controllers])).toEqual([
      ['/sys/fs/cgroup/cpuacct', 1, ['cpuacct']],
      ['/sys/fs/cgroup/memory', 1, ['memory']],
      ['/sys/fs/cgroup/systemd', 1, ['name=systemd']],
      ['/sys/fs/cgroup/unified', 2, []],
    ])
    const self = '4:memory:/process_api/abc\n2:cpuacct:/\n9:name=systemd:/\n0::/'
    expect(hs.map((h) => currentPath(h, self))).toEqual(['/', '/process_api/abc', '/', '/'])
  })

  it('lists mounts under a folder, deepest first, without prefix look-alikes', () => {
    expect(mountsUnder('/var/lib/infra-lab', procMounts)).toEqual(['/var/lib/infra-lab/hosts/web10/merged', '/var/lib/infra-lab/hosts/web1/merged'])
  })

  it('keys the image on the package list', () => {
    expect(imageKey()).toBe(imageKey(labImagePackages()))
    expect(imageKey(['b', 'a'])).toBe(imageKey(['a', 'b']))
    expect(imageKey([...labImagePackages(), 'htop'])).not.toBe(imageKey())
  })

  it('names the Debian packages of missing tools', () => {
    expect(missingPackages(['systemd-nspawn', 'nsenter', 'flock', 'debootstrap'])).toEqual(['debootstrap', 'systemd-container', 'util-linux'])
  })

  it('apt-get install refreshes the package lists once when the first install fails (a fresh machine)', async () => {
    // A stand-in apt-get on PATH: install fails until `update` has run; every call is logged.
    const dir = mkdtempSync(path.join(tmpdir(), 'infra-apt-'))
    writeFileSync(
      path.join(dir, 'apt-get'),
      `#!/bin/sh\necho "$*" >> ${dir}/calls\ncase "$1" in update) touch ${dir}/lists;; install) [ -e ${dir}/lists ] || { echo 'E: Unable to locate package wrk' >&2; exit 100; };; esac\n`,
      {mode: 0o755},
    )
    const saved = process.env.PATH
    process.env.PATH = `${dir}:${saved}`
    try {
      expect((await aptInstall(['wrk'])).code).toBe(0)
      expect(readFileSync(path.join(dir, 'calls'), 'utf8')).toBe('install -y -q --no-install-recommends wrk\nupdate -q\ninstall -y -q --no-install-recommends wrk\n')
      // Lists present now: one call, no update.
      writeFileSync(path.join(dir, 'calls'), '')
      expect((await aptInstall(['wrk'])).code).toBe(0)
      expect(readFileSync(path.join(dir, 'calls'), 'utf8')).toBe('install -y -q --no-install-recommends wrk\n')
    } finally {
      process.env.PATH = saved
    }
  })

  it('orders lab test files: lab.test.ts first, zz-* last', () => {
    const files = ['/r/test/lab/zz-down.test.ts', '/r/test/lab/provision.test.ts', '/r/test/lab/lab.test.ts'].sort((a, b) => labRank(a) - labRank(b))
    expect(files.map((f) => path.basename(f))).toEqual(['lab.test.ts', 'provision.test.ts', 'zz-down.test.ts'])
  })
})
