/**
 * The local lab fleet: a bastion and web nodes as real Debian 12 systemd hosts on this machine
 * (network namespaces + systemd-nspawn on overlayfs), and a ready inventory for them.
 * Commands (`infra lab up|down|status`) are thin wrappers; tests call these functions directly.
 */
import {existsSync, readFileSync, readdirSync, readlinkSync, statSync} from 'node:fs'
import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {schemaComment} from '../inventory/schema.js'
import {InfraError, UsageError} from '../lib/errors.js'
import {accountingCgroups, findLabCgroupBases, hostCgroupFor, killAndRemoveCgroups, labCgroupBases} from './cgroups.js'
import {ensureImage, imageKey, purgeCache} from './image.js'
import {isLabInventory, LAB_KEY_DIR, renderLabInventory} from './inventory.js'
import {execIn, isNspawnOf, layerOf, leaderPid, prepareLayer, probeHost, startHost, waitReady} from './hosts.js'
import {isLockHeld, withLock} from './lock.js'
import {mountsUnder, removeTree, unmountUnder} from './mounts.js'
import {checkNetwork, createNetwork, destroyNetwork, labNamespaces, rootRoutes} from './network.js'
import {ensurePrerequisites} from './prereq.js'
import {run, RunResult} from './run.js'
import {HOSTS_DIR, hostDir, HostState, LAB_LOCK, LAB_STATE_DIR, LAB_TEST_LOCK, LabState, readState, writeState} from './state.js'
import {
  BASTION_INTERNET_ADDRESS,
  BASTION_PUBLIC_ADDRESS,
  DEFAULT_STANDBY,
  DEFAULT_WEB,
  INTERNET_NETNS,
  INTERNET_NETWORK,
  INTERNET_SERVER_ADDRESS,
  LAB_PREFIX,
  LabHostPlan,
  planLab,
  PRIVATE_NETWORK,
  PUBLIC_NETWORK,
  rangeCollisions,
  ROOT_CLIENT2_ADDRESS,
  ROOT_LINK,
  ROOT_PUBLIC_ADDRESS,
  SWITCH_NETNS,
} from './topology.js'

export * from './topology.js'
export {acquireLock, isLockHeld, withLock} from './lock.js'
export {LAB_TEST_LOCK} from './state.js'
export {isLabInventory, LAB_MARKER, renderLabInventory} from './inventory.js'
export type {RunResult} from './run.js'

export type Log = (message: string) => void
const stderrLog: Log = (m) => process.stderr.write(m + '\n')

export interface LabUpOptions {
  /** Inventory to write (default ./infra.yaml). */
  config?: string
  /** Active web nodes (default 1, or the running lab's count). */
  web?: number
  /** Standby web nodes (default 2, or the running lab's count). */
  standby?: number
  /** How long to wait for every host to boot (default 120 s). */
  timeoutSec?: number
  /** Progress lines (default: stderr). */
  log?: Log
}

export interface LabHostInfo {
  name: string
  role: 'bastion' | 'web'
  publicAddress?: string
  privateAddress: string
  standby: boolean
  /** Network namespace (/run/netns/NAME), also the nspawn machine name. */
  netns: string
  running: boolean
  /** PID of the host's systemd-nspawn (0 before it was started). */
  pid: number
}

export interface LabInfo {
  /** Absolute path of the lab inventory. */
  config: string
  /** Absolute path of the operator's private key. */
  operatorKey: string
  image: {key: string; rootfs: string; built: boolean; buildMs?: number}
  hosts: LabHostInfo[]
  network: {
    rootLink: string
    rootAddress: string
    secondClientAddress: string
    publicNetwork: string
    privateNetwork: string
    internet: {netns: string; network: string; address: string; gateway: string}
    switchNetns: string
  }
  /** true when `up` found the lab running and kept it. */
  reused: boolean
  /** Hosts `up` had to start again (their systemd-nspawn had died). */
  restarted: string[]
  /** true when `up` removed leftovers of a crashed or damaged lab first. */
  cleanedLeftovers: boolean
  timings: {totalMs: number; imageMs: number; networkMs: number; bootMs: number}
}

export interface LabStatus {
  /** The lab inventory, or null when no lab is running. */
  config: string | null
  hosts: {name: string; role: 'bastion' | 'web'; publicAddress?: string; privateAddress: string; standby: boolean; running: boolean}[]
}

