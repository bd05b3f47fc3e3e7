/**
 * The lab's names and addresses, as pure data. Every resource the lab creates on this machine
 * (network namespaces, links, machine names, cgroups, mounts) carries LAB_PREFIX or lives under
 * the lab's folders, so `lab up` can find the leftovers of a crashed run and `lab down` removes
 * them all.
 *
 * Addresses: the "internet" side uses documentation ranges, the private network a private range
 * that only exists inside lab namespaces. The root namespace (this machine) plays the internet and
 * the operator; it has a route to the public side only.
 */

export const LAB_PREFIX = 'infl-'

/** Link in the root namespace to the bastion's public side. */
export const ROOT_LINK = `${LAB_PREFIX}pub0`

/**
 * Public side: 198.51.100.0/24 (TEST-NET-2). Not 192.0.2.0/24: machines of this kind use TEST-NET-1
 * for their own uplink, and the lab must never shadow a real route (see checkRangesFree).
 */
export const PUBLIC_NETWORK = '198.51.100.0/24'
export const ROOT_PUBLIC_ADDRESS = '198.51.100.1'
/** A second address on the root side: a second "client" for tests (e.g. per-client rate limits). */
export const ROOT_CLIENT2_ADDRESS = '198.51.100.2'
export const BASTION_PUBLIC_ADDRESS = '198.51.100.10'

export const PRIVATE_NETWORK = '10.42.0.0/24'
export const BASTION_PRIVATE_ADDRESS = '10.42.0.1'

/** The "internet server": reachable from the bastion only (web nodes reach it only through the bastion's NAT). */
export const INTERNET_NETWORK = '203.0.113.0/24'
export const BASTION_INTERNET_ADDRESS = '203.0.113.1'
export const INTERNET_SERVER_ADDRESS = '203.0.113.10'

export const SWITCH_NETNS = `${LAB_PREFIX}sw`
export const INTERNET_NETNS = `${LAB_PREFIX}inet`
export const BRIDGE = 'br0'

/** Interface names inside the bastion's namespace. */
export const BASTION_IF = {public: 'eth0', private: 'eth1', internet: 'eth2'} as const
/** Interface name of a web node's only link. */
export const WEB_IF = 'eth0'

export const DEFAULT_WEB = 1
export const DEFAULT_STANDBY = 2
export const MAX_WEB_TOTAL = 40

export const LAB_DOMAIN = 'example.test'
export const LAB_ALIASES = ['www.example.test']
export const BASTION_NAME = 'bastion'

export interface LabHostPlan {
  /** Host name, as in the inventory (bastion, web1, ...). */
  name: string
  role: 'bastion' | 'web'
  /** Network namespace (/run/netns/NAME), also the nspawn machine name. */
  netns: string
  publicAddress?: string
  privateAddress: string
  standby: boolean
}

export interface LabPlan {
  web: number
  standby: number
  hosts: LabHostPlan[]
  /** Every network namespace of the lab (hosts, switch, internet server). */
  namespaces: string[]
}

export function webAddress(i: number): string {
  return `10.42.0.${10 + i}`
}

/** The hosts and namespaces for `web` active and `standby` standby web nodes. Throws RangeError on impossible counts. */
export function planLab(web: number, standby: number): LabPlan {
  if (!Number.isInteger(web) || web < 1) throw new RangeError('--web must be a whole number of at least 1')
  if (!Number.isInteger(standby) || standby < 0) throw new RangeError('--standby must be a whole number of at least 0')
  if (web + standby > MAX_WEB_TOTAL) throw new RangeError(`--web plus --standby must be at most ${MAX_WEB_TOTAL}`)
  const hosts: LabHostPlan[] = [
    {
      name: BASTION_NAME,
      role: 'bastion',
      netns: `${LAB_PREFIX}${BASTION_NAME}`,
      publicAddress: BASTION_PUBLIC_ADDRESS,
      privateAddress: BASTION_PRIVATE_ADDRESS,
      standby: false,
    },
  ]
  for (let i = 1; i <= web + standby; i++) {
    hosts.push({name: `web${i}`, role: 'web', netns: `${LAB_PREFIX}web${i}`, privateAddress: webAddress(i), standby: i > web})
  }
  return {web, standby, hosts, namespaces: [...hosts.map((h) => h.netns), SWITCH_NETNS, INTERNET_NETNS]}
}

/** Name of a host's port on the private switch (at most 15 characters, like every link name). */
export function switchPort(host: LabHostPlan): string {
  return `p-${host.name}`.slice(0, 15)
}

// ---- address arithmetic (for the collision check) ----

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0)
}

export function parseCidr(cidr: string): {base: number; bits: number} {
  const [ip, bits = '32'] = cidr.split('/')
  const b = Number(bits)
  const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0
  return {base: (ipToInt(ip) & mask) >>> 0, bits: b}
}

/** Do two IPv4 networks (CIDR, or a bare address = /32) share an address? */
export function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a)
  const y = parseCidr(b)
  const bits = Math.min(x.bits, y.bits)
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0)
}

/** A route of the root namespace, as `ip -j route show table all` prints it. */
export interface RouteEntry {
  dst: string
  dev?: string
  gateway?: string
  prefsrc?: string
  table?: string
  type?: string
}

/**
 * The lab ranges that collide with this machine's own routes (default routes and lab links excepted).
 * The lab would otherwise shadow a real network, or a probe meant for the lab could leave the machine.
 */
export function rangeCollisions(routes: RouteEntry[]): {range: string; route: RouteEntry}[] {
  const ranges = [PUBLIC_NETWORK, PRIVATE_NETWORK, INTERNET_NETWORK]
  const found: {range: string; route: RouteEntry}[] = []
  for (const r of routes) {
    if (!r.dst || r.dst === 'default' || r.dst.includes(':')) continue
    if (r.dev?.startsWith(LAB_PREFIX)) continue
    if (r.type && !['unicast', 'local', 'broadcast'].includes(r.type)) continue
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/32`
    if (parseCidr(dst).bits === 0) continue
    for (const range of ranges) if (overlaps(range, dst)) found.push({range, route: r})
  }
  return found
}
