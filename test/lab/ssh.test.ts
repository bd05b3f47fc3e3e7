/**
 * SSH against the lab: commands through the bastion, host key pinning, and each error a user can
 * meet (host key changed, bastion down, unreachable node, key refused).
 *
 * The shared lab is left as found: the tests work on a copy of the lab inventory in their own
 * folder (their own known_hosts), break nothing but one web node's host keys, and restore those.
 * Traffic goes only to the lab: the bastion's public address, and lab-private addresses reached
 * by the bastion itself. Nothing is sent to a private address from this machine's namespace.
 */
import {execFile, execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {parseDocument} from 'yaml'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'

import {loadInventory, LoadedInventory, resolveFrom} from '../../src/inventory/load.js'
import {hostsOf} from '../../src/inventory/schema.js'
import {labExec, overlaps, ROOT_LINK} from '../../src/lab/index.js'
import {routeGet, rootRoutes} from '../../src/lab/network.js'
import {SshError} from '../../src/ssh/errors.js'
import {Fleet} from '../../src/ssh/fleet.js'
import {fingerprint} from '../../src/ssh/known-hosts.js'

const run = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '../..')
const BIN = path.join(ROOT, 'bin/run.js')

let work: string
let labConfig: string
/** The copy of the lab inventory the tests use (own folder, own known_hosts). */
let loaded: LoadedInventory
let webNames: string[]

