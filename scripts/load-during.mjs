#!/usr/bin/env node
// node scripts/load-during.mjs ADDRESS DOMAIN -- COMMAND ARGS...
// Runs COMMAND while a bounded HTTPS request loop (4 workers, lab addresses only) runs against the
// lab's bastion; prints how many requests were answered, failed, and which app versions answered.
import {spawn} from 'node:child_process'

import {startLoad} from '../dist/lab/load.js'

const [address, domain, sep, cmd, ...args] = process.argv.slice(2)
if (!address || !domain || sep !== '--' || !cmd) {
  console.error('usage: node scripts/load-during.mjs ADDRESS DOMAIN -- COMMAND ARGS...')
  process.exit(2)
}
const load = await startLoad({address, domain, workers: 4, maxRequests: 50_000, maxMs: 300_000})
await new Promise((r) => setTimeout(r, 1000))
const code = await new Promise((resolve) => spawn(cmd, args, {stdio: 'inherit'}).on('close', (c) => resolve(c ?? 1)))
await new Promise((r) => setTimeout(r, 1500))
const report = await load.stop()
const versions = Object.entries(report.versions).map(([v, n]) => `${v}: ${n}`).join(', ')
console.log(`load: ${report.total} requests in ${(report.ms / 1000).toFixed(1)} s, ${report.failed} failed; answered by ${versions || 'nothing'}${report.errors.length ? `; first errors: ${report.errors.slice(0, 3).join(' | ')}` : ''}`)
process.exit(code === 0 && report.failed === 0 ? 0 : 1)
