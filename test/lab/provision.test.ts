/**
 * `infra provision` against the lab, from this machine as a client on the internet.
 * The lab (1 bastion + 2 active + 1 standby web nodes) is brought up once by global-setup.
 */
import {spawnSync} from 'node:child_process'
import {cp, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {BASTION_INTERNET_ADDRESS, INTERNET_SERVER_ADDRESS, labExec, labNetExec} from '../../src/lab/index.js'
import {infra, ROOT} from './helpers.js'

const DOMAIN = 'example.test'
/** The bastion's public address and web1's private address, read from the lab's inventory. */
let PUBLIC: string
let WEB1: string

let config: string
let dir: string

/** `infra exec HOST --json -- CMD` → that host's result. */
async function onHost(host: string, cmd: string): Promise<{code: number; stdout: string; stderr: string}> {
  const r = await infra(['exec', host, '--json', '--', cmd], config)
  const rows = JSON.parse(r.stdout) as {host: string; code: number; stdout: string; stderr: string}[]
  return rows.find((x) => x.host === host)!
}

/** curl from this machine to the bastion's public address (the lab's "internet"). */
function curl(args: string[]): {code: number; out: string} {
  const r = spawnSync('curl', ['-sS', '--max-time', '5', ...args], {encoding: 'utf8'})
  return {code: r.status ?? 1, out: r.stdout + r.stderr}
}

function headers(url: string, host = DOMAIN, port = url.startsWith('https') ? 443 : 80): {status: number; h: Record<string, string>} {
  const r = curl(['-k', '-o', '/dev/null', '-D', '-', '--resolve', `${host}:${port}:${PUBLIC}`, url])
  const lines = r.out.split(/\r?\n/)
  const status = Number(/HTTP\/[\d.]+ (\d+)/.exec(lines[0] ?? '')?.[1] ?? 0)
  const h: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  return {status, h}
}

/** A TLS handshake with a given protocol version; the client's security level is lowered so a refusal is the server's. */
function handshake(version: 'tls1' | 'tls1_1' | 'tls1_2' | 'tls1_3'): boolean {
  const args = ['s_client', '-connect', `${PUBLIC}:443`, '-servername', DOMAIN, `-${version}`]
  if (version === 'tls1' || version === 'tls1_1') args.push('-cipher', 'DEFAULT:@SECLEVEL=0')
  const r = spawnSync('openssl', args, {input: '', encoding: 'utf8', timeout: 10_000})
  return r.status === 0
}

beforeAll(async () => {
  config = inject('labConfig')
  dir = path.dirname(config)
  const inv = parse(await readFile(config, 'utf8'))
  PUBLIC = inv.bastion.publicAddress
  WEB1 = inv.web.nodes[0].address
})

describe('provision on a fresh lab', () => {
  let first: {code: number; stdout: string; stderr: string}

  beforeAll(async () => {
    first = await infra(['provision', '--yes', '--json'], config)
  })

  it('succeeds on every host', () => {
    const result = JSON.parse(first.stdout)
    expect(result.failed, first.stdout + first.stderr).toEqual([])
    expect(first.code).toBe(0)
    expect(result.hosts.map((h: {host: string}) => h.host)).toEqual(['bastion', 'web1', 'web2', 'web3'])
  })

  it('redirects HTTP to HTTPS on the apex, keeping path and query (301)', () => {
    const r = headers('http://example.test/x?y=1')
    expect(r.status).toBe(301)
    expect(r.h.location).toBe('https://example.test/x?y=1')
  })

  it('redirects the www alias to the apex over HTTPS and HTTP', () => {
    const s = headers('https://www.example.test/a?b=2', 'www.example.test')
    expect(s.status).toBe(301)
    expect(s.h.location).toBe('https://example.test/a?b=2')
    const p = headers('http://www.example.test/', 'www.example.test')
    expect(p.status).toBe(301)
    expect(p.h.location).toBe('https://example.test/')
  })

  it('serves HTTPS with HSTS from each active web node in turn, never from the standby', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const r = headers('https://example.test/')
      expect(r.status).toBe(200)
      expect(r.h['strict-transport-security']).toMatch(/max-age=(\d+)/)
      expect(Number(/max-age=(\d+)/.exec(r.h['strict-transport-security'])![1])).toBeGreaterThanOrEqual(31_536_000)
      seen.add(r.h['x-served-by'] ?? '?')
    }
    expect([...seen].sort()).toEqual(['web1', 'web2'])
  })

  it('refuses TLS 1.0 and 1.1 and accepts TLS 1.2 and 1.3', () => {
    expect(handshake('tls1')).toBe(false)
    expect(handshake('tls1_1')).toBe(false)
    expect(handshake('tls1_2')).toBe(true)
    expect(handshake('tls1_3')).toBe(true)
  })

  it('keeps web nodes unreachable from this machine, even with a route pinned through the bastion', () => {
    // No route: `ip route get` sends nothing.
    const route = spawnSync('ip', ['route', 'get', WEB1], {encoding: 'utf8'}).stdout
    expect(route).not.toContain(`via ${PUBLIC}`)
    // With a temporary /32 via the bastion on the lab link, the bastion's firewall must still refuse to forward.
    const link = spawnSync('ip', ['-o', 'route', 'get', PUBLIC], {encoding: 'utf8'}).stdout.match(/dev (\S+)/)![1]
    spawnSync('ip', ['route', 'add', `${WEB1}/32`, 'via', PUBLIC, 'dev', link])
    try {
      const r = spawnSync('curl', ['-sS', '--interface', link, '--connect-timeout', '2', '--max-time', '3', `http://${WEB1}/`], {encoding: 'utf8'})
      expect(r.status).not.toBe(0)
    } finally {
      spawnSync('ip', ['route', 'del', `${WEB1}/32`, 'via', PUBLIC, 'dev', link])
    }
  })

  it('lets only the bastion reach a web node: the web, metrics and SSH ports refuse another web node', async () => {
    const fromBastion = await onHost('bastion', `curl -s -o /dev/null -w "%{http_code}" --max-time 3 http://${WEB1}/healthz`)
    expect(fromBastion.stdout).toBe('200')
    for (const port of [80, 22, 9100]) {
      const r = await onHost('web2', `nc -z -w 2 ${WEB1} ${port} && echo open || echo closed`)
      expect(r.stdout.trim(), `port ${port}`).toBe('closed')
    }
  })

  it('lets web nodes reach the internet only through the bastion (NAT masquerade)', async () => {
    // The lab's "internet server" has no route back to the private network: an answer proves NAT.
    expect((await labExec('web1', `ping -c1 -W2 ${INTERNET_SERVER_ADDRESS}`, {allowFail: true})).code).toBe(0)
    // ...and what the server sees is the bastion's address, never the node's private one.
    const seen = labNetExec('internet', ['timeout', '5', 'socat', '-u', 'TCP-LISTEN:8088,reuseaddr', 'SYSTEM:echo $SOCAT_PEERADDR >&2'], {allowFail: true})
    await new Promise((r) => setTimeout(r, 300))
    await labExec('web1', `echo hi | nc -w 2 ${INTERNET_SERVER_ADDRESS} 8088`, {allowFail: true})
    const r = await seen
    expect(r.stderr.trim()).toBe(BASTION_INTERNET_ADDRESS)
  })

  it('keeps the standby node in maintenance with its web service stopped', async () => {
    const state = await onHost('bastion', "echo 'show servers state web' | socat stdio /run/haproxy/admin.sock")
    const line = state.stdout.split('\n').find((l) => / web3 /.test(l))
    expect(line, state.stdout).toBeDefined()
    const adminState = Number(line!.split(' ')[6])
    expect(adminState & 0x01).toBe(1)
    const nginx = await onHost('web3', 'systemctl is-active nginx')
    expect(nginx.stdout.trim()).not.toBe('active')
  })

  it('hardens sshd on every host (effective config)', async () => {
    const r = await infra(['exec', 'all', '--json', '--', "sshd -T | grep -E '^(passwordauthentication|permitrootlogin|kbdinteractiveauthentication) '"], config, {exit: 0})
    for (const row of JSON.parse(r.stdout)) {
      expect(row.stdout, row.host).toContain('passwordauthentication no')
      expect(row.stdout, row.host).toContain('permitrootlogin without-password')
      expect(row.stdout, row.host).toContain('kbdinteractiveauthentication no')
    }
  })

  it('a second provision changes nothing and says so', async () => {
    const again = await infra(['provision', '--yes'], config, {exit: 0})
    expect(again.stderr).toMatch(/0 changes on 4 hosts/)
  })
})