async function cli(args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  try {
    const r = await run('node', [BIN, ...args], {env: {...process.env, NO_COLOR: '1'}, maxBuffer: 16 * 1024 * 1024})
    return {code: 0, stdout: r.stdout, stderr: r.stderr}
  } catch (error) {
    const e = error as {code?: number; stdout?: string; stderr?: string}
    return {code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
  }
}

/**
 * Write a copy of the lab inventory into its own folder, with the operator key as an absolute
 * path and `edit` applied; returns its path. Each copy has its own (empty) known_hosts.
 */
function inventoryCopy(name: string, edit: (doc: ReturnType<typeof parseDocument>) => void = () => {}): string {
  const dir = path.join(work, name)
  execFileSync('mkdir', ['-p', dir])
  const doc = parseDocument(readFileSync(labConfig, 'utf8'))
  const key = doc.getIn(['ssh', 'privateKey']) as string
  doc.setIn(['ssh', 'privateKey'], path.resolve(path.dirname(labConfig), key))
  edit(doc)
  const file = path.join(dir, 'infra.yaml')
  writeFileSync(file, doc.toString())
  return file
}

/** The fingerprint of a lab host's ed25519 host key, read on the host itself (not over SSH). */
async function hostFingerprint(host: string): Promise<string> {
  const r = await labExec(host, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')
  return r.stdout.split(' ')[1]
}

beforeAll(async () => {
  labConfig = (inject as (key: string) => unknown)('labConfig') as string
  work = mkdtempSync(path.join(tmpdir(), 'infs-labssh-'))
  loaded = await loadInventory(inventoryCopy('main'))
  webNames = hostsOf(loaded.inventory)
    .filter((h) => h.role === 'web')
    .map((h) => h.name)
  if (!existsSync(path.join(ROOT, 'dist/commands/exec.js'))) execFileSync('npm', ['run', 'build'], {cwd: ROOT, stdio: 'ignore'})
})

afterAll(() => {
  if (work) rmSync(work, {recursive: true, force: true})
})

describe('commands through the bastion', () => {
  it('infra exec runs on every web node and returns its hostname (CLI, --json)', async () => {
    const r = await cli(['exec', 'web', '-c', loaded.path, '--json', '--', 'hostname'])
    expect(r.code, r.stderr).toBe(0)
    const rows = JSON.parse(r.stdout) as {host: string; code: number; stdout: string; stderr: string}[]
    expect(rows.map((x) => x.host)).toEqual(webNames)
    for (const row of rows) {
      expect(row.code).toBe(0)
      expect(row.stdout.trim()).toBe(row.host)
    }
    // First use pinned every host it met (the bastion too), in known_hosts beside the inventory.
    for (const h of hostsOf(loaded.inventory)) {
      const found = execFileSync('ssh-keygen', ['-F', h.address, '-f', loaded.knownHostsPath], {encoding: 'utf8'})
      expect(found, h.name).toContain(`${h.name},${h.address} ssh-ed25519 `)
    }
  })

  it('infra exec prints each line with its host as prefix, and hosts list shows the real fingerprints', async () => {
    const r = await cli(['exec', 'all', '-c', loaded.path, '--', 'hostname'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('') // every key was pinned by the previous test: nothing new to say
    const width = Math.max(...hostsOf(loaded.inventory).map((h) => h.name.length))
    for (const h of hostsOf(loaded.inventory)) expect(r.stdout).toContain(`${h.name.padEnd(width)} | ${h.name}\n`)

    const list = await cli(['hosts', 'list', '-c', loaded.path, '--json'])
    expect(list.code).toBe(0)
    const hosts = JSON.parse(list.stdout) as {name: string; fingerprint: string | null}[]
    for (const h of hosts) expect(h.fingerprint, h.name).toBe(await hostFingerprint(h.name))
    // ssh-keygen -lf reads the file and prints the same fingerprints.
    const listed = execFileSync('ssh-keygen', ['-lf', loaded.knownHostsPath], {encoding: 'utf8'})
    for (const h of hosts) expect(listed).toContain(`${h.fingerprint} ${h.name},`)
  })

  it('the Fleet API reaches every web node through the bastion (the node sees the bastion as client)', async () => {
    const fleet = Fleet.open(loaded)
    try {
      const results = await fleet.forEach((c) => c.exec('hostname; echo "$SSH_CONNECTION"'), {hosts: webNames})
      for (const [name, r] of results) {
        expect(r.ok, name).toBe(true)
        if (!r.ok) continue
        const [host, conn] = r.value.stdout.trim().split('\n')
        expect(host).toBe(name)
        // SSH_CONNECTION = client address, client port, server address, server port.
        expect(conn.split(' ')[0]).toBe(loaded.inventory.bastion.privateAddress)
        expect(conn.split(' ')[2]).toBe(fleet.host(name).address)
      }
    } finally {
      await fleet.close()
    }
  })

  it('infra ssh HOST -- CMD runs one command and passes its exit status', async () => {
    const r = await cli(['ssh', webNames[0], '-c', loaded.path, '--', 'hostname; exit 3'])
    expect(r.code).toBe(3)
    expect(r.stdout).toBe(`${webNames[0]}\n`)
  })

  it('web nodes cannot be reached directly: this machine has no route to the private network', async () => {
    const network = loaded.inventory.bastion.privateNetwork!
    // No route of this machine (other than the default route) covers the private network,
    // and none goes through the lab link (`ip route`, which sends nothing).
    const routes = await rootRoutes()
    const covering = routes.filter((r) => r.dst && r.dst !== 'default' && !r.dst.includes(':') && overlaps(network, r.dst.includes('/') ? r.dst : `${r.dst}/32`))
    expect(covering).toEqual([])
    for (const h of hostsOf(loaded.inventory).filter((x) => x.role === 'web')) {
      const route = await routeGet(h.address)
      // Whatever the kernel would pick, it is not the lab's link: a direct packet could not reach the node.
      expect(route?.dev, h.name).not.toBe(ROOT_LINK)
    }
  })
})

describe('host key pinning', () => {
  it('a swapped host key is refused with both fingerprints; hosts forget lets the new key in', async () => {
    const node = webNames.at(-1)!
    // Make sure the current key is pinned in our copy.
    expect((await cli(['exec', node, '-c', loaded.path, '--', 'true'])).code).toBe(0)
    const oldFp = await hostFingerprint(node)
    await labExec(node, 'rm -rf /root/infs-hostkeys && mkdir /root/infs-hostkeys && cp -a /etc/ssh/ssh_host_* /root/infs-hostkeys/')
    try {
      await labExec(node, 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -q -A && systemctl restart ssh')
      const newFp = await hostFingerprint(node)
      expect(newFp).not.toBe(oldFp)

      // Through the API: a typed error with both fingerprints and the way out.
      const fleet = Fleet.open(loaded)
      const err = await fleet.connect(node).catch((e: unknown) => e)
      await fleet.close()
      expect(err).toBeInstanceOf(SshError)
      expect((err as SshError).kind).toBe('hostkey-changed')
      expect((err as SshError).message).toContain(`pinned ssh-ed25519 ${oldFp}`)
      expect((err as SshError).message).toContain(`presented ssh-ed25519 ${newFp}`)

      // Through the CLI: exit 1, the message and the command to accept the change.
      const refused = await cli(['exec', node, '-c', loaded.path, '--', 'hostname'])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain('has CHANGED')
      expect(refused.stderr).toContain(oldFp)
      expect(refused.stderr).toContain(newFp)
      expect(refused.stderr).toContain(`infra hosts forget ${node}`)
      expect(refused.stdout).toBe('')

      const forget = await cli(['hosts', 'forget', node, '-c', loaded.path])
      expect(forget.code).toBe(0)
      expect(forget.stderr).toContain(oldFp)
      const again = await cli(['exec', node, '-c', loaded.path, '--json', '--', 'hostname'])
      expect(again.code, again.stderr).toBe(0)
      expect(JSON.parse(again.stdout)[0].stdout).toBe(`${node}\n`)
      const list = JSON.parse((await cli(['hosts', 'list', '-c', loaded.path, '--json'])).stdout) as {name: string; fingerprint: string}[]
      expect(list.find((h) => h.name === node)!.fingerprint).toBe(newFp)
    } finally {
      await labExec(node, 'rm -f /etc/ssh/ssh_host_* && cp -a /root/infs-hostkeys/ssh_host_* /etc/ssh/ && rm -rf /root/infs-hostkeys && systemctl restart ssh')
    }
    expect(await hostFingerprint(node)).toBe(oldFp)
  })

  it('hosts forget with an unknown name exits 2', async () => {
    const r = await cli(['hosts', 'forget', 'nosuchhost', '-c', loaded.path])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('unknown host "nosuchhost"')
  })
})

describe('errors', () => {
  it('bastion down: every web node reports the bastion, after one timeout, not one per node', async () => {
    // A closed port on the bastion's public address: the lab stays as it is.
    const file = inventoryCopy('down', (doc) => {
      doc.setIn(['ssh', 'port'], 2)
      doc.setIn(['ssh', 'connectTimeout'], '3s')
      doc.setIn(['ssh', 'parallel'], 1)
    })
    const t = Date.now()
    const r = await cli(['exec', 'all', '-c', file, '--json', '--', 'hostname'])
    const elapsed = Date.now() - t
    expect(r.code).toBe(1)
    const rows = JSON.parse(r.stdout) as {host: string; code: number | null; error?: {kind: string; message: string}}[]
    const bastion = rows[0]
    expect(['unreachable', 'timeout']).toContain(bastion.error?.kind)
    expect(bastion.error?.message).toContain(`${loaded.inventory.bastion.publicAddress}:2`)
    for (const row of rows.slice(1)) {
      expect(row.code).toBeNull()
      expect(row.error?.kind).toBe('bastion-down')
      expect(row.error?.message).toBe(`bastion ${loaded.inventory.bastion.name} is down: ${bastion.error?.message}`)
    }
    // One at a time (parallel: 1), yet about one connect timeout in all.
    expect(elapsed).toBeLessThan(3000 * 2 + 2000)
  })

  it('an unreachable web node: the error names its address and the timeout', async () => {
    // An address of the lab's private network that no host has: only the bastion sends to it.
    const file = inventoryCopy('unreachable', (doc) => {
      doc.setIn(['web', 'nodes', 0, 'address'], '10.42.0.250')
      doc.setIn(['ssh', 'connectTimeout'], '2s')
    })
    const r = await cli(['exec', webNames[0], '-c', file, '--json', '--', 'hostname'])
    expect(r.code).toBe(1)
    const [row] = JSON.parse(r.stdout) as {host: string; error?: {kind: string; message: string}}[]
    expect(row.error?.kind).toBe('timeout')
    expect(row.error?.message).toBe(
      `unreachable: no answer from 10.42.0.250:22 through bastion ${loaded.inventory.bastion.name} within 2s (ssh.connectTimeout)`,
    )
  })

  it('a key the hosts do not know is refused with an auth error naming it', async () => {
    const file = inventoryCopy('wrongkey')
    const key = path.join(path.dirname(file), 'id_other')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
    const doc = parseDocument(readFileSync(file, 'utf8'))
    doc.setIn(['ssh', 'privateKey'], './id_other')
    writeFileSync(file, doc.toString())
    const wrong = await loadInventory(file)
    const r = await cli(['exec', 'all', '-c', file, '--json', '--', 'true'])
    expect(r.code).toBe(1)
    const rows = JSON.parse(r.stdout) as {host: string; error?: {kind: string; message: string; hint?: string}}[]
    const fp = fingerprint(Buffer.from(readFileSync(key + '.pub', 'utf8').split(' ')[1], 'base64'))
    const user = wrong.inventory.ssh.user
    expect(rows[0].error).toEqual({
      kind: 'auth',
      message: `${user}@${wrong.inventory.bastion.publicAddress}:22 refused key ./id_other (${fp})`,
      hint: expect.stringContaining(`ssh-keygen -y -f ${resolveFrom(wrong, './id_other')}`),
    })
    for (const row of rows.slice(1)) expect(row.error?.kind).toBe('bastion-down')
  })
})
