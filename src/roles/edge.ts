/**
 * Edge protection on the bastion (docs/EDGE.md): flood limits and bans, rendered into HAProxy's
 * configuration, plus the ban list file, the `infra-bans` script and its prune timer.
 * Pure: (inventory, paths) => template data and files.
 */
import path from 'node:path'

import {configOf} from '../inventory/config.js'
import {ConfigError} from '../lib/errors.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {MANAGED, pathsOf, type RenderContext, renderTemplate} from './common.js'
import {shellWord} from '../host/quote.js'
import type {HostPaths} from '../host/paths.js'

/** Stick tables (HAProxy backends holding only a table). */
export const FLOOD_TABLE = 'edge_flood'
export const BAN_TABLE = 'edge_ban'
/** Connections of banned addresses held in the tarpit (`limits.banAction: tarpit`). */
export const TARPIT_TABLE = 'edge_tarpit'

/** The prune timer's unit names. */
export const BANS_PRUNE_UNIT = 'infra-bans-prune'
/** How often expired bans are dropped. */
export const BANS_PRUNE_EVERY = '10s'

export interface EdgePaths {
  /** Folder of edge data beside haproxy.cfg (`/etc/haproxy/infra`). */
  dir: string
  /** The ban list: an HAProxy pattern file (runtime data, never overwritten by provision). */
  bansFile: string
  /** The script that changes it (`infra-bans`), beside the save-state script. */
  bansScript: string
  pruneService: string
  pruneTimer: string
  /** The JWT public key (auth.alg RS*, ES*). */
  jwtKey: string
  /** The JWT HMAC secret as a one-line map file `secret <value>` (auth.alg HS*), mode 0600. */
  jwtSecretMap: string
}

export function edgePaths(p: HostPaths): EdgePaths {
  const dir = path.posix.join(path.posix.dirname(p.haproxyConfig), 'infra')
  return {
    dir,
    bansFile: `${dir}/bans.lst`,
    bansScript: path.posix.join(path.posix.dirname(p.haproxySaveState), 'infra-bans'),
    pruneService: `/etc/systemd/system/${BANS_PRUNE_UNIT}.service`,
    pruneTimer: `/etc/systemd/system/${BANS_PRUNE_UNIT}.timer`,
    jwtKey: `${dir}/jwt-public.pem`,
    jwtSecretMap: `${dir}/jwt-secret.map`,
  }
}

/**
 * A CORS origin as HAProxy matches it: exact (`-m str -i`) or, for `scheme://*.domain[:port]`, a
 * regex for any subdomain. Dots become `[.]` (HAProxy's config parser eats backslashes).
 */
export function originMatcher(origin: string): {exact?: string; regex?: string} {
  const o = origin.toLowerCase()
  const m = /^(https?):\/\/\*\.(.+)$/.exec(o)
  if (!m) return {exact: o}
  const rest = m[2].replaceAll('.', '[.]')
  return {regex: `^${m[1]}://([a-z0-9-]+[.])+${rest}$`}
}

/** An origin list as the template matches it: `https://<domain>` first, then the list; exact values on one line, patterns as regexes. */
function originsTemplateData(domain: string, origins: string[]): {exact: string; regexes: string[]} {
  const own = `https://${domain.toLowerCase()}`
  const matchers = [...new Set([own, ...origins.map((o) => o.toLowerCase())])].map(originMatcher)
  return {
    exact: matchers.flatMap((m) => (m.exact ? [m.exact] : [])).join(' '),
    regexes: matchers.flatMap((m) => (m.regex ? [m.regex] : [])),
  }
}

/**
 * CORS (`cors.origins`) and the WebSocket origin check (`cors.websocketOrigins`), each false when
 * its list is empty; false altogether when both are.
 */
export function corsTemplateData(ctx: RenderContext) {
  const c = ctx.inventory.cors
  const domain = ctx.inventory.domain
  if (c.origins.length === 0 && c.websocketOrigins.length === 0) return false
  return {
    origins:
      c.origins.length > 0
        ? {
            ...originsTemplateData(domain, c.origins),
            methods: [...new Set([...c.methods, 'OPTIONS'])].join(', '),
            headers: [...new Set(c.headers)].join(', '),
            credentials: c.credentials,
            maxAge: Math.round(configOf(ctx.inventory).ms.corsMaxAge / 1000),
          }
        : false,
    websocket: c.websocketOrigins.length > 0 ? originsTemplateData(domain, c.websocketOrigins) : false,
  }
}

/** The key material `auth` needs, or a ConfigError when the caller did not read it. */
function authMaterialOf(ctx: RenderContext): {key?: string; secret?: string} {
  const auth = ctx.inventory.auth
  if (!auth) return {}
  const m = ctx.authMaterial ?? {}
  if (auth.alg.startsWith('HS') ? !m.secret : !m.key) {
    throw new ConfigError(`auth: no ${auth.alg.startsWith('HS') ? `secret (environment variable ${auth.secretEnv})` : 'public key (auth.key)'} was read for ${auth.alg}`)
  }
  return m
}

