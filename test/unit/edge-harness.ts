/**
 * A throwaway network namespace (`inft-<pid>-<tag>`) running the rendered HAProxy config in front
 * of a tiny Node backend (HTTP echo of the request headers, /healthz, and a WebSocket echo), for
 * the edge tests. Client addresses live on the namespace's loopback; curl binds to one of them
 * with --interface. Nothing leaves the namespace.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import net from 'node:net'

import type {Inventory} from '../../src/inventory/schema.js'
import {desiredState, type HostPaths, type RenderContext} from '../../src/roles/render.js'
import {context, hostsByName, requireTool, run, tempDir, until, writeInside} from './render-helpers.js'

export {until} from './render-helpers.js'

export const BACKEND = `
import http from 'node:http'
import crypto from 'node:crypto'
const [addr, port] = process.argv.slice(2)
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200, {'content-type': 'text/plain'}); res.end('ok'); return }
  res.writeHead(200, {'content-type': 'application/json', 'x-served-by': 'backend'})
  res.end(JSON.stringify({method: req.method, url: req.url, headers: req.headers}))
})
server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n')
  socket.on('data', (d) => socket.write(d))
})
server.listen(Number(port), addr)
`

export interface Harness {
  ns: string
  dir: string
  paths: Partial<HostPaths>
  /** HAProxy's log lines so far (the config's syslog target is replaced by stderr). */
  log(): string
  cli(command: string): Promise<string>
  reload(): Promise<void>
  inNs(argv: string[]): {code: number; output: string}
  /** curl inside the namespace from a client address; returns the status codes, one per URL. */
  codes(from: string, urls: string[], extra?: string[]): number[]
  /** One request: status, headers (lowercase names), body. */
  request(from: string, url: string, extra?: string[]): {status: number; headers: Record<string, string>; body: string; raw: string}
  stop(): void
}

function killNamespace(name: string): void {
  for (let i = 0; i < 20; i++) {
    const pids = (spawnSync('ip', ['netns', 'pids', name], {encoding: 'utf8'}).stdout ?? '').split('\n').filter(Boolean)
    if (pids.length === 0) break
    for (const pid of pids) {
      try {
        process.kill(Number(pid), i < 5 ? 'SIGTERM' : 'SIGKILL')
      } catch {}
    }
    spawnSync('sleep', ['0.1'])
  }
  run(['ip', 'netns', 'del', name])
}

/** Namespaces of this harness left by a run that died (its pid is gone). */
function cleanStale(tag: string): void {
  const list = spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'}).stdout ?? ''
  for (const name of list.split('\n').map((l) => l.split(' ')[0]!)) {
    const m = new RegExp(`^inft-(\\d+)-${tag}$`).exec(name)
    if (!m) continue
    try {
      process.kill(Number(m[1]), 0)
      continue
    } catch {}
    killNamespace(name)
  }
}

/**
 * Start HAProxy with the bastion's rendered files and one backend per active web node, in a new
 * namespace holding the inventory's addresses plus `clients`.
 */
