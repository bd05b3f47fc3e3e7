/**
 * The lab itself, on the fresh shared lab (this file runs first; see sequencer.ts):
 * real systemd hosts, the production-like network, idempotent `up`, recovery from leftovers.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {
  BASTION_INTERNET_ADDRESS,
  INTERNET_SERVER_ADDRESS,
  labExec,
  labHostCgroup,
  labInfo,
  labLeftovers,
  labNetExec,
  labStatus,
  labUp,
  PRIVATE_NETWORK,
  ROOT_LINK,
} from '../../src/lab/index.js'
import {STATE_FILE} from '../../src/lab/state.js'
import {bannerFromNetns, labConfig, probeFromOutside, PUBLIC, routeGet, withForcedRoute} from './helpers.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const quiet = () => {}
let config: string

beforeAll(() => {
  config = labConfig()
})

describe('lab status and inventory', () => {
  it('shows 1 bastion and 3 web nodes, all running, with the inventory addresses', async () => {
    const s = await labStatus()
    expect(s.config).toBe(config)
    expect(s.hosts.map((h) => [h.name, h.role, h.publicAddress ?? null, h.privateAddress, h.standby, h.running])).toEqual([
      ['bastion', 'bastion', PUBLIC, '10.42.0.1', false, true],
      ['web1', 'web', null, '10.42.0.11', false, true],
      ['web2', 'web', null, '10.42.0.12', false, true],
      ['web3', 'web', null, '10.42.0.13', true, true],
    ])
  })

  it('wrote an inventory that validates and matches the lab', async () => {
    const text = await readFile(config, 'utf8')
    expect(text.split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=/)
    expect(text.split('\n')[1]).toBe('# infra lab inventory (written by `infra lab up`; `infra lab down` removes the lab)')
    const loaded = await loadInventory(config)
    const inv = loaded.inventory
    expect(inv.domain).toBe('example.test')
    expect(inv.aliases).toEqual(['www.example.test'])
    expect(inv.bastion).toMatchObject({name: 'bastion', publicAddress: PUBLIC, privateAddress: '10.42.0.1', privateNetwork: PRIVATE_NETWORK})
    expect(inv.web.nodes).toEqual([
      {name: 'web1', address: '10.42.0.11', standby: false},
      {name: 'web2', address: '10.42.0.12', standby: false},
      {name: 'web3', address: '10.42.0.13', standby: true},
    ])
    expect(inv.scaling.max).toBe(3)
    expect(inv.tls.mode).toBe('self-signed')
    const key = path.resolve(path.dirname(config), inv.ssh.privateKey!)
    expect(statSync(key).mode & 0o777).toBe(0o600)
  })

  it('prints the status as JSON from the CLI', () => {
    const r = spawnSync('node', [path.join(ROOT, 'bin/run.js'), 'lab', 'status', '--json'], {encoding: 'utf8'})
    expect(r.status, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout)
    expect(s.config).toBe(config)
    expect(s.hosts.filter((h: {running: boolean}) => h.running)).toHaveLength(4)
  })
})

describe('each host is a real Debian 12 systemd host', () => {
  const hosts = ['bastion', 'web1', 'web2', 'web3']

  it.each(hosts)('%s: systemd is running, with its own hostname', async (h) => {
    const r = await labExec(h, 'systemctl is-system-running; hostname; . /etc/os-release; echo $VERSION_CODENAME')
    const [state, hostname, codename] = r.stdout.trim().split('\n')
    expect(['running', 'degraded']).toContain(state)
    expect(hostname).toBe(h)
    expect(codename).toBe('bookworm')
  })

  it('hosts share no identity: machine-id and SSH host keys differ per host', async () => {
    const ids = await Promise.all(hosts.map(async (h) => (await labExec(h, 'cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub')).stdout))
    expect(new Set(ids).size).toBe(hosts.length)
  })

  it('the operator key is authorized on every host, and sshd answers where the operator reaches it', async () => {
    const pub = readFileSync(path.join(path.dirname(config), '.infra-lab/id_ed25519.pub'), 'utf8').trim()
    for (const h of hosts) expect((await labExec(h, 'cat /root/.ssh/authorized_keys')).stdout).toContain(pub)
    // The bastion from this machine (its public address), web nodes from the bastion's namespace.
    expect(probeFromOutside(PUBLIC, 22)).toMatch(/^SSH-2.0-OpenSSH/)
    for (const a of ['10.42.0.11', '10.42.0.12', '10.42.0.13']) expect(bannerFromNetns('infl-bastion', a, 22)).toMatch(/^SSH-2.0-OpenSSH/)
  })

  it('nginx is disabled on the bastion (port 80 stays free for HAProxy) and enabled on web nodes', async () => {
    expect((await labExec('bastion', 'systemctl is-enabled nginx', {allowFail: true})).stdout.trim()).toBe('disabled')
    expect((await labExec('bastion', 'ss -Htln "sport = :80"')).stdout.trim()).toBe('')
    for (const h of ['web1', 'web2', 'web3']) expect((await labExec(h, 'systemctl is-enabled nginx')).stdout.trim()).toBe('enabled')
  })

  it('CPU is accounted per host (cpuacct of its own cgroup)', async () => {
    const usage = async (h: string) => Number(readFileSync(path.join((await labHostCgroup(h, 'cpuacct'))!, 'cpuacct.usage'), 'utf8'))
    const [b1, w1] = [await usage('web1'), await usage('web2')]
    await labExec('web1', 'timeout 1 sh -c "while :; do :; done"', {allowFail: true})
    const [b2, w2] = [await usage('web1'), await usage('web2')]
    // web1 burnt up to a second of CPU (less when the machine is busy); idle web2 next to nothing.
    expect(b2 - b1).toBeGreaterThan(0.2e9)
    expect(w2 - w1).toBeLessThan((b2 - b1) / 4)
  })
})

describe('the network mirrors production', () => {
  it('this machine has no route to the private network (ip route get sends nothing)', async () => {
    for (const a of ['10.42.0.1', '10.42.0.11', '10.42.0.13']) {
      const r = routeGet(a)
      expect(r.dev).not.toBe(ROOT_LINK)
      expect(r.dev?.startsWith('infl-')).not.toBe(true)
    }
    const routes = spawnSync('ip', ['-4', 'route', 'show', 'table', 'all'], {encoding: 'utf8'}).stdout
    expect(routes).not.toMatch(/^10\.42\./m)
    expect(routeGet(PUBLIC).dev).toBe(ROOT_LINK)
  })

  it('from outside, pinned to the lab link, a web node cannot be reached', () => {
    // No route, and the bastion does not answer ARP for addresses behind it.
    expect(probeFromOutside('10.42.0.11', 22)).toBeUndefined()
  })

  it('control for the firewall tests: with a route forced through the bastion, an unprovisioned bastion forwards', async () => {
    // `infra provision` must close this: the bastion's nftables forward chain drops new connections
    // from its public side to the private network. This shows the probe works before that.
    const banner = await withForcedRoute('10.42.0.11', () => probeFromOutside('10.42.0.11', 22))
    expect(banner).toMatch(/^SSH-2.0-OpenSSH/)
    expect(routeGet('10.42.0.11').dev).not.toBe(ROOT_LINK)
  })

  it('the bastion has no default route; web nodes route through the bastion', async () => {
    expect((await labNetExec('bastion', ['ip', 'route', 'show', 'default'])).stdout.trim()).toBe('')
    for (const h of ['web1', 'web2', 'web3']) {
      expect((await labNetExec(h, ['ip', 'route', 'show', 'default'])).stdout).toMatch(/^default via 10\.42\.0\.1 dev eth0/)
    }
    expect((await labNetExec('bastion', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1')
  })

  it('the internet server answers the bastion, but web nodes only once the bastion NATs (provision adds it)', async () => {
    const info = (await labInfo())!
    expect(info.network.internet).toMatchObject({netns: 'infl-inet', address: INTERNET_SERVER_ADDRESS, gateway: BASTION_INTERNET_ADDRESS})
    expect((await labExec('bastion', `ping -c1 -W2 ${INTERNET_SERVER_ADDRESS}`, {allowFail: true})).code).toBe(0)
    // The server has no route back to 10.42.0.0/24: without NAT a web node gets no answer.
    expect((await labNetExec('internet', ['ip', 'route', 'show'])).stdout).not.toMatch(/10\.42\.|default/)
    expect((await labExec('web1', `ping -c1 -W2 ${INTERNET_SERVER_ADDRESS}`, {allowFail: true})).code).not.toBe(0)
  })
})

describe('lab up is idempotent and recovers', () => {
  it('a second `up` keeps the running lab, fast, and leaves the inventory as it is', async () => {
    const before = (await labInfo())!
    const text = await readFile(config, 'utf8')
    const again = await labUp({config, web: 2, standby: 1, log: quiet})
    expect(again.reused).toBe(true)
    expect(again.restarted).toEqual([])
    expect(again.hosts.map((h) => h.pid)).toEqual(before.hosts.map((h) => h.pid))
    expect(again.timings.totalMs).toBeLessThan(5000)
    expect(await readFile(config, 'utf8')).toBe(text)
    // Without counts, `up` keeps the running lab's.
    expect((await labUp({config, log: quiet})).hosts).toHaveLength(4)
  })

  it('refuses other counts, another config, and to overwrite an inventory it did not write (exit 2)', async () => {
    await expect(labUp({config, web: 3, standby: 1, log: quiet})).rejects.toMatchObject({exitCode: 2, code: 'ELABBUSY'})
    await expect(labUp({config: path.join(path.dirname(config), 'other/infra.yaml'), log: quiet})).rejects.toMatchObject({exitCode: 2, code: 'ELABBUSY'})
    const foreign = path.join(path.dirname(config), 'mine.yaml')
    await writeFile(foreign, 'domain: example.com\n')
    const r = spawnSync('node', [path.join(ROOT, 'bin/run.js'), 'lab', 'up', '--config', foreign], {encoding: 'utf8'})
    expect(r.status).toBe(2)
    expect(r.stderr).toContain('is not a lab inventory')
    expect(await readFile(foreign, 'utf8')).toBe('domain: example.com\n')
    await rm(foreign)
  })

  it('a host whose systemd-nspawn was killed hard comes back with its own layer; the others keep running', async () => {
    const before = (await labInfo())!
    const web3 = before.hosts.find((h) => h.name === 'web3')!
    const machineId = (await labExec('web3', 'cat /etc/machine-id')).stdout
    await labExec('web3', 'echo kept > /root/marker')
    process.kill(web3.pid, 'SIGKILL')
    await expect.poll(async () => (await labStatus()).hosts.find((h) => h.name === 'web3')!.running).toBe(false)
    const after = await labUp({config, log: quiet})
    expect(after.restarted).toEqual(['web3'])
    expect(after.hosts.filter((h) => h.name !== 'web3').map((h) => h.pid)).toEqual(before.hosts.filter((h) => h.name !== 'web3').map((h) => h.pid))
    expect((await labExec('web3', 'systemctl is-system-running; cat /etc/machine-id /root/marker')).stdout).toBe(`running\n${machineId}kept\n`)
    // Exactly one container per host: the killed one's processes are gone.
    expect((await labLeftovers()).nspawns).toHaveLength(4)
  })

  it('leftovers of a crashed run whose state is lost are found by prefix and replaced by a fresh lab', async () => {
    await rm(STATE_FILE)
    const after = await labUp({config, web: 2, standby: 1, log: quiet})
    expect(after.cleanedLeftovers).toBe(true)
    expect(after.reused).toBe(false)
    expect((await labStatus()).hosts.every((h) => h.running)).toBe(true)
    const left = await labLeftovers()
    expect(left.nspawns).toHaveLength(4)
    expect(left.namespaces.sort()).toEqual(['infl-bastion', 'infl-inet', 'infl-sw', 'infl-web1', 'infl-web2', 'infl-web3'])
    expect(left.links).toEqual([ROOT_LINK])
    expect(existsSync(STATE_FILE)).toBe(true)
  })
})
