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

export function crossCheck(raw: unknown): CrossIssue[] {
  const issues: CrossIssue[] = []
  const add = (path: (string | number)[], message: string) => issues.push({path, message})
  const inv = rec(raw)
  if (!inv) return issues

  // Names: the domain and its aliases.
  const domain = str(inv.domain)?.toLowerCase()
  const aliases = list(inv.aliases) ?? []
  const seenAlias = new Map<string, number>()
  aliases.forEach((a, i) => {
    const name = str(a)?.toLowerCase()
    if (name === undefined) return
    if (name === domain) add(['aliases', i], `${q(a)} is the domain itself; list only the other names`)
    else if (seenAlias.has(name)) add(['aliases', i], `${q(a)} is listed twice (also aliases[${seenAlias.get(name)}])`)
    else seenAlias.set(name, i)
  })

  // The bastion and its private network.
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
        add(['bastion', 'privateNetwork'], `${q(given)} is not a private network; use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16`)
        network = undefined
      }
    }
  } else if (priv && addressKind(priv) === 'private') {
    network = cidrOf(priv, 24)
    networkText = `the private network ${network!.text} (the /24 of bastion.privateAddress; set bastion.privateNetwork to change it)`
  }

  const edgeOf = (addr: string): string | undefined => {
    if (!network || network.prefix > 30) return undefined
    const n = parseIPv4(addr)
    if (n === network.network) return `is the network address of ${network.text}, not a host address`
    if (n === broadcastOf(network)) return `is the broadcast address of ${network.text}, not a host address`
    return undefined
  }

  if (priv) {
    const kind = addressKind(priv)
    if (kind !== 'private') {
      add(['bastion', 'privateAddress'], `${q(priv)} is ${article(kind!)} address; the bastion's private address must be in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16`)
    } else if (priv === pub) {
      add(['bastion', 'privateAddress'], `${q(priv)} is also bastion.publicAddress; the bastion needs a separate address on the private network`)
    } else if (network && !inCidr(priv, network)) {
      add(['bastion', 'privateAddress'], `${q(priv)} is outside ${networkText}`)
    } else {
      const edge = edgeOf(priv)
      if (edge) add(['bastion', 'privateAddress'], `${q(priv)} ${edge}`)
    }
  }

  // Web nodes: unique names and addresses, private, inside the bastion network.
  const web = rec(inv.web)
  const nodes = list(web?.nodes)
  const names = new Map<string, string>()
  if (bastionName) names.set(bastionName, 'the bastion (bastion.name)')
  const addresses = new Map<string, string>()
  if (pub) addresses.set(pub, 'bastion.publicAddress')
  if (priv && !addresses.has(priv)) addresses.set(priv, 'bastion.privateAddress')
  nodes?.forEach((item, i) => {
    const node = rec(item)
    if (!node) return
    const name = str(node.name)
    if (name !== undefined) {
      const other = names.get(name)
      if (other) add(['web', 'nodes', i, 'name'], `${q(name)} is already used by ${other}; every host needs its own name`)
      else names.set(name, `web.nodes[${i}]`)
    }
    const addr = ip(node.address)
    if (addr === undefined) return
    const other = addresses.get(addr)
    const kind = addressKind(addr)
    if (other) add(['web', 'nodes', i, 'address'], `${q(addr)} is already used by ${other}; every host needs its own address`)
    else if (kind !== 'private') add(['web', 'nodes', i, 'address'], `${q(addr)} is ${article(kind!)} address; web nodes must be on the private network`)
    else if (network && !inCidr(addr, network)) add(['web', 'nodes', i, 'address'], `${q(addr)} is outside ${networkText}`)
    else {
      const edge = edgeOf(addr)
      if (edge) add(['web', 'nodes', i, 'address'], `${q(addr)} ${edge}`)
    }
    addresses.set(addr, `web.nodes[${i}]`)
  })
  if (nodes && nodes.length > 0 && nodes.every((n) => rec(n)?.standby === true)) {
    add(['web', 'nodes'], 'every node has standby: true; at least one web node must be active')
  }

  // ssh.hostKeys names hosts: a typo would leave the host it meant unchecked on first contact.
  const ssh = rec(inv.ssh)
  const hostKeys = rec(ssh?.hostKeys)
  if (hostKeys) {
    for (const name of Object.keys(hostKeys)) {
      if (!names.has(name)) add(['ssh', 'hostKeys', name], `no host of this inventory is named ${q(name)} (hosts: ${[...names.keys()].join(', ')})`)
    }
  }

  // Ports that would collide.
  const sshPort = ssh && ssh.port !== undefined ? int(ssh.port) : 22
  if (sshPort === 80 || sshPort === 443) {
    add(['ssh', 'port'], `${sshPort} is taken by HAProxy on the bastion (ports 80 and 443); choose another SSH port`)
  }
  const webPort = web && web.port !== undefined ? int(web.port) : 80
  const appPort = int(web?.appPort)
  if (appPort !== undefined && appPort === webPort) {
    add(['web', 'appPort'], `${appPort} is also web.port; nginx listens on web.port and proxies to the application on appPort, so they must differ`)
  }

  // Scaling bounds.
  const scaling = rec(inv.scaling)
  const min = scaling && scaling.min !== undefined ? int(scaling.min) : 1
  const max = int(scaling?.max)
  const count = nodes?.length ?? 0
  const nodesText = `the number of web nodes (${count})`
  if (max !== undefined && min !== undefined && max < min) add(['scaling', 'max'], `${max} is less than scaling.min (${min})`)
  if (max !== undefined && count > 0 && max > count) {
    add(['scaling', 'max'], `${max} is more than ${nodesText}; add standby nodes to web.nodes or lower scaling.max`)
  }
  if (scaling?.min !== undefined && min !== undefined && count > 0 && min > count) {
    add(['scaling', 'min'], `${min} is more than ${nodesText}`)
  }

  // TLS: which keys go with which mode.
  const tls = rec(inv.tls)
  if (tls) {
    const mode = tls.mode === undefined ? 'self-signed' : str(tls.mode)
    if (mode === 'files') {
      if (tls.cert === undefined || tls.cert === '') {
        add(['tls', 'cert'], 'is missing (tls.mode "files" needs cert: the path of the PEM certificate, relative to the inventory)')
      }
      if (tls.key === undefined || tls.key === '') {
        add(['tls', 'key'], 'is missing (tls.mode "files" needs key: the path of the PEM private key, relative to the inventory)')
      }
      if (tls.days !== undefined) add(['tls', 'days'], 'is only used with tls.mode "self-signed"; the certificate file sets its own lifetime')
    } else if (mode === 'self-signed') {
      for (const k of ['cert', 'key'] as const) {
        if (tls[k] !== undefined) add(['tls', k], `is only used with tls.mode "files" (set tls.mode: files to use your own certificate, or remove tls.${k})`)
      }
    }
  }

  // Edge: JWT key material goes with the algorithm (src/edge, docs/EDGE.md).
  const auth = rec(inv.auth)
  const alg = str(auth?.alg)
  if (auth && alg) {
    if (alg.startsWith('HS')) {
      if (auth.secretEnv === undefined) add(['auth', 'secretEnv'], `is missing (auth.alg ${alg} needs secretEnv: the environment variable holding the HMAC secret)`)
      if (auth.key !== undefined) add(['auth', 'key'], `is only used with RS* and ES* algorithms; ${alg} takes its secret from auth.secretEnv`)
    } else {
      if (auth.key === undefined) add(['auth', 'key'], `is missing (auth.alg ${alg} needs key: the path of the PEM public key, relative to the inventory)`)
      if (auth.secretEnv !== undefined) add(['auth', 'secretEnv'], `is only used with HS* algorithms; ${alg} verifies with auth.key`)
    }
  }

  return issues
}

function article(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`
}
