import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {z} from 'zod'

import {crossCheck} from './cross-check.js'
import {cidrOf, parseCidr} from '../host/ipv4.js'
import {expected, HAPROXY_LIST_MAX, mappingOf, tooMany} from './schema/base.js'
import {hostname} from './schema/fields.js'
import {bastionSchema, sshSchema, webNodeSchema, webSchema} from './schema/hosts.js'
import {alertsSchema, healingSchema, scalingSchema} from './schema/agents.js'
import {authSchema, corsSchema, limitsSchema, type TlsConfig, tlsSchema} from './schema/edge.js'
import {appSchema, deploySchema, registrySchema} from './schema/app.js'
import {sitesSchema} from './schema/sites.js'

export {isIPv4} from '../host/ipv4.js'
export {duration, DURATION_CEILING, durationMs, durationUpTo, expected, HAPROXY_LIST_MAX, show} from './schema/base.js'
export {cidr, HEALTH_PATH_MAX, healthPathSchema, hostname, ipv4, nodeName} from './schema/fields.js'
export {bastionSchema, healthCheckSchema, sshSchema, webNodeSchema, webSchema} from './schema/hosts.js'
export {alertsSchema, healingSchema, scalingSchema} from './schema/agents.js'
export {appSchema, deploySchema, imageName, registrySchema} from './schema/app.js'
export {envName, PROD_ENV, siteName, siteSchema, sitesSchema, type EnvironmentSpec, type SiteSpec} from './schema/sites.js'
export {authRuleSchema, authSchema, corsSchema, JWT_ALGORITHMS, limitsSchema, type TlsConfig, tlsSchema} from './schema/edge.js'

/**
 * The inventory (`infra.yaml`): one zod schema is the source of validation, of the TypeScript
 * types and of the JSON Schema shipped for editors (schema/infra.schema.json).
 * Everything but the domain and the addresses has a default.
 *
 * Messages: every schema says what would be valid through `expected(...)`, which yields
 * `"10.0.0" is not an IPv4 address`, `is missing (expected ...)` or `is empty (expected ...)`.
 * src/inventory/validate.ts adds the file, line, column and key path.
 */

/** The inventory object before cross-field checks (what the JSON Schema describes). */
export const inventoryObject = mappingOf({
  domain: hostname.describe('The apex domain served by the fleet.'),
  aliases: z
    .array(hostname, {error: expected('a list of domain names')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'aliases'))
    .default([])
    .describe(`Other names (e.g. www.example.com), redirected to the domain. At most ${HAPROXY_LIST_MAX} (one HAProxy line).`),
  ssh: sshSchema.prefault({}),
  bastion: bastionSchema,
  web: webSchema,
  scaling: scalingSchema,
  healing: healingSchema,
  tls: tlsSchema,
  alerts: alertsSchema,
  limits: limitsSchema,
  cors: corsSchema,
  auth: authSchema.optional(),
  app: appSchema.optional(),
  deploy: deploySchema,
  registry: registrySchema,
  sites: sitesSchema,
}).describe('infra inventory: one file describes the fleet. Reference: docs/INVENTORY.md')

type ObjectOutput = z.output<typeof inventoryObject>

/**
 * The inventory as the rest of the tool sees it: every default filled in, including those that
 * depend on other keys (bastion.privateNetwork, scaling.max), and tls as a tagged union.
 */
export type Inventory = Omit<ObjectOutput, 'bastion' | 'scaling' | 'tls'> & {
  bastion: ObjectOutput['bastion'] & {privateNetwork: string}
  scaling: ObjectOutput['scaling'] & {max: number}
  tls: TlsConfig
}

function finish(inv: ObjectOutput): Inventory {
  const n = inv.web.nodes.length
  const {tls} = inv
  return {
    ...inv,
    bastion: {
      ...inv.bastion,
      privateNetwork: (inv.bastion.privateNetwork ? parseCidr(inv.bastion.privateNetwork) : cidrOf(inv.bastion.privateAddress, 24))!.text,
    },
    scaling: {...inv.scaling, max: inv.scaling.max ?? Math.min(n, Math.max(3, inv.scaling.min))},
    tls: tls.mode === 'files' ? {mode: 'files', cert: tls.cert ?? '', key: tls.key ?? ''} : {mode: 'self-signed', days: tls.days ?? 365},
  }
}

/** Shape, defaults, then the transform; no cross-field checks (validate.ts runs those on the raw document). */
export const inventoryShapeSchema = inventoryObject.transform(finish)

/** The whole inventory: shape, defaults and cross-field checks (not the file checks of the loader). */
export const inventorySchema = inventoryObject
  .superRefine((inv, ctx) => {
    for (const issue of crossCheck(inv)) ctx.addIssue({code: 'custom', path: issue.path, message: issue.message})
  })
  .transform(finish)

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

// ---------------------------------------------------------------------------------------------
// The JSON Schema file (generated by scripts/gen-schema.js, see json-schema.ts) and the line that points editors to it.

/**
 * Absolute path of schema/infra.schema.json in this package. This module lives in
 * src/inventory (development) or dist/inventory (installed); both are two levels below the root.
 */
export function schemaFilePath(): string {
  return fileURLToPath(new URL('../../schema/infra.schema.json', import.meta.url))
}

/**
 * The first line of every inventory infra writes, so that editors with the YAML language server
 * (VS Code's YAML extension, Neovim, JetBrains) complete and check keys while typing:
 *
 *     # yaml-language-server: $schema=../node_modules/infra-fleet/schema/infra.schema.json
 *
 * The path is relative to the inventory folder when the two share a folder below the root of the
 * file system (it survives moving the project as a whole), else absolute.
 */
export function schemaComment(inventoryDir: string, schemaPath = schemaFilePath()): string {
  const from = path.resolve(inventoryDir)
  const to = path.resolve(schemaPath)
  const rel = path.relative(from, to)
  const shared = commonPrefix(from, to)
  const useRelative = rel !== '' && !path.isAbsolute(rel) && shared !== path.parse(from).root
  const target = useRelative ? (rel.startsWith('..') ? rel : `./${rel}`).split(path.sep).join('/') : to
  return `# yaml-language-server: $schema=${target}`
}

function commonPrefix(a: string, b: string): string {
  const as = a.split(path.sep)
  const bs = b.split(path.sep)
  let i = 0
  while (i < as.length && i < bs.length && as[i] === bs[i]) i++
  const joined = as.slice(0, i).join(path.sep)
  return joined === '' ? path.parse(a).root : joined
}
