/**
 * `infra sites`: the pure half (docs/SITES.md). The bastion answers one script with every unit's
 * release history and HAProxy's server states; this turns them into rows and a table.
 */
import {factLines} from '../host/facts.js'
import {runtimeCommand} from '../host/haproxy.js'
import {parseShowStat} from '../host/haproxy.js'
import type {DeployUnit} from '../inventory/units.js'
import {currentFromFact, releasesFactLine} from './release.js'

export interface SiteRow {
  site: string
  env: string
  /** The canonical host name (https://HOST). */
  host: string
  aliases: string[]
  /** The current release, null when none yet; undefined when the history cannot be read. */
  release: string | null | undefined
  /** Nodes whose server is UP in the unit's backend, of those it runs on. */
  up: number
  nodes: number
  health: 'ok' | 'degraded' | 'down' | 'unknown'
}

/** One round trip: `@@releases` per unit (in order), then `show stat` as `@@stat` lines. */
export function sitesScript(units: readonly DeployUnit[]): string {
  return [
    ...units.map((u) => releasesFactLine(u.paths.history)),
    `${runtimeCommand('show stat')} | sed 's/^/@@stat\\t/'`,
    'true',
  ].join('\n')
}

export function parseSites(units: readonly DeployUnit[], out: string): SiteRow[] {
  const lines = factLines(out)
  const releases = lines.filter((l) => l.tag === '@@releases').map((l) => l.fields[0])
  const csv = lines
    .filter((l) => l.tag === '@@stat')
    .map((l) => l.fields.join('\t'))
    .join('\n')
  const stats = parseShowStat(csv)
  return units.map((u, i) => {
    const servers = stats.filter((s) => s.backend === u.backend)
    const up = servers.filter((s) => s.status.startsWith('UP')).length
    const health: SiteRow['health'] = servers.length === 0 ? 'unknown' : up === 0 ? 'down' : up < servers.filter((s) => !s.status.startsWith('MAINT')).length ? 'degraded' : 'ok'
    return {site: u.site ?? 'app', env: u.env, host: u.hosts[0], aliases: [...u.aliases], release: currentFromFact(releases[i]), up, nodes: u.nodes.length, health}
  })
}

export function renderSites(rows: readonly SiteRow[]): string {
  if (rows.length === 0) return 'No sites. Add one: infra site add NAME --domain DOMAIN --image IMAGE'
  const table = [['SITE', 'ENV', 'URL', 'RELEASE', 'HEALTH', 'ALIASES']]
  for (const r of rows) {
    table.push([r.site, r.env, `https://${r.host}`, r.release === undefined ? '?' : (r.release ?? '-'), `${r.health} (${r.up} up)`, r.aliases.join(', ') || '-'])
  }
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)))
  return table.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n')
}
