import {describe, expect, it} from 'vitest'
import {parseDocument} from 'yaml'

import {inventoryJsonSchema} from '../../src/inventory/json-schema.js'
import {hostsOf, inventorySchema} from '../../src/inventory/schema.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import {didYouMean as closest, editDistance} from '../../src/lib/text.js'

/**
 * Table-driven: each bad inventory is the valid BASE with one edit, and the test asserts the
 * exact, complete list of error lines a user would see.
 */
const BASE = `domain: example.com
aliases: [www.example.com]
ssh:
  user: root
  port: 22
bastion:
  publicAddress: 203.0.113.10
  privateAddress: 10.10.0.1
web:
  nodes:
    - name: web1
      address: 10.10.0.11
    - name: web2
      address: 10.10.0.12
      standby: true
`

/** BASE with `from` replaced by `to` (which must occur exactly once). */
function edit(from: string, to: string, text = BASE): string {
  const parts = text.split(from)
  if (parts.length !== 2) throw new Error(`"${from}" occurs ${parts.length - 1} times`)
  return parts.join(to)
}

const errorsOf = (text: string) => validateInventoryText(text, 'infra.yaml').errors

describe('validateInventoryText: a valid inventory', () => {
  it('accepts BASE and fills in every default', () => {
    const r = validateInventoryText(BASE)
    expect(r.errors).toEqual([])
    const inv = r.inventory!
    expect(inv.ssh).toEqual({user: 'root', port: 22, connectTimeout: '10s', parallel: 10})
    expect(inv.bastion).toEqual({
      name: 'bastion',
      publicAddress: '203.0.113.10',
      privateAddress: '10.10.0.1',
      privateNetwork: '10.10.0.0/24',
      adminAllow: [],
    })
    expect(inv.web.port).toBe(80)
    expect(inv.web.appPort).toBeUndefined()
    expect(inv.web.healthCheck).toEqual({path: '/healthz', interval: '2s', fall: 3, rise: 2})
    expect(inv.web.timeout).toBe('30s')
    expect(inv.web.nodes).toEqual([
      {name: 'web1', address: '10.10.0.11', standby: false},
      {name: 'web2', address: '10.10.0.12', standby: true},
    ])
    expect(inv.scaling).toEqual({cpuPercent: 80, sustainFor: '5m', recheckEvery: '15m', min: 1, max: 2, margin: 20})
    expect(inv.healing).toEqual({every: '1m', attempts: 3})
    expect(inv.tls).toEqual({mode: 'self-signed', days: 365})
    expect(inv.alerts).toEqual({})
  })

  it('defaults a minimal inventory (domain and addresses only)', () => {
    const r = validateInventoryText(`domain: example.com
bastion: {publicAddress: 192.0.2.1, privateAddress: 192.168.5.1}
web:
  nodes: [{name: web1, address: 192.168.5.20}]
`)
    expect(r.errors).toEqual([])
    expect(r.inventory!.aliases).toEqual([])
    expect(r.inventory!.bastion.privateNetwork).toBe('192.168.5.0/24')
    expect(r.inventory!.scaling.max).toBe(1)
    expect(r.inventory!.tls).toEqual({mode: 'self-signed', days: 365})
    expect(hostsOf(r.inventory!).map((h) => `${h.role} ${h.name} ${h.address}`)).toEqual(['bastion bastion 192.0.2.1', 'web web1 192.168.5.20'])
  })

  it('defaults scaling.max to 3, at least min and at most the number of nodes', () => {
    const nodes = (n: number) => Array.from({length: n}, (_, i) => `    - {name: web${i + 1}, address: 10.10.0.${11 + i}}`).join('\n')
    const inv = (n: number, scaling = '') =>
      validateInventoryText(`domain: example.com\nbastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}\nweb:\n  nodes:\n${nodes(n)}\n${scaling}`).inventory!
    expect(inv(2).scaling.max).toBe(2)
    expect(inv(5).scaling.max).toBe(3)
    expect(inv(6, 'scaling: {min: 4}\n').scaling.max).toBe(4)
  })

  it('accepts tls files, a wider private network, aliases and alerts', () => {
    const r = validateInventoryText(
      edit('web:\n', 'web:\n  appPort: 3000\n', BASE) +
        `tls: {mode: files, cert: tls/site.crt, key: tls/site.key}
alerts: {email: ops@example.com, webhookEnv: INFRA_ALERT_WEBHOOK}
`,
    )
    expect(r.errors).toEqual([])
    expect(r.inventory!.tls).toEqual({mode: 'files', cert: 'tls/site.crt', key: 'tls/site.key'})
    const wide = validateInventoryText(edit('  privateAddress: 10.10.0.1\n', '  privateAddress: 10.10.0.1\n  privateNetwork: 10.10.0.0/16\n', edit('10.10.0.12', '10.10.7.12')))
    expect(wide.errors).toEqual([])
    expect(wide.inventory!.bastion.privateNetwork).toBe('10.10.0.0/16')
  })

  it('inventorySchema.parse applies the cross-field rules too', () => {
    const input = {
      domain: 'example.com',
      bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
      web: {nodes: [{name: 'web1', address: '10.10.0.11'}, {name: 'web1', address: '10.10.0.12'}]},
    }
    const r = inventorySchema.safeParse(input)
    expect(r.success).toBe(false)
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'web.nodes.1.name: "web1" is already used by web.nodes[0]; every host needs its own name',
    ])
  })
})

