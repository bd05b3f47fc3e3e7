/**
 * The one set of IPv4 helpers of the tree (inventory checks, firewall rendering, provision,
 * doctor, the lab). Addresses are handled as unsigned 32-bit numbers.
 */

export function parseIPv4(s: string): number | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || String(Number(p)) !== p || Number(p) > 255) return undefined
    n = n * 256 + Number(p)
  }
  return n
}

export function isIPv4(s: string): boolean {
  return parseIPv4(s) !== undefined
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.')
}

export interface Cidr {
  /** Network address (host bits cleared). */
  network: number
  prefix: number
  /** Normalised text, e.g. "10.10.0.0/24". */
  text: string
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** Parses "a.b.c.d/n"; host bits are cleared ("10.10.0.5/24" is 10.10.0.0/24). */
export function parseCidr(s: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s)
  if (!m) return undefined
  const ip = parseIPv4(m[1])
  const prefix = Number(m[2])
  if (ip === undefined || prefix > 32 || String(prefix) !== m[2]) return undefined
  const network = (ip & maskOf(prefix)) >>> 0
  return {network, prefix, text: `${formatIPv4(network)}/${prefix}`}
}

export function cidrOf(ip: string, prefix: number): Cidr | undefined {
  return parseCidr(`${ip}/${prefix}`)
}

export function inCidr(ip: string | number, cidr: Cidr): boolean {
  const n = typeof ip === 'number' ? ip : parseIPv4(ip)
  return n !== undefined && ((n & maskOf(cidr.prefix)) >>> 0) === cidr.network
}

/** Broadcast address of a network (the last address). */
export function broadcastOf(cidr: Cidr): number {
  return (cidr.network | (~maskOf(cidr.prefix) >>> 0)) >>> 0
}

const RFC1918 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map((c) => parseCidr(c)!)

const SPECIAL: [Cidr, AddressKind][] = [
  ['0.0.0.0/8', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
].map(([c, k]) => [parseCidr(c)!, k as AddressKind])

export type AddressKind = 'private' | 'public' | 'unspecified' | 'loopback' | 'link-local' | 'shared (carrier-grade NAT)' | 'multicast' | 'reserved'

/**
 * What kind of address this is. "private" means RFC 1918 (10/8, 172.16/12, 192.168/16).
 * The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) count as public:
 * the lab uses them for the public side.
 */
export function addressKind(ip: string): AddressKind | undefined {
  const n = parseIPv4(ip)
  if (n === undefined) return undefined
  if (RFC1918.some((c) => inCidr(n, c))) return 'private'
  for (const [c, kind] of SPECIAL) if (inCidr(n, c)) return kind
  return 'public'
}

export function isPrivateIPv4(ip: string): boolean {
  return addressKind(ip) === 'private'
}

/** True when the whole network lies inside one RFC 1918 block. */
export function isPrivateCidr(cidr: Cidr): boolean {
  return RFC1918.some((c) => cidr.prefix >= c.prefix && inCidr(cidr.network, c))
}

/** RFC 1918 or shared address space (RFC 6598, 100.64.0.0/10): never routed on the internet. */
export function isNonPublicIPv4(ip: string): boolean {
  const kind = addressKind(ip)
  return kind === 'private' || kind === 'shared (carrier-grade NAT)'
}

/** `ip` inside `cidr` given as text ("10.0.0.0/24"); false when either does not parse. */
export function inCidrText(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr)
  return c !== undefined && inCidr(ip, c)
}

/** The /24 network of an address, e.g. 10.42.0.1 → 10.42.0.0/24. */
export function slash24(address: string): string {
  return address.split('.').slice(0, 3).join('.') + '.0/24'
}
