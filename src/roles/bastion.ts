/**
 * The bastion: HAProxy (TLS, redirects, load balancing, error pages, stats), its reload drop-in,
 * and the firewall/NAT. Pure: (inventory, TLS PEM, overrides) => files.
 */
import {configOf} from '../inventory/config.js'
import {hasApps} from '../inventory/units.js'
import type {HostSpec} from '../inventory/schema.js'
import {ConfigError} from '../lib/errors.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {MANAGED, nftablesFile, pathsOf, type RenderContext, renderTemplate} from './common.js'
import {edgeFiles, edgeServices, edgeTemplateData} from './edge.js'
import {agentBastionFiles, agentBastionServices} from './agents.js'
import {shellWord} from '../host/quote.js'
import {HAPROXY_STATS_PORT} from '../host/ports.js'
import {checkOverride, checkSize, ERROR_PAGES, rawResponse} from './error-pages.js'
import {type PoolData, poolServers, siteBastionFiles, sitesTemplateData} from './sites.js'

export {ERROR_PAGE_MAX_BYTES, ERROR_PAGES, HAPROXY_ERRORFILE_CODES} from './error-pages.js'

/** Mozilla "intermediate" TLS settings, guideline 6.0 (without X25519MLKEM768: fatal with OpenSSL 3.0). */
export const MOZILLA_INTERMEDIATE = {
  ciphers: [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  ciphersuites: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
  curves: 'X25519:prime256v1:secp384r1',
}

export const HSTS = 'max-age=63072000; includeSubDomains'

/** New SSH connections per source before the bastion's firewall drops them. */
export const SSH_RATE = '60/minute'
export const SSH_BURST = 30

function overrideName(code: number): string {
  return `errors/${code}.http`
}

/**
 * An error page as HAProxy wants it: a whole raw HTTP response (status line, headers, blank line,
 * HTML body). A user override (`errors/<code>.http` beside the inventory) is either such a
 * response, used as it is, or just an HTML document, which gets our status line and headers.
 */
export function renderErrorPage(ctx: RenderContext, code: number): string {
  const override = ctx.errorPageOverrides?.[code]
  if (override !== undefined) return checkSize(checkOverride(code, override, overrideName(code)), overrideName(code))
  const info = ERROR_PAGES[code]
  if (!info) throw new Error(`no built-in error page for ${code}`)
  const body = renderTemplate('errors/page.html.hbs', {code, ...info, domain: ctx.inventory.domain}, ctx.templateOverridesDir)
  return checkSize(rawResponse(code, body), overrideName(code))
}

/** Codes with an error page: ours plus any the user added. */
export function errorPageCodes(ctx: RenderContext): number[] {
  const codes = new Set<number>(Object.keys(ERROR_PAGES).map(Number))
  for (const c of Object.keys(ctx.errorPageOverrides ?? {})) codes.add(Number(c))
  return [...codes].sort((a, b) => a - b)
}

/** A HAProxy time value from an inventory duration, in ms when not a whole number of seconds. */
function hapTime(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

export function renderHaproxyConfig(ctx: RenderContext): string {
  const inv = ctx.inventory
  const config = configOf(inv)
  const p = pathsOf(ctx)
  const hc = inv.web.healthCheck
  const inter = config.ms.healthInterval
  const domain = inv.domain.toLowerCase()
  return renderTemplate(
    'haproxy/haproxy.cfg.hbs',
    {
      managed: MANAGED,
      domain,
      aliases: [...new Set(inv.aliases.map((a) => a.toLowerCase()))].filter((a) => a !== domain),
      publicAddress: inv.bastion.publicAddress,
      privateAddress: inv.bastion.privateAddress,
      chroot: p.haproxyChroot,
      hardStopAfter: '2m',
      adminSocket: p.haproxyAdminSocket,
      stateFile: p.haproxyStateFile,
      tls: MOZILLA_INTERMEDIATE,
      hsts: HSTS,
      certFile: config.tlsPemPath(p),
      timeouts: {
        connect: '5s',
        client: '30s',
        server: hapTime(config.ms.webTimeout),
        httpRequest: '10s',
        httpKeepAlive: '10s',
        queue: '30s',
        tunnel: '1h',
        clientFin: '10s',
      },
      errorFiles: errorPageCodes(ctx).map((code) => ({code, path: `${p.haproxyErrorDir}/${code}.http`})),
      health: {
        path: config.healthPath,
        inter: hapTime(inter),
        fastinter: hapTime(Math.max(500, Math.round(inter / 2))),
        fall: hc.fall,
        rise: hc.rise,
        errorLimit: 10,
      },
      servers: poolServers(inv),
      // backend web (the template's `pool` section, which each site's backend shares).
      webPool: {name: 'web', healthPath: config.healthPath, hostHeader: domain, servers: poolServers(inv), errors: '', errorCodes: [], explain: true} satisfies PoolData,
      // Sites (src/roles/sites.ts): SNI certificates, routing by host name, their backends; false without sites.
      sites: sitesTemplateData(ctx),
      statsPort: HAPROXY_STATS_PORT,
      // Each host's node exporter, published at /nodes/<host>/metrics (configOf(...).metricsTargets).
      nodeMetrics: config.metricsTargets.map((t) => ({backend: `metrics_${t.name}`, path: t.path, server: t.name, address: t.address})),
      // Flood limits, bans (src/roles/edge.ts).
      edge: edgeTemplateData(ctx),
    },
    ctx.templateOverridesDir,
  )
}

export function renderBastionNftables(ctx: RenderContext, host: HostSpec): string {
  const inv = ctx.inventory
  const config = configOf(inv)
  const admins = config.adminAllow
  return renderTemplate(
    'nftables/bastion.nft.hbs',
    {
      managed: MANAGED,
      name: host.name,
      publicAddress: inv.bastion.publicAddress,
      privateAddress: inv.bastion.privateAddress,
      privateNetwork: config.privateNetwork,
      adminAllow: admins.v4.length + admins.v6.length > 0,
      admins4: admins.v4,
      admins6: admins.v6,
      sshPort: inv.ssh.port,
      sshRate: SSH_RATE,
      sshBurst: SSH_BURST,
      statsPort: HAPROXY_STATS_PORT,
      registryPort: hasApps(inv) ? inv.registry.port : null,
    },
    ctx.templateOverridesDir,
  )
}

/** After a reload: ports 80 and 443 are HAProxy's, and nothing else holds them (e.g. nginx). */
export const HAPROXY_VERIFY =
  `l=$(ss -Hltnp '( sport = :80 or sport = :443 )') && ` +
  `printf '%s\\n' "$l" | grep -q ':443 .*"haproxy"' && printf '%s\\n' "$l" | grep -q ':80 .*"haproxy"' && ` +
  `! printf '%s\\n' "$l" | grep -v '"haproxy"' | grep -q .`

function checkPem(pem: string): void {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem) || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError('the TLS PEM for HAProxy must hold the certificate (chain) and its private key', {
      hint: 'Check tls.cert and tls.key in the inventory (PEM files).',
    })
  }
}