export interface LabDownResult {
  /** Was a lab recorded (state.json)? */
  wasRunning: boolean
  config: string | null
  removed: TeardownReport
  purgedCache: boolean
  ms: number
}

export interface TeardownReport {
  processes: number
  mounts: string[]
  namespaces: string[]
  links: string[]
  cgroups: string[]
}

// ---------------------------------------------------------------------------------------------

/** Bring the lab up (or keep the running one), write its inventory, and return where everything is. */
export async function labUp(opts: LabUpOptions = {}): Promise<LabInfo> {
  const log = opts.log ?? stderrLog
  const started = Date.now()
  const config = path.resolve(opts.config ?? 'infra.yaml')
  if (opts.web !== undefined || opts.standby !== undefined) validateCounts(opts.web ?? DEFAULT_WEB, opts.standby ?? DEFAULT_STANDBY)
  await ensurePrerequisites(log)
  return withLock(LAB_LOCK, async () => {
    if (existsSync(config) && !isLabInventory(await readFile(config, 'utf8'))) {
      throw new UsageError(`${config} exists and is not a lab inventory: \`infra lab up\` will not overwrite it`, {
        hint: 'Pass another path, e.g. `infra lab up --config lab/infra.yaml`, or move the file away.',
        code: 'ELABCONFIG',
      })
    }
    let state = await readState()
    let cleanedLeftovers = false
    if (state) {
      if (state.config !== config) {
        throw new UsageError(`a lab is already running on this machine, for ${state.config}`, {
          hint: `Use it with \`--config ${state.config}\`, or stop it first with \`infra lab down\`.`,
          code: 'ELABBUSY',
        })
      }
      const web = opts.web ?? state.web
      const standby = opts.standby ?? state.standby
      if (web !== state.web || standby !== state.standby) {
        throw new UsageError(`the running lab has ${state.web} active + ${state.standby} standby web nodes, not ${web} + ${standby}`, {
          hint: 'Stop it with `infra lab down`, then run `infra lab up` with the new counts.',
          code: 'ELABBUSY',
        })
      }
      const problems = await checkNetwork(planLab(web, standby))
      if (!existsSync(state.image.rootfs)) problems.push(`its image ${state.image.rootfs} is gone`)
      if (problems.length === 0) return resume(state, opts, log, started)
      log(`lab: the recorded lab is damaged (${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; …' : ''}); starting it over`)
      await teardown(state, log)
      state = undefined
      cleanedLeftovers = true
    }
    const report = await teardown(undefined, log)
    if (report.processes + report.mounts.length + report.namespaces.length + report.links.length + report.cgroups.length > 0) {
      log(`lab: removed leftovers of an earlier run (${describeReport(report)})`)
      cleanedLeftovers = true
    }
    return fresh(config, opts.web ?? DEFAULT_WEB, opts.standby ?? DEFAULT_STANDBY, opts, log, started, cleanedLeftovers)
  }, {onWait: () => log('lab: waiting for another `infra lab` command on this machine to finish…')})
}

function validateCounts(web: number, standby: number): void {
  try {
    planLab(web, standby)
  } catch (error) {
    throw new UsageError((error as Error).message, {hint: 'See `infra lab up --help`.', code: 'ELABCOUNT'})
  }
}

