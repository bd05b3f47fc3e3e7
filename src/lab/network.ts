import {writeFile} from 'node:fs/promises'

import {out, run, sleep} from './run.js'
import {
  BASTION_IF,
  BASTION_INTERNET_ADDRESS,
  BASTION_PRIVATE_ADDRESS,
  BASTION_PUBLIC_ADDRESS,
  BRIDGE,
  INTERNET_NETNS,
  INTERNET_SERVER_ADDRESS,
  LAB_PREFIX,
  LabPlan,
  ROOT_CLIENT2_ADDRESS,
  ROOT_LINK,
  ROOT_PUBLIC_ADDRESS,
  RouteEntry,
  SWITCH_NETNS,
  switchPort,
  WEB_IF,
} from './topology.js'

const ip = (...args: string[]) => run(['ip', ...args])
const ipn = (ns: string, ...args: string[]) => run(['ip', '-n', ns, ...args])

/** Run a shell snippet inside a network namespace (root's binaries, the namespace's network). */
export function nsShell(ns: string, script: string, timeoutMs = 10_000) {
  return run(['ip', 'netns', 'exec', ns, 'sh', '-c', script], {timeoutMs})
}

/** Network namespaces whose name carries the lab prefix. */
export async function labNamespaces(): Promise<string[]> {
  const text = await out(['ip', 'netns', 'list'])
  return text
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(LAB_PREFIX))
}

/** Links of the root namespace whose name carries the lab prefix. */
export async function labRootLinks(): Promise<string[]> {
  const links = JSON.parse(await out(['ip', '-j', 'link', 'show'])) as {ifname: string}[]
  return links.map((l) => l.ifname).filter((n) => n.startsWith(LAB_PREFIX))
}

/** Every IPv4 route of the root namespace, all tables. */
export async function rootRoutes(): Promise<RouteEntry[]> {
  return JSON.parse(await out(['ip', '-j', '-4', 'route', 'show', 'table', 'all'])) as RouteEntry[]
}

/** The route the root namespace would use for an address (`ip route get` sends nothing). */
export async function routeGet(address: string, ns?: string): Promise<{dev?: string; gateway?: string; prefsrc?: string} | undefined> {
  const argv = ns ? ['ip', '-n', ns, '-j', 'route', 'get', address] : ['ip', '-j', 'route', 'get', address]
  const r = await run(argv, {allowFail: true})
  if (r.code !== 0) return undefined
  return (JSON.parse(r.stdout) as {dev?: string; gateway?: string; prefsrc?: string}[])[0]
}

/**
 * Build the lab network (see docs/LAB.md for the picture):
 * root ns ──infl-pub0/eth0── bastion ──eth1/p-bastion── switch (br0) ──p-webN/eth0── webN
 *                             bastion ──eth2/eth0── internet server (203.0.113.10)
 */
