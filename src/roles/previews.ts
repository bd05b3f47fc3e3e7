/**
 * The bastion's preview expiry (docs/SITES.md): a script and its cron entry, when a site declares
 * previews. Pure: inventory => files.
 */
import {AGENT_PATHS, UNITS_DIR} from '../host/paths.js'
import {durationMs} from '../inventory/schema.js'
import type {DesiredFile} from '../plan/types.js'
import {MANAGED, type RenderContext, renderTemplate} from './common.js'

export const PREVIEWS_EXPIRE = '/usr/local/sbin/infra-previews-expire'
export const PREVIEWS_CRON = '/etc/cron.d/infra-previews'

export function previewBastionFiles(ctx: RenderContext): DesiredFile[] {
  const inv = ctx.inventory
  const sites = Object.entries(inv.sites ?? {})
    .filter(([, s]) => s.previews !== undefined)
    .map(([name, s]) => ({
      name,
      ttlSeconds: Math.round(durationMs(s.previews!.ttl) / 1000),
      nodes: inv.web.nodes.map((n) => n.name).filter((n) => !s.nodes || s.nodes.includes(n)).join(' '),
    }))
  if (sites.length === 0) return []
  const t = ctx.templateOverridesDir
  const script = renderTemplate('agents/previews-expire.sh.hbs', {managed: MANAGED, libFile: AGENT_PATHS.lib, unitsDir: UNITS_DIR, sites}, t)
  const cron = `# ${MANAGED}\n# Previews idle for longer than previews.ttl are removed (docs/SITES.md).\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n* * * * * root ${PREVIEWS_EXPIRE} >/dev/null 2>&1\n`
  return [
    {path: PREVIEWS_EXPIRE, content: script, mode: 0o755, owner: 'root', group: 'root', validate: 'sh -n {}'},
    {path: PREVIEWS_CRON, content: cron, mode: 0o644, owner: 'root', group: 'root'},
  ]
}

/** Without previews, the expiry script and its cron entry are removed (a site or its previews were removed). */
export function previewBastionAbsent(ctx: RenderContext): string[] {
  return previewBastionFiles(ctx).length === 0 ? [PREVIEWS_EXPIRE, PREVIEWS_CRON] : []
}