const CASES: [title: string, text: string, errors: string[]][] = [
  ['address that is not IPv4', edit('10.10.0.12', '10.0.0'), ['infra.yaml:14:16 web.nodes[1].address: "10.0.0" is not an IPv4 address']],
  ['address written as a number', edit('10.10.0.12', '10.0'), ['infra.yaml:14:16 web.nodes[1].address: 10.0 is not an IPv4 address']],
  ['unknown top-level key close to a valid one', edit('ssh:', 'sshh:'), ['infra.yaml:3:1 sshh: unknown key (did you mean "ssh"?)']],
  ['unknown key in a node', edit('      address: 10.10.0.12', '      adress: 10.10.0.12'), [
    'infra.yaml:13:7 web.nodes[1].address: is missing (expected an IPv4 address)',
    'infra.yaml:14:7 web.nodes[1].adress: unknown key (did you mean "address"?)',
  ]],
  ['unknown key with no close match', edit('web:\n', 'web:\n  colour: blue\n'), [
    'infra.yaml:10:3 web.colour: unknown key (valid keys in web: port, appPort, healthCheck, timeout, nodes)',
  ]],
  ['key at the wrong level', edit('  port: 22\n', '  port: 22\nnodes: []\n'), [
    'infra.yaml:6:1 nodes: unknown key here ("nodes" belongs under web); valid keys here: domain, aliases, ssh, bastion, web, scaling, healing, tls, alerts, limits, cors, auth, app, deploy, registry, sites',
  ]],
  ['public web node address', edit('10.10.0.12', '203.0.113.7'), [
    'infra.yaml:14:16 web.nodes[1].address: "203.0.113.7" is a public address; web nodes must be on the private network',
  ]],
  ['loopback web node address', edit('10.10.0.12', '127.0.0.2'), [
    'infra.yaml:14:16 web.nodes[1].address: "127.0.0.2" is a loopback address; web nodes must be on the private network',
  ]],
  ['ssh.hostKeys naming no host', edit('  port: 22\n', '  port: 22\n  hostKeys:\n    web3: [SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]\n'), [
    'infra.yaml:7:11 ssh.hostKeys.web3: no host of this inventory is named "web3" (hosts: bastion, web1, web2)',
  ]],
  ['duplicate node name', edit('name: web2', 'name: web1'), [
    'infra.yaml:13:13 web.nodes[1].name: "web1" is already used by web.nodes[0]; every host needs its own name',
  ]],
  ['node named like the bastion', edit('name: web2', 'name: bastion'), [
    'infra.yaml:13:13 web.nodes[1].name: "bastion" is already used by the bastion (bastion.name); every host needs its own name',
  ]],
  ['duplicate node address', edit('10.10.0.12', '10.10.0.11'), [
    'infra.yaml:14:16 web.nodes[1].address: "10.10.0.11" is already used by web.nodes[0]; every host needs its own address',
  ]],
  ['node on the bastion private address', edit('10.10.0.11', '10.10.0.1'), [
    'infra.yaml:12:16 web.nodes[0].address: "10.10.0.1" is already used by bastion.privateAddress; every host needs its own address',
  ]],
  ['node outside the bastion /24', edit('10.10.0.12', '10.10.1.12'), [
    'infra.yaml:14:16 web.nodes[1].address: "10.10.1.12" is outside the private network 10.10.0.0/24 (the /24 of bastion.privateAddress; set bastion.privateNetwork to change it)',
  ]],
  ['node outside an explicit privateNetwork', edit('  privateAddress: 10.10.0.1\n', '  privateAddress: 10.10.0.1\n  privateNetwork: 10.10.0.0/28\n', edit('10.10.0.12', '10.10.0.20')), [
    'infra.yaml:15:16 web.nodes[1].address: "10.10.0.20" is outside bastion.privateNetwork (10.10.0.0/28)',
  ]],
  ['node on the broadcast address', edit('10.10.0.12', '10.10.0.255'), [
    'infra.yaml:14:16 web.nodes[1].address: "10.10.0.255" is the broadcast address of 10.10.0.0/24, not a host address',
  ]],
  ['bastion private address that is public', edit('privateAddress: 10.10.0.1', 'privateAddress: 198.51.100.1'), [
    'infra.yaml:8:19 bastion.privateAddress: "198.51.100.1" is a public address; the bastion\'s private address must be in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16',
  ]],
  ['public privateNetwork', edit('  privateAddress: 10.10.0.1\n', '  privateAddress: 10.10.0.1\n  privateNetwork: 8.8.8.0/24\n'), [
    'infra.yaml:9:19 bastion.privateNetwork: "8.8.8.0/24" is not a private network; use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16',
  ]],
  ['missing bastion address (points at the bastion mapping)', edit('  publicAddress: 203.0.113.10\n', ''), [
    'infra.yaml:7:3 bastion.publicAddress: is missing (expected an IPv4 address)',
  ]],
  ['missing domain (points at the top mapping)', edit('domain: example.com\n', ''), [
    'infra.yaml:1:1 domain: is missing (expected a domain name, e.g. "example.com")',
  ]],
  ['domain that is not a domain name', edit('domain: example.com', 'domain: example'), [
    'infra.yaml:1:9 domain: "example" is not a domain name (e.g. "example.com")',
  ]],
  ['alias equal to the domain', edit('[www.example.com]', '[www.example.com, Example.com]'), [
    'infra.yaml:2:28 aliases[1]: "Example.com" is the domain itself; list only the other names',
  ]],
  ['duplicate alias', edit('[www.example.com]', '[www.example.com, shop.example.com, www.example.com]'), [
    'infra.yaml:2:46 aliases[2]: "www.example.com" is listed twice (also aliases[0])',
  ]],
  ['scaling.max below scaling.min', BASE + 'scaling: {min: 2, max: 1}\n', ['infra.yaml:16:24 scaling.max: 1 is less than scaling.min (2)']],
  ['scaling.max above the number of web nodes', BASE + 'scaling:\n  max: 5\n', [
    'infra.yaml:17:8 scaling.max: 5 is more than the number of web nodes (2); add standby nodes to web.nodes or lower scaling.max',
  ]],
  ['scaling.min above the number of web nodes', BASE + 'scaling:\n  min: 3\n', ['infra.yaml:17:8 scaling.min: 3 is more than the number of web nodes (2)']],
  ['cpuPercent out of range', BASE + 'scaling:\n  cpuPercent: 150\n', ['infra.yaml:17:15 scaling.cpuPercent: 150 is not a percentage from 1 to 100']],
  ['duration without a unit we know', BASE + 'healing:\n  every: 5 minutes\n', [
    'infra.yaml:17:10 healing.every: "5 minutes" is not a duration (a whole number followed by s, m or h, e.g. "30s", "5m", "1h")',
  ]],
  ['port out of range', edit('  port: 22', '  port: 70000'), ['infra.yaml:5:9 ssh.port: 70000 is not a port number from 1 to 65535']],
  ['SSH on the HTTPS port', edit('  port: 22', '  port: 443'), [
    'infra.yaml:5:9 ssh.port: 443 is taken by HAProxy on the bastion (ports 80 and 443); choose another SSH port',
  ]],
  ['standby that is not a boolean', edit('standby: true', 'standby: "yes"'), ['infra.yaml:15:16 web.nodes[1].standby: "yes" is not true or false']],
  ['every node on standby', edit('      address: 10.10.0.11\n', '      address: 10.10.0.11\n      standby: true\n'), [
    'infra.yaml:11:5 web.nodes: every node has standby: true; at least one web node must be active',
  ]],
  ['no web nodes', edit(BASE.slice(BASE.indexOf('  nodes:')), '  nodes: []\n'), ['infra.yaml:10:10 web.nodes: needs at least one web node']],
  ['nodes given as a mapping', edit(BASE.slice(BASE.indexOf('  nodes:')), '  nodes:\n    web1: 10.10.0.11\n'), [
    'infra.yaml:11:5 web.nodes: a mapping is not a list of web nodes (each with name and address)',
  ]],
  ['empty value', edit('address: 10.10.0.12', 'address:'), ['infra.yaml:14:7 web.nodes[1].address: is empty (expected an IPv4 address)']],
  ['tls mode files without cert and key', BASE + 'tls:\n  mode: files\n', [
    'infra.yaml:17:3 tls.cert: is missing (tls.mode "files" needs cert: the path of the PEM certificate, relative to the inventory)',
    'infra.yaml:17:3 tls.key: is missing (tls.mode "files" needs key: the path of the PEM private key, relative to the inventory)',
  ]],
  ['tls cert with a self-signed certificate', BASE + 'tls:\n  cert: site.crt\n', [
    'infra.yaml:17:9 tls.cert: is only used with tls.mode "files" (set tls.mode: files to use your own certificate, or remove tls.cert)',
  ]],
  ['unknown tls mode', BASE + 'tls: {mode: letsencrypt}\n', ['infra.yaml:16:13 tls.mode: "letsencrypt" is not "self-signed" or "files"']],
  ['alert e-mail that is not one', BASE + 'alerts:\n  email: ops-at-example.com\n', [
    'infra.yaml:17:10 alerts.email: "ops-at-example.com" is not an e-mail address',
  ]],
  ['webhook URL in the inventory (a secret: refused, whatever the URL)', BASE + 'alerts:\n  webhook: ftp://example.com/x\n', [
    'infra.yaml:17:12 alerts.webhook: a URL is not accepted here any more: a webhook URL is a secret (anyone who has it can post to it), so it must not be in the inventory. Move the URL to an environment variable and set alerts.webhookEnv: NAME (e.g. export INFRA_ALERT_WEBHOOK=... and alerts.webhookEnv: INFRA_ALERT_WEBHOOK)',
  ]],
  ['node name with capitals', edit('name: web2', 'name: Web2'), [
    'infra.yaml:13:13 web.nodes[1].name: "Web2" is not a host name (lowercase letters, digits and "-", starting with a letter, at most 31 characters)',
  ]],
  ['adminAllow entry that is not an address', edit('  privateAddress: 10.10.0.1\n', '  privateAddress: 10.10.0.1\n  adminAllow: [198.51.100.0/24, office]\n'), [
    'infra.yaml:9:33 bastion.adminAllow[1]: "office" is not an IPv4 address or network (e.g. "198.51.100.7" or "198.51.100.0/24")',
  ]],
  ['appPort equal to port', edit('web:\n', 'web:\n  appPort: 80\n'), [
    'infra.yaml:10:12 web.appPort: 80 is also web.port; nginx listens on web.port and proxies to the application on appPort, so they must differ',
  ]],
  ['appPort beside an app', edit('web:\n', 'app: {image: shop}\nweb:\n  appPort: 3000\n'), [
    'infra.yaml:11:12 web.appPort: is for a service of your own on each node; with app, nginx proxies to the deployed container instead. Remove web.appPort, or remove app',
  ]],
  ['a web timeout HAProxy cannot hold', edit('web:\n', 'web:\n  timeout: 1000h\n'), ['infra.yaml:10:12 web.timeout: "1000h" is too long (at most 1h)']],
  ['an SSH timeout that would overflow the timer', edit('  port: 22\n', '  port: 22\n  connectTimeout: 597h\n'), [
    'infra.yaml:6:19 ssh.connectTimeout: "597h" is too long (at most 5m)',
  ]],
  ['a ban longer than HAProxy keeps an entry', BASE + 'limits: {banFor: 720h}\n', ['infra.yaml:16:18 limits.banFor: "720h" is too long (at most 168h)']],
  ['a recheck too long for the agents', BASE + 'scaling: {recheckEvery: 9999999999999999h}\n', [
    'infra.yaml:16:25 scaling.recheckEvery: "9999999999999999h" is too long (at most 24h)',
  ]],
  ['a health path HAProxy and nginx cannot take literally', edit('web:\n', 'web:\n  healthCheck: {path: "/health?full=1"}\n'), [
    'infra.yaml:10:23 web.healthCheck.path: "/health?full=1" is not a plain URL path ("/" then letters, digits and . _ ~ / - only, at most 128 characters, e.g. "/healthz")',
  ]],
  ['a health path nginx would never match', edit('web:\n', 'web:\n  healthCheck: {path: /status/../healthz}\n'), [
    'infra.yaml:10:23 web.healthCheck.path: "/status/../healthz" has an empty, "." or ".." segment, which nginx normalizes away, so the check would never match (e.g. "/healthz")',
  ]],
  ['more aliases than one HAProxy line takes', edit('[www.example.com]', `[${Array.from({length: 41}, (_, i) => `a${i}.example.com`).join(', ')}]`), [
    'infra.yaml:2:10 aliases: has 41 aliases; at most 40 (HAProxy reads at most 64 words on one line)',
  ]],
]

