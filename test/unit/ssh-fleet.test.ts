/**
 * The Fleet against real OpenSSH servers on loopback: a "bastion" sshd on 127.0.0.1 and two
 * "web" sshds on 127.0.0.2 and 127.0.0.3, each with its own host key, started by this file and
 * stopped at its end. Loopback only: no packet leaves this machine. (That web nodes cannot be
 * reached except through the bastion is tested on the lab, where it is true; here the bastion's
 * sshd log proves that the web connections went through its tunnels.)
 */
import {ChildProcess, execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {PassThrough, Readable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {LoadedInventory} from '../../src/inventory/load.js'
import {inventorySchema, InventoryInput} from '../../src/inventory/schema.js'
import {ConfigError, UsageError} from '../../src/lib/errors.js'
import {SshError} from '../../src/ssh/errors.js'
import {Fleet} from '../../src/ssh/fleet.js'
import {fingerprint, formatEntry} from '../../src/ssh/known-hosts.js'
import {interactiveShell, runAttached} from '../../src/ssh/interactive.js'
import {forgetHost, HostKeyEvent, identityOf} from '../../src/ssh/pins.js'
import {allSucceeded, connectOne, runOnTargets} from '../../src/tasks/exec.js'
import {listHostPins, trustHostKey} from '../../src/tasks/hosts.js'
import {resolveTarget} from '../../src/ssh/targets.js'

const SSHD = '/usr/sbin/sshd'
const canRun = process.getuid?.() === 0 && existsSync(SSHD)

let dir: string
let port: number
const servers: {name: string; addr: string; proc: ChildProcess; log: string; hostPub: string}[] = []
let holder: net.Server | undefined
let kh = 0

function keygen(file: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file])
  return readFileSync(file + '.pub', 'utf8').trim()
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
}

async function waitForPort(host: string, p: number): Promise<void> {
  const until = Date.now() + 5000
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({host, port: p}, () => {
        c.destroy()
        resolve(true)
      })
      c.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`sshd on ${host}:${p} did not start`)
}

