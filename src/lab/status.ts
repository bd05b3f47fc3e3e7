/** What the lab looks like: the recorded hosts, whether they run, and where everything is. */
import {isNspawnOf, leaderPid} from './hosts.js'
import {type HostState, LabState, readState} from './state.js'
import {
  BASTION_INTERNET_ADDRESS,
  BASTION_PUBLIC_ADDRESS,
  INTERNET_NETNS,
  INTERNET_NETWORK,
  INTERNET_SERVER_ADDRESS,
  PRIVATE_NETWORK,
  PUBLIC_NETWORK,
  ROOT_CLIENT2_ADDRESS,
  ROOT_LINK,
  ROOT_PUBLIC_ADDRESS,
  SWITCH_NETNS,
} from './topology.js'

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

/** What every view of a lab host shows: name, role, addresses, standby. */
function hostSummary(h: HostState) {
  return {name: h.name, role: h.role, ...(h.publicAddress ? {publicAddress: h.publicAddress} : {}), privateAddress: h.privateAddress, standby: h.standby}
}

/** The recorded lab and whether each host runs. Needs no root for the basic view. */
export async function labStatus(): Promise<LabStatus> {
  const state = await readState()
  if (!state) return {config: null, hosts: []}
  return {
    config: state.config,
    hosts: state.hosts.map((h) => ({...hostSummary(h), running: isNspawnOf(h.pid, h.netns) && leaderPid(h.pid) !== undefined})),
  }
}

/** Full information about the running lab (what `labUp` returned), or undefined when none is recorded. */
export async function labInfo(): Promise<LabInfo | undefined> {
  const state = await readState()
  if (!state) return undefined
  return info(state, {image: {...state.image, built: false}, reused: true, restarted: [], cleanedLeftovers: false, timings: {totalMs: 0, imageMs: 0, networkMs: 0, bootMs: 0}})
}

export function info(state: LabState, extra: Pick<LabInfo, 'image' | 'reused' | 'restarted' | 'cleanedLeftovers' | 'timings'>): LabInfo {
  return {
    config: state.config,
    operatorKey: state.operatorKey,
    hosts: state.hosts.map((h) => ({
      ...hostSummary(h),
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

export const labAddresses = {
  bastionPublic: BASTION_PUBLIC_ADDRESS,
  rootPublic: ROOT_PUBLIC_ADDRESS,
  secondClient: ROOT_CLIENT2_ADDRESS,
  internetServer: INTERNET_SERVER_ADDRESS,
  bastionInternet: BASTION_INTERNET_ADDRESS,
} as const
