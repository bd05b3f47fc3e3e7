/**
 * The rendered HAProxy and nginx configurations serving real traffic, inside a throwaway network
 * namespace (`inft-<pid>-live`, test/unit/edge-harness.ts) whose loopback carries the bastion's and web nodes' addresses:
 * redirects, HSTS, TLS versions, round robin without standby nodes, retries when a node dies,
 * error pages, private metrics, and server states kept across a reload by the save-state script.
 * Nothing leaves the namespace. Plus our sshd drop-in on loopback, with infra's own SSH client.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'

import {Client} from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Inventory} from '../../src/inventory/schema.js'
import {DEFAULT_PATHS, desiredState, type HostPaths, renderErrorPage} from '../../src/roles/render.js'
import {parseShowStat} from '../../src/host/haproxy.js'
import {type Harness, type Namespace, startEdge} from './edge-harness.js'
import {context, DOMAIN, hostsByName, inventory, requireTool, run, tempDir, until, writeInside} from './render-helpers.js'

const PUBLIC = '198.51.100.10'
const PRIVATE = '10.77.0.1'
const inv = inventory({
  domain: DOMAIN,
  aliases: ['www.example.com'],
  bastion: {publicAddress: PUBLIC, privateAddress: PRIVATE},
  web: {
    healthCheck: {interval: '1s', fall: 2, rise: 1},
    timeout: '2s',
    nodes: [
      {name: 'web1', address: '10.77.0.11'},
      {name: 'web2', address: '10.77.0.12'},
      {name: 'web3', address: '10.77.0.13', standby: true},
    ],
  },
})
const SORRY = '<!doctype html><title>Back soon</title><h1>Back soon</h1>\n'

let h: Harness
let dir: string

/** What `systemctl reload haproxy` does after validation: USR2 to the master; wait for the new worker. */
const reload = () => h.reload()
/** One command on HAProxy's runtime API (the socket file is reachable from here). */
const cli = (command: string) => h.cli(command)
const inNs = (argv: string[]) => h.inNs(argv)

async function statuses(): Promise<Record<string, string>> {
  return Object.fromEntries(parseShowStat(await cli('show stat web 4 -1')).map((r) => [r.server, r.status]))
}

function curl(args: string[]) {
  return inNs(['curl', '-sS', '--max-time', '5', ...args])
}

/** GET https://<name>/<path> with the name resolved to the bastion; returns status, headers, body. */
function get(url: string, extra: string[] = []) {
  const host = new URL(url).hostname
  const r = curl(['-k', '-i', '--resolve', `${host}:443:${PUBLIC}`, '--resolve', `${host}:80:${PUBLIC}`, ...extra, url])
  const [head = '', ...rest] = r.output.split(/\r\n\r\n/)
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0)
  const headers = Object.fromEntries(
    head
      .split('\r\n')
      .slice(1)
      .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  )
  return {status, headers, body: rest.join('\r\n\r\n'), head, raw: r.output}
}

/** Wait until HAProxy sees both active nodes UP again (an earlier test may have taken one out). */
function activeNodesUp() {
  return until('web1 and web2 UP', async () => {
    const s = await statuses()
    return s.web1 === 'UP' && s.web2 === 'UP' ? s : undefined
  })
}

/**
 * Signal a web node's whole nginx: the master first (a master whose worker dies starts a new one),
 * then the workers it had.
 */
function signalNginx(node: string, signal: 'STOP' | 'CONT' | 'KILL'): void {
  const pid = Number(readFileSync(`${dir}/${node}/nginx.pid`, 'utf8'))
  spawnSync('sh', ['-c', `w=$(pgrep -P ${pid}); kill -${signal} ${pid}; kill -${signal} $w`])
}

