import {z} from 'zod'

import {inventoryObject} from './schema.js'

export {schemaComment, schemaFilePath} from './schema.js'

/**
 * The JSON Schema of infra.yaml, generated from the zod schema (scripts/gen-schema.js writes it
 * to schema/infra.schema.json at build time). It describes what a person writes (the input side:
 * keys with defaults are optional). Cross-field rules are checked by `infra validate` only.
 */
export function inventoryJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(inventoryObject, {io: 'input', target: 'draft-07'}) as Record<string, unknown>
  // What zod cannot say: mode "files" needs cert and key (editors then flag the omission too).
  const tls = (generated.properties as Record<string, Record<string, unknown>>).tls
  tls.if = {properties: {mode: {const: 'files'}}, required: ['mode']}
  tls.then = {required: ['cert', 'key']}
  const {$schema, ...rest} = generated
  return {$schema, title: 'infra inventory (infra.yaml)', ...rest}
}

/** The file content: stable formatting, trailing newline. */
export function inventoryJsonSchemaText(): string {
  return JSON.stringify(inventoryJsonSchema(), null, 2) + '\n'
}