export async function createNetwork(plan: LabPlan): Promise<void> {
  await Promise.all(
    plan.namespaces.map(async (ns) => {
      await ip('netns', 'add', ns)
      await ipn(ns, 'link', 'set', 'lo', 'up')
      // IPv4 only: no IPv6 link-local chatter on lab links.
      await nsShell(ns, 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6')
    }),
  )
  const bastion = plan.hosts.find((h) => h.role === 'bastion')!
  const B = bastion.netns
  // The private switch.
  await ipn(SWITCH_NETNS, 'link', 'add', BRIDGE, 'type', 'bridge')
  await ipn(SWITCH_NETNS, 'link', 'set', BRIDGE, 'up')

  // Public side: root ns <-> bastion eth0.
  await ip('link', 'add', ROOT_LINK, 'type', 'veth', 'peer', 'name', BASTION_IF.public, 'netns', B)
  await writeFile(`/proc/sys/net/ipv6/conf/${ROOT_LINK}/disable_ipv6`, '1').catch(() => {})
  await ip('addr', 'add', `${ROOT_PUBLIC_ADDRESS}/24`, 'dev', ROOT_LINK)
  await ip('addr', 'add', `${ROOT_CLIENT2_ADDRESS}/24`, 'dev', ROOT_LINK)
  await ip('link', 'set', ROOT_LINK, 'up')
  await ipn(B, 'addr', 'add', `${BASTION_PUBLIC_ADDRESS}/24`, 'dev', BASTION_IF.public)
  await ipn(B, 'link', 'set', BASTION_IF.public, 'up')

  // Private side: every host has one port on the switch.
  await Promise.all(
    plan.hosts.map(async (h) => {
      const ifname = h.role === 'bastion' ? BASTION_IF.private : WEB_IF
      const port = switchPort(h)
      await ipn(h.netns, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', port, 'netns', SWITCH_NETNS)
      await ipn(SWITCH_NETNS, 'link', 'set', port, 'master', BRIDGE)
      await ipn(SWITCH_NETNS, 'link', 'set', port, 'up')
      await ipn(h.netns, 'addr', 'add', `${h.privateAddress}/24`, 'dev', ifname)
      await ipn(h.netns, 'link', 'set', ifname, 'up')
      if (h.role === 'web') await ipn(h.netns, 'route', 'add', 'default', 'via', BASTION_PRIVATE_ADDRESS)
    }),
  )

  // The "internet server", reachable from the bastion only. No default route anywhere in the lab.
  await ipn(B, 'link', 'add', BASTION_IF.internet, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', INTERNET_NETNS)
  await ipn(B, 'addr', 'add', `${BASTION_INTERNET_ADDRESS}/24`, 'dev', BASTION_IF.internet)
  await ipn(B, 'link', 'set', BASTION_IF.internet, 'up')
  await ipn(INTERNET_NETNS, 'addr', 'add', `${INTERNET_SERVER_ADDRESS}/24`, 'dev', 'eth0')
  await ipn(INTERNET_NETNS, 'link', 'set', 'eth0', 'up')

  // The bastion routes (its NAT, added by `infra provision`, makes web nodes' traffic leave from 203.0.113.1).
  await nsShell(B, 'echo 1 > /proc/sys/net/ipv4/ip_forward')
}

/** Is the network of a running lab intact (namespaces, root link, every host's address)? Returns what is wrong. */
export async function checkNetwork(plan: LabPlan): Promise<string[]> {
  const problems: string[] = []
  const present = new Set(await labNamespaces())
  for (const ns of plan.namespaces) if (!present.has(ns)) problems.push(`network namespace ${ns} is missing`)
  if (problems.length > 0) return problems
  const rootAddrs = JSON.parse((await run(['ip', '-j', '-4', 'addr', 'show', 'dev', ROOT_LINK], {allowFail: true})).stdout || '[]') as {
    addr_info?: {local: string}[]
  }[]
  if (!rootAddrs[0]?.addr_info?.some((a) => a.local === ROOT_PUBLIC_ADDRESS)) problems.push(`${ROOT_LINK} is missing or has no ${ROOT_PUBLIC_ADDRESS}`)
  await Promise.all(
    plan.hosts.map(async (h) => {
      const r = await run(['ip', '-n', h.netns, '-j', '-4', 'addr', 'show'], {allowFail: true})
      const links = JSON.parse(r.stdout || '[]') as {ifname: string; addr_info?: {local: string}[]}[]
      const want = [h.privateAddress, ...(h.publicAddress ? [h.publicAddress] : [])]
      for (const a of want) {
        if (!links.some((l) => l.addr_info?.some((x) => x.local === a))) problems.push(`${h.name} has no address ${a}`)
      }
    }),
  )
  return problems
}

/** Delete lab namespaces and root links (processes inside must be gone first). Returns what was removed. */
export async function destroyNetwork(): Promise<{namespaces: string[]; links: string[]}> {
  const namespaces = await labNamespaces()
  for (const ns of namespaces) await run(['ip', 'netns', 'del', ns], {allowFail: true})
  // A veth goes away with its peer's namespace; the kernel frees namespaces asynchronously.
  const links: string[] = []
  for (let i = 0; i < 40; i++) {
    const left = await labRootLinks()
    if (left.length === 0) break
    for (const l of left) {
      if (!links.includes(l)) links.push(l)
      await run(['ip', 'link', 'del', l], {allowFail: true})
    }
    await sleep(50)
  }
  return {namespaces, links}
}
