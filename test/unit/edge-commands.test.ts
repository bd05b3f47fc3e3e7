/** infra ban / unban / bans refuse bad input with exit 2 before touching any host. */
import {describe, expect, it} from 'vitest'

import Ban from '../../src/commands/ban.js'
import Unban from '../../src/commands/unban.js'
import {runCommand as run} from './command-helpers.js'

describe('ban and unban input', () => {
  it('refuse something that is not an address or network (exit 2)', async () => {
    const r = await run(Ban, ['203.0.113.300', '-c', '/nonexistent/infra.yaml'])
    expect(r.code).toBe(2)
    expect(r.err).toContain('"203.0.113.300" is not an IP address or network')
    const u = await run(Unban, ['example.com', '-c', '/nonexistent/infra.yaml'])
    expect(u.code).toBe(2)
  })

  it('refuse a bad --for (exit 2)', async () => {
    const r = await run(Ban, ['203.0.113.5', '--for', '7d', '-c', '/nonexistent/infra.yaml'])
    expect(r.code).toBe(2)
    expect(r.err).toContain('--for 7d: not a duration')
  })

  it('name the missing inventory (exit 2)', async () => {
    const r = await run(Ban, ['203.0.113.5', '-c', '/nonexistent/infra.yaml'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/nonexistent\/infra\.yaml/)
  })
})