async function fresh(config: string, web: number, standby: number, opts: LabUpOptions, log: Log, started: number, cleanedLeftovers: boolean): Promise<LabInfo> {
  validateCounts(web, standby)
  const plan = planLab(web, standby)
  const collisions = rangeCollisions(await rootRoutes())
  if (collisions.length > 0) {
    const c = collisions[0]
    throw new UsageError(`the lab's range ${c.range} overlaps this machine's own route ${c.route.dst}${c.route.dev ? ` dev ${c.route.dev}` : ''}`, {
      hint: 'The lab must not shadow a real network; run it on a machine whose networks do not use 198.51.100.0/24, 203.0.113.0/24 or 10.42.0.0/24.',
      code: 'ELABRANGE',
    })
  }
  const tImage = Date.now()
  const image = await ensureImage(log)
  const imageMs = Date.now() - tImage
  const keyDir = path.join(path.dirname(config), LAB_KEY_DIR)
  const {privateKey, publicKey} = await ensureOperatorKey(keyDir)
  const bases = labCgroupBases()
  const state: LabState = {
    version: 1,
    config,
    operatorKey: privateKey,
    image: {key: image.key, rootfs: image.rootfs},
    web,
    standby,
    createdAt: new Date().toISOString(),
    cgroupBases: bases,
    namespaces: plan.namespaces,
    links: [ROOT_LINK],
    hosts: plan.hosts.map((h) => ({...h, pid: 0, dir: hostDir(h.name), cgroups: []})),
  }
  // Recorded before anything is created: `lab down` can clean up after a crash from here on.
  await writeState(state)
  const tNet = Date.now()
  await createNetwork(plan)
  const networkMs = Date.now() - tNet
  log(`lab: network ready in ${fmt(networkMs)} (public ${PUBLIC_NETWORK} on ${ROOT_LINK}, private ${PRIVATE_NETWORK}, internet ${INTERNET_NETWORK})`)
  const tBoot = Date.now()
  await Promise.all(
    state.hosts.map(async (h) => {
      const layer = await prepareLayer(h, image.rootfs, publicKey, keyDir)
      Object.assign(h, await startHost(h, layer, bases))
    }),
  )
  await writeState(state)
  log(`lab: booting ${state.hosts.length} hosts (1 bastion + ${web} active + ${standby} standby web nodes)…`)
  await waitAll(state, opts.timeoutSec ?? 120, log)
  const bootMs = Date.now() - tBoot
  log(`lab: all ${state.hosts.length} hosts up in ${fmt(bootMs)} (systemd running, sshd answering)`)
  await writeInventory(config, plan, true)
  return info(state, {image: {...image}, reused: false, restarted: [], cleanedLeftovers, timings: {totalMs: Date.now() - started, imageMs, networkMs, bootMs}})
}

/** The lab is recorded and its network intact: keep running hosts, start the ones whose nspawn died. */
async function resume(state: LabState, opts: LabUpOptions, log: Log, started: number): Promise<LabInfo> {
  const keyDir = path.join(path.dirname(state.config), LAB_KEY_DIR)
  const {publicKey, created} = await ensureOperatorKey(keyDir)
  const restarted: string[] = []
  const tBoot = Date.now()
  await Promise.all(
    state.hosts.map(async (h) => {
      if (created) await addAuthorizedKey(h, publicKey)
      if (isNspawnOf(h.pid, h.netns) && leaderPid(h.pid)) return
      log(`lab: ${h.name} is not running (its systemd-nspawn is gone); starting it again with its own layer`)
      await killAndRemoveCgroups(h.cgroups)
      const layer = await prepareLayer(h, state.image.rootfs, publicKey, keyDir)
      Object.assign(h, await startHost(h, layer, state.cgroupBases))
      restarted.push(h.name)
    }),
  )
  await writeState(state)
  await waitAll(state, opts.timeoutSec ?? 120, log)
  const bootMs = Date.now() - tBoot
  if (state.image.key !== imageKey()) log('lab: note: the running lab uses an older image than the current package list; `infra lab down && infra lab up` rebuilds it')
  log(restarted.length > 0 ? `lab: restarted ${restarted.join(', ')} in ${fmt(bootMs)}; the rest of the lab kept running` : `lab: the lab is already running (${state.hosts.length} hosts); kept it`)
  await writeInventory(state.config, planLab(state.web, state.standby), false)
  return info(state, {
    image: {...state.image, built: false},
    reused: true,
    restarted,
    cleanedLeftovers: false,
    timings: {totalMs: Date.now() - started, imageMs: 0, networkMs: 0, bootMs},
  })
}

async function waitAll(state: LabState, timeoutSec: number, log: Log): Promise<void> {
  const deadline = Date.now() + timeoutSec * 1000
  const bastion = state.hosts.find((h) => h.role === 'bastion')!
  const results = await Promise.all(state.hosts.map(async (h) => ({h, r: await waitReady(h, h.pid, bastion.netns, deadline)})))
  const bad = results.filter((x) => !x.r.ready)
  for (const {h, r} of results) {
    if (r.ready && r.failedUnits.length > 0) log(`lab: warning: ${h.name} is degraded (failed units: ${r.failedUnits.join(', ')})`)
  }
  if (bad.length > 0) {
    const lines = bad.map(({h, r}) => `  ${h.name}: systemd ${r.system}${r.system === 'running' || r.system === 'degraded' ? '; sshd did not answer' : ''} (console log: ${layerOf(h.name).log})`)
    throw new InfraError(`${bad.map((b) => b.h.name).join(', ')} did not come up within ${timeoutSec} s:\n${lines.join('\n')}`, {
      hint: 'Read the console logs above; `infra lab down` then `infra lab up` starts over (use --timeout on a slow machine).',
      code: 'ELABBOOT',
    })
  }
}

