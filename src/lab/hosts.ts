import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import {createHostCgroups} from './cgroups.js'
import {mountsUnder} from './mounts.js'
import {routeGet} from './network.js'
import {run, sleep, SYSTEM_PATH} from './run.js'
import {hostDir} from './state.js'
import {LabHostPlan, ROOT_LINK, ROOT_PUBLIC_ADDRESS} from './topology.js'

export interface Layer {
  dir: string
  upper: string
  work: string
  merged: string
  log: string
}

/** The folder bind-mounted at the host's /var/lib/docker (removed with the host's folder at `lab down`). */
export function dockerDirOf(name: string): string {
  return path.join(hostDir(name), 'docker')
}

export function layerOf(name: string): Layer {
  const dir = hostDir(name)
  return {dir, upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), merged: path.join(dir, 'merged'), log: path.join(dir, 'console.log')}
}

/** Generate (once per inventory folder) and return the folder holding a host's SSH host keys (…/etc/ssh/ssh_host_*). */
export async function hostKeys(keyDir: string, host: string): Promise<string> {
  const prefix = path.join(keyDir, 'hosts', host)
  const sshDir = path.join(prefix, 'etc/ssh')
  mkdirSync(sshDir, {recursive: true, mode: 0o700})
  chmodSync(path.join(keyDir, 'hosts'), 0o700)
  // ssh-keygen -A creates whichever of the rsa, ecdsa and ed25519 keys is missing.
  await run(['ssh-keygen', '-A', '-f', prefix])
  return sshDir
}

/**
 * Mount the host's overlay (base image below, its own writable layer above) and, on a new layer,
 * give it its identity: hostname, machine-id, SSH host keys, the operator's key, role services.
 */
