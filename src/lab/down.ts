/** Taking the lab down: every process, mount, namespace, link and cgroup it made, recorded or found. */
import {existsSync, readFileSync, readdirSync, readlinkSync, statSync} from 'node:fs'

import {UsageError} from '../lib/errors.js'
import {findLabCgroupBases, killAndRemoveCgroups} from './cgroups.js'
import {purgeCache} from './image.js'
import {isLockHeld, withLock} from './lock.js'
import {type Log, stderrLog} from './log.js'
import {mountsUnder, removeTree, unmountUnder} from './mounts.js'
import {destroyNetwork, labNamespaces} from './network.js'
import {ensurePrerequisites} from './prereq.js'
import {run} from './run.js'
import {HOSTS_DIR, LAB_LOCK, LAB_STATE_DIR, LAB_TEST_LOCK, LabState, readState} from './state.js'
import {LAB_PREFIX} from './topology.js'

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
export async function teardown(state: LabState | undefined, _log: Log): Promise<TeardownReport> {
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

export function describeReport(r: TeardownReport): string {
  const parts = [
    r.processes ? `${r.processes} process(es)` : '',
    r.mounts.length ? `${r.mounts.length} mount(s)` : '',
    r.namespaces.length ? `${r.namespaces.length} namespace(s)` : '',
    r.links.length ? `${r.links.length} link(s)` : '',
    r.cgroups.length ? `${r.cgroups.length} cgroup folder(s)` : '',
  ]
  return parts.filter(Boolean).join(', ')
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
