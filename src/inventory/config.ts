/**
 * The configuration object: what the rest of the tool asks of an inventory beyond its raw keys,
 * derived once per inventory value (memoised by identity) and frozen. Renderers, checks, status,
 * monitoring and the ssh layer read these facts here instead of re-deriving them.
 *
 * The rules are the schema's: a validated inventory (loadInventory, inventorySchema) always
 * satisfies them. configOf only refuses an inventory made by hand that skipped the schema (tests),
 * with the key and the schema's own message.
 */
import {parseCidr, slash24} from '../host/ipv4.js'
import {DEFAULT_PATHS, type HostPaths} from '../host/paths.js'
import {HAPROXY_STATS_PORT, NODE_EXPORTER_PORT} from '../host/ports.js'
import {durationMs, healthPathSchema, type Inventory} from './schema.js'
import {imageRegistryHost} from './schema/app.js'

/** Every duration of the inventory, in milliseconds, named after its key. */
export interface FleetDurations {
  /** ssh.connectTimeout */
  readonly sshConnectTimeout: number
  /** web.timeout */
  readonly webTimeout: number
  /** web.healthCheck.interval */
  readonly healthInterval: number
  /** scaling.sustainFor */
  readonly scalingSustainFor: number
  /** scaling.recheckEvery */
  readonly scalingRecheckEvery: number
  /** healing.every */
  readonly healingEvery: number
  /** limits.window */
  readonly limitsWindow: number
  /** limits.banFor */
  readonly limitsBanFor: number
  /** cors.maxAge */
  readonly corsMaxAge: number
  /** deploy.timeout */
  readonly deployTimeout: number
  /** deploy.drain */
  readonly deployDrain: number
  /** deploy.lockStale */
  readonly deployLockStale: number
  /** app.healthCheck.interval (1 s without an app) */
  readonly appHealthInterval: number
}

/** What deploy and provision derive from `app` (undefined without one). */
export interface AppConfig {
  /** app.healthCheck.path, defaulting to web.healthCheck.path. */
  readonly healthPath: string
  /** The image's registry host (`ghcr.io`), or the fleet registry's `address:port`. */
  readonly registryHost: string
  /** true when the image lives in the bastion's fleet registry. */
  readonly fleetRegistry: boolean
  /** The image repository as nodes pull it, without a tag (`10.42.0.1:5000/shop`). */
  readonly repository: string
  /** The repository path inside its registry (`shop`, `acme/shop`). */
  readonly repositoryPath: string
}

/** A node exporter the bastion's HAProxy publishes: host name, role, the address HAProxy connects to, the path it publishes it at. */
export interface MetricsTarget {
  readonly name: string
  readonly role: 'bastion' | 'web'
  readonly address: string
  readonly path: string
}

export interface FleetConfig {
  readonly ms: FleetDurations
  /** web.healthCheck.path (the schema's rule: healthPathSchema). */
  readonly healthPath: string
  /** The TLS PEM's file name on the bastion: `<domain>.pem`, the domain lower-cased. */
  readonly tlsPemFile: string
  /** The TLS PEM's path on the bastion, in the host paths' cert folder (default: DEFAULT_PATHS). */
  tlsPemPath(paths?: Pick<HostPaths, 'haproxyCertDir'>): string
  /** The private network in CIDR form, host bits cleared (`10.0.0.5/24` → `10.0.0.0/24`). */
  readonly privateNetwork: string
  /** host:port of HAProxy's stats frontend (the bastion's private address). */
  readonly statsAddress: string
  /** Every node exporter the bastion publishes, the bastion first. */
  readonly metricsTargets: readonly MetricsTarget[]
  /** bastion.adminAllow by family, without duplicates (IPv6 lower-cased). */
  readonly adminAllow: {readonly v4: readonly string[]; readonly v6: readonly string[]}
  /** The fleet registry's `address:port` on the bastion's private network. */
  readonly registryAddress: string
  readonly app: AppConfig | undefined
}

/** The path at which the bastion's HAProxy publishes a host's node exporter. */
export function nodeMetricsPath(name: string): string {
  return `/nodes/${name}/metrics`
}

/** An inventory that skipped the schema (made by hand): the key and why, as validate would say it. */
function unvalidated(key: string, message: string): Error {
  return new Error(`${key}: ${message} (the inventory did not go through the schema)`)
}

