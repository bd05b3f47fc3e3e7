/**
 * Durations given as flags are bounded like the inventory's: a value a timer cannot hold, or a
 * confirm window too short to confirm in, is a usage error (exit 2) before any host is contacted
 * (the inventory path does not even exist here).
 */
import {describe, expect, it} from 'vitest'

import Exec from '../../src/commands/exec.js'
import Provision from '../../src/commands/provision.js'
import {runCommand as run} from './command-helpers.js'

describe('duration flags', () => {
  it('exec --timeout above 24h is refused (Node would fire the timer at once)', async () => {
    const r = await run(Exec, ['web1', '--timeout', '1000h', '-c', '/nonexistent/infra.yaml', '--', 'true'])
    expect(r.code).toBe(2)
    expect(r.err).toContain('--timeout 1000h is too long: at most 24h')
    const zero = await run(Exec, ['web1', '--timeout', '0s', '-c', '/nonexistent/infra.yaml', '--', 'true'])
    expect(zero.code).toBe(2)
    expect(zero.err).toContain('--timeout 0s: not a duration')
  })

  it('provision --confirm-timeout under 10s is refused before the inventory is read', async () => {
    const r = await run(Provision, ['--yes', '--confirm-timeout', '0s', '-c', '/nonexistent/infra.yaml'])
    expect(r.code).toBe(2)
    expect(r.err).toContain('--confirm-timeout 0s: not a duration')
    const short = await run(Provision, ['--yes', '--confirm-timeout', '5s', '-c', '/nonexistent/infra.yaml'])
    expect(short.code).toBe(2)
    expect(short.err).toContain('--confirm-timeout 5s is too short: at least 10s')
    expect(short.err).not.toMatch(/nonexistent/)
  })
})
