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
import {infra, ROOT} from './helpers.js'

const run = promisify(execFile)

let work: string
let labConfig: string
/** The copy of the lab inventory the tests use (own folder, own known_hosts). */
let loaded: LoadedInventory
let webNames: string[]

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
    const r = await infra(['exec', 'web', '--json', '--', 'hostname'], loaded.path)
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
    const r = await infra(['exec', 'all', '--', 'hostname'], loaded.path)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('') // every key was pinned by the previous test: nothing new to say
    const width = Math.max(...hostsOf(loaded.inventory).map((h) => h.name.length))
    for (const h of hostsOf(loaded.inventory)) expect(r.stdout).toContain(`${h.name.padEnd(width)} | ${h.name}\n`)

    const list = await infra(['hosts', 'list', '--json'], loaded.path)
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
    const r = await infra(['ssh', webNames[0], '--', 'hostname; exit 3'], loaded.path)
    expect(r.code).toBe(3)
    expect(r.stdout).toBe(`${webNames[0]}\n`)
  })

  it('web nodes cannot be reached directly: this machine has no route to the private network', async () => {
    const network = loaded.inventory.bastion.privateNetwork
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
    expect((await infra(['exec', node, '--', 'true'], loaded.path)).code).toBe(0)
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
      const refused = await infra(['exec', node, '--', 'hostname'], loaded.path)
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain('has CHANGED')
      expect(refused.stderr).toContain(oldFp)
      expect(refused.stderr).toContain(newFp)
      expect(refused.stderr).toContain(`infra hosts forget ${node}`)
      expect(refused.stdout).toBe('')

      const forget = await infra(['hosts', 'forget', node], loaded.path)
      expect(forget.code).toBe(0)
      expect(forget.stderr).toContain(oldFp)
      const again = await infra(['exec', node, '--json', '--', 'hostname'], loaded.path)
      expect(again.code, again.stderr).toBe(0)
      expect(JSON.parse(again.stdout)[0].stdout).toBe(`${node}\n`)
      const list = JSON.parse((await infra(['hosts', 'list', '--json'], loaded.path)).stdout) as {name: string; fingerprint: string}[]
      expect(list.find((h) => h.name === node)!.fingerprint).toBe(newFp)
    } finally {
      await labExec(node, 'rm -f /etc/ssh/ssh_host_* && cp -a /root/infs-hostkeys/ssh_host_* /etc/ssh/ && rm -rf /root/infs-hostkeys && systemctl restart ssh')
    }
    expect(await hostFingerprint(node)).toBe(oldFp)
  })

  it('infra hosts trust: the first contact must present the trusted fingerprint, then the full key is pinned', async () => {
    const file = inventoryCopy('trust')
    const known = path.join(path.dirname(file), 'known_hosts')
    const b = loaded.inventory.bastion
    const right = await hostFingerprint(b.name)
    const wrong = await hostFingerprint(webNames[0])
    expect((await infra(['hosts', 'trust', b.name, wrong], file)).code).toBe(0)
    const refused = await infra(['exec', b.name, '--', 'hostname'], file)
    expect(refused.code).toBe(1)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toContain(`presented host key ssh-ed25519 ${right}, which is not the fingerprint trusted with \`infra hosts trust ${b.name}\` (${wrong}`)
    expect(readFileSync(known, 'utf8')).not.toMatch(/ssh-ed25519 AAAA/)

    expect((await infra(['hosts', 'forget', b.name], file)).code).toBe(0)
    expect((await infra(['hosts', 'trust', b.name, right], file)).code).toBe(0)
    const ok = await infra(['exec', b.name, '--', 'hostname'], file)
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain(b.name)
    expect(ok.stderr).toContain(`${b.name}: pinned new host key ssh-ed25519 ${right} in ${known} (it matches the fingerprint trusted with \`infra hosts trust\`)`)
    const text = readFileSync(known, 'utf8')
    expect(text).toMatch(new RegExp(`^${b.name},${b.publicAddress.replaceAll('.', '\\.')} ssh-ed25519 `, 'm'))
    expect(text).not.toContain('#infra-trust')
  })

  it('hosts forget with an unknown name exits 2', async () => {
    const r = await infra(['hosts', 'forget', 'nosuchhost'], loaded.path)
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
    const r = await infra(['exec', 'all', '--json', '--', 'hostname'], file)
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
    const r = await infra(['exec', webNames[0], '--json', '--', 'hostname'], file)
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
    const r = await infra(['exec', 'all', '--json', '--', 'true'], file)
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

// --- sshd hardening and first contact (issue 13: items 4 and 12a) ------------------------------

/** What ssh-audit (Debian's 2.5.0) says about an SSH server: its batch output, parsed. */
interface Audit {
  banner?: string
  fails: string[]
  warns: string[]
  /** Host key algorithms offered, with the key size ssh-audit read (RSA). */
  keys: {algorithm: string; bits?: number}[]
  kex: string[]
  seconds: number
  raw: string
}

/**
 * Run ssh-audit against the bastion's public address (from the inventory), from this machine
 * over the lab link only: refused unless the route to it is the lab's link. It opens 14
 * connections in well under a second (one per host key type and per DH group exchange size it
 * probes). The bastion's firewall lets a burst of 30 new SSH connections from one address
 * through, then 1 a second (SSH_RATE): a third audit in a row is slowed to 6-9 s (dropped SYNs
 * are sent again) but still complete; `-t 10` leaves room for that.
 */
async function sshAudit(): Promise<Audit> {
  const address = loaded.inventory.bastion.publicAddress
  const route = await routeGet(address)
  if (route?.dev !== ROOT_LINK) throw new Error(`${address} is not reached over the lab link (${JSON.stringify(route)}): not auditing it`)
  const t = Date.now()
  // Exit status 3 whatever the result: 2.5.0 does not know OpenSSH's kex-strict-s-v00@openssh.com (Terrapin countermeasure).
  const r = await run('ssh-audit', ['-b', '-n', '-t', '10', '-p', String(loaded.inventory.ssh.port), address]).catch(
    (error: {stdout?: string; stderr?: string}) => ({stdout: error.stdout ?? '', stderr: error.stderr ?? ''}),
  )
  const a: Audit = {fails: [], warns: [], keys: [], kex: [], seconds: (Date.now() - t) / 1000, raw: r.stdout + r.stderr}
  for (const line of r.stdout.split('\n')) {
    const banner = /^\(gen\) banner: (.*)$/.exec(line)
    if (banner) a.banner = banner[1]
    const m = /^\((kex|key|enc|mac|gen|fin|rec|nfo)\) (\S+)(?: \((\d+)-bit\))? -- \[(\w+)\] (.*)$/.exec(line)
    if (!m) continue
    const [, kind, alg, bits, level, text] = m
    if (level === 'fail') a.fails.push(`${kind} ${alg}: ${text}`)
    if (level === 'warn') a.warns.push(`${kind} ${alg}: ${text}`)
    if (kind === 'key' && !a.keys.some((k) => k.algorithm === alg)) a.keys.push({algorithm: alg, bits: bits ? Number(bits) : undefined})
    if (kind === 'kex' && !a.kex.includes(alg)) a.kex.push(alg)
  }
  return a
}

describe('sshd as ssh-audit sees it, and the first contact (provision)', () => {
  const bastion = () => loaded.inventory.bastion.name
  const dropIn = '/etc/ssh/sshd_config.d/00-infra.conf'
  let hardened = false

  /**
   * The bastion as a host infra has not hardened yet: Debian's sshd settings (our drop-in removed)
   * and a 2048-bit RSA host key, as older images have. Its Ed25519 key stays what it was.
   */
  async function unharden(): Promise<void> {
    hardened = false
    await labExec(
      bastion(),
      `rm -f ${dropIn} /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub && ` +
        "ssh-keygen -q -t rsa -b 2048 -N '' -C root@bastion -f /etc/ssh/ssh_host_rsa_key && systemctl restart ssh",
    )
  }

  const rsaBits = async () => (await labExec(bastion(), 'ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub')).stdout.split(' ')[0]
  const logins = async (since: number) =>
    (await labExec(bastion(), `journalctl -u ssh --since @${since} -o cat | grep -c 'Accepted publickey' || true`)).stdout.trim()

  afterAll(async () => {
    // Leave the bastion hardened (a later provision of the lab's own inventory would do it too).
    if (!hardened) await infra(['provision', '--yes'], inventoryCopy('restore'))
  })

  it('a fingerprint in ssh.hostKeys that the bastion does not have: provision exits 1 before it logs in, and nothing changes', async () => {
    await unharden()
    const wrong = await hostFingerprint(webNames[0]) // a real fingerprint, of another host
    const file = inventoryCopy('hostkeys-wrong', (doc) => doc.setIn(['ssh', 'hostKeys'], doc.createNode({[bastion()]: [wrong]})))
    const seen = await hostFingerprint(bastion())
    const since = Math.floor(Date.now() / 1000) - 1
    const r = await infra(['provision', '--yes'], file)
    expect(r.code, r.stdout + r.stderr).toBe(1)
    const out = r.stdout + r.stderr
    expect(out).toContain(`${bastion()}: ${loaded.inventory.bastion.publicAddress}:22 presented host key ssh-ed25519 ${seen}, which is not in ssh.hostKeys.${bastion()}`)
    expect(out).toContain(wrong)
    expect(out).toContain(`If \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on ${bastion()}'s console prints ${seen}, put that fingerprint in ssh.hostKeys.${bastion()}`)
    // No login, so nothing ran: the drop-in is still absent, the weak RSA key still there, nothing pinned.
    expect(await logins(since)).toBe('0')
    expect((await labExec(bastion(), `test -e ${dropIn} && echo present || echo absent`)).stdout.trim()).toBe('absent')
    expect(await rsaBits()).toBe('2048')
    expect(existsSync(path.join(path.dirname(file), 'known_hosts'))).toBe(false)
  })

  it('the right fingerprints: provision pins them, replaces the 2048-bit RSA host key, keeps the Ed25519 pin; a re-run keeps the pins and changes nothing in sshd', async () => {
    await unharden()
    // Before: Debian's defaults, as ssh-audit sees them (this also proves the parser reads failures).
    const before = await sshAudit()
    expect(before.banner, before.raw).toMatch(/^SSH-2\.0-OpenSSH_9\.2/)
    expect(before.fails).toEqual(expect.arrayContaining([expect.stringMatching(/^key ecdsa-sha2-nistp256: using weak elliptic curves/)]))
    expect(before.keys).toContainEqual({algorithm: 'rsa-sha2-512', bits: 2048})
    console.log(`[ssh-audit] before: ${before.fails.length} failures, ${before.warns.length} warnings, ${before.seconds.toFixed(1)} s:\n  ${before.fails.join('\n  ')}`)

    const fps: Record<string, string[]> = {}
    for (const h of hostsOf(loaded.inventory)) fps[h.name] = [await hostFingerprint(h.name)]
    const file = inventoryCopy('hostkeys-right', (doc) => doc.setIn(['ssh', 'hostKeys'], doc.createNode(fps)))
    const known = path.join(path.dirname(file), 'known_hosts')
    rmSync(known, {force: true}) // a retry starts from no pin too
    const r = await infra(['provision', '--yes'], file)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    hardened = true
    expect(r.stderr).toContain(`${bastion()}: pinned new host key ssh-ed25519 ${fps[bastion()][0]} in ${known} (it matches ssh.hostKeys.${bastion()})`)
    expect(r.stderr).not.toContain('on first contact, unchecked')
    // Pinned: each host's Ed25519 key, exactly the one its console shows.
    for (const h of hostsOf(loaded.inventory)) {
      expect(execFileSync('ssh-keygen', ['-F', h.address, '-f', known], {encoding: 'utf8'}), h.name).toContain(`${h.name},${h.address} ssh-ed25519 `)
    }
    expect(await rsaBits()).toBe('3072')
    expect(await hostFingerprint(bastion())).toBe(fps[bastion()][0]) // never replaced

    // A re-run: the same pins match (no "host key changed", no new pin), and nothing about sshd or host keys changes.
    const again = await infra(['provision', '--yes', '--json'], file)
    expect(again.code, again.stderr).toBe(0)
    const result = JSON.parse(again.stdout) as {totalChanges: number; failed: string[]; hosts: {host: string; changes: string[]}[]}
    expect(result.failed).toEqual([])
    const changes = result.hosts.flatMap((h) => h.changes.map((c) => `${h.host}: ${c}`))
    if (changes.length > 0) console.log(`[provision] re-run changes: ${changes.join('; ')}`)
    expect(changes.filter((c) => /ssh/.test(c))).toEqual([])
    expect(again.stderr).not.toContain('pinned new host key')
    expect(await rsaBits()).toBe('3072')
  })

  it('ssh-audit from this machine against the bastion: 0 failures; Ed25519 and RSA (3072 bits) host keys only', async () => {
    expect(hardened).toBe(true)
    const a = await sshAudit()
    console.log(`[ssh-audit] after: ${a.fails.length} failures, ${a.warns.length} warnings, ${a.seconds.toFixed(1)} s:\n  ${a.warns.join('\n  ')}`)
    expect(a.banner, a.raw).toMatch(/^SSH-2\.0-OpenSSH_9\.2/)
    expect(a.fails, a.raw).toEqual([])
    expect(a.keys).toEqual([
      {algorithm: 'ssh-ed25519', bits: undefined},
      {algorithm: 'rsa-sha2-512', bits: 3072},
      {algorithm: 'rsa-sha2-256', bits: 3072},
    ])
    expect(a.kex.join(',')).not.toMatch(/nistp|sha1/)
    // What remains are warnings only: the post-quantum hybrid 2.5.0 calls experimental, and the
    // strict-kex marker it does not know.
    expect(a.warns.sort()).toEqual([
      'kex kex-strict-s-v00@openssh.com: unknown algorithm',
      'kex sntrup761x25519-sha512@openssh.com: using experimental algorithm',
    ])
  })
})
