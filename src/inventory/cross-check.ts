import {imageRegistryHost} from './schema/app.js'
import {checkSites} from './cross-check-sites.js'
import {addressKind, broadcastOf, Cidr, cidrOf, inCidr, isPrivateCidr, parseCidr, parseIPv4} from '../host/ipv4.js'

/**
 * Checks that involve more than one key (duplicates, networks, scaling bounds, tls mode).
 *
 * They run on the raw document, not on the zod output, so that they are reported together with
 * the shape errors: a value of the wrong shape is skipped here (the schema reports it), and a
 * missing value takes its default.
 */

export interface CrossIssue {
  path: (string | number)[]
  /** The text after `path: `. */
  message: string
}

type Rec = Record<string, unknown>

const rec = (v: unknown): Rec | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : undefined)
const list = (v: unknown): unknown[] | undefined => (Array.isArray(v) ? v : undefined)
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined)
const ip = (v: unknown): string | undefined => (typeof v === 'string' && parseIPv4(v) !== undefined ? v : undefined)

export function pathText(path: readonly (string | number)[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p
  return out
}

const q = JSON.stringify

type Issues = CrossIssue[]
const issue = (path: (string | number)[], message: string): CrossIssue => ({path, message})

/** Every cross-key check, in the order their messages are reported. */
export function crossCheck(raw: unknown): CrossIssue[] {
  const inv = rec(raw)
  if (!inv) return []
  const net = bastionNetwork(inv)
  const hosts = checkWebNodes(inv, net)
  return [
    ...checkAliases(inv),
    ...net.issues,
    ...checkBastionAddress(net),
    ...hosts.issues,
    ...checkHostKeys(inv, hosts.names),
    ...checkPorts(inv),
    ...checkScaling(inv),
    ...checkTls(inv),
    ...checkAuth(inv),
    ...checkAppRegistry(inv),
    ...checkSites(inv),
  ]
}

/** app.registry is for an image in an outside registry (a first component with a dot, a colon or localhost). */
function checkAppRegistry(inv: Rec): Issues {
  const app = rec(inv.app)
  const image = str(app?.image)
  if (!app || !rec(app.registry) || image === undefined) return []
  if (imageRegistryHost(image) !== undefined) return []
  return [issue(['app', 'registry'], `is for an image in an outside registry, but ${q(image)} is in the fleet registry (its credentials are infra's own); name the registry host in app.image (e.g. "ghcr.io/acme/shop") or remove app.registry`)]
}

/** Names: the domain and its aliases. */
function checkAliases(inv: Rec): Issues {
  const issues: Issues = []
  const domain = str(inv.domain)?.toLowerCase()
  const aliases = list(inv.aliases) ?? []
  const seenAlias = new Map<string, number>()
  aliases.forEach((a, i) => {
    const name = str(a)?.toLowerCase()
    if (name === undefined) return
    if (name === domain) issues.push(issue(['aliases', i], `${q(a)} is the domain itself; list only the other names`))
    else if (seenAlias.has(name)) issues.push(issue(['aliases', i], `${q(a)} is listed twice (also aliases[${seenAlias.get(name)}])`))
    else seenAlias.set(name, i)
  })
  return issues
}

/** The bastion, its addresses and its private network (with the issue of bastion.privateNetwork). */
interface BastionNetwork {
  bastionName: string | undefined
  pub: string | undefined
  priv: string | undefined
  network: Cidr | undefined
  /** How messages name the network. */
  networkText: string
  issues: Issues
}

function bastionNetwork(inv: Rec): BastionNetwork {
  const issues: Issues = []
  const bastion = rec(inv.bastion)
  const bastionName = bastion && bastion.name !== undefined ? str(bastion.name) : 'bastion'
  const pub = ip(bastion?.publicAddress)
  const priv = ip(bastion?.privateAddress)
  let network: Cidr | undefined
  let networkText = ''
  if (bastion && bastion.privateNetwork !== undefined) {
    const given = str(bastion.privateNetwork)
    network = given === undefined ? undefined : parseCidr(given)
    if (network) {
      networkText = `bastion.privateNetwork (${network.text})`
      if (!isPrivateCidr(network)) {
        issues.push(issue(['bastion', 'privateNetwork'], `${q(given)} is not a private network; use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16`))
        network = undefined
      }
    }
  } else if (priv && addressKind(priv) === 'private') {
    network = cidrOf(priv, 24)
    networkText = `the private network ${network!.text} (the /24 of bastion.privateAddress; set bastion.privateNetwork to change it)`
  }
  return {bastionName, pub, priv, network, networkText, issues}
}

/** Why a host address is the network or broadcast address of the private network, if it is. */
function edgeOf(network: Cidr | undefined, addr: string): string | undefined {
  if (!network || network.prefix > 30) return undefined
  const n = parseIPv4(addr)
  if (n === network.network) return `is the network address of ${network.text}, not a host address`
  if (n === broadcastOf(network)) return `is the broadcast address of ${network.text}, not a host address`
  return undefined
}

function checkBastionAddress({priv, pub, network, networkText}: BastionNetwork): Issues {
  if (!priv) return []
  const at = ['bastion', 'privateAddress']
  const kind = addressKind(priv)
  if (kind !== 'private') {
    return [issue(at, `${q(priv)} is ${article(kind!)} address; the bastion's private address must be in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16`)]
  }
  if (priv === pub) return [issue(at, `${q(priv)} is also bastion.publicAddress; the bastion needs a separate address on the private network`)]
  if (network && !inCidr(priv, network)) return [issue(at, `${q(priv)} is outside ${networkText}`)]
  const edge = edgeOf(network, priv)
  return edge ? [issue(at, `${q(priv)} ${edge}`)] : []
}

/** Web nodes: unique names and addresses, private, inside the bastion network. Also yields every host name. */
function checkWebNodes(inv: Rec, net: BastionNetwork): {issues: Issues; names: Map<string, string>} {
  const issues: Issues = []
  const nodes = list(rec(inv.web)?.nodes)
  const names = new Map<string, string>()
  if (net.bastionName) names.set(net.bastionName, 'the bastion (bastion.name)')
  const addresses = new Map<string, string>()
  if (net.pub) addresses.set(net.pub, 'bastion.publicAddress')
  if (net.priv && !addresses.has(net.priv)) addresses.set(net.priv, 'bastion.privateAddress')
  nodes?.forEach((item, i) => {
    const node = rec(item)
    if (!node) return
    const name = str(node.name)
    if (name !== undefined) {
      const other = names.get(name)
      if (other) issues.push(issue(['web', 'nodes', i, 'name'], `${q(name)} is already used by ${other}; every host needs its own name`))
      else names.set(name, `web.nodes[${i}]`)
    }
    const addr = ip(node.address)
    if (addr === undefined) return
    const message = nodeAddressProblem(addr, addresses.get(addr), net)
    if (message) issues.push(issue(['web', 'nodes', i, 'address'], message))
    addresses.set(addr, `web.nodes[${i}]`)
  })
  if (nodes && nodes.length > 0 && nodes.every((n) => rec(n)?.standby === true)) {
    issues.push(issue(['web', 'nodes'], 'every node has standby: true; at least one web node must be active'))
  }
  return {issues, names}
}

/** What is wrong with a web node's address (`other`: what already uses it), if anything. */
function nodeAddressProblem(addr: string, other: string | undefined, {network, networkText}: BastionNetwork): string | undefined {
  const kind = addressKind(addr)
  if (other) return `${q(addr)} is already used by ${other}; every host needs its own address`
  if (kind !== 'private') return `${q(addr)} is ${article(kind!)} address; web nodes must be on the private network`
  if (network && !inCidr(addr, network)) return `${q(addr)} is outside ${networkText}`
  const edge = edgeOf(network, addr)
  return edge ? `${q(addr)} ${edge}` : undefined
}

/** ssh.hostKeys names hosts: a typo would leave the host it meant unchecked on first contact. */
function checkHostKeys(inv: Rec, names: Map<string, string>): Issues {
  const hostKeys = rec(rec(inv.ssh)?.hostKeys)
  if (!hostKeys) return []
  return Object.keys(hostKeys)
    .filter((name) => !names.has(name))
    .map((name) => issue(['ssh', 'hostKeys', name], `no host of this inventory is named ${q(name)} (hosts: ${[...names.keys()].join(', ')})`))
}

/** Ports that would collide. */
function checkPorts(inv: Rec): Issues {
  const issues: Issues = []
  const ssh = rec(inv.ssh)
  const web = rec(inv.web)
  const sshPort = ssh && ssh.port !== undefined ? int(ssh.port) : 22
  if (sshPort === 80 || sshPort === 443) {
    issues.push(issue(['ssh', 'port'], `${sshPort} is taken by HAProxy on the bastion (ports 80 and 443); choose another SSH port`))
  }
  const webPort = web && web.port !== undefined ? int(web.port) : 80
  const appPort = int(web?.appPort)
  if (appPort !== undefined && appPort === webPort) {
    issues.push(issue(['web', 'appPort'], `${appPort} is also web.port; nginx listens on web.port and proxies to the application on appPort, so they must differ`))
  }
  if (appPort !== undefined && rec(inv.app)) {
    issues.push(issue(['web', 'appPort'], 'is for a service of your own on each node; with app, nginx proxies to the deployed container instead. Remove web.appPort, or remove app'))
  }
  return issues
}

/** Scaling bounds. */
function checkScaling(inv: Rec): Issues {
  const issues: Issues = []
  const scaling = rec(inv.scaling)
  const min = scaling && scaling.min !== undefined ? int(scaling.min) : 1
  const max = int(scaling?.max)
  const count = list(rec(inv.web)?.nodes)?.length ?? 0
  const nodesText = `the number of web nodes (${count})`
  if (max !== undefined && min !== undefined && max < min) issues.push(issue(['scaling', 'max'], `${max} is less than scaling.min (${min})`))
  if (max !== undefined && count > 0 && max > count) {
    issues.push(issue(['scaling', 'max'], `${max} is more than ${nodesText}; add standby nodes to web.nodes or lower scaling.max`))
  }
  if (scaling?.min !== undefined && min !== undefined && count > 0 && min > count) {
    issues.push(issue(['scaling', 'min'], `${min} is more than ${nodesText}`))
  }
  return issues
}

/** TLS: which keys go with which mode. */
function checkTls(inv: Rec): Issues {
  const issues: Issues = []
  const tls = rec(inv.tls)
  if (!tls) return issues
  const mode = tls.mode === undefined ? 'self-signed' : str(tls.mode)
  if (mode === 'files') {
    if (tls.cert === undefined || tls.cert === '') {
      issues.push(issue(['tls', 'cert'], 'is missing (tls.mode "files" needs cert: the path of the PEM certificate, relative to the inventory)'))
    }
    if (tls.key === undefined || tls.key === '') {
      issues.push(issue(['tls', 'key'], 'is missing (tls.mode "files" needs key: the path of the PEM private key, relative to the inventory)'))
    }
    if (tls.days !== undefined) issues.push(issue(['tls', 'days'], 'is only used with tls.mode "self-signed"; the certificate file sets its own lifetime'))
  } else if (mode === 'self-signed') {
    for (const k of ['cert', 'key'] as const) {
      if (tls[k] !== undefined) issues.push(issue(['tls', k], `is only used with tls.mode "files" (set tls.mode: files to use your own certificate, or remove tls.${k})`))
    }
  }
  return issues
}

/** Edge: JWT key material goes with the algorithm (src/edge, docs/EDGE.md). */
function checkAuth(inv: Rec): Issues {
  const issues: Issues = []
  const auth = rec(inv.auth)
  const alg = str(auth?.alg)
  if (!auth || !alg) return issues
  if (alg.startsWith('HS')) {
    if (auth.secretEnv === undefined) issues.push(issue(['auth', 'secretEnv'], `is missing (auth.alg ${alg} needs secretEnv: the environment variable holding the HMAC secret)`))
    if (auth.key !== undefined) issues.push(issue(['auth', 'key'], `is only used with RS* and ES* algorithms; ${alg} takes its secret from auth.secretEnv`))
  } else {
    if (auth.key === undefined) issues.push(issue(['auth', 'key'], `is missing (auth.alg ${alg} needs key: the path of the PEM public key, relative to the inventory)`))
    if (auth.secretEnv !== undefined) issues.push(issue(['auth', 'secretEnv'], `is only used with HS* algorithms; ${alg} verifies with auth.key`))
  }
  return issues
}

function article(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`
}
