/** Small IPv4 helpers shared by the inventory checks, the provisioner and doctor. */

export function ipv4ToInt(address: string): number {
  const p = address.split('.').map(Number)
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0
}

export function inCidr(address: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/')
  const bits = Number(bitsText ?? 32)
  if (bits === 0) return true
  const mask = (~0 << (32 - bits)) >>> 0
  return (ipv4ToInt(address) & mask) === (ipv4ToInt(net!) & mask)
}

/** RFC 1918 private ranges, plus shared address space (RFC 6598), which is also not public. */
export const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'] as const

export function isPrivateIPv4(address: string): boolean {
  return PRIVATE_RANGES.some((r) => inCidr(address, r))
}

/** The /24 network of an address, e.g. 10.42.0.1 → 10.42.0.0/24. */
export function slash24(address: string): string {
  return address.split('.').slice(0, 3).join('.') + '.0/24'
}