function durationsOf(inv: Inventory): FleetDurations {
  return Object.freeze({
    sshConnectTimeout: durationMs(inv.ssh.connectTimeout),
    webTimeout: durationMs(inv.web.timeout),
    healthInterval: durationMs(inv.web.healthCheck.interval),
    scalingSustainFor: durationMs(inv.scaling.sustainFor),
    scalingRecheckEvery: durationMs(inv.scaling.recheckEvery),
    healingEvery: durationMs(inv.healing.every),
    limitsWindow: durationMs(inv.limits.window),
    limitsBanFor: durationMs(inv.limits.banFor),
    corsMaxAge: durationMs(inv.cors.maxAge),
    deployTimeout: durationMs(inv.deploy.timeout),
    deployDrain: durationMs(inv.deploy.drain),
    deployLockStale: durationMs(inv.deploy.lockStale),
    appHealthInterval: inv.app ? durationMs(inv.app.healthCheck.interval) : 1000,
  })
}

function healthPathOf(inv: Inventory): string {
  const r = healthPathSchema.safeParse(inv.web.healthCheck.path)
  if (!r.success) throw unvalidated('web.healthCheck.path', r.error.issues[0].message)
  return r.data
}

function privateNetworkOf(inv: Inventory): string {
  const cidr = inv.bastion.privateNetwork ?? slash24(inv.bastion.privateAddress)
  const parsed = parseCidr(cidr)
  if (!parsed) throw unvalidated('bastion.privateNetwork', `${cidr} is not an IPv4 network (a.b.c.d/n, n at most 32)`)
  return parsed.text
}

function metricsTargetsOf(inv: Inventory): readonly MetricsTarget[] {
  const targets: MetricsTarget[] = [
    {name: inv.bastion.name, role: 'bastion', address: `127.0.0.1:${NODE_EXPORTER_PORT}`, path: nodeMetricsPath(inv.bastion.name)},
    ...inv.web.nodes.map((n) => ({name: n.name, role: 'web' as const, address: `${n.address}:${NODE_EXPORTER_PORT}`, path: nodeMetricsPath(n.name)})),
  ]
  return Object.freeze(targets.map((t) => Object.freeze(t)))
}

function isIPv4Net(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s)
  return Boolean(m) && m!.slice(1, 5).every((o) => Number(o) <= 255) && (m![5] === undefined || Number(m![5]) <= 32)
}

function isIPv6Net(s: string): boolean {
  const m = /^([0-9a-f:.]+)(?:\/(\d{1,3}))?$/i.exec(s)
  return Boolean(m) && m![1].includes(':') && (m![2] === undefined || Number(m![2]) <= 128)
}

function adminAllowOf(inv: Inventory): FleetConfig['adminAllow'] {
  const v4: string[] = []
  const v6: string[] = []
  inv.bastion.adminAllow.forEach((entry, i) => {
    const e = entry.trim()
    if (isIPv4Net(e)) v4.push(e)
    else if (isIPv6Net(e)) v6.push(e.toLowerCase())
    else throw unvalidated(`bastion.adminAllow[${i}]`, `"${entry}" is not an IP address or network`)
  })
  return Object.freeze({v4: Object.freeze([...new Set(v4)]), v6: Object.freeze([...new Set(v6)])})
}

/** A first path component with a dot, a colon or "localhost" is a registry host (Docker's own rule). */
function appOf(inv: Inventory, registryAddress: string, healthPath: string): AppConfig | undefined {
  if (!inv.app) return undefined
  const image = inv.app.image
  const host = imageRegistryHost(image)
  const external = host !== undefined
  const repositoryPath = external ? image.slice(host.length + 1) : image
  return Object.freeze({
    healthPath: inv.app.healthCheck.path ?? healthPath,
    registryHost: host ?? registryAddress,
    fleetRegistry: !external,
    repository: external ? image : `${registryAddress}/${image}`,
    repositoryPath,
  })
}

function build(inv: Inventory): FleetConfig {
  const tlsPemFile = `${inv.domain.toLowerCase()}.pem`
  const registryAddress = `${inv.bastion.privateAddress}:${inv.registry.port}`
  const healthPath = healthPathOf(inv)
  return Object.freeze({
    ms: durationsOf(inv),
    healthPath,
    tlsPemFile,
    tlsPemPath: (paths: Pick<HostPaths, 'haproxyCertDir'> = DEFAULT_PATHS) => `${paths.haproxyCertDir}/${tlsPemFile}`,
    privateNetwork: privateNetworkOf(inv),
    statsAddress: `${inv.bastion.privateAddress}:${HAPROXY_STATS_PORT}`,
    metricsTargets: metricsTargetsOf(inv),
    adminAllow: adminAllowOf(inv),
    registryAddress,
    app: appOf(inv, registryAddress, healthPath),
  })
}

const memo = new WeakMap<Inventory, FleetConfig>()

/** The derived facts of an inventory, computed once per inventory value. */
export function configOf(inv: Inventory): FleetConfig {
  let c = memo.get(inv)
  if (!c) {
    c = build(inv)
    memo.set(inv, c)
  }
  return c
}