export function authTemplateData(ctx: RenderContext) {
  const auth = ctx.inventory.auth
  if (!auth) return false
  const e = edgePaths(pathsOf(ctx))
  authMaterialOf(ctx)
  const hmac = auth.alg.startsWith('HS')
  return {
    alg: auth.alg,
    // HMAC: the secret comes from a variable loaded from the secret map file, so it never appears in haproxy.cfg.
    keyArg: hmac ? 'txn.jwt_key' : `"${e.jwtKey}"`,
    secretMap: hmac ? e.jwtSecretMap : '',
    issuer: auth.issuer ?? '',
    audience: auth.audience ?? '',
    roleClaim: auth.roleClaim,
    realm: ctx.inventory.domain.toLowerCase(),
    healthPath: configOf(ctx.inventory).healthPath.toLowerCase(),
    rules: auth.rules.map((r, i) => ({
      index: i,
      // Matched against the lower-cased path.
      path: r.path.toLowerCase(),
      methods: r.methods ? [...new Set([...r.methods, ...(r.methods.includes('GET') ? ['HEAD' as const] : [])])].join(' ') : '',
      roles: [...new Set(r.roles)].join(' '),
    })),
  }
}

/** What the HAProxy template's edge sections get (`edge.*`). */
export function edgeTemplateData(ctx: RenderContext) {
  const p = pathsOf(ctx)
  const e = edgePaths(p)
  const l = ctx.inventory.limits
  const allow = [...new Set(l.allow)]
  return {
    bansFile: e.bansFile,
    allow: allow.length > 0 ? allow.join(' ') : '',
    banAction: l.banAction,
    // The ban list tarpits with the flood limits off too: it needs its timeout and its bound.
    tarpit: l.banAction === 'tarpit',
    tarpitTable: TARPIT_TABLE,
    // A banned address holds at most as many connections in the tarpit as any address may have requests in progress.
    tarpitConnections: l.connections,
    cors: corsTemplateData(ctx),
    auth: authTemplateData(ctx),
    limits: l.enabled
      ? {
          floodTable: FLOOD_TABLE,
          banTable: BAN_TABLE,
          requests: l.requests,
          // Inventory durations are `<n>s|m|h`, which HAProxy reads as they are.
          window: l.window,
          // The rate counts refused requests too: this many in a window means banAfter were refused.
          banAbove: l.banAfter > 0 ? l.requests + l.banAfter : 0,
          banAfter: l.banAfter,
          banFor: l.banFor,
          connections: l.connections,
        }
      : false,
  }
}

/** The files edge protection needs on the bastion. The ban list is created once, then left alone. */
export function edgeFiles(ctx: RenderContext): DesiredFile[] {
  const p = pathsOf(ctx)
  const e = edgePaths(p)
  const t = ctx.templateOverridesDir
  return [
    {
      path: e.bansFile,
      content: '# Bans (infra ban / infra unban / infra-bans on the bastion). Runtime data: provision never overwrites it.\n',
      mode: 0o644,
      owner: 'root',
      group: 'root',
      ifAbsent: true,
    },
    {
      path: e.bansScript,
      content: renderTemplate(
        'haproxy/bans.sh.hbs',
        {managed: MANAGED, bansFile: shellWord(e.bansFile), adminSocket: shellWord(p.haproxyAdminSocket), banTable: BAN_TABLE},
        t,
      ),
      mode: 0o755,
      owner: 'root',
      group: 'root',
      validate: 'sh -n {}',
    },
    {
      path: e.pruneService,
      content:
        `# ${MANAGED}\n[Unit]\nDescription=Drop expired HAProxy bans (infra)\nAfter=haproxy.service\n\n` +
        `[Service]\nType=oneshot\nExecStart=${e.bansScript} prune\n`,
      mode: 0o644,
      owner: 'root',
      group: 'root',
      daemonReload: true,
    },
    {
      path: e.pruneTimer,
      content:
        `# ${MANAGED}\n[Unit]\nDescription=Drop expired HAProxy bans every ${BANS_PRUNE_EVERY} (infra)\n\n` +
        `[Timer]\nOnBootSec=${BANS_PRUNE_EVERY}\nOnUnitActiveSec=${BANS_PRUNE_EVERY}\nAccuracySec=1s\n\n` +
        `[Install]\nWantedBy=timers.target\n`,
      mode: 0o644,
      owner: 'root',
      group: 'root',
      daemonReload: true,
      notify: [{service: `${BANS_PRUNE_UNIT}.timer`, action: 'restart'}],
    },
    ...authFiles(ctx),
  ]
}

/** The JWT public key or HMAC secret map on the bastion (inventory `auth`). */
export function authFiles(ctx: RenderContext): DesiredFile[] {
  const auth = ctx.inventory.auth
  if (!auth) return []
  const e = edgePaths(pathsOf(ctx))
  const m = authMaterialOf(ctx)
  const reload = [{service: 'haproxy', action: 'reload' as const}]
  if (m.secret !== undefined && auth.alg.startsWith('HS')) {
    return [{path: e.jwtSecretMap, content: `secret ${m.secret}\n`, mode: 0o600, owner: 'root', group: 'root', secret: true, notify: reload}]
  }
  return [{path: e.jwtKey, content: m.key!.endsWith('\n') ? m.key! : `${m.key}\n`, mode: 0o644, owner: 'root', group: 'root', notify: reload}]
}

export function edgeServices(): DesiredService[] {
  return [{name: `${BANS_PRUNE_UNIT}.timer`, enabled: true, running: true}]
}