/** The web nodes, standby included: each an nginx with the rendered site, on its own address. */
function nginxNodes(space: Namespace, root: string, fleet: Inventory): void {
  const hosts = hostsByName(fleet)
  for (const node of fleet.web.nodes) {
    const nd = `${root}/${node.name}`
    const paths: Partial<HostPaths> = {nginxSite: `${nd}/site.conf`, nginxLogDir: nd, webRoot: `${nd}/www`}
    writeInside(root, desiredState(context(fleet, {paths}), hosts[node.name]).files)
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${nd}/${t};`).join(' ')
    writeFileSync(
      `${nd}/nginx.conf`,
      `user root; worker_processes 1; pid ${nd}/nginx.pid; error_log ${nd}/error.log;\n` +
        `events { worker_connections 64; }\n` +
        `http { include /etc/nginx/mime.types; ${temp}\ninclude ${nd}/site.conf; }\n`,
    )
    space.start(['nginx', '-c', `${nd}/nginx.conf`, '-g', 'daemon off;'], `nginx ${node.name}`)
  }
}

describe('HAProxy and nginx serving the rendered configuration', () => {
  beforeAll(async () => {
    for (const [bin, pkg] of [['nginx', 'nginx'], ['openssl', 'openssl']]) requireTool(bin, pkg)
    // The bastion: HAProxy with the rendered config (its chroot as on a host), certificate, error pages and scripts.
    h = await startEdge('live', inv, [], {errorPageOverrides: {503: SORRY}}, {backends: nginxNodes, paths: {haproxyChroot: DEFAULT_PATHS.haproxyChroot}})
    dir = h.dir
    await until('web1 and web2 UP, web3 in maintenance', async () => {
      const s = await statuses()
      return s.web1 === 'UP' && s.web2 === 'UP' && s.web3 === 'MAINT' ? s : undefined
    })
  }, 30_000)

  afterAll(() => {
    // nginx and HAProxy masters stop their workers on SIGTERM; anything left in the namespace goes too.
    h?.stop()
  })

  it('port 80 answers 301 to https://<apex><path>?<query>, whatever the Host (port, case, alias)', () => {
    for (const host of ['example.com', 'EXAMPLE.com:80', 'www.example.com', PUBLIC]) {
      const r = curl(['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', `Host: ${host}`, `http://${PUBLIC}/a/b?x=1&y=2`])
      expect(r.output, host).toBe('301 https://example.com/a/b?x=1&y=2')
    }
  })

  it('port 443 serves the active nodes in turn over HTTP/2, with HSTS; never the standby node', () => {
    const seen: string[] = []
    for (let i = 0; i < 6; i++) {
      const r = get('https://example.com/')
      expect(r.status, r.raw).toBe(200)
      expect(r.head).toMatch(/^HTTP\/2 200/)
      expect(r.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains')
      expect(r.body).toContain(`<h1>${r.headers['x-served-by']}</h1>`)
      seen.push(r.headers['x-served-by'])
    }
    expect(new Set(seen)).toEqual(new Set(['web1', 'web2']))
    expect(seen.filter((s) => s === 'web1')).toHaveLength(3)
  })

  it('aliases on 443 go to the apex with path and query (HTTP/2 and HTTP/1.1, with a port)', () => {
    const h2 = get('https://www.example.com/p/q?z=9')
    expect(h2.status).toBe(301)
    expect(h2.headers.location).toBe('https://example.com/p/q?z=9')
    expect(h2.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains')
    const h1 = get('https://example.com/p?z=9', ['--http1.1', '-H', 'Host: WWW.Example.com:443'])
    expect(h1.status).toBe(301)
    expect(h1.headers.location).toBe('https://example.com/p?z=9')
  })

  it('speaks TLS 1.2 and 1.3 without session tickets, and refuses TLS 1.1 even to a client that allows it', () => {
    const sc = (args: string[]) => inNs(['sh', '-c', `openssl s_client -connect ${PUBLIC}:443 -servername example.com ${args.join(' ')} </dev/null`])
    const t12 = sc(['-tls1_2'])
    expect(t12.code, t12.output).toBe(0)
    expect(t12.output).toMatch(/Protocol\s*: TLSv1\.2/)
    expect(t12.output).not.toMatch(/TLS session ticket:/)
    expect(sc(['-tls1_3']).code).toBe(0)
    const t11 = sc(['-tls1_1', '-cipher', "'DEFAULT:@SECLEVEL=0'"])
    expect(t11.code).not.toBe(0)
    // The client really offered 1.1: the same client against a TLS 1.1 server would have succeeded.
    expect(t11.output).not.toMatch(/Cipher is (?!\(NONE\))/)
  })

  it('metrics and stats answer on the private address only', () => {
    const metrics = curl(['-w', '\n%{http_code}', `http://${PRIVATE}:8404/metrics`])
    expect(metrics.output).toMatch(/\n200$/)
    expect(metrics.output).toMatch(/^haproxy_server_status\{proxy="web",server="web1"/m)
    expect(curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${PRIVATE}:8404/stats`]).output).toBe('200')
    const outside = curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${PUBLIC}:8404/metrics`])
    expect(outside.code).not.toBe(0)
    expect(outside.output).toMatch(/^000curl: \(7\) Failed to connect/)
  })

  it('keeps the scaler\'s server states across a reload (save-state script), and only through it', async () => {
    expect(await cli('set server web/web3 state ready')).toBe('\n')
    expect(await cli('set server web/web1 state maint')).toBe('\n')
    await until('web3 UP', async () => ((await statuses()).web3 === 'UP' ? true : undefined))

    const save = run(['sh', `${dir}/save-state`])
    expect(save.code, save.output).toBe(0)
    const saved = readFileSync(`${dir}/server-state`, 'utf8')
    expect(saved.split('\n')[0]).toBe('1')
    expect(saved).toMatch(/ web 3 web3 /)

    await reload()
    await until('states kept', async () => {
      const s = await statuses()
      return s.web1 === 'MAINT' && s.web3 === 'UP' && s.web2 === 'UP' ? s : undefined
    })

    // Without a saved file, a reload falls back to the configuration: the dump is what kept them.
    rmSync(`${dir}/server-state`)
    await reload()
    await until('configuration states', async () => {
      const s = await statuses()
      return s.web1 === 'UP' && s.web3 === 'MAINT' ? s : undefined
    })

    // The script refuses to write an empty file when the socket does not answer.
    const broken = readFileSync(`${dir}/save-state`, 'utf8').replace(`${dir}/admin.sock`, `${dir}/nothing.sock`)
    writeFileSync(`${dir}/save-state-broken`, broken)
    const failed = run(['sh', `${dir}/save-state-broken`])
    expect(failed.code).not.toBe(0)
    expect(failed.output).toMatch(/no runtime API socket/)
  }, 30_000)

  it('a node that hangs mid-request: the request is retried on the other node after web.timeout (2s), not 30 s', async () => {
    await activeNodesUp()
    // Every nginx process of web1 stopped: its kernel still accepts connections, nothing answers.
    signalNginx('web1', 'STOP')
    try {
      const took: number[] = []
      for (let i = 0; i < 2; i++) {
        const t = Date.now()
        const r = get('https://example.com/', ['--max-time', '20'])
        took.push(Date.now() - t)
        expect(r.status, r.raw).toBe(200)
        expect(r.headers['x-served-by']).toBe('web2')
      }
      // Round robin sent one of the two to web1 (not yet marked down): it waited the 2 s timeout.
      expect(Math.max(...took)).toBeGreaterThanOrEqual(1900)
      expect(Math.max(...took)).toBeLessThan(6000)
    } finally {
      signalNginx('web1', 'CONT')
    }
  }, 30_000)

  it('retries on the other node when one dies, then takes the dead one out', async () => {
    await activeNodesUp()
    // A crash: workers and master killed at once, no graceful close.
    signalNginx('web2', 'KILL')
    const served: string[] = []
    for (let i = 0; i < 8; i++) {
      const r = get('https://example.com/')
      expect(r.status, r.raw).toBe(200)
      served.push(r.headers['x-served-by'])
    }
    expect(new Set(served)).toEqual(new Set(['web1']))
    await until('web2 DOWN', async () => ((await statuses()).web2?.startsWith('DOWN') ? true : undefined))
  }, 30_000)

  it('serves the user\'s 503 page (with HSTS) when no node is left, and the built-in page once it is restored and HAProxy reloads', async () => {
    await cli('set server web/web1 state maint')
    await cli('set server web/web3 state maint')
    const r = get('https://example.com/')
    expect(r.status).toBe(503)
    expect(r.body).toBe(SORRY)
    expect(r.headers['cache-control']).toBe('no-cache')
    expect(r.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains')

    const builtin = renderErrorPage(context(inv), 503)
    writeFileSync(`${dir}/errors/503.http`, builtin)
    expect(run(['sh', `${dir}/save-state`]).code).toBe(0)
    await reload()
    const after = get('https://example.com/')
    expect(after.status).toBe(503)
    expect(after.body).toBe(builtin.split('\r\n\r\n')[1])
    expect(after.body).toContain('<h2>Service unavailable</h2>')
    expect(after.headers['content-type']).toBe('text/html; charset=utf-8')
  }, 30_000)
})

describe('sshd with the rendered drop-in, reached by infra\'s own SSH client (ssh2) on loopback', () => {
  let sshdDir: string
  let sshd: ChildProcess | undefined
  let port: number

  beforeAll(async () => {
    requireTool('sshd', 'openssh-server')
    sshdDir = tempDir('infra-sshd-')
    port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    const d = sshdDir
    mkdirSync(`${d}/sshd_config.d`)
    run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', `${d}/host_ed25519`])
    run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', `${d}/client`])
    writeFileSync(`${d}/authorized_keys`, readFileSync(`${d}/client.pub`))
    const debian = readFileSync('/etc/ssh/sshd_config', 'utf8').replace('Include /etc/ssh/sshd_config.d/*.conf', `Include ${d}/sshd_config.d/*.conf`)
    // AuthorizedKeysFile first: the web drop-in sets its own (operator file + the agents' key file), and sshd keeps the first value.
    writeFileSync(
      `${d}/sshd_config`,
      `AuthorizedKeysFile ${d}/authorized_keys\n${debian}\nHostKey ${d}/host_ed25519\nListenAddress 127.0.0.1\nPort ${port}\nPidFile ${d}/sshd.pid\n` +
        `StrictModes no\nUsePAM no\n`,
    )
    const paths = {sshdConfig: `${d}/sshd_config`, sshdDropInDir: `${d}/sshd_config.d`, sshdDropIn: `${d}/sshd_config.d/00-infra.conf`}
    const file = desiredState(context(inv, {paths}), hostsByName(inv).web1).files.find((f) => f.path === paths.sshdDropIn)!
    writeFileSync(file.path, file.content)
    mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', `${d}/sshd_config`], {stdio: ['ignore', 'ignore', 'pipe']})
    await until('sshd listening', () => new Promise<true | undefined>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(undefined))
    }))
  }, 20_000)

  afterAll(() => {
    if (sshd && sshd.exitCode === null) sshd.kill('SIGTERM')
    if (sshdDir) rmSync(sshdDir, {recursive: true, force: true})
  })

  function connect(opts: {privateKey?: Buffer; password?: string}): Promise<{ok: boolean; error?: string; kex?: string}> {
    return new Promise((resolve) => {
      const c = new Client()
      let kex: string | undefined
      c.on('handshake', (n) => (kex = n.kex))
      c.on('ready', () => {
        c.end()
        resolve({ok: true, kex})
      })
      c.on('error', (e) => resolve({ok: false, error: e.message}))
      c.connect({host: '127.0.0.1', port, username: 'root', readyTimeout: 10_000, tryKeyboard: true, ...opts})
    })
  }

  it('accepts the operator key with a modern key exchange', async () => {
    const r = await connect({privateKey: readFileSync(`${sshdDir}/client`)})
    expect(r.error).toBeUndefined()
    expect(r.ok).toBe(true)
    expect(r.kex).toMatch(/^curve25519-sha256/)
  })

  it('refuses a password (no password or keyboard-interactive method is offered)', async () => {
    const r = await connect({password: 'hunter2'})
    expect(r.ok).toBe(false)
    expect(r.error).toMatch(/All configured authentication methods failed/)
  })
})