export async function prepareLayer(host: LabHostPlan, rootfs: string, operatorPub: string, keyDir: string): Promise<Layer> {
  const l = layerOf(host.name)
  for (const d of [l.upper, l.work, l.merged]) mkdirSync(d, {recursive: true})
  if (!mountsUnder(l.merged).includes(l.merged)) {
    await run(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${l.upper},workdir=${l.work}`, l.merged])
  }
  const marker = path.join(l.dir, 'identity.json')
  if (existsSync(marker)) return l
  const m = l.merged
  writeFileSync(path.join(m, 'etc/hostname'), `${host.name}\n`)
  writeFileSync(path.join(m, 'etc/hosts'), `127.0.0.1\tlocalhost\n127.0.1.1\t${host.name}\n::1\t\tlocalhost ip6-localhost ip6-loopback\n`)
  writeFileSync(path.join(m, 'etc/machine-id'), randomBytes(16).toString('hex') + '\n')
  const keys = await hostKeys(keyDir, host.name)
  for (const f of readdirSync(keys)) {
    if (!f.startsWith('ssh_host_')) continue
    const dest = path.join(m, 'etc/ssh', f)
    copyFileSync(path.join(keys, f), dest)
    chmodSync(dest, f.endsWith('.pub') ? 0o644 : 0o600)
  }
  const sshDir = path.join(m, 'root/.ssh')
  mkdirSync(sshDir, {recursive: true, mode: 0o700})
  chmodSync(sshDir, 0o700)
  writeFileSync(path.join(sshDir, 'authorized_keys'), operatorPub.trim() + '\n', {mode: 0o600})
  chmodSync(path.join(sshDir, 'authorized_keys'), 0o600)
  // All packages are in the image; each role runs only its own services. nginx holds port 80: never on the bastion.
  const off = host.role === 'bastion' ? ['nginx.service'] : ['haproxy.service']
  await run(['systemctl', `--root=${m}`, 'disable', ...off], {allowFail: true})
  await run(['systemctl', `--root=${m}`, 'enable', 'ssh.service'])
  writeFileSync(marker, JSON.stringify({name: host.name, role: host.role, createdAt: new Date().toISOString()}) + '\n')
  return l
}

/**
 * Boot the host: systemd-nspawn in its own session (this machine's PID 1 is not systemd), joined to
 * the host's cgroups before it starts, its console logged to a file. Returns the nspawn PID.
 */
export async function startHost(host: LabHostPlan, layer: Layer, cgroupBases: string[]): Promise<{pid: number; cgroups: string[]}> {
  const cgroups = await createHostCgroups(cgroupBases, host.netns)
  // nspawn creates this folder and refuses nothing, but a crashed run leaves it behind.
  rmSync(`/run/systemd/nspawn/propagate/${host.netns}`, {recursive: true, force: true})
  mkdirSync(dockerDirOf(host.name), {recursive: true, mode: 0o710})
  const logFd = openSync(layer.log, 'a')
  writeFileSync(logFd, `\n==== ${new Date().toISOString()} infra lab: booting ${host.name} ====\n`)
  const nspawnArgs = [
    '-D',
    layer.merged,
    `--machine=${host.netns}`,
    `--hostname=${host.name}`,
    '--register=no',
    '--keep-unit',
    `--network-namespace-path=/run/netns/${host.netns}`,
    '--link-journal=no',
    '--resolv-conf=off',
    '--timezone=off',
    '--console=read-only',
    // A VPS's root holds every capability: nftables needs CAP_NET_ADMIN, and dockerd and runc
    // need far more (mounts, namespaces, cgroups); nspawn's default set is not enough for them.
    '--capability=all',
    // nspawn's default filter blocks keyctl/add_key (runc uses them) and bpf (runc's device rules on cgroup v2).
    '--system-call-filter=@keyring bpf',
    // Docker's overlay2 cannot sit on the host's overlay root: its own folder on this machine's disk.
    `--bind=${dockerDirOf(host.name)}:/var/lib/docker`,
    '-b',
  ]
  // Join every cgroup first (so the container and everything it forks is accounted per host), then become nspawn.
  const script = 'for d in $INFRA_LAB_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 97; done; exec systemd-nspawn "$@"'
  const child = spawn('sh', ['-c', script, 'sh', ...nspawnArgs], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    // A cgroup v2 view inside the host (runc cannot use the read-only v1 controllers nspawn mounts);
    // this machine's side keeps its v1 accounting per host.
    env: {PATH: SYSTEM_PATH, TERM: 'dumb', LANG: 'C.UTF-8', INFRA_LAB_CGROUPS: cgroups.join(' '), SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1'},
  })
  child.unref()
  closeSync(logFd)
  if (!child.pid) throw new Error(`could not start systemd-nspawn for ${host.name}`)
  return {pid: child.pid, cgroups}
}

/**
 * Is `pid` this host's systemd-nspawn (or the wrapper shell about to become it)? Both carry the
 * nspawn arguments on their command line.
 */
export function isNspawnOf(pid: number, netns: string): boolean {
  if (!pid) return false
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    return cmd.includes(`--machine=${netns}`) && cmd.includes('--register=no')
  } catch {
    return false
  }
}

/** The container's PID 1 (as seen from this machine): the child of nspawn that is PID 1 in its own PID namespace. */
export function leaderPid(nspawnPid: number): number | undefined {
  let children: string[]
  try {
    children = readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8').split(' ').filter(Boolean)
  } catch {
    return undefined
  }
  for (const c of children) {
    try {
      const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${c}/status`, 'utf8'))?.[1].trim().split(/\s+/)
      if (nspid && nspid.length > 1 && nspid.at(-1) === '1') return Number(c)
    } catch {
      // exited
    }
  }
  return undefined
}

/**
 * Run a program inside a host (all its namespaces: mount, pid, net, uts, ipc, cgroup). With
 * `cgroups`, the program first joins those cgroups, so its CPU and memory count as the host's.
 */
