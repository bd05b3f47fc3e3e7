/**
 * The bastion: HAProxy (TLS, redirects, load balancing, error pages, stats), its reload drop-in,
 * and the firewall/NAT. Pure: (inventory, TLS PEM, overrides) => files.
 */
import {configOf} from '../inventory/config.js'
import type {HostSpec} from '../inventory/schema.js'
import {ConfigError} from '../lib/errors.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {MANAGED, nftablesFile, pathsOf, type RenderContext, renderTemplate} from './common.js'
import {edgeFiles, edgeServices, edgeTemplateData} from './edge.js'
import {agentBastionFiles, agentBastionServices} from './agents.js'
import {shellWord} from '../host/quote.js'
import {HAPROXY_STATS_PORT} from '../host/ports.js'

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

/** The error pages HAProxy serves from our files, and their wording. */
export const ERROR_PAGES: Record<number, {reason: string; title: string; message: string}> = {
  400: {reason: 'Bad Request', title: 'Bad request', message: 'Your browser sent a request this server could not understand.'},
  403: {reason: 'Forbidden', title: 'Forbidden', message: 'You are not allowed to access this page.'},
  408: {reason: 'Request Timeout', title: 'Request timed out', message: 'Your browser did not send a complete request in time. Please try again.'},
  429: {reason: 'Too Many Requests', title: 'Too many requests', message: 'You sent too many requests in a short time. Please wait a moment and try again.'},
  500: {reason: 'Internal Server Error', title: 'Something went wrong', message: 'The server met an unexpected error. Please try again later.'},
  502: {reason: 'Bad Gateway', title: 'Bad gateway', message: 'The site received an invalid answer from its servers. Please try again in a moment.'},
  503: {reason: 'Service Unavailable', title: 'Service unavailable', message: 'No server is available to answer right now. Please try again in a moment.'},
  504: {reason: 'Gateway Timeout', title: 'Gateway timeout', message: 'The site did not answer in time. Please try again in a moment.'},
}

/** Codes HAProxy 2.6 accepts in `errorfile` (an override may add one of these beyond ours). */
export const HAPROXY_ERRORFILE_CODES = [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504] as const

/** HAProxy reads an error file into one buffer (16 KB, minus room for rewrites). */
export const ERROR_PAGE_MAX_BYTES = 15 * 1024

const REASONS: Record<number, string> = {
  200: 'OK',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  410: 'Gone',
  413: 'Payload Too Large',
  425: 'Too Early',
  501: 'Not Implemented',
  ...Object.fromEntries(Object.entries(ERROR_PAGES).map(([c, p]) => [c, p.reason])),
}

function overrideName(code: number): string {
  return `errors/${code}.http`
}

function rawResponse(code: number, body: string): string {
  const head = [
    `HTTP/1.1 ${code} ${REASONS[code] ?? 'Error'}`,
    'Content-Type: text/html; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body, 'utf8')}`,
    'Cache-Control: no-cache',
    'Connection: close',
  ]
  return head.join('\r\n') + '\r\n\r\n' + body
}

/**
 * An error page as HAProxy wants it: a whole raw HTTP response (status line, headers, blank line,
 * HTML body). A user override (`errors/<code>.http` beside the inventory) is either such a
 * response, used as it is, or just an HTML document, which gets our status line and headers.
 */
export function renderErrorPage(ctx: RenderContext, code: number): string {
  const override = ctx.errorPageOverrides?.[code]
  let page: string
  if (override === undefined) {
    const info = ERROR_PAGES[code]
    if (!info) throw new Error(`no built-in error page for ${code}`)
    const body = renderTemplate('errors/page.html.hbs', {code, ...info, domain: ctx.inventory.domain}, ctx.templateOverridesDir)
    page = rawResponse(code, body)
  } else {
    page = checkOverride(code, override)
  }
  if (Buffer.byteLength(page, 'utf8') > ERROR_PAGE_MAX_BYTES) {
    throw new ConfigError(`${overrideName(code)}: the error page is ${Buffer.byteLength(page, 'utf8')} bytes; HAProxy takes at most ${ERROR_PAGE_MAX_BYTES}`, {
      hint: 'Make the page smaller (inline less CSS, link images instead of embedding them).',
    })
  }
  return page
}

function checkOverride(code: number, text: string): string {
  const name = overrideName(code)
  if (!(HAPROXY_ERRORFILE_CODES as readonly number[]).includes(code)) {
    throw new ConfigError(`${name}: HAProxy has no error page for status ${code}`, {
      hint: `Use one of ${HAPROXY_ERRORFILE_CODES.join(', ')}, or remove the file.`,
    })
  }
  const trimmed = text.replace(/^\uFEFF/, '')
  if (/^\s*</.test(trimmed)) return rawResponse(code, trimmed)
  const status = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n/.exec(trimmed)
  if (!status) {
    throw new ConfigError(`${name}: the first line is not an HTTP status line`, {
      hint: `Start the file with "HTTP/1.1 ${code} ${REASONS[code] ?? 'Error'}", headers and a blank line, or put only an HTML document in it.`,
    })
  }
  if (!/\r?\n\r?\n/.test(trimmed)) {
    throw new ConfigError(`${name}: no blank line between the headers and the body`, {
      hint: 'A raw HTTP response is: the status line, header lines, an empty line, then the body.',
    })
  }
  return trimmed
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
      servers: inv.web.nodes.map((n) => ({name: n.name, address: n.address, port: inv.web.port, standby: n.standby})),
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
      registryPort: inv.app ? inv.registry.port : null,
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
