import {existsSync, readdirSync, readFileSync, rmdirSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import path from 'node:path'

import {sleep} from './run.js'

/**
 * Each lab host runs in its own cgroup in every mounted hierarchy (cgroup v1 here, plus the v2
 * "unified" one), so per-host CPU and memory accounting works (cpuacct.usage, memory.usage_in_bytes)
 * and `lab down` finds every process of a host, even one whose systemd-nspawn died.
 * Folders: <hierarchy mount><this process's cgroup>/infra-lab/<host>.
 */
export const CGROUP_DIR_NAME = 'infra-lab'

export interface Hierarchy {
  mount: string
  version: 1 | 2
  /** v1 controllers (or name=...) of the hierarchy. */
  controllers: string[]
}

const MOUNT_OPTIONS = new Set(['rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec', 'nsdelegate', 'memory_recursiveprot', 'clone_children', 'xattr'])

/** Mounted cgroup hierarchies (parsed from /proc/mounts text). */
export function parseHierarchies(procMounts: string): Hierarchy[] {
  const out: Hierarchy[] = []
  for (const line of procMounts.split('\n')) {
    const [, mount, type, options] = line.split(' ')
    if (type === 'cgroup2') out.push({mount, version: 2, controllers: []})
    else if (type === 'cgroup') {
      const controllers = options.split(',').filter((o) => !MOUNT_OPTIONS.has(o) && !o.startsWith('release_agent='))
      out.push({mount, version: 1, controllers})
    }
  }
  return out
}

/** This process's cgroup path in a hierarchy (from /proc/self/cgroup text). */
export function currentPath(h: Hierarchy, procCgroup: string): string | undefined {
  for (const line of procCgroup.split('\n').filter(Boolean)) {
    const [id, ctrls, ...rest] = line.split(':')
    const p = rest.join(':')
    if (h.version === 2 && id === '0' && ctrls === '') return p
    if (h.version === 1 && ctrls !== '') {
      const set = ctrls.split(',')
      if (set.length === h.controllers.length && set.every((c) => h.controllers.includes(c))) return p
    }
  }
  return undefined
}

/**
 * The hierarchies a lab host joins: every v1 hierarchy but cpuset (a new cpuset cgroup needs its
 * cpus and mems set before it accepts a process) and the v2 one.
 */
export function labHierarchies(procMounts = readFileSync('/proc/mounts', 'utf8')): Hierarchy[] {
  return parseHierarchies(procMounts).filter((h) => !h.controllers.includes('cpuset'))
}

/** Parent folders (…/infra-lab) for a new lab, one per hierarchy, below this process's own cgroups. */
export function labCgroupBases(): string[] {
  const procCgroup = readFileSync('/proc/self/cgroup', 'utf8')
  const bases: string[] = []
  for (const h of labHierarchies()) {
    const p = currentPath(h, procCgroup)
    if (p === undefined || p.includes('..')) continue
    bases.push(path.join(h.mount, p, CGROUP_DIR_NAME))
  }
  return bases
}

/** Create a host's cgroup in every base; returns the folders. */
export async function createHostCgroups(bases: string[], host: string): Promise<string[]> {
  const dirs = bases.map((b) => path.join(b, host))
  for (const d of dirs) await mkdir(d, {recursive: true})
  return dirs
}

/** Every PID in a cgroup folder and its descendants. */
export function cgroupPids(dir: string): number[] {
  const pids: number[] = []
  const walk = (d: string) => {
    let entries: string[]
    try {
      entries = readdirSync(d, {withFileTypes: true}).filter((e) => e.isDirectory()).map((e) => e.name)
      for (const l of readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.push(Number(l))
    } catch {
      return
    }
    for (const e of entries) walk(path.join(d, e))
  }
  walk(dir)
  return [...new Set(pids)]
}

/** Kill every process in these cgroups (SIGKILL, until none is left or the timeout), then remove the folders. */
export async function killAndRemoveCgroups(dirs: string[], timeoutMs = 10_000): Promise<{killed: number; left: number[]}> {
  const deadline = Date.now() + timeoutMs
  const killed = new Set<number>()
  let left: number[] = []
  for (;;) {
    left = [...new Set(dirs.flatMap((d) => cgroupPids(d)))]
    if (left.length === 0 || Date.now() > deadline) break
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL')
        killed.add(pid)
      } catch {
        // already gone
      }
    }
    await sleep(50)
  }
  for (const d of dirs) removeCgroupTree(d)
  return {killed: killed.size, left}
}

/** rmdir a cgroup folder and its children, deepest first (cgroup folders cannot be removed with rm -r). */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return
  let children: string[] = []
  try {
    children = readdirSync(dir, {withFileTypes: true}).filter((e) => e.isDirectory()).map((e) => e.name)
  } catch {
    return
  }
  for (const c of children) removeCgroupTree(path.join(dir, c))
  try {
    rmdirSync(dir)
  } catch {
    // busy (a process is left) or gone
  }
}

/** Find lab cgroup parents (folders named infra-lab) in every hierarchy, for leftovers of a run without state. */
export function findLabCgroupBases(maxDepth = 4): string[] {
  const found: string[] = []
  const walk = (d: string, depth: number) => {
    if (depth > maxDepth) return
    let entries: string[]
    try {
      entries = readdirSync(d, {withFileTypes: true}).filter((e) => e.isDirectory()).map((e) => e.name)
    } catch {
      return
    }
    for (const e of entries) {
      const p = path.join(d, e)
      if (e === CGROUP_DIR_NAME) found.push(p)
      else walk(p, depth + 1)
    }
  }
  for (const h of labHierarchies()) walk(h.mount, 0)
  return found
}

/** The host's cgroup folder in the hierarchy that has `controller` (e.g. cpuacct, memory, pids). */
export function hostCgroupFor(dirs: string[], controller: string): string | undefined {
  const hs = labHierarchies()
  for (const d of dirs) {
    const h = hs.find((x) => d.startsWith(x.mount + '/'))
    if (!h) continue
    if (h.version === 1 && h.controllers.includes(controller)) return d
    if (h.version === 2 && controller === 'unified') return d
  }
  return undefined
}

/**
 * The folders of a host's resource-controller hierarchies (cpu, cpuacct, memory, pids, ...), without
 * systemd's own (name=systemd, unified) which the container's systemd manages: a process joined to
 * these counts against the host's CPU and memory without disturbing the container's service tree.
 */
export function accountingCgroups(dirs: string[]): string[] {
  const hs = labHierarchies()
  return dirs.filter((d) => {
    const h = hs.find((x) => d.startsWith(x.mount + '/'))
    return h !== undefined && h.version === 1 && h.controllers.length > 0 && !h.controllers.some((c) => c.startsWith('name='))
  })
}
