/**
 * Bans at the edge (`infra ban`, `infra unban`, `infra bans`): thin wrappers over the
 * `infra-bans` script that provision installs on the bastion (src/templates/haproxy/bans.sh.hbs).
 * The script changes the ban list file and the running HAProxy (runtime API) together, so a ban
 * acts at once and survives reloads, provision and reboots. Command builders and parsers here are
 * pure; only `runBans` touches a host.
 */
import {isIPv4, isIPv6} from 'node:net'

import {UsageError} from '../lib/errors.js'
import {edgePaths} from '../roles/edge.js'
import {shq} from '../host/quote.js'
import {DEFAULT_PATHS} from '../host/paths.js'

export interface Ban {
  /** An address or a CIDR network, as given. */
  address: string
  /** `list`: from infra ban (the ban file); `auto`: an automatic ban after a flood (stick table). */
  source: 'list' | 'auto'
  /** When the ban ends (ISO 8601), or null for never. */
  until: string | null
  /** When it was made (ISO 8601); unknown for automatic bans. */
  since: string | null
  reason: string | null
}

/** Check and normalise a ban target: an IPv4/IPv6 address or network. */
export function parseTarget(target: string): string {
  const t = target.trim()
  const [addr, prefix, ...rest] = t.split('/')
  const v4 = isIPv4(addr ?? '')
  const v6 = !v4 && isIPv6(addr ?? '')
  const max = v4 ? 32 : 128
  const okPrefix = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max)
  if ((!v4 && !v6) || !okPrefix || rest.length > 0) {
    throw new UsageError(`"${target}" is not an IP address or network`, {hint: 'Use e.g. 198.51.100.7, 198.51.100.0/24 or 2001:db8::/32.'})
  }
  return v6 ? t.toLowerCase() : t
}

/** A reason as the ban file keeps it: one line, printable, at most 200 characters. */
export function cleanReason(reason: string | undefined): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this removes
  const r = (reason ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 200)
  return r === '' ? '-' : r
}

function script(): string {
  return edgePaths(DEFAULT_PATHS).bansScript
}

export function banCommand(address: string, untilEpochSeconds: number | null, reason: string, bansScript = script()): string {
  return `${shq(bansScript)} add ${shq(address)} ${untilEpochSeconds ?? 0} ${shq(reason)}`
}

export function unbanCommand(address: string, bansScript = script()): string {
  return `${shq(bansScript)} del ${shq(address)}`
}

export function listCommand(bansScript = script()): string {
  return `${shq(bansScript)} list && echo @@auto && ${shq(bansScript)} auto`
}

/** Epoch seconds as an ISO time. */
export const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString()

/** Parse `infra-bans list`, `@@auto`, `infra-bans auto` output. `now` for the automatic bans' end. */
export function parseList(stdout: string, now = Date.now()): Ban[] {
  const out: Ban[] = []
  let auto = false
  for (const line of stdout.split('\n')) {
    if (line === '@@auto') {
      auto = true
      continue
    }
    if (line.trim() === '') continue
    const f = line.split('\t')
    if (auto) {
      const left = Number(f[1])
      out.push({address: f[0], source: 'auto', until: Number.isFinite(left) ? new Date(now + left).toISOString() : null, since: null, reason: 'flood'})
    } else {
      const until = Number(f[1])
      const since = Number(f[2])
      out.push({
        address: f[0],
        source: 'list',
        until: until > 0 ? iso(until) : null,
        since: since > 0 ? iso(since) : null,
        reason: f[3] && f[3] !== '-' ? f[3] : null,
      })
    }
  }
  return out
}