async function startSshd(name: string, addr: string): Promise<void> {
  const hostKey = path.join(dir, `${name}_host_key`)
  const hostPub = keygen(hostKey)
  const log = path.join(dir, `${name}.log`)
  const cfg = path.join(dir, `${name}.sshd_config`)
  writeFileSync(
    cfg,
    [
      `Port ${port}`,
      `ListenAddress ${addr}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, name + '.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      // Passwords and keyboard-interactive are on here so that the test can show they are never tried.
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication yes',
      'PermitRootLogin yes',
      'UsePAM no',
      'AllowTcpForwarding yes',
      // The login shell runs with SHLVL=1, so bash skips root's ~/.bashrc (which bash otherwise
      // reads for commands run by sshd): this machine's own dotfiles must not slow or alter tests.
      'SetEnv SHLVL=1',
      'LogLevel DEBUG1',
      '',
    ].join('\n'),
  )
  const proc = spawn(SSHD, ['-D', '-E', log, '-f', cfg], {stdio: 'ignore'})
  servers.push({name, addr, proc, log, hostPub})
  await waitForPort(addr, port)
}

function server(name: string) {
  return servers.find((s) => s.name === name)!
}

function logOf(name: string): string {
  return readFileSync(server(name).log, 'utf8')
}

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re, 'g'))?.length ?? 0
}

/** A LoadedInventory for the loopback fleet, with its own known_hosts file. */
function fleetInventory(over: {ssh?: Partial<NonNullable<InventoryInput['ssh']>>; bastion?: string; web?: string[]} = {}): LoadedInventory {
  const web = over.web ?? ['127.0.0.2', '127.0.0.3']
  // The schema refuses loopback addresses (rightly, for real fleets): validate with documentation
  // and private placeholders, then point the hosts at the loopback sshds. Nothing is sent to the placeholders.
  const inventory = inventorySchema.parse({
    domain: 'example.com',
    ssh: {user: 'root', port, privateKey: './id_ed25519', connectTimeout: '3s', ...over.ssh},
    bastion: {name: 'bastion', publicAddress: '192.0.2.10', privateAddress: '10.42.0.1'},
    web: {nodes: web.map((_, i) => ({name: `web${i + 1}`, address: `10.42.0.${11 + i}`}))},
  })
  inventory.bastion.publicAddress = over.bastion ?? '127.0.0.1'
  inventory.bastion.privateAddress = '127.0.0.1'
  web.forEach((address, i) => {
    inventory.web.nodes[i].address = address
  })
  return {path: path.join(dir, 'infra.yaml'), dir, inventory, knownHostsPath: path.join(dir, `known_hosts.${++kh}`)}
}

type FleetOptions = NonNullable<Parameters<typeof Fleet.open>[1]>
type WithFleet = (fleet: Fleet) => Promise<void>

/** Opens a Fleet on `inventory` (with `options`, when given), runs `fn` with it, and closes it whatever happens. */
async function withFleet(inventory: LoadedInventory, ...rest: [WithFleet] | [FleetOptions, WithFleet]): Promise<void> {
  const [options, fn] = rest.length === 1 ? [undefined, rest[0]] : rest
  const fleet = Fleet.open(inventory, options)
  try {
    await fn(fleet)
  } finally {
    await fleet.close()
  }
}

beforeAll(async () => {
  if (!canRun) return
  dir = mkdtempSync(path.join(tmpdir(), 'infs-fleet-'))
  mkdirSync('/run/sshd', {recursive: true, mode: 0o755}) // sshd's privilege separation directory
  writeFileSync(path.join(dir, 'authorized_keys'), keygen(path.join(dir, 'id_ed25519')) + '\n')
  keygen(path.join(dir, 'wrong_key'))
  port = await freePort()
  await Promise.all([startSshd('bastion', '127.0.0.1'), startSshd('web1', '127.0.0.2'), startSshd('web2', '127.0.0.3')])
}, 30_000)

afterAll(async () => {
  holder?.close()
  for (const s of servers) s.proc.kill('SIGTERM')
  if (dir) rmSync(dir, {recursive: true, force: true})
})

describe.skipIf(!canRun)('Fleet over real sshd (loopback)', () => {
  it('runs commands on the bastion and on web nodes through it, with exit code, stdout and stderr', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const results = await fleet.forEach((c) => c.exec('echo "$SSH_CONNECTION"; echo oops >&2; exit 3'))
      expect([...results.keys()]).toEqual(['bastion', 'web1', 'web2'])
      for (const [name, r] of results) {
        expect(r.ok).toBe(true)
        if (!r.ok) continue
        expect(r.value.code).toBe(3)
        expect(r.value.stderr).toBe('oops\n')
        // SSH_CONNECTION's 3rd field is the server address: the command ran on that host.
        expect(r.value.stdout.split(' ')[2]).toBe(server(name).addr)
      }
    })
    // The web connections went through the bastion's tunnels, not directly.
    const b = logOf('bastion')
    expect(b).toMatch(/direct_tcpip: originator .* target 127\.0\.0\.2 /)
    expect(b).toMatch(/direct_tcpip: originator .* target 127\.0\.0\.3 /)
  })

  it('opens one connection per host, shared by every command', async () => {
    const before = count(logOf('bastion'), /Accepted publickey/)
    const beforeWeb = count(logOf('web1'), /Accepted publickey/)
    await withFleet(fleetInventory(), async (fleet) => {
      const [a, b] = await Promise.all([fleet.connect('web1'), fleet.connect('web1')])
      expect(a).toBe(b)
      await Promise.all(Array.from({length: 12}, (_, i) => a.exec(`echo ${i}`)))
      await (await fleet.connect('bastion')).exec('true')
    })
    expect(count(logOf('bastion'), /Accepted publickey/) - before).toBe(1)
    expect(count(logOf('web1'), /Accepted publickey/) - beforeWeb).toBe(1)
  })

  it('runs the command with bash and feeds stdin (string, Buffer or stream)', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const c = await fleet.connect('web1')
      expect((await c.exec('[[ -n $BASH_VERSION ]] && echo bash')).stdout).toBe('bash\n')
      expect((await c.exec('cat', {stdin: 'hello'})).stdout).toBe('hello')
      const big = Buffer.alloc(3 * 1024 * 1024, 7)
      expect((await c.exec('wc -c', {stdin: big})).stdout.trim()).toBe(String(big.length))
      expect((await c.exec('tr a-z A-Z', {stdin: Readable.from(['abc', 'def'])})).stdout).toBe('ABCDEF')
      // No stdin: EOF at once, a command that reads stdin does not hang.
      expect((await c.exec('cat; echo done')).stdout).toBe('done\n')
    })
  })

  it('stops a command that runs past its time limit', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const c = await fleet.connect('web1')
      const t = Date.now()
      const err = await c.exec('sleep 30 & sleep 31; echo never', {timeoutMs: 500}).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(SshError)
      expect((err as SshError).kind).toBe('command-timeout')
      expect((err as SshError).message).toBe('web1: a command did not finish within 500ms and was stopped')
      expect(Date.now() - t).toBeLessThan(2000)
      // Stopped on the host too (the whole process group), not only abandoned. The group's signal is
      // delivered as `timeout` exits: allow the host a moment to finish them off.
      const left = await c.exec('for i in $(seq 30); do pgrep -f "sleep 3[01]" >/dev/null || { echo none; exit; }; sleep 0.1; done; pgrep -af "sleep 3[01]"')
      expect(left.stdout).toBe('none\n')
      // A command that ends in time is not affected, whatever its exit status.
      expect(await c.exec('exit 124', {timeoutMs: 5000})).toEqual({code: 124, stdout: '', stderr: ''})
      // The connection is still usable.
      expect((await c.exec('echo ok')).stdout).toBe('ok\n')
    })
  })

  it('stops a streaming command when its AbortSignal aborts', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const c = await fleet.connect('web1')
      const stop = new AbortController()
      const seen: string[] = []
      const t = Date.now()
      const err = await c
        .exec('echo first; sleep 30; echo never', {
          collect: false,
          signal: stop.signal,
          onStdout: (d) => {
            seen.push(d.toString())
            stop.abort()
          },
        })
        .catch((e: unknown) => e)
      expect((err as Error).name).toBe('AbortError')
      expect(seen.join('')).toBe('first\n')
      expect(Date.now() - t).toBeLessThan(2000)
      // An already aborted signal runs nothing; the connection stays usable.
      const before = new AbortController()
      before.abort(new Error('not now'))
      await expect(c.exec('echo no', {signal: before.signal})).rejects.toThrow('not now')
      expect((await c.exec('echo ok', {signal: new AbortController().signal})).stdout).toBe('ok\n')
    })
  })

  it('pins host keys on first use, then accepts the same keys', async () => {
    const loaded = fleetInventory()
    const seen: HostKeyEvent[] = []
    const fleet = Fleet.open(loaded, {onHostKeyNew: (e) => seen.push(e)})
    await fleet.forEach((c) => c.exec('true'))
    await fleet.close()
    expect(seen.map((e) => e.host.name).sort()).toEqual(['bastion', 'web1', 'web2'])
    const text = readFileSync(loaded.knownHostsPath, 'utf8')
    for (const s of servers) {
      const blob = Buffer.from(s.hostPub.split(' ')[1], 'base64')
      expect(text).toContain(formatEntry({names: [s.name, s.addr], port}, blob))
      expect(seen.find((e) => e.host.name === s.name)?.fingerprint).toBe(fingerprint(blob))
    }
    // ssh-keygen reads the file and finds the web node under its address and port.
    expect(execFileSync('ssh-keygen', ['-F', `[127.0.0.2]:${port}`, '-f', loaded.knownHostsPath], {encoding: 'utf8'})).toContain(
      server('web1').hostPub.split(' ')[1],
    )

    const again: HostKeyEvent[] = []
    const fleet2 = Fleet.open(loaded, {onHostKeyNew: (e) => again.push(e)})
    const r = await fleet2.forEach((c) => c.exec('true'))
    await fleet2.close()
    expect([...r.values()].every((x) => x.ok)).toBe(true)
    expect(again).toEqual([])
    expect(readFileSync(loaded.knownHostsPath, 'utf8')).toBe(text)
  })

  it('refuses a changed host key with both fingerprints and the way out; forgetting lets it through', async () => {
    const loaded = fleetInventory()
    const wrong = readFileSync(path.join(dir, 'wrong_key.pub'), 'utf8').split(' ')[1]
    const wrongBlob = Buffer.from(wrong, 'base64')
    writeFileSync(loaded.knownHostsPath, `# mine\n${formatEntry({names: ['web1', '127.0.0.2'], port}, wrongBlob)}\n`)
    await withFleet(loaded, async (fleet) => {
      const err = await fleet.connect('web1').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(SshError)
      const e = err as SshError
      expect(e.kind).toBe('hostkey-changed')
      expect(e.host).toBe('web1')
      expect(e.message).toContain(`pinned ssh-ed25519 ${fingerprint(wrongBlob)}`)
      expect(e.message).toContain(`presented ssh-ed25519 ${fingerprint(Buffer.from(server('web1').hostPub.split(' ')[1], 'base64'))}`)
      expect(e.hint).toContain('infra hosts forget web1')
      // Nothing was run on the host, and the pin was not replaced.
      expect(readFileSync(loaded.knownHostsPath, 'utf8')).toContain(wrong)
      // The other hosts are not affected.
      expect((await (await fleet.connect('web2')).exec('echo ok')).stdout).toBe('ok\n')
    })
    expect(await forgetHost(loaded.knownHostsPath, identityOf({name: 'web1', address: '127.0.0.2'}, port))).toHaveLength(1)
    const fleet2 = Fleet.open(loaded)
    try {
      expect((await (await fleet2.connect('web1')).exec('echo ok')).stdout).toBe('ok\n')
    } finally {
      await fleet2.close()
    }
    expect(readFileSync(loaded.knownHostsPath, 'utf8').startsWith('# mine\n')).toBe(true)
  })

  it('when the bastion is down, every web node says so (no N timeouts)', async () => {
    // Nothing listens on 127.0.0.9: connection refused at once.
    await withFleet(fleetInventory({bastion: '127.0.0.9'}), async (fleet) => {
      const results = await fleet.forEach((c) => c.exec('true'))
      const b = results.get('bastion')!
      expect(b.ok).toBe(false)
      expect(!b.ok && (b.error as SshError).kind).toBe('unreachable')
      expect(!b.ok && b.error.message).toBe(`bastion: cannot connect to 127.0.0.9:${port}: connection refused`)
      for (const name of ['web1', 'web2']) {
        const r = results.get(name)!
        expect(r.ok).toBe(false)
        if (r.ok) continue
        expect((r.error as SshError).kind).toBe('bastion-down')
        expect(r.error.message).toBe(`${name}: bastion bastion is down: cannot connect to 127.0.0.9:${port}: connection refused`)
      }
    })
  })

  it('reports a timeout with the address and the configured limit', async () => {
    // Something that accepts TCP but never speaks SSH.
    holder = net.createServer(() => {})
    await new Promise<void>((r) => holder!.listen(port, '127.0.0.4', r))
    const fleet = Fleet.open(fleetInventory({bastion: '127.0.0.4'}), {connectTimeoutMs: 700})
    try {
      const t = Date.now()
      const results = await fleet.forEach((c) => c.exec('true'))
      expect(Date.now() - t).toBeLessThan(3000)
      const b = results.get('bastion')!
      expect(!b.ok && (b.error as SshError).kind).toBe('timeout')
      expect(!b.ok && b.error.message).toBe(`bastion: connected to 127.0.0.4:${port}, but no SSH handshake within 700ms (ssh.connectTimeout)`)
      const w = results.get('web1')!
      expect(!w.ok && w.error.message).toMatch(/^web1: bastion bastion is down: connected to 127\.0\.0\.4/)
    } finally {
      await fleet.close()
      holder.close()
    }
  })

  it('reports a web node the bastion cannot reach, naming its address', async () => {
    await withFleet(fleetInventory({web: ['127.0.0.2', '127.0.0.9']}), async (fleet) => {
      const results = await fleet.forEach((c) => c.exec('hostname'))
      expect(results.get('web1')!.ok).toBe(true)
      const w2 = results.get('web2')!
      expect(!w2.ok && (w2.error as SshError).kind).toBe('unreachable')
      expect(!w2.ok && w2.error.message).toBe(`web2: cannot connect to 127.0.0.9:${port} through bastion bastion: Connection refused`)
    })
  })

  it('a refused key is an auth error naming the key and user, and no password is ever tried', async () => {
    const before = logOf('bastion').length
    await withFleet(fleetInventory({ssh: {privateKey: './wrong_key'}}), async (fleet) => {
      const results = await fleet.forEach((c) => c.exec('true'))
      const b = results.get('bastion')!
      expect(!b.ok && (b.error as SshError).kind).toBe('auth')
      const fp = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'wrong_key.pub')], {encoding: 'utf8'}).split(' ')[1]
      expect(!b.ok && b.error.message).toBe(`bastion: root@127.0.0.1:${port} refused key ./wrong_key (${fp})`)
      expect(!b.ok && (b.error as SshError).hint).toContain('authorized_keys')
      const w = results.get('web1')!
      expect(!w.ok && w.error.message).toMatch(/^web1: cannot go through bastion bastion: root@127\.0\.0\.1:\d+ refused key/)
    })
    const methods = [...logOf('bastion').slice(before).matchAll(/userauth-request for user root service ssh-connection method (\S+)/g)].map((m) => m[1])
    expect(methods.length).toBeGreaterThan(0)
    expect(new Set(methods)).toEqual(new Set(['publickey']))
  })

  it('logs in with the ssh-agent when no key is configured', async () => {
    const agentDir = mkdtempSync(path.join(tmpdir(), 'infs-agent-'))
    const sock = path.join(agentDir, 'agent.sock')
    const agent = spawn('ssh-agent', ['-D', '-a', sock], {stdio: 'ignore'})
    try {
      await new Promise((r) => setTimeout(r, 300))
      const env = {SSH_AUTH_SOCK: sock}
      // An empty agent: refused, and the message says it was the agent's keys.
      const empty = Fleet.open(fleetInventory({ssh: {privateKey: undefined}}), {env})
      const err = await empty.connect('bastion').catch((e: unknown) => e)
      await empty.close()
      expect((err as SshError).kind).toBe('auth')
      expect((err as SshError).message).toContain(`accepted none of the ssh-agent's keys (SSH_AUTH_SOCK=${sock})`)
      execFileSync('ssh-add', ['-q', path.join(dir, 'id_ed25519')], {env: {...process.env, ...env}, stdio: 'pipe'})
      await withFleet(fleetInventory({ssh: {privateKey: undefined}}), {env}, async (fleet) => {
        expect((await (await fleet.connect('web1')).exec('echo ok')).stdout).toBe('ok\n')
      })
    } finally {
      agent.kill()
      rmSync(agentDir, {recursive: true, force: true})
    }
  })

  it('connectFresh makes a new, separate connection (through a new bastion connection)', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const shared = await fleet.connect('web1')
      const before = count(logOf('bastion'), /Accepted publickey/)
      const fresh = await fleet.connectFresh('web1')
      expect(fresh).not.toBe(shared)
      expect(count(logOf('bastion'), /Accepted publickey/) - before).toBe(1)
      expect((await fresh.exec('echo fresh')).stdout).toBe('fresh\n')
      await fresh.close()
      // The shared connection is untouched.
      expect((await shared.exec('echo shared')).stdout).toBe('shared\n')
      expect(await fleet.connect('web1')).toBe(shared)
    })
  })

  it('reopens a connection that was closed', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const a = await fleet.connect('web2')
      await a.close()
      const b = await fleet.connect('web2')
      expect(b).not.toBe(a)
      expect((await b.exec('echo again')).stdout).toBe('again\n')
      await expect(a.exec('true')).rejects.toMatchObject({kind: 'closed'})
    })
  })

  it('opens TCP tunnels through the bastion', async () => {
    await withFleet(fleetInventory(), async (fleet) => {
      const s = await fleet.tunnel('127.0.0.2', port)
      const banner = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())))
      s.destroy()
      expect(banner).toMatch(/^SSH-2\.0-OpenSSH/)
    })
  })
})