describe('templates the operator edits', () => {
  const overrides = () => path.join(dir, 'templates')
  afterAll(async () => {
    await rm(overrides(), {recursive: true, force: true})
    await infra(['provision', '--yes'], config)
  })

  it('--dry-run shows exactly the edited template diff and changes nothing', async () => {
    await mkdir(path.join(overrides(), 'nginx'), {recursive: true})
    const index = path.join(ROOT, 'src/templates/nginx/index.html.hbs')
    await cp(index, path.join(overrides(), 'nginx/index.html.hbs'))
    const text = await readFile(path.join(overrides(), 'nginx/index.html.hbs'), 'utf8')
    await writeFile(path.join(overrides(), 'nginx/index.html.hbs'), text + '<!-- edited by the test -->\n')
    const before = await onHost('web1', 'sha256sum /var/www/infra/index.html')
    const plan = await infra(['provision', '--dry-run'], config, {exit: 0})
    expect(plan.stdout).toContain('+<!-- edited by the test -->')
    // exactly that change: one file on each web node, nothing on the bastion
    expect(plan.stdout.match(/^\+\+\+ /gm)?.length).toBe(3)
    expect(plan.stdout).not.toContain('# bastion')
    const after = await onHost('web1', 'sha256sum /var/www/infra/index.html')
    expect(after.stdout).toBe(before.stdout)
    await rm(path.join(overrides(), 'nginx'), {recursive: true, force: true})
  })

  it('a template that breaks HAProxy is refused by haproxy -c, nothing is reloaded, HTTPS keeps answering', async () => {
    await mkdir(path.join(overrides(), 'haproxy'), {recursive: true})
    const src = await readFile(path.join(ROOT, 'src/templates/haproxy/haproxy.cfg.hbs'), 'utf8')
    await writeFile(path.join(overrides(), 'haproxy/haproxy.cfg.hbs'), src + '\nbackend broken\n    this-is-not-a-directive\n')
    const pid = await onHost('bastion', 'systemctl show -p MainPID --value haproxy')
    const r = await infra(['provision', '--yes', '--host', 'bastion'], config)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/haproxy\.cfg failed validation/)
    expect(r.stderr).toMatch(/this-is-not-a-directive/)
    const live = await onHost('bastion', 'grep -c this-is-not-a-directive /etc/haproxy/haproxy.cfg || true')
    expect(live.stdout.trim()).toBe('0')
    expect((await onHost('bastion', 'systemctl show -p MainPID --value haproxy')).stdout).toBe(pid.stdout)
    expect(headers('https://example.test/').status).toBe(200)
    await rm(path.join(overrides(), 'haproxy'), {recursive: true, force: true})
  })

  it('a firewall change that would cut SSH is reverted by itself and reported', async () => {
    await mkdir(path.join(overrides(), 'nftables'), {recursive: true})
    const src = await readFile(path.join(ROOT, 'src/templates/nftables/web.nft.hbs'), 'utf8')
    // Drop new SSH connections before anything else accepts them (established ones survive).
    const cut = src.replace(/(iif lo accept\n)/, '$1        tcp dport 22 ct state new drop\n')
    expect(cut).not.toBe(src)
    await writeFile(path.join(overrides(), 'nftables/web.nft.hbs'), cut)
    const r = await infra(['provision', '--yes', '--host', 'web2', '--confirm-timeout', '10s', '--json'], config)
    expect(r.code).toBe(1)
    const web2 = JSON.parse(r.stdout).hosts[0]
    expect(web2.reverted).toBe(true)
    expect(web2.error).toMatch(/reverted automatically/)
    const rules = await onHost('web2', 'nft list ruleset | grep -c "tcp dport 22 ct state new drop" || true')
    expect(rules.stdout.trim()).toBe('0')
    expect((await onHost('web2', 'echo ok')).stdout.trim()).toBe('ok')
    await rm(path.join(overrides(), 'nftables'), {recursive: true, force: true})
  })
})

