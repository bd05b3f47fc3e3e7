import {readFileSync} from 'node:fs'
import path from 'node:path'
import {Ajv} from 'ajv'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {inventoryJsonSchema, inventoryJsonSchemaText, schemaComment, schemaFilePath} from '../../src/inventory/json-schema.js'
import {validateInventoryText} from '../../src/inventory/validate.js'

const root = path.resolve(import.meta.dirname, '../..')
const doc = readFileSync(path.join(root, 'docs/INVENTORY.md'), 'utf8')

/** The fenced block of the given language that follows a heading. */
function blockAfter(heading: string, lang: string): string {
  const from = doc.indexOf(heading)
  expect(from, heading).toBeGreaterThanOrEqual(0)
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(doc.slice(from))
  return m![1]
}

type JsonSchema = {properties?: Record<string, JsonSchema>; items?: JsonSchema; required?: string[]; additionalProperties?: boolean}

/** Every key path the JSON Schema knows, e.g. `web.nodes[].address`. */
function schemaPaths(s: JsonSchema, at = ''): string[] {
  const out: string[] = []
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    const p = at ? `${at}.${k}` : k
    out.push(p, ...schemaPaths(v, p))
  }
  if (s.items) out.push(...schemaPaths(s.items, `${at}[]`))
  return out
}

/** Every key path used in a YAML value. */
function valuePaths(v: unknown, at = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => valuePaths(x, `${at}[]`))
  if (v === null || typeof v !== 'object') return []
  return Object.entries(v).flatMap(([k, x]) => {
    const p = at ? `${at}.${k}` : k
    return [p, ...valuePaths(x, p)]
  })
}

const schema = inventoryJsonSchema() as JsonSchema
const ajv = new Ajv({allErrors: true, validateFormats: false, strict: false})
const validateJson = ajv.compile(schema)

describe('schema/infra.schema.json', () => {
  it('is generated from the zod schema and committed up to date (node scripts/gen-schema.js after tsc)', () => {
    expect(schemaFilePath()).toBe(path.join(root, 'schema/infra.schema.json'))
    expect(readFileSync(schemaFilePath(), 'utf8')).toBe(inventoryJsonSchemaText())
  })

  it('describes the inventory: required keys, nodes, no unknown keys', () => {
    expect(schema.required).toEqual(['domain', 'bastion', 'web'])
    expect(schema.additionalProperties).toBe(false)
    const nodes = schema.properties!.web.properties!.nodes
    expect(nodes.items!.required).toEqual(['name', 'address'])
    expect(Object.keys(nodes.items!.properties!)).toEqual(['name', 'address', 'standby'])
    expect(schema.properties!.scaling.properties!.cpuPercent).toMatchObject({default: 80, minimum: 1, maximum: 100})
  })

  it('accepts the documented examples', () => {
    for (const heading of ['## A minimal inventory', '## A full inventory']) {
      const value = parse(blockAfter(heading, 'yaml'))
      expect(validateJson(value), `${heading}: ${JSON.stringify(validateJson.errors)}`).toBe(true)
    }
  })

  it('rejects what the validator rejects field by field', () => {
    const bad = {
      domain: 'example.com',
      sshh: {},
      bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
      web: {nodes: [{name: 'web1', address: '10.0.0'}]},
      healing: {every: '5 minutes'},
      tls: {mode: 'files'},
    }
    expect(validateJson(bad)).toBe(false)
    expect(validateJson.errors!.map((e) => `${e.instancePath || '/'} ${e.keyword}`).sort()).toEqual([
      '/ additionalProperties',
      '/healing/every pattern',
      '/tls if',
      '/tls required',
      '/tls required',
      '/web/nodes/0/address pattern',
    ])
  })
})

describe('docs/INVENTORY.md', () => {
  it('documents every key of the schema in its reference tables', () => {
    const tableKeys = new Set([...doc.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]))
    expect(schemaPaths(schema).filter((p) => !tableKeys.has(p))).toEqual([])
    const unknown = [...tableKeys].filter((k) => !schemaPaths(schema).includes(k))
    expect(unknown).toEqual([])
  })

  it('has a full example that is valid and uses every key', () => {
    const text = blockAfter('## A full inventory', 'yaml')
    const r = validateInventoryText(text)
    expect(r.errors).toEqual([])
    const used = new Set(valuePaths(parse(text)))
    // tls.days and auth.secretEnv each exclude a key the example uses (tls.cert, auth.key); alerts.webhook is refused (alerts.webhookEnv);
    // web.appPort (a service of the operator's own) excludes app.
    expect(schemaPaths(schema).filter((p) => !used.has(p))).toEqual(['web.appPort', 'tls.days', 'alerts.webhook', 'auth.secretEnv'])
  })

  it('shows error lines exactly as the validator prints them', () => {
    const text = `domain: example.com
aliases: [www.example.com]
sshh:
  user: root
bastion:
  publicAddress: 203.0.113.10
  privateAddress: 10.10.0.1
web:
  nodes:
    - name: web1
      address: 10.10.0.11
    - name: web2
      address: 10.0.0
    - name: web3
      address: 203.0.113.7
scaling:
  max: 5
`
    const r = validateInventoryText(text)
    expect(blockAfter('## Errors', 'text')).toBe(`infra.yaml is not valid (${r.errors.length} errors):\n${r.errors.join('\n')}\n`)
  })
})

describe('schemaComment', () => {
  it('points to the schema relative to the inventory folder when they share a folder', () => {
    expect(schemaComment('/srv/fleet', '/srv/fleet/node_modules/infra-fleet/schema/infra.schema.json')).toBe(
      '# yaml-language-server: $schema=./node_modules/infra-fleet/schema/infra.schema.json',
    )
    expect(schemaComment('/home/me/fleets/prod', '/home/me/.npm/lib/node_modules/infra-fleet/schema/infra.schema.json')).toBe(
      '# yaml-language-server: $schema=../../.npm/lib/node_modules/infra-fleet/schema/infra.schema.json',
    )
  })

  it('uses an absolute path when only the root is shared', () => {
    expect(schemaComment('/var/lib/infra-lab', '/usr/lib/node_modules/infra-fleet/schema/infra.schema.json')).toBe(
      '# yaml-language-server: $schema=/usr/lib/node_modules/infra-fleet/schema/infra.schema.json',
    )
  })

  it('defaults to this package schema file, and an inventory starting with it is still valid', () => {
    const line = schemaComment(root)
    expect(line).toBe('# yaml-language-server: $schema=./schema/infra.schema.json')
    expect(validateInventoryText(`${line}\n${blockAfter('## A minimal inventory', 'yaml')}`).errors).toEqual([])
  })
})
