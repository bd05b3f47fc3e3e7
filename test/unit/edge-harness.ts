/**
 * Throwaway network namespaces (`inft-<pid>-<tag>`) for the tests that run real servers: the
 * rendered HAProxy config in front of the web nodes (by default a tiny Node backend: HTTP echo of
 * the request headers, /healthz, and a WebSocket echo; render-live.test.ts brings real nginx
 * nodes). Client addresses live on the namespace's loopback; curl binds to one of them with
 * --interface. Nothing leaves the namespace.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import net from 'node:net'

import type {Inventory} from '../../src/inventory/schema.js'
import {desiredState, type HostPaths, type RenderContext} from '../../src/roles/render.js'
import {context, haproxyPaths, hostsByName, requireTool, run, type RunResult, tempDir, until, writeInside} from './render-helpers.js'

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
      } catch {
        // gone already
      }
    }
    spawnSync('sleep', ['0.1'])
  }
  run(['ip', 'netns', 'del', name])
}

/** Namespaces of this tag left by a run that died (its pid is gone). */
function cleanStale(tag: string): void {
  const list = spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'}).stdout ?? ''
  for (const name of list.split('\n').map((l) => l.split(' ')[0])) {
    const m = new RegExp(`^inft-(\\d+)-${tag}$`).exec(name)
    if (!m) continue
    try {
      process.kill(Number(m[1]), 0)
      continue
    } catch {
      // its run is gone: clean up below
    }
    killNamespace(name)
  }
}

/** A throwaway network namespace with addresses on its loopback, and the processes started in it. */
export interface Namespace {
  ns: string
  /** Run a command inside the namespace (waits for it). */
  inNs: (argv: string[]) => RunResult
  /** Start a long-running process inside the namespace; `onErr` gets its stderr as it comes. */
  start(argv: string[], name: string, onErr?: (s: string) => void): ChildProcess
  /** Stop what was started, kill anything left in the namespace, delete it. */
  stop(): void
}

/**
 * A new namespace `inft-<pid>-<tag>` (one left by a dead run of the same tag is removed first),
 * its loopback up and carrying `addresses` (/32 each).
 */
export function throwawayNamespace(tag: string, addresses: Iterable<string> = []): Namespace {
  cleanStale(tag)
  const ns = `inft-${process.pid}-${tag}`
  const children: ChildProcess[] = []
  const inNs = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv])
  run(['ip', 'netns', 'del', ns])
  const add = run(['ip', 'netns', 'add', ns])
  if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.output}`)
  inNs(['ip', 'link', 'set', 'lo', 'up'])
  for (const a of new Set(addresses)) {
    const r = inNs(['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo'])
    if (r.code !== 0) throw new Error(`ip addr add ${a}: ${r.output}`)
  }
  return {
    ns,
    inNs,
    start(argv, name, onErr) {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: ['ignore', 'ignore', 'pipe']})
      let err = ''
      child.stderr.on('data', (d) => {
        err += String(d)
        onErr?.(String(d))
      })
      child.on('exit', (code) => {
        if (code && !child.killed) console.error(`${name} exited ${code}:\n${err}`)
      })
      children.push(child)
      return child
    },
    stop() {
      for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
      killNamespace(ns)
    },
  }
}

/** The bastion's HAProxy files under `dir` (no chroot: the edge files under `dir` stay readable at run time). */
export function edgePathsIn(dir: string): Partial<HostPaths> {
  return {...haproxyPaths(dir), haproxyDropIn: `${dir}/haproxy-dropin.conf`, haproxyChroot: null}
}

/** The default web nodes: BACKEND (an echo server) on each active node's address and web port. */
function echoBackends(space: Namespace, dir: string, inv: Inventory): void {
  writeFileSync(`${dir}/backend.mjs`, BACKEND)
  for (const node of inv.web.nodes.filter((n) => !n.standby)) space.start([process.execPath, `${dir}/backend.mjs`, node.address, String(inv.web.port)], `backend ${node.name}`)
}

export interface EdgeOptions {
  /** Change the rendered haproxy.cfg before HAProxy starts (e.g. a low maxconn, to make starvation observable). */
  patchConfig?: (cfg: string) => string
  /** Path overrides on top of edgePathsIn(dir) (e.g. the default chroot back). */
  paths?: Partial<HostPaths>
  /** Start the web nodes' servers instead of the echo backends (they must answer the health check). */
  backends?: (this: void, space: Namespace, dir: string, inv: Inventory) => void
}

/**
 * Start HAProxy with the bastion's rendered files and a backend per active web node (see
 * EdgeOptions.backends), in a new namespace holding the inventory's addresses plus `clients`.
 * Resolves once HAProxy sees every active node UP.
 */
export async function startEdge(tag: string, inv: Inventory, clients: string[], extra: Partial<RenderContext> = {}, opts: EdgeOptions = {}): Promise<Harness> {
  for (const [bin, pkg] of [['haproxy', 'haproxy'], ['curl', 'curl'], ['socat', 'socat']]) requireTool(bin, pkg)
  const space = throwawayNamespace(tag, [inv.bastion.publicAddress, inv.bastion.privateAddress, ...inv.web.nodes.map((n) => n.address), ...clients])
  const {ns, inNs} = space
  const dir = tempDir(`infra-${tag}-`)
  ;(opts.backends ?? echoBackends)(space, dir, inv)

  const paths: Partial<HostPaths> = {...edgePathsIn(dir), ...opts.paths}
  const hosts = hostsByName(inv)
  writeInside(dir, desiredState(context(inv, {paths, ...extra}), hosts[inv.bastion.name]).files)
  // Logs to stderr (captured here) instead of the machine's syslog.
  const cfg = readFileSync(`${dir}/haproxy.cfg`, 'utf8')
    .replace(/^ {4}log \/dev\/log local0$/m, '    log stderr format raw local0 info')
    .replace(/^ {4}log \/dev\/log local1 notice\n/m, '')
  writeFileSync(`${dir}/haproxy.cfg`, opts.patchConfig ? opts.patchConfig(cfg) : cfg)
  let log = ''
  const haproxy = space.start(['haproxy', '-W', '-db', '-f', `${dir}/haproxy.cfg`], 'haproxy', (s) => (log += s))

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
      space.stop()
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
