/** Reaching into a running lab host: its PID 1, a command inside it or in its network, its cgroups, its readiness. */
import {existsSync} from 'node:fs'
import path from 'node:path'

import {InfraError, UsageError} from '../lib/errors.js'
import {accountingCgroups, hostCgroupFor} from './cgroups.js'
import {execIn, isNspawnOf, leaderPid, probeHost} from './hosts.js'
import {run, RunResult} from './run.js'
import {HostState, readState} from './state.js'
import {INTERNET_NETNS, LAB_PREFIX, SWITCH_NETNS} from './topology.js'

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
  // The command counts against the host's CPU and memory, like a process started on the host: in
  // this machine's v1 hierarchies, and in the host's own cgroup2 tree (the one its systemd sees as
  // the root, `payload`), where the host itself reads its CPU use (/sys/fs/cgroup/cpu.stat).
  const unified = hostCgroupFor(h.cgroups, 'unified')
  const own = unified ? [path.join(unified, 'payload')] : []
  return execIn(leader, argv, {timeoutMs: 60_000, ...opts, cgroups: [...accountingCgroups(h.cgroups), ...own].filter((d) => existsSync(d))})
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