async function writeInventory(config: string, plan: ReturnType<typeof planLab>, overwrite: boolean): Promise<void> {
  if (!overwrite && existsSync(config)) return
  await mkdir(path.dirname(config), {recursive: true})
  await writeFile(config, renderLabInventory(plan, schemaComment(path.dirname(config))))
}

async function ensureOperatorKey(keyDir: string): Promise<{privateKey: string; publicKey: string; created: boolean}> {
  await mkdir(keyDir, {recursive: true, mode: 0o700})
  await chmod(keyDir, 0o700)
  const privateKey = path.join(keyDir, 'id_ed25519')
  let created = false
  if (!existsSync(privateKey) || !existsSync(`${privateKey}.pub`)) {
    await run(['rm', '-f', privateKey, `${privateKey}.pub`])
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'infra-lab-operator', '-f', privateKey])
    created = true
  }
  await chmod(privateKey, 0o600)
  return {privateKey, publicKey: (await readFile(`${privateKey}.pub`, 'utf8')).trim(), created}
}

async function addAuthorizedKey(h: HostState, publicKey: string): Promise<void> {
  const file = path.join(layerOf(h.name).merged, 'root/.ssh/authorized_keys')
  const text = existsSync(file) ? await readFile(file, 'utf8') : ''
  if (!text.includes(publicKey)) await writeFile(file, text + publicKey + '\n', {mode: 0o600})
}

// ---------------------------------------------------------------------------------------------

/**
 * Stop every lab process and remove every namespace, link, mount and cgroup the lab made, then
 * the lab state (not the image cache, unless purge). Safe to run when no lab is up.
 */
export async function labDown(opts: {purge?: boolean; force?: boolean; log?: Log} = {}): Promise<LabDownResult> {
  const log = opts.log ?? stderrLog
  const started = Date.now()
  await ensurePrerequisites(log)
  if (!opts.force && (await isLockHeld(LAB_TEST_LOCK))) {
    throw new UsageError('a lab test run is using the lab on this machine right now', {
      hint: 'Wait for it to finish (it takes the lab down itself), or pass --force to remove the lab anyway.',
      code: 'ELABINUSE',
    })
  }
  return withLock(LAB_LOCK, async () => {
    const state = await readState()
    const removed = await teardown(state, log)
    await removeTree(LAB_STATE_DIR)
    if (opts.purge) await purgeCache()
    return {wasRunning: Boolean(state), config: state?.config ?? null, removed, purgedCache: Boolean(opts.purge), ms: Date.now() - started}
  }, {onWait: () => log('lab: waiting for another `infra lab` command on this machine to finish…')})
}

/** Kill, unmount, delete: everything with the lab's prefix or under its folders, recorded or found. */
async function teardown(state: LabState | undefined, _log: Log): Promise<TeardownReport> {
  const report: TeardownReport = {processes: 0, mounts: [], namespaces: [], links: [], cgroups: []}
  // 1. Processes: everything in the lab's cgroups, every nspawn of a lab machine, anything inside a lab namespace.
  const bases = [...new Set([...(state?.cgroupBases ?? []), ...findLabCgroupBases()])].filter((d) => existsSync(d))
  const nspawns = findLabNspawns()
  for (const pid of nspawns) safeKill(pid)
  const k = await killAndRemoveCgroups(bases)
  report.processes += k.killed
  report.cgroups = bases
  const inNetns = await processesInLabNetns()
  for (const pid of inNetns) safeKill(pid)
  report.processes += new Set([...nspawns, ...inNetns]).size
  if (inNetns.length > 0) await waitGone(inNetns, 5000)
  // 2. Mounts: the hosts' overlays.
  report.mounts = await unmountUnder(HOSTS_DIR)
  for (const d of readdirSafe('/run/systemd/nspawn/propagate')) {
    if (d.startsWith(LAB_PREFIX)) await run(['rm', '-rf', '--one-file-system', `/run/systemd/nspawn/propagate/${d}`], {allowFail: true})
  }
  // 3. Network.
  const net = await destroyNetwork()
  report.namespaces = net.namespaces
  report.links = net.links
  // 4. Layers.
  await removeTree(HOSTS_DIR)
  return report
}

