#!/usr/bin/env node
// Writes schema/infra.schema.json from the zod schema of the inventory (src/inventory/schema.ts).
// Runs in `npm run build` after tsc, so it reads the compiled module from dist/.
//   node scripts/gen-schema.js          write the file
//   node scripts/gen-schema.js --check  exit 1 when the file is missing or stale (for CI)
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

let mod
try {
  mod = await import('../dist/inventory/json-schema.js')
} catch (error) {
  console.error(`gen-schema: cannot load dist/inventory/json-schema.js (run tsc first): ${error.message}`)
  process.exit(1)
}

const file = mod.schemaFilePath()
const text = mod.inventoryJsonSchemaText()
const rel = path.relative(process.cwd(), file)

if (process.argv.includes('--check')) {
  const current = await readFile(file, 'utf8').catch(() => '')
  if (current !== text) {
    console.error(`${rel} is out of date: run npm run build (or node scripts/gen-schema.js) and commit it.`)
    process.exit(1)
  }
  console.error(`${rel} is up to date.`)
} else {
  await mkdir(path.dirname(file), {recursive: true})
  await writeFile(file, text)
  console.error(`wrote ${rel}`)
}