describe('a first contact (no known_hosts beside the inventory yet)', () => {
  const fresh = () => path.join(dir, 'first-contact')
  afterAll(async () => {
    await rm(fresh(), {recursive: true, force: true})
    await infra(['provision', '--yes'], config)
  })

  it("pins every host and seeds the bastion agents' known_hosts in the same run: the next provision changes nothing", async () => {
    await mkdir(fresh(), {recursive: true})
    const copy = path.join(fresh(), 'infra.yaml')
    // The same inventory in another folder: its key path made absolute, no known_hosts beside it.
    const doc = parse(await readFile(config, 'utf8'))
    doc.ssh.privateKey = path.resolve(dir, doc.ssh.privateKey)
    await writeFile(copy, stringify(doc))
    const run = (args: string[]) => infra(args, copy)
    const first = await run(['provision', '--yes'])
    expect(first.code, first.stderr).toBe(0)
    // Every host was met for the first time, and the message says how to check each key.
    expect(first.stderr.match(/pinned new host key ssh-ed25519 SHA256:/g)?.length).toBe(4)
    expect(first.stderr).toContain('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')
    const agents = await onHost('bastion', 'cat /var/lib/infra/agent/known_hosts')
    expect(agents.stdout).not.toMatch(/not pinned yet/)
    const second = await run(['provision', '--yes'])
    expect(second.code, second.stderr).toBe(0)
    expect(second.stderr).toMatch(/0 changes on 4 hosts/)
  })
})