describe.skipIf(!canRun)('first contact: ssh.hostKeys, infra hosts trust, and the pin message (real sshd, loopback)', () => {
  const pub = (name: string) => Buffer.from(server(name).hostPub.split(' ')[1], 'base64')
  const WRONG = 'SHA256:' + 'A'.repeat(43)

  it('a bastion key not in ssh.hostKeys is refused before login (nothing runs, nothing is pinned); the web nodes say why', async () => {
    const before = count(logOf('bastion'), /Accepted publickey/)
    const loaded = fleetInventory({ssh: {hostKeys: {bastion: [WRONG]}}})
    await withFleet(loaded, {onHostKeyNew: () => {}}, async (fleet) => {
      const results = await fleet.forEach((c) => c.exec('touch /tmp/infs-should-not-exist; echo ran'))
      const b = results.get('bastion')!
      expect(b.ok).toBe(false)
      const e = (!b.ok && b.error) as SshError
      expect(e.kind).toBe('hostkey-unexpected')
      expect(e.code).toBe('ESSH_HOSTKEY_UNEXPECTED')
      const seen = fingerprint(pub('bastion'))
      expect(e.message).toBe(
        `bastion: 127.0.0.1:${port} presented host key ssh-ed25519 ${seen}, which is not in ssh.hostKeys.bastion (${loaded.path}): ${WRONG}. ` +
          `infra stopped before logging in. If \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on bastion's console prints ${seen}, ` +
          'put that fingerprint in ssh.hostKeys.bastion; if not, someone may be intercepting the connection: do not go on.',
      )
      expect(e.hint).toContain("Read the fingerprint on bastion's own console (your provider's web console), not over SSH")
      for (const name of ['web1', 'web2']) {
        const r = results.get(name)!
        expect(!r.ok && (r.error as SshError).kind).toBe('bastion-down')
        expect(!r.ok && r.error.message).toContain(`${name}: cannot go through bastion bastion: 127.0.0.1:${port} presented host key`)
      }
    })
    // No login happened anywhere, and nothing was pinned.
    expect(count(logOf('bastion'), /Accepted publickey/) - before).toBe(0)
    expect(existsSync(loaded.knownHostsPath)).toBe(false)
  })

  it('the fingerprints in ssh.hostKeys let the first contact through, and the pin says they matched', async () => {
    const loaded = fleetInventory({ssh: {hostKeys: {bastion: [WRONG, fingerprint(pub('bastion'))], web1: [fingerprint(pub('web1'))]}}})
    const seen: HostKeyEvent[] = []
    await withFleet(loaded, {onHostKeyNew: (e) => seen.push(e)}, async (fleet) => {
      expect((await (await fleet.connect('web1')).exec('echo ok')).stdout).toBe('ok\n')
    })
    expect(seen.map((e) => [e.host.name, e.trust])).toEqual([
      ['bastion', 'inventory'],
      ['web1', 'inventory'],
    ])
    expect(seen[0].message).toBe(`bastion: pinned new host key ssh-ed25519 ${fingerprint(pub('bastion'))} in ${loaded.knownHostsPath} (it matches ssh.hostKeys.bastion)`)
    expect(readFileSync(loaded.knownHostsPath, 'utf8')).toContain(formatEntry({names: ['web1', '127.0.0.2'], port}, pub('web1')))
  })

  it('ssh.hostKeys naming no host of the inventory is a ConfigError before anything connects', () => {
    // The inventory's own validation refuses it (infra validate, every command's load)...
    expect(() => fleetInventory({ssh: {hostKeys: {wbe1: [WRONG]}}})).toThrow(/no host of this inventory is named \\"wbe1/)
    // ...and the Fleet refuses an inventory object built without that validation.
    const loaded = fleetInventory()
    ;(loaded.inventory.ssh as {hostKeys?: Record<string, string[]>}).hostKeys = {wbe1: [WRONG]}
    expect(() => Fleet.open(loaded)).toThrow(ConfigError)
    expect(() => Fleet.open(loaded)).toThrow('ssh.hostKeys.wbe1: no host of this inventory is named "wbe1"')
  })

  it('infra hosts trust: the first contact must match the pending fingerprint, which its full key then replaces', async () => {
    const loaded = fleetInventory()
    const fp = fingerprint(pub('web1'))
    expect(await trustHostKey(loaded, 'web1', [WRONG])).toMatchObject({status: 'pending', fingerprints: [WRONG]})
    expect((await listHostPins(loaded)).find((h) => h.name === 'web1')).toMatchObject({fingerprint: null, pending: [WRONG]})
    await withFleet(loaded, {onHostKeyNew: () => {}}, async (fleet) => {
      const err = (await fleet.connect('web1').catch((e: unknown) => e)) as SshError
      expect(err.kind).toBe('hostkey-unexpected')
      expect(err.message).toContain(`presented host key ssh-ed25519 ${fp}, which is not the fingerprint trusted with \`infra hosts trust web1\` (${WRONG}, ${loaded.knownHostsPath} line 1)`)
      expect(err.message).toContain(`run \`infra hosts forget web1 -c ${loaded.path}\` then \`infra hosts trust web1 ${fp} -c ${loaded.path}\``)
    })
    await forgetHost(loaded.knownHostsPath, identityOf({name: 'web1', address: '127.0.0.2'}, port))
    expect(readFileSync(loaded.knownHostsPath, 'utf8')).not.toContain('#infra-trust web1')

    expect(await trustHostKey(loaded, 'web1', [fp])).toEqual({host: 'web1', knownHostsPath: loaded.knownHostsPath, status: 'pending', fingerprints: [fp], added: [fp]})
    const seen: HostKeyEvent[] = []
    const fleet2 = Fleet.open(loaded, {onHostKeyNew: (e) => seen.push(e)})
    try {
      expect((await (await fleet2.connect('web1')).exec('echo ok')).stdout).toBe('ok\n')
    } finally {
      await fleet2.close()
    }
    expect(seen.find((e) => e.host.name === 'web1')).toMatchObject({trust: 'pending', fingerprint: fp})
    const text = readFileSync(loaded.knownHostsPath, 'utf8')
    expect(text).toContain(formatEntry({names: ['web1', '127.0.0.2'], port}, pub('web1')))
    expect(text).not.toContain('#infra-trust')
    // Once pinned, trusting the same fingerprint is a no-op, another one a failure (exit 1) naming the pin.
    expect(await trustHostKey(loaded, 'web1', [fp])).toMatchObject({status: 'pinned', fingerprints: [fp]})
    await expect(trustHostKey(loaded, 'web1', [WRONG])).rejects.toMatchObject({exitCode: 1, message: expect.stringContaining(`web1 is already pinned in ${loaded.knownHostsPath} to ssh-ed25519 ${fp}`)})
    await expect(trustHostKey(loaded, 'web1', ['SHA256:nope'])).rejects.toMatchObject({exitCode: 2})
    await expect(trustHostKey(loaded, 'web9', [fp])).rejects.toMatchObject({exitCode: 2, message: expect.stringContaining('unknown host "web9"')})
  })

  it('the first-use message says how to check the key on the host console, and is written to stderr when nobody listens', async () => {
    const loaded = fleetInventory()
    const seen: HostKeyEvent[] = []
    await withFleet(loaded, {only: ['bastion'], onHostKeyNew: (e) => seen.push(e)}, async (fleet) => {
      await fleet.connect('bastion')
    })
    const fp = fingerprint(pub('bastion'))
    expect(seen).toHaveLength(1)
    expect(seen[0].trust).toBe('first-use')
    expect(seen[0].message).toBe(
      `bastion: pinned new host key ssh-ed25519 ${fp} in ${loaded.knownHostsPath} on first contact, unchecked: nothing said which key to expect (ssh.hostKeys, \`infra hosts trust\`).\n` +
        `  → Check it on bastion's console (not over SSH): \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` must print ${fp}. ` +
        `If it does not, stop: run \`infra hosts forget bastion -c ${loaded.path}\` and find out who answered at 127.0.0.1.`,
    )
    // Without a listener (e.g. provision), the same message goes to stderr: a first-use pin is never silent.
    const loaded2 = fleetInventory()
    const written: string[] = []
    const write = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true))
    const fleet2 = Fleet.open(loaded2, {only: ['bastion']})
    try {
      await fleet2.connect('bastion')
    } finally {
      await fleet2.close()
      process.stderr.write = write
    }
    expect(written.join('')).toContain(`bastion: pinned new host key ssh-ed25519 ${fp} in ${loaded2.knownHostsPath} on first contact, unchecked`)
  })
})