describe('validateInventoryText: one exact message per mistake', () => {
  it('has at least 20 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(20))
  it.each(CASES)('%s', (_title, text, expected) => {
    const r = validateInventoryText(text, 'infra.yaml')
    expect(r.errors).toEqual(expected)
    expect(r.inventory).toBeUndefined()
  })
})

describe('validateInventoryText: every key says what it expects', () => {
  type S = {type?: string; properties?: Record<string, S>; items?: S}
  const leaves: [string, (string | number)[], S][] = []
  const visit = (s: S, p: (string | number)[]) => {
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      leaves.push([[...p, k].join('.').replace('.0.', '[0].'), [...p, k], v])
      visit(v, [...p, k])
    }
    if (s.items) visit(s.items, [...p, 0])
  }
  visit(inventoryJsonSchema(), [])

  it.each(leaves)('%s of the wrong type', (shown, p, s) => {
    const bad = s.type === 'boolean' ? 'nope' : true
    const doc = parseDocument(BASE)
    doc.setIn(p, bad)
    const errors = validateInventoryText(doc.toString()).errors
    const mine = errors.filter((e) => e.split(' ')[1] === `${shown}:`)
    expect(mine, errors.join('\n')).toHaveLength(1)
    expect(mine[0]).toMatch(new RegExp(`^infra\\.yaml:\\d+:\\d+ ${shown.replace(/[.[\]]/g, '\\$&')}: ${bad === true ? 'true' : '"nope"'} is not [a-z"]`))
  })
})

