/** The pure parts of infra ban / unban / bans: targets, the commands sent to the bastion, and their output. */
import {describe, expect, it} from 'vitest'

import {banCommand, cleanReason, listCommand, parseList, parseTarget, unbanCommand} from '../../src/edge/bans.js'
import {UsageError} from '../../src/lib/errors.js'

describe('parseTarget', () => {
  it('takes IPv4/IPv6 addresses and networks', () => {
    expect(parseTarget(' 198.51.100.7 ')).toBe('198.51.100.7')
    expect(parseTarget('198.51.100.0/24')).toBe('198.51.100.0/24')
    expect(parseTarget('2001:DB8::/32')).toBe('2001:db8::/32')
  })
  it.each(['198.51.100.256', '198.51.100.0/33', '2001:db8::/129', 'example.com', '1.2.3.4/8/9', '1.2.3.4; reboot', ''])('refuses %j with exit 2', (t) => {
    expect(() => parseTarget(t)).toThrow(UsageError)
    expect(() => parseTarget(t)).toThrow(/is not an IP address or network/)
  })
})

describe('commands', () => {
  it('quote every word for the shell', () => {
    expect(banCommand('198.51.100.7', 1800000000, "it's bad", '/usr/local/sbin/infra-bans')).toBe(
      `'/usr/local/sbin/infra-bans' add '198.51.100.7' 1800000000 'it'\\''s bad'`,
    )
    expect(banCommand('198.51.100.0/24', null, '-')).toBe(`'/usr/local/sbin/infra-bans' add '198.51.100.0/24' 0 '-'`)
    expect(unbanCommand('198.51.100.7')).toBe(`'/usr/local/sbin/infra-bans' del '198.51.100.7'`)
    expect(listCommand()).toBe(`'/usr/local/sbin/infra-bans' list && echo @@auto && '/usr/local/sbin/infra-bans' auto`)
  })
  it('keep a reason to one printable line', () => {
    expect(cleanReason(' spam\nbot\t ')).toBe('spam bot')
    expect(cleanReason(undefined)).toBe('-')
    expect(cleanReason('x'.repeat(300))).toHaveLength(200)
  })
})

describe('parseList', () => {
  it('reads listed and automatic bans', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    const out = '198.51.100.7\t1767229200\t1767225600\tcredential stuffing\n198.51.100.0/24\t0\t1767225600\t-\n@@auto\n203.0.113.9\t5000\n'
    expect(parseList(out, now)).toEqual([
      {address: '198.51.100.7', source: 'list', until: '2026-01-01T01:00:00.000Z', since: '2026-01-01T00:00:00.000Z', reason: 'credential stuffing'},
      {address: '198.51.100.0/24', source: 'list', until: null, since: '2026-01-01T00:00:00.000Z', reason: null},
      {address: '203.0.113.9', source: 'auto', until: '2026-01-01T00:00:05.000Z', since: null, reason: 'flood'},
    ])
    expect(parseList('@@auto\n')).toEqual([])
  })
})