describe('sshd with the drop-in for ssh.user deploy: root only through a forced command on web nodes, never on the bastion (loopback)', () => {
  const deploy = inventory({...inv, ssh: {...inv.ssh, user: 'deploy'}})
  let d: string
  const procs: ChildProcess[] = []
  const ports: Record<'bastion' | 'web', number> = {bastion: 0, web: 0}

  async function freePort(): Promise<number> {
    return new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
  }

  beforeAll(async () => {
    requireTool('sshd', 'openssh-server')
    d = tempDir('infra-sshd-deploy-')
    run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', `${d}/host_ed25519`])
    for (const k of ['agent', 'plain']) run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', `${d}/${k}`])
    // root's keys: one with a forced command (as the agents' key in /etc/ssh/infra_agent_keys/root), one without.
    const pub = (k: string) => readFileSync(`${d}/${k}.pub`, 'utf8').trim()
    writeFileSync(`${d}/authorized_keys`, `command="echo forced",restrict ${pub('agent')}\n${pub('plain')}\n`)
    const debianMain = readFileSync('/etc/ssh/sshd_config', 'utf8')
    const h = hostsByName(deploy)
    for (const role of ['bastion', 'web'] as const) {
      const r = `${d}/${role}`
      mkdirSync(`${r}/sshd_config.d`, {recursive: true})
      ports[role] = await freePort()
      writeFileSync(
        `${r}/sshd_config`,
        `AuthorizedKeysFile ${d}/authorized_keys\n${debianMain.replace('Include /etc/ssh/sshd_config.d/*.conf', `Include ${r}/sshd_config.d/*.conf`)}\n` +
          `HostKey ${d}/host_ed25519\nListenAddress 127.0.0.1\nPort ${ports[role]}\nPidFile ${r}/sshd.pid\nStrictModes no\nUsePAM no\n`,
      )
      const paths = {sshdConfig: `${r}/sshd_config`, sshdDropInDir: `${r}/sshd_config.d`, sshdDropIn: `${r}/sshd_config.d/00-infra.conf`, sshHostKeyDir: r}
      const host = role === 'bastion' ? h.bastion : h.web1
      const file = desiredState(context(deploy, {paths}), host).files.find((f) => f.path === paths.sshdDropIn)!
      writeFileSync(file.path, file.content)
      mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
      procs.push(spawn('/usr/sbin/sshd', ['-D', '-e', '-f', paths.sshdConfig], {stdio: ['ignore', 'ignore', 'pipe']}))
      await until(`sshd (${role}) listening`, () => new Promise<true | undefined>((resolve) => {
        const s = net.connect(ports[role], '127.0.0.1', () => {
          s.destroy()
          resolve(true)
        })
        s.on('error', () => resolve(undefined))
      }))
    }
  }, 20_000)

  afterAll(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM')
    if (d) rmSync(d, {recursive: true, force: true})
  })

  /**
   * Log in as root with a key and run a command that leaves a mark: what it printed, or why it did
   * not run. (sshd refuses such a root login in its privileged monitor, after the unprivileged
   * child has already answered "success": the client sees the connection closed, and nothing ran.)
   */
  function asRoot(role: 'bastion' | 'web', key: string): Promise<{out?: string; error?: string}> {
    return new Promise((resolve) => {
      const c = new Client()
      let done = false
      const finish = (r: {out?: string; error?: string}) => {
        if (done) return
        done = true
        c.end()
        resolve(r)
      }
      c.on('ready', () => {
        c.exec(`touch ${d}/ran-${role}-${key}; id -un`, (err, ch) => {
          if (err) return finish({error: err.message})
          let out = ''
          ch.on('data', (x: Buffer) => (out += x.toString()))
          ch.stderr.on('data', (x: Buffer) => (out += x.toString()))
          ch.on('close', () => finish({out}))
        })
      })
      c.on('error', (e) => finish({error: e.message}))
      c.on('close', () => finish({error: 'connection closed'}))
      c.connect({host: '127.0.0.1', port: ports[role], username: 'root', readyTimeout: 10_000, privateKey: readFileSync(`${d}/${key}`)})
    })
  }

  const ran = (role: string, key: string) => existsSync(`${d}/ran-${role}-${key}`)

  it('web node: the agents key gets its forced command; a plain key runs nothing as root', async () => {
    expect(await asRoot('web', 'agent')).toEqual({out: 'forced\n'})
    expect(ran('web', 'agent')).toBe(false) // the forced command ran, not ours
    const plain = await asRoot('web', 'plain')
    expect(plain.out).toBeUndefined()
    expect(plain.error).toMatch(/All configured authentication methods failed|connection closed|ECONNRESET/)
    expect(ran('web', 'plain')).toBe(false)
  })

  it('bastion: root is refused, whatever the key', async () => {
    for (const key of ['agent', 'plain']) {
      expect((await asRoot('bastion', key)).error).toMatch(/All configured authentication methods failed/)
      expect(ran('bastion', key)).toBe(false)
    }
  })
})