describe('validateInventoryText: reporting', () => {
  it('reports every error at once, sorted by line, in the given file name', () => {
    const text = `domain: example
sshh:
  user: root
bastion:
  privateAddress: 10.10.0.1
web:
  port: eighty
  nodes:
    - {name: web1, address: 10.10.0.11}
    - {name: web1, address: 10.0.0, standbye: true}
scaling: {max: 9}
`
    expect(validateInventoryText(text, 'fleet/infra.yaml').errors).toEqual([
      'fleet/infra.yaml:1:9 domain: "example" is not a domain name (e.g. "example.com")',
      'fleet/infra.yaml:2:1 sshh: unknown key (did you mean "ssh"?)',
      'fleet/infra.yaml:5:3 bastion.publicAddress: is missing (expected an IPv4 address)',
      'fleet/infra.yaml:7:9 web.port: "eighty" is not a port number from 1 to 65535',
      'fleet/infra.yaml:10:14 web.nodes[1].name: "web1" is already used by web.nodes[0]; every host needs its own name',
      'fleet/infra.yaml:10:29 web.nodes[1].address: "10.0.0" is not an IPv4 address',
      'fleet/infra.yaml:10:37 web.nodes[1].standbye: unknown key (did you mean "standby"?)',
      'fleet/infra.yaml:11:16 scaling.max: 9 is more than the number of web nodes (2); add standby nodes to web.nodes or lower scaling.max',
    ])
  })

  it('gives structured issues for --json', () => {
    const r = validateInventoryText(edit('10.10.0.12', '10.0.0'), 'infra.yaml')
    expect(r.issues).toEqual([{file: 'infra.yaml', line: 14, column: 16, path: 'web.nodes[1].address', message: '"10.0.0" is not an IPv4 address'}])
  })

  it('names the line and column of a YAML syntax error', () => {
    expect(errorsOf(edit('aliases: [www.example.com]', 'aliases: [www.example.com'))).toEqual([
      'infra.yaml:3:1 YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ])
    expect(errorsOf(edit('domain: example.com', 'domain: "example.com'))).toEqual([
      'infra.yaml:1:9 YAML syntax error: Missing closing "quote',
    ])
  })

  it('reports a duplicate key as YAML error with its name', () => {
    expect(errorsOf(BASE + 'domain: example.org\n')).toEqual(['infra.yaml:16:1 duplicate key "domain"; a key may appear only once in a mapping'])
  })

  it('explains an empty file and a file that is not a mapping', () => {
    expect(errorsOf('# nothing yet\n')).toEqual([
      'infra.yaml:1:1 the file is empty; expected a mapping with at least domain, bastion and web (`infra init` writes a starting point)',
    ])
    expect(errorsOf('- web1\n- web2\n')).toEqual(['infra.yaml:1:1 the top level is a list; expected a mapping with at least domain, bastion and web'])
  })
})

describe('did you mean', () => {
  it('measures edits with transpositions', () => {
    expect(editDistance('sshh', 'ssh')).toBe(1)
    expect(editDistance('adress', 'address')).toBe(1)
    expect(editDistance('mni', 'min')).toBe(1)
    expect(editDistance('privatekey', 'privateKey')).toBe(0)
    expect(editDistance('kitten', 'sitting')).toBe(3)
  })

  it('suggests only close words', () => {
    expect(closest('sshh', ['domain', 'ssh', 'web'])).toBe('ssh')
    expect(closest('healthcheck', ['port', 'healthCheck'])).toBe('healthCheck')
    expect(closest('nodez', ['nodes', 'port'])).toBe('nodes')
    expect(closest('colour', ['port', 'appPort', 'healthCheck', 'nodes'])).toBeUndefined()
    expect(closest('tsl', ['tls', 'ssh'])).toBe('tls')
    expect(closest('cert', ['mode', 'days', 'key'])).toBeUndefined()
  })
})

describe('app.registry', () => {
  it('is refused for an image in the fleet registry, accepted for an outside one', () => {
    const app = (image: string) => `${BASE}app:\n  image: ${image}\n  registry: {usernameEnv: REG_USER, passwordEnv: REG_TOKEN}\n`
    expect(validateInventoryText(app('shop'), 'infra.yaml').errors).toEqual([
      expect.stringMatching(/app\.registry: is for an image in an outside registry, but "shop" is in the fleet registry/),
    ])
    for (const image of ['ghcr.io/acme/shop', 'localhost/shop', 'registry.example.com:5000/team/shop']) expect(validateInventoryText(app(image), 'infra.yaml').errors, image).toEqual([])
  })
})
