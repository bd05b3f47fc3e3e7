import {existsSync} from 'node:fs'
import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {LabHostPlan} from './topology.js'

/** Where the lab keeps its state and the hosts' writable layers (removed by `lab down`). */
export const LAB_STATE_DIR = process.env.INFRA_LAB_STATE_DIR ?? '/var/lib/infra-lab'
/** Where the base image lives (kept by `lab down`; `lab down --purge` removes it). */
export const LAB_CACHE_DIR = process.env.INFRA_LAB_CACHE_DIR ?? '/var/cache/infra-lab'
/** Serialises `lab up` / `lab down` on this machine (never removed). */
export const LAB_LOCK = '/run/lock/infra-lab.lock'
/** Held by a lab test run (test/lab/global-setup.ts) for as long as it uses the shared lab. */
export const LAB_TEST_LOCK = '/run/lock/infra-lab-test.lock'

export const STATE_FILE = path.join(LAB_STATE_DIR, 'state.json')
export const HOSTS_DIR = path.join(LAB_STATE_DIR, 'hosts')

export interface HostState extends LabHostPlan {
  /** PID of systemd-nspawn (the wrapper shell exec'd into it); 0 when not started. */
  pid: number
  /** Folder holding upper/, work/, merged/ and console.log. */
  dir: string
  /** cgroup folders this host's processes live in (one per mounted hierarchy). */
  cgroups: string[]
}

export interface LabState {
  version: 1
  /** Absolute path of the inventory the lab wrote. */
  config: string
  operatorKey: string
  image: {key: string; rootfs: string}
  web: number
  standby: number
  createdAt: string
  /** Parent cgroup folders (…/infra-lab) per hierarchy. */
  cgroupBases: string[]
  namespaces: string[]
  links: string[]
  hosts: HostState[]
}

export function hostDir(name: string): string {
  return path.join(HOSTS_DIR, name)
}

export async function readState(): Promise<LabState | undefined> {
  if (!existsSync(STATE_FILE)) return undefined
  try {
    const s = JSON.parse(await readFile(STATE_FILE, 'utf8')) as LabState
    return s.version === 1 && Array.isArray(s.hosts) ? s : undefined
  } catch {
    return undefined
  }
}

export async function writeState(state: LabState): Promise<void> {
  await mkdir(LAB_STATE_DIR, {recursive: true, mode: 0o755})
  const tmp = `${STATE_FILE}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', {mode: 0o644})
  await rename(tmp, STATE_FILE)
}