export function execIn(leader: number, argv: string[], opts: {input?: string; timeoutMs?: number; allowFail?: boolean; cgroups?: string[]} = {}) {
  const {cgroups = [], ...runOpts} = opts
  const nsenter = ['nsenter', '-t', String(leader), '-a', '--', ...argv]
  const full =
    cgroups.length > 0
      ? ['sh', '-c', 'for d in $INFRA_LAB_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 97; done; exec "$@"', 'sh', ...nsenter]
      : nsenter
  return run(full, {
    ...runOpts,
    env: {PATH: SYSTEM_PATH, HOME: '/root', LANG: 'C.UTF-8', TERM: 'dumb', SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', INFRA_LAB_CGROUPS: cgroups.join(' ')},
  })
}

/** First line an SSH server sends, read over TCP; undefined when nothing answers within the timeout. */
export function readBannerLocal(host: string, port: number, localAddress: string, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({host, port, localAddress})
    let buf = ''
    const done = (v: string | undefined) => {
      sock.destroy()
      resolve(v)
    }
    sock.setTimeout(timeoutMs, () => done(undefined))
    sock.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.includes('\n')) done(buf.split('\n')[0].trim())
    })
    sock.on('error', () => done(undefined))
    sock.on('close', () => done(buf ? buf.trim() : undefined))
  })
}

/** The SSH banner of a lab address, read from inside a lab namespace. */
export async function readBannerFromNetns(ns: string, address: string, port = 22, timeoutSec = 2): Promise<string | undefined> {
  const r = await run(
    ['ip', 'netns', 'exec', ns, 'timeout', String(timeoutSec), 'bash', '-c', 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r line <&3 && printf %s "$line"', 'bash', address, String(port)],
    {allowFail: true, timeoutMs: (timeoutSec + 3) * 1000},
  )
  return r.code === 0 && r.stdout ? r.stdout.trim() : undefined
}

/**
 * The SSH banner of the bastion's public address, read from the root namespace — only after
 * checking that the kernel routes that address over the lab link (a probe never leaves the machine).
 */
export async function readPublicBanner(address: string, port = 22): Promise<string | undefined> {
  const route = await routeGet(address)
  if (route?.dev !== ROOT_LINK) throw new Error(`${address} is not routed over ${ROOT_LINK} (route: ${JSON.stringify(route)}); not probing it`)
  return readBannerLocal(address, port, ROOT_PUBLIC_ADDRESS)
}

export interface Readiness {
  ready: boolean
  /** `systemctl is-system-running` output (or why it could not be asked). */
  system: string
  banner?: string
  failedUnits: string[]
}

/** One look at a host: systemd state, then (once up) sshd's banner from where the operator reaches it. */
export async function probeHost(host: LabHostPlan, nspawnPid: number, bastionNetns: string): Promise<Readiness> {
  if (!isNspawnOf(nspawnPid, host.netns)) return {ready: false, system: 'not running (systemd-nspawn exited)', failedUnits: []}
  const leader = leaderPid(nspawnPid)
  if (!leader) return {ready: false, system: 'starting (no init yet)', failedUnits: []}
  const r = await execIn(leader, ['systemctl', 'is-system-running'], {allowFail: true, timeoutMs: 5000})
  const system = r.stdout.trim() || 'offline'
  if (system !== 'running' && system !== 'degraded') return {ready: false, system, failedUnits: []}
  let failedUnits: string[] = []
  if (system === 'degraded') {
    const f = await execIn(leader, ['systemctl', '--failed', '--plain', '--no-legend'], {allowFail: true, timeoutMs: 5000})
    failedUnits = f.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean)
  }
  const banner = host.publicAddress
    ? await readPublicBanner(host.publicAddress)
    : await readBannerFromNetns(bastionNetns, host.privateAddress)
  return {ready: Boolean(banner?.startsWith('SSH-')), system, banner, failedUnits}
}

/** Poll until the host is ready or the deadline passes. */
export async function waitReady(host: LabHostPlan, nspawnPid: number, bastionNetns: string, deadline: number): Promise<Readiness> {
  let last: Readiness = {ready: false, system: 'not checked', failedUnits: []}
  for (;;) {
    last = await probeHost(host, nspawnPid, bastionNetns)
    if (last.ready) return last
    if (last.system.startsWith('not running')) return last
    if (Date.now() > deadline) return last
    await sleep(200)
  }
}