function findLabNspawns(): number[] {
  const pids: number[] = []
  for (const p of readdirSafe('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
      if (cmd.some((a) => a.endsWith('systemd-nspawn')) && cmd.some((a) => a.startsWith(`--machine=${LAB_PREFIX}`))) pids.push(Number(p))
    } catch {
      // gone
    }
  }
  return pids
}

/** PIDs of processes whose network namespace is one of the lab's (a test's server left behind, say). */
async function processesInLabNetns(): Promise<number[]> {
  const inodes = new Set<string>()
  for (const ns of await labNamespaces()) {
    try {
      inodes.add(`net:[${statSync(`/run/netns/${ns}`).ino}]`)
    } catch {
      // gone
    }
  }
  if (inodes.size === 0) return []
  const pids: number[] = []
  for (const p of readdirSafe('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue
    try {
      if (inodes.has(readlinkSync(`/proc/${p}/ns/net`))) pids.push(Number(p))
    } catch {
      // gone or not ours to read
    }
  }
  return pids
}

function safeKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone
  }
}

async function waitGone(pids: number[], ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline && pids.some((p) => existsSync(`/proc/${p}`))) await new Promise((r) => setTimeout(r, 50))
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

function describeReport(r: TeardownReport): string {
  const parts = [
    r.processes ? `${r.processes} process(es)` : '',
    r.mounts.length ? `${r.mounts.length} mount(s)` : '',
    r.namespaces.length ? `${r.namespaces.length} namespace(s)` : '',
    r.links.length ? `${r.links.length} link(s)` : '',
    r.cgroups.length ? `${r.cgroups.length} cgroup folder(s)` : '',
  ]
  return parts.filter(Boolean).join(', ')
}

// ---------------------------------------------------------------------------------------------

/** The recorded lab and whether each host runs. Needs no root for the basic view. */
export async function labStatus(): Promise<LabStatus> {
  const state = await readState()
  if (!state) return {config: null, hosts: []}
  return {
    config: state.config,
    hosts: state.hosts.map((h) => ({
      name: h.name,
      role: h.role,
      ...(h.publicAddress ? {publicAddress: h.publicAddress} : {}),
      privateAddress: h.privateAddress,
      standby: h.standby,
      running: isNspawnOf(h.pid, h.netns) && leaderPid(h.pid) !== undefined,
    })),
  }
}

/** Full information about the running lab (what `labUp` returned), or undefined when none is recorded. */
export async function labInfo(): Promise<LabInfo | undefined> {
  const state = await readState()
  if (!state) return undefined
  return info(state, {image: {...state.image, built: false}, reused: true, restarted: [], cleanedLeftovers: false, timings: {totalMs: 0, imageMs: 0, networkMs: 0, bootMs: 0}})
}

function info(state: LabState, extra: Pick<LabInfo, 'image' | 'reused' | 'restarted' | 'cleanedLeftovers' | 'timings'>): LabInfo {
  return {
    config: state.config,
    operatorKey: state.operatorKey,
    hosts: state.hosts.map((h) => ({
      name: h.name,
      role: h.role,
      ...(h.publicAddress ? {publicAddress: h.publicAddress} : {}),
      privateAddress: h.privateAddress,
      standby: h.standby,
      netns: h.netns,
      running: isNspawnOf(h.pid, h.netns),
      pid: h.pid,
    })),
    network: {
      rootLink: ROOT_LINK,
      rootAddress: ROOT_PUBLIC_ADDRESS,
      secondClientAddress: ROOT_CLIENT2_ADDRESS,
      publicNetwork: PUBLIC_NETWORK,
      privateNetwork: PRIVATE_NETWORK,
      internet: {netns: INTERNET_NETNS, network: INTERNET_NETWORK, address: INTERNET_SERVER_ADDRESS, gateway: BASTION_INTERNET_ADDRESS},
      switchNetns: SWITCH_NETNS,
    },
    ...extra,
  }
}

// ---------------------------------------------------------------------------------------------

