import {z} from 'zod'

/**
 * The inventory (`infra.yaml`): one zod schema is the source of validation, of the TypeScript
 * types and of the JSON Schema shipped for editors (schema/infra.schema.json).
 * Everything but the domain and the addresses has a default.
 */

const DURATION = /^\d+(s|m|h)$/
export const duration = z.string().regex(DURATION, {message: 'is not a duration (use a number followed by s, m or h, e.g. "30s", "5m", "1h")'})

export const ipv4 = z.string().refine((s) => isIPv4(s), {message: 'is not an IPv4 address'})

export function isIPv4(s: string): boolean {
  const parts = s.split('.')
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && String(Number(p)) === p)
}

export const hostname = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/i, {
    message: 'is not a domain name (e.g. "example.com")',
  })

export const nodeName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, {message: 'is not a valid host name (lowercase letters, digits and "-", starting with a letter, at most 31 characters)'})

export const sshSchema = z
  .strictObject({
    user: z.string().min(1).default('root').describe('Login user on every host (root, or a user with passwordless sudo).'),
    port: z.number().int().min(1).max(65535).default(22).describe('SSH port on every host.'),
    privateKey: z
      .string()
      .optional()
      .describe('Path to the operator private key (relative to the inventory). Omit to use the ssh-agent (SSH_AUTH_SOCK).'),
    connectTimeout: duration.default('10s').describe('How long to wait for a host to answer.'),
    parallel: z.number().int().min(1).max(64).default(10).describe('How many hosts are worked on at once.'),
  })
  .describe('How to reach the hosts. Keys only: infra never sends a password.')

export const bastionSchema = z
  .strictObject({
    name: nodeName.default('bastion'),
    publicAddress: ipv4.describe('The address clients and the operator reach (the only public address of the fleet).'),
    privateAddress: ipv4.describe('The bastion address on the private network; web nodes route through it.'),
    privateNetwork: z
      .string()
      .regex(/^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/, {message: 'is not an IPv4 network in CIDR form (e.g. "10.10.0.0/24")'})
      .optional()
      .describe('The private network in CIDR form; defaults to the /24 of privateAddress.'),
    adminAllow: z.array(z.string()).default([]).describe('Addresses/CIDRs allowed to SSH to the bastion (empty: anyone, rate limited).'),
  })
  .describe('The one host with a public address: HAProxy, firewall/NAT, agents.')

export const webNodeSchema = z.strictObject({
  name: nodeName,
  address: ipv4.describe('Private address of the node.'),
  standby: z.boolean().default(false).describe('Installed but stopped and in maintenance until the scaler or healer needs it.'),
})

export const healthCheckSchema = z
  .strictObject({
    path: z.string().startsWith('/', {message: 'must start with "/"'}).default('/healthz'),
    interval: duration.default('2s'),
    fall: z.number().int().min(1).max(100).default(3),
    rise: z.number().int().min(1).max(100).default(2),
  })
  .prefault({})

export const webSchema = z
  .strictObject({
    port: z.number().int().min(1).max(65535).default(80).describe('Port the web service (nginx) listens on, on the private address.'),
    appPort: z.number().int().min(1).max(65535).optional().describe('When set, nginx proxies to an application on this local port.'),
    healthCheck: healthCheckSchema,
    nodes: z.array(webNodeSchema).min(1, {message: 'needs at least one web node'}),
  })
  .describe('The private web nodes behind the bastion.')

export const scalingSchema = z
  .strictObject({
    cpuPercent: z.number().min(1).max(100).default(80),
    sustainFor: duration.default('5m'),
    recheckEvery: duration.default('15m'),
    min: z.number().int().min(1).default(1),
    max: z.number().int().min(1).default(3),
  })
  .prefault({})

export const healingSchema = z
  .strictObject({
    every: duration.default('1m'),
    attempts: z.number().int().min(1).max(20).default(3),
  })
  .prefault({})

export const tlsSchema = z
  .discriminatedUnion('mode', [
    z.strictObject({
      mode: z.literal('self-signed'),
      days: z.number().int().min(1).max(825).default(365),
    }),
    z.strictObject({
      mode: z.literal('files'),
      cert: z.string().describe('PEM certificate (chain) path, relative to the inventory.'),
      key: z.string().describe('PEM private key path, relative to the inventory.'),
    }),
  ])
  .prefault({mode: 'self-signed'})

export const alertsSchema = z
  .strictObject({
    email: z.email({message: 'is not an e-mail address'}).optional(),
    webhook: z.url({message: 'is not a URL'}).optional(),
  })
  .prefault({})

export const inventorySchema = z.strictObject({
  domain: hostname.describe('The apex domain served by the fleet.'),
  aliases: z.array(hostname).default([]).describe('Other names (e.g. www.example.com) redirected to the apex.'),
  ssh: sshSchema.prefault({}),
  bastion: bastionSchema,
  web: webSchema,
  scaling: scalingSchema,
  healing: healingSchema,
  tls: tlsSchema,
  alerts: alertsSchema,
})

export type Inventory = z.output<typeof inventorySchema>
export type InventoryInput = z.input<typeof inventorySchema>
export type WebNode = z.output<typeof webNodeSchema>

/** A host as the rest of the tool sees it. */
export interface HostSpec {
  name: string
  role: 'bastion' | 'web'
  /** Address used to reach sshd: the public one for the bastion, the private one (through the bastion) for web nodes. */
  address: string
  privateAddress: string
  standby: boolean
}

export function hostsOf(inv: Inventory): HostSpec[] {
  return [
    {name: inv.bastion.name, role: 'bastion', address: inv.bastion.publicAddress, privateAddress: inv.bastion.privateAddress, standby: false},
    ...inv.web.nodes.map((n) => ({name: n.name, role: 'web' as const, address: n.address, privateAddress: n.address, standby: n.standby})),
  ]
}

export function durationMs(d: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(d)
  if (!m) throw new Error(`not a duration: ${d}`)
  return Number(m[1]) * {s: 1000, m: 60_000, h: 3_600_000}[m[2] as 's' | 'm' | 'h']
}