export function bastionFiles(ctx: RenderContext, host: HostSpec): DesiredFile[] {
  const p = pathsOf(ctx)
  const t = ctx.templateOverridesDir
  checkPem(ctx.tlsPem)
  const errorPages: DesiredFile[] = errorPageCodes(ctx).map((code) => ({
    path: `${p.haproxyErrorDir}/${code}.http`,
    content: renderErrorPage(ctx, code),
    mode: 0o644,
    owner: 'root',
    group: 'root',
    // Read at start-up only: a reload picks up a changed page.
    notify: [{service: 'haproxy', action: 'reload'}],
  }))
  return [
    nftablesFile(ctx, renderBastionNftables(ctx, host)),
    {
      path: configOf(ctx.inventory).tlsPemPath(p),
      content: ctx.tlsPem,
      mode: 0o600,
      owner: 'root',
      group: 'root',
      secret: true,
      notify: [{service: 'haproxy', action: 'reload'}],
    },
    ...errorPages,
    // Each site's PEM, the crt-list naming them, each site's error pages: before haproxy.cfg, which names them.
    ...siteBastionFiles(ctx),
    // The ban list, its script and prune timer: before haproxy.cfg, which names the list (-f).
    ...edgeFiles(ctx),
    {
      path: p.haproxySaveState,
      content: renderTemplate('haproxy/save-state.sh.hbs', {managed: MANAGED, adminSocket: shellWord(p.haproxyAdminSocket), stateFile: shellWord(p.haproxyStateFile)}, t),
      mode: 0o755,
      owner: 'root',
      group: 'root',
      validate: 'sh -n {}',
    },
    {
      path: p.haproxyDropIn,
      content: renderTemplate('haproxy/systemd-dropin.conf.hbs', {managed: MANAGED, saveState: p.haproxySaveState}, t),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      daemonReload: true,
    },
    {
      path: p.haproxyConfig,
      content: renderHaproxyConfig(ctx),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate: 'haproxy -c -f {}',
      notify: [{service: 'haproxy', action: 'reload'}],
    },
    // The healthchecker and scaler (src/roles/agents.ts, docs/AGENTS.md).
    ...agentBastionFiles(ctx),
  ]
}

export function bastionServices(): DesiredService[] {
  return [
    {name: 'haproxy', enabled: true, running: true, verify: HAPROXY_VERIFY},
    // nginx must not hold port 80 on the bastion (it does when a host image ships it).
    {name: 'nginx', enabled: false, running: false},
    ...edgeServices(),
    ...agentBastionServices(),
  ]
}