describe.skipIf(!canRun)('a host pinned by its ECDSA key, when sshd stops offering ECDSA (real sshd, loopback)', () => {
  const ADDR = '127.0.0.5'
  let proc: ChildProcess | undefined
  let cfgBase: string[]
  const key = (t: string) => path.join(dir, `old_${t}_host_key`)

  async function start(hostKeys: string[]): Promise<void> {
    const cfg = path.join(dir, 'old.sshd_config')
    writeFileSync(cfg, [...cfgBase, ...hostKeys.map((t) => `HostKey ${key(t)}`), ''].join('\n'))
    proc = spawn(SSHD, ['-D', '-E', path.join(dir, 'old.log'), '-f', cfg], {stdio: 'ignore'})
    await waitForPort(ADDR, port)
  }

  async function stop(): Promise<void> {
    if (!proc || proc.exitCode !== null) return
    const p = proc
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve())
      p.kill('SIGTERM')
    })
  }

  beforeAll(() => {
    if (!canRun) return
    for (const t of ['ecdsa', 'ed25519']) execFileSync('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', '', '-f', key(t)])
    cfgBase = [
      `Port ${port}`,
      `ListenAddress ${ADDR}`,
      `PidFile ${path.join(dir, 'old.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'PermitRootLogin yes',
      'UsePAM no',
      'SetEnv SHLVL=1',
    ]
  })
  afterAll(stop)

  it('infra pins the Ed25519 key the host announces, and keeps connecting once only Ed25519 (and RSA) is offered', async () => {
    await start(['ecdsa', 'ed25519'])
    const loaded = fleetInventory({bastion: ADDR})
    const blob = (t: string) => Buffer.from(readFileSync(key(t) + '.pub', 'utf8').split(' ')[1], 'base64')
    // An operator's known_hosts with only the ECDSA key (e.g. from ssh-keyscan or an older tool).
    writeFileSync(loaded.knownHostsPath, formatEntry({names: ['bastion', ADDR], port}, blob('ecdsa')) + '\n')
    const seen: HostKeyEvent[] = []
    await withFleet(loaded, {only: ['bastion'], onHostKeyNew: (e) => seen.push(e)}, async (fleet) => {
      expect((await (await fleet.connect('bastion')).exec('echo ok')).stdout).toBe('ok\n')
    })
    expect(seen.map((e) => [e.trust, e.keyType, e.fingerprint])).toEqual([['announced', 'ssh-ed25519', fingerprint(blob('ed25519'))]])
    expect(seen[0].message).toContain('over the connection its pinned ecdsa-sha2-nistp256 key verified')
    expect(readFileSync(loaded.knownHostsPath, 'utf8')).toContain(formatEntry({names: ['bastion', ADDR], port}, blob('ed25519')))

    // The new sshd configuration: no ECDSA host key any more.
    await stop()
    await start(['ed25519'])
    const fleet2 = Fleet.open(loaded, {only: ['bastion'], onHostKeyNew: (e) => seen.push(e)})
    try {
      expect((await (await fleet2.connect('bastion')).exec('echo still ok')).stdout).toBe('still ok\n')
    } finally {
      await fleet2.close()
    }
    expect(seen).toHaveLength(1)
  })
})

describe.skipIf(!canRun)('exec and ssh services over real sshd (loopback)', () => {
  it('runOnTargets gives each host its exit status and output, and the error of a host that cannot run it', async () => {
    const loaded = fleetInventory({web: ['127.0.0.2', '127.0.0.9']})
    const chunks: string[] = []
    const runs = await runOnTargets(loaded, 'all', 'echo "out $SSH_CONNECTION" | cut -d" " -f1,4; echo err >&2; test "$SSH_CONNECTION" != x', {
      onOutput: (host, stream, chunk) => chunks.push(`${host}/${stream}/${chunk.toString()}`),
    })
    expect(runs).toEqual([
      {host: 'bastion', code: 0, stdout: 'out 127.0.0.1\n', stderr: 'err\n'},
      {host: 'web1', code: 0, stdout: 'out 127.0.0.2\n', stderr: 'err\n'},
      {
        host: 'web2',
        code: null,
        stdout: '',
        stderr: '',
        error: {kind: 'unreachable', message: `cannot connect to 127.0.0.9:${port} through bastion bastion: Connection refused`, hint: expect.stringContaining('web.nodes[].address')},
      },
    ])
    expect(allSucceeded(runs)).toBe(false)
    expect(chunks).toContain('web1/stdout/out 127.0.0.2\n')
    expect(chunks).toContain('web1/stderr/err\n')
  })

  it('infra ssh without a terminal feeds stdin to the remote shell; with a command, passes its exit status', async () => {
    const loaded = fleetInventory()
    const {fleet, conn} = await connectOne(loaded, 'web1')
    try {
      const term = () => {
        const stdin = new PassThrough()
        const stdout = new PassThrough()
        const stderr = new PassThrough()
        let out = ''
        stdout.on('data', (d: Buffer) => (out += d.toString()))
        return {term: {stdin, stdout, stderr}, out: () => out}
      }
      const a = term()
      a.term.stdin.end('echo "$SSH_CONNECTION" | cut -d" " -f3\nexit 7\n')
      expect(await interactiveShell(conn, a.term)).toBe(7)
      expect(a.out()).toBe('127.0.0.2\n')

      const b = term()
      b.term.stdin.end('piped')
      expect(await runAttached(conn, 'cat; exit 5', b.term)).toBe(5)
      expect(b.out()).toBe('piped')
    } finally {
      await fleet.close()
    }
    await expect(connectOne(loaded, 'web')).rejects.toThrow(/names 2 hosts; infra ssh works on one/)
  })
})

describe.skipIf(!canRun)('Fleet configuration errors', () => {
  it('a missing, public or passphrase-protected key is a ConfigError naming the file', () => {
    expect(() => Fleet.open(fleetInventory({ssh: {privateKey: './nope'}}))).toThrow(ConfigError)
    expect(() => Fleet.open(fleetInventory({ssh: {privateKey: './nope'}}))).toThrow(/ssh\.privateKey: cannot read .*nope \(no such file\)/)
    expect(() => Fleet.open(fleetInventory({ssh: {privateKey: './id_ed25519.pub'}}))).toThrow(/is a public key/)
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', path.join(dir, 'locked')])
    expect(() => Fleet.open(fleetInventory({ssh: {privateKey: './locked'}}))).toThrow(/protected by a passphrase/)
  })

  it('no key and no agent is a ConfigError with the fix', () => {
    let err: unknown
    try {
      Fleet.open(fleetInventory({ssh: {privateKey: undefined}}), {env: {}})
    } catch (error) {
      err = error
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).message).toContain('SSH_AUTH_SOCK is not set')
    expect((err as ConfigError).hint).toContain('ssh-add')
  })
})

describe('resolveTarget', () => {
  const inv = inventorySchema.parse({
    domain: 'example.com',
    bastion: {name: 'edge', publicAddress: '192.0.2.10', privateAddress: '10.42.0.1'},
    web: {nodes: [{name: 'web1', address: '10.42.0.11'}, {name: 'web2', address: '10.42.0.12', standby: true}]},
  })
  const names = (t: string) => resolveTarget(inv, t).map((h) => h.name)

  it('knows host names, the bastion, web and all', () => {
    expect(names('all')).toEqual(['edge', 'web1', 'web2'])
    expect(names('web')).toEqual(['web1', 'web2'])
    expect(names('bastion')).toEqual(['edge'])
    expect(names('edge')).toEqual(['edge'])
    expect(names('web2,bastion')).toEqual(['edge', 'web2'])
  })

  it('an unknown name is a usage error listing the valid ones', () => {
    expect(() => names('wbe1')).toThrow(UsageError)
    try {
      names('wbe1')
    } catch (error) {
      expect((error as UsageError).message).toBe('unknown host or target "wbe1". Did you mean "web1"?')
      expect((error as UsageError).hint).toContain('edge, web1, web2')
      expect((error as UsageError).exitCode).toBe(2)
    }
  })
})