export async function startEdge(
  tag: string,
  inv: Inventory,
  clients: string[],
  extra: Partial<RenderContext> = {},
  opts: {
    /** Change the rendered haproxy.cfg before HAProxy starts (e.g. a low maxconn, to make starvation observable). */
    patchConfig?: (cfg: string) => string
  } = {},
): Promise<Harness> {
  for (const [bin, pkg] of [['haproxy', 'haproxy'], ['curl', 'curl'], ['socat', 'socat']]) requireTool(bin!, pkg!)
  cleanStale(tag)
  const ns = `inft-${process.pid}-${tag}`
  const dir = tempDir(`infra-${tag}-`)
  const children: ChildProcess[] = []
  const inNs = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv])
  run(['ip', 'netns', 'del', ns])
  const add = run(['ip', 'netns', 'add', ns])
  if (add.code !== 0) throw new Error(`ip netns add: ${add.output}`)
  inNs(['ip', 'link', 'set', 'lo', 'up'])
  for (const a of new Set([inv.bastion.publicAddress, inv.bastion.privateAddress, ...inv.web.nodes.map((n) => n.address), ...clients])) {
    const r = inNs(['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo'])
    if (r.code !== 0) throw new Error(`ip addr add ${a}: ${r.output}`)
  }
  let log = ''
  const start = (argv: string[], name: string, onErr?: (s: string) => void) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: ['ignore', 'ignore', 'pipe']})
    child.stderr!.on('data', (d) => (onErr ? onErr(String(d)) : undefined))
    child.on('exit', (code) => {
      if (code && !child.killed) console.error(`${name} exited ${code}`)
    })
    children.push(child)
    return child
  }
  writeFileSync(`${dir}/backend.mjs`, BACKEND)
  for (const node of inv.web.nodes.filter((n) => !n.standby)) start([process.execPath, `${dir}/backend.mjs`, node.address, String(inv.web.port)], `backend ${node.name}`)

  const paths: Partial<HostPaths> = {
    haproxyConfig: `${dir}/haproxy.cfg`,
    haproxyCertDir: `${dir}/certs`,
    haproxyErrorDir: `${dir}/errors`,
    haproxyStateFile: `${dir}/server-state`,
    haproxyAdminSocket: `${dir}/admin.sock`,
    haproxySaveState: `${dir}/save-state`,
    haproxyDropIn: `${dir}/haproxy-dropin.conf`,
    haproxyChroot: null,
  }
  const hosts = hostsByName(inv)
  writeInside(dir, desiredState(context(inv, {paths, ...extra}), hosts[inv.bastion.name]!).files)
  // Logs to stderr (captured here) instead of the machine's syslog.
  const cfg = readFileSync(`${dir}/haproxy.cfg`, 'utf8')
    .replace(/^ {4}log \/dev\/log local0$/m, '    log stderr format raw local0 info')
    .replace(/^ {4}log \/dev\/log local1 notice\n/m, '')
  writeFileSync(`${dir}/haproxy.cfg`, opts.patchConfig ? opts.patchConfig(cfg) : cfg)
  const haproxy = start(['haproxy', '-W', '-db', '-f', `${dir}/haproxy.cfg`], 'haproxy', (s) => (log += s))

  const cli = (command: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = net.connect({path: `${dir}/admin.sock`})
      let out = ''
      sock.on('connect', () => sock.end(`${command}\n`))
      sock.on('data', (d) => (out += String(d)))
      sock.on('end', () => resolve(out))
      sock.on('error', reject)
    })
  const pub = inv.bastion.publicAddress
  const domain = inv.domain
  const resolve = ['--resolve', `${domain}:443:${pub}`, '--resolve', `${domain}:80:${pub}`]
  const h: Harness = {
    ns,
    dir,
    paths,
    log: () => log,
    cli,
    async reload() {
      const before = (await cli('show info')).match(/^Pid: (\d+)/m)?.[1]
      process.kill(haproxy.pid!, 'SIGUSR2')
      await until('a new worker', async () => {
        const pid = (await cli('show info')).match(/^Pid: (\d+)/m)?.[1]
        return pid && pid !== before ? pid : undefined
      })
    },
    inNs,
    codes(from, urls, extra = []) {
      const r = inNs(['curl', '-sk', '--max-time', '10', '--interface', from, ...resolve, ...extra, ...urls.flatMap((u) => ['-o', '/dev/null', '-w', '%{http_code}\\n', u])])
      return r.output.trim().split('\n').map(Number)
    },
    request(from, url, extra = []) {
      const r = inNs(['curl', '-sk', '-i', '--max-time', '10', '--interface', from, ...resolve, ...extra, url])
      const [head = '', ...rest] = r.output.split(/\r\n\r\n/)
      const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0)
      const headers: Record<string, string> = {}
      for (const l of head.split('\r\n').slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      return {status, headers, body: rest.join('\r\n\r\n'), raw: r.output}
    },
    stop() {
      for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
      killNamespace(ns)
      run(['rm', '-rf', dir])
    },
  }
  await until('HAProxy sees the backends UP', async () => {
    const csv = await cli('show stat web 4 -1')
    const up = csv.split('\n').filter((l) => l.split(',')[17] === 'UP').length
    return up === inv.web.nodes.filter((n) => !n.standby).length ? true : undefined
  })
  return h
}
