/** The sections that describe the hosts: ssh, bastion, web (nodes and health check). */
import {z} from 'zod'

import {durationUpTo, expected, mappingOf, port, show, wholeNumber} from './base.js'
import {cidr, healthPathSchema, HEALTH_PATH_MAX, hostKeyFingerprint, ipv4, nodeName} from './fields.js'

export const sshSchema = mappingOf({
  user: z
    .string({error: expected('a user name', 'e.g. "root" or "deploy"')})
    .regex(/^[a-z_][a-z0-9_-]*$/, {error: expected('a user name', 'e.g. "root" or "deploy"')})
    .default('root')
    .describe('Login user on every host: root, or a user with passwordless sudo.'),
  port: port().default(22).describe('SSH port on every host.'),
  privateKey: z
    .string({error: expected('a path to a private key file')})
    .min(1, {error: expected('a path to a private key file')})
    .optional()
    .describe('Path to the operator private key, relative to the inventory (~/ allowed). Omit to use the ssh-agent (SSH_AUTH_SOCK).'),
  connectTimeout: durationUpTo('5m')
    .default('10s')
    .describe('How long to wait for a host to answer. At most 5m: a host silent that long is down, not slow.'),
  parallel: wholeNumber(1, 64).default(10).describe('How many hosts are worked on at once.'),
  hostKeys: z
    .record(
      nodeName,
      z
        .array(hostKeyFingerprint, {error: expected('a list of host key fingerprints', 'e.g. ["SHA256:..."]')})
        .min(1, {error: 'is empty (expected at least one host key fingerprint, e.g. ["SHA256:..."])'}),
      {
        error: (iss) =>
          iss.code === 'invalid_key'
            ? `${show(iss.input)} is not a host name (lowercase letters, digits and "-", starting with a letter)`
            : expected('a mapping of host names to lists of host key fingerprints', 'e.g. {bastion: ["SHA256:..."]}')(iss),
      },
    )
    .optional()
    .describe(
      'Host key fingerprints each host must present, first contact included (host name → list of `SHA256:...`, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints them on the host\'s console). A host without an entry is pinned on first use.',
    ),
}).describe('How to reach the hosts. Keys only: infra never sends a password.')

export const bastionSchema = mappingOf({
  name: nodeName.default('bastion').describe('Host name of the bastion.'),
  publicAddress: ipv4.describe('The address clients and the operator reach: the only public address of the fleet.'),
  privateAddress: ipv4.describe('The bastion address on the private network (RFC 1918); web nodes route through it.'),
  privateNetwork: cidr.optional().describe('The private network in CIDR form. Default: the /24 of privateAddress.'),
  adminAllow: z
    .array(
      z.union([z.ipv4(), z.cidrv4()], {error: expected('an IPv4 address or network', 'e.g. "198.51.100.7" or "198.51.100.0/24"')}),
      {error: expected('a list of IPv4 addresses or networks')},
    )
    .default([])
    .describe('Addresses or networks allowed to SSH to the bastion. Empty: anyone (rate limited).'),
}).describe('The one host with a public address: HAProxy, firewall and NAT, the agents.')

export const webNodeSchema = mappingOf({
  name: nodeName.describe('Host name of the node (unique in the fleet).'),
  address: ipv4.describe('Private address of the node, inside the bastion private network.'),
  standby: z
    .boolean({error: expected('true or false')})
    .default(false)
    .describe('Installed but stopped and in maintenance until the scaler or the healer needs it.'),
})

export const healthCheckSchema = mappingOf({
  path: healthPathSchema
    .default('/healthz')
    .describe(`Path HAProxy requests (GET, expects 200) on every web node: letters, digits and . _ ~ / - only, no empty, "." or ".." segment, at most ${HEALTH_PATH_MAX} characters.`),
  interval: durationUpTo('1h')
    .default('2s')
    .describe('Time between two checks of a node. At most 1h: a dead node stays in the pool for fall times this long.'),
  fall: wholeNumber(1, 100).default(3).describe('Failed checks in a row before a node is taken out.'),
  rise: wholeNumber(1, 100).default(2).describe('Passed checks in a row before a node is put back.'),
})
  .prefault({})
  .describe('How HAProxy checks the web nodes.')

export const webSchema = mappingOf({
  port: port().default(80).describe('Port the web service (nginx) listens on, on the private address.'),
  appPort: port()
    .optional()
    .describe('When set, nginx proxies to an application listening on this local port of each node.'),
  healthCheck: healthCheckSchema,
  timeout: durationUpTo('1h')
    .default('30s')
    .describe(
      'How long HAProxy waits for a node to answer a request (timeout server). A GET, HEAD or OPTIONS still unanswered then is retried on another node; shorter means less wait when a node hangs or vanishes, but a slower answer is cut off. At most 1h (HAProxy\'s idle limit for WebSockets, timeout tunnel): a client waits up to 4 times this long when nodes hang.',
    ),
  nodes: z
    .array(webNodeSchema, {error: expected('a list of web nodes', 'each with name and address')})
    .min(1, {error: 'needs at least one web node'})
    .describe('The web nodes. Nodes with standby: true are spares for the scaler and the healer.'),
}).describe('The private web nodes behind the bastion.')