async function recordedHost(name: string): Promise<HostState> {
  const state = await readState()
  if (!state) throw new UsageError('no lab is running', {hint: 'Start one with `infra lab up`.', code: 'ELABNONE'})
  const h = state.hosts.find((x) => x.name === name || x.netns === name)
  if (!h) throw new UsageError(`the lab has no host "${name}" (hosts: ${state.hosts.map((x) => x.name).join(', ')})`, {code: 'ELABHOST'})
  return h
}

/** The host's PID 1 as seen from this machine (for nsenter, signals, /proc). Throws when the host is not running. */
export async function labHostPid(name: string): Promise<number> {
  const h = await recordedHost(name)
  const leader = isNspawnOf(h.pid, h.netns) ? leaderPid(h.pid) : undefined
  if (!leader) throw new InfraError(`lab host ${h.name} is not running`, {hint: 'Run `infra lab up` to start it again.', code: 'ELABDOWN'})
  return leader
}

/**
 * Run a command inside a lab host (all its namespaces, like a root shell on it) — for tests that
 * check or break something on purpose. A string runs with `sh -c`; the command joins the host's
 * resource cgroups (its CPU counts as the host's). Throws on a non-zero exit unless allowFail.
 */
export async function labExec(host: string, command: string | string[], opts: {input?: string; timeoutMs?: number; allowFail?: boolean} = {}): Promise<RunResult> {
  const leader = await labHostPid(host)
  const h = await recordedHost(host)
  const argv = typeof command === 'string' ? ['sh', '-c', command] : command
  // The command counts against the host's CPU and memory, like a process started on the host.
  return execIn(leader, argv, {timeoutMs: 60_000, ...opts, cgroups: accountingCgroups(h.cgroups).filter((d) => existsSync(d))})
}

/**
 * Run one of this machine's programs in a lab network namespace only (`ip netns exec`): a host's
 * network without its file system. `target` is a host name, "internet" (the internet server),
 * "switch", or a namespace name.
 */
export async function labNetExec(target: string, argv: string[], opts: {input?: string; timeoutMs?: number; allowFail?: boolean} = {}): Promise<RunResult> {
  let ns: string
  if (target === 'internet') ns = INTERNET_NETNS
  else if (target === 'switch') ns = SWITCH_NETNS
  else if (target.startsWith(LAB_PREFIX)) ns = target
  else ns = (await recordedHost(target)).netns
  return run(['ip', 'netns', 'exec', ns, ...argv], {timeoutMs: 60_000, ...opts})
}

/** A host's cgroup folder for a controller (cpuacct: per-host CPU in cpuacct.usage; memory; pids; freezer). */
export async function labHostCgroup(name: string, controller: string): Promise<string | undefined> {
  return hostCgroupFor((await recordedHost(name)).cgroups, controller)
}

/** Is the host booted and answering (systemd running or degraded, sshd banner)? */
export async function labHostReady(name: string): Promise<{ready: boolean; system: string}> {
  const state = await readState()
  const h = await recordedHost(name)
  const bastion = state!.hosts.find((x) => x.role === 'bastion')!
  const r = await probeHost(h, h.pid, bastion.netns)
  return {ready: r.ready, system: r.system}
}

/** Everything the lab leaves on this machine right now (for `lab down` checks and troubleshooting). */
export async function labLeftovers(): Promise<{namespaces: string[]; links: string[]; mounts: string[]; nspawns: number[]; cgroups: string[]}> {
  const links = JSON.parse((await run(['ip', '-j', 'link', 'show'])).stdout) as {ifname: string}[]
  return {
    namespaces: await labNamespaces(),
    links: links.map((l) => l.ifname).filter((n) => n.startsWith(LAB_PREFIX)),
    mounts: mountsUnder(LAB_STATE_DIR),
    nspawns: findLabNspawns(),
    cgroups: findLabCgroupBases(),
  }
}

export const labAddresses = {
  bastionPublic: BASTION_PUBLIC_ADDRESS,
  rootPublic: ROOT_PUBLIC_ADDRESS,
  secondClient: ROOT_CLIENT2_ADDRESS,
  internetServer: INTERNET_SERVER_ADDRESS,
  bastionInternet: BASTION_INTERNET_ADDRESS,
} as const

export function fmt(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

// Layers live here; exported for troubleshooting output.
export {HOSTS_DIR, LAB_STATE_DIR}
export type {LabHostPlan}
