import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {z} from 'zod'

import {crossCheck} from './cross-check.js'
import {cidrOf, parseCidr} from '../host/ipv4.js'

export {isIPv4} from '../host/ipv4.js'

/**
 * The inventory (`infra.yaml`): one zod schema is the source of validation, of the TypeScript
 * types and of the JSON Schema shipped for editors (schema/infra.schema.json).
 * Everything but the domain and the addresses has a default.
 *
 * Messages: every schema says what would be valid through `expected(...)`, which yields
 * `"10.0.0" is not an IPv4 address`, `is missing (expected ...)` or `is empty (expected ...)`.
 * src/inventory/validate.ts adds the file, line, column and key path.
 */

/** How a value is shown in a message: strings quoted, lists and mappings named. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'a list'
  if (value !== null && typeof value === 'object') return 'a mapping'
  return String(value)
}

/**
 * An error map for a schema: what a valid value is (`what`), and optionally more detail.
 * Yields `"x" is not WHAT (DETAIL)`, `is missing (expected WHAT, DETAIL)` or `is empty (...)`.
 */
export function expected(what: string, detail?: string) {
  return (iss: {input?: unknown}): string => {
    if (iss.input === undefined) return `is missing (expected ${what}${detail ? `, ${detail}` : ''})`
    if (iss.input === null) return `is empty (expected ${what}${detail ? `, ${detail}` : ''})`
    return `${show(iss.input)} is not ${what}${detail ? ` (${detail})` : ''}`
  }
}

const DURATION = /^[1-9]\d*(s|m|h)$/
const durationError = expected('a duration', 'a whole number followed by s, m or h, e.g. "30s", "5m", "1h"')

/**
 * The longest duration anything that reads one can take: Node's timers and HAProxy's timeouts and
 * stick-table expiries hold at most 2^31-1 ms (about 24.8 days); a longer one overflows (Node
 * fires after 1 ms, `haproxy -c` refuses the file).
 */
export const DURATION_CEILING = '596h'

/**
 * A duration of at most `max`: `"1000h" is too long (at most 1h)`. Every duration key has its
 * own maximum (the reason is in its description); none may exceed DURATION_CEILING.
 */
export function durationUpTo(max: string) {
  const limit = durationMs(max)
  if (limit > durationMs(DURATION_CEILING)) throw new Error(`durationUpTo(${max}): above the ceiling ${DURATION_CEILING}`)
  return z
    .string({error: durationError})
    .regex(DURATION, {error: durationError, abort: true})
    .refine((d) => !DURATION.test(d) || durationMs(d) <= limit, {error: (iss) => `${show(iss.input)} is too long (at most ${max})`})
}

/** Any duration a timer or HAProxy can hold; a key should prefer durationUpTo with its own maximum. */
export const duration = durationUpTo(DURATION_CEILING)

/**
 * web.healthCheck.path: the one rule for the health path (src/inventory/config.ts hands it to the
 * renderers, checks and status). It goes into haproxy.cfg (`http-check send ... uri`, an ACL), nginx (`location =`),
 * the agents' shell (quoted) and curl URLs, so: letters, digits and . _ ~ / - only; no empty or dot
 * segment (nginx merges slashes and resolves dots before matching `location =`, so such a path
 * would never match and every node would fail its check); at most HEALTH_PATH_MAX characters.
 */
export const HEALTH_PATH_MAX = 128
const healthPathError = expected('a plain URL path', `"/" then letters, digits and . _ ~ / - only, at most ${HEALTH_PATH_MAX} characters, e.g. "/healthz"`)
export const healthPathSchema = z
  .string({error: healthPathError})
  .max(HEALTH_PATH_MAX, {error: healthPathError, abort: true})
  .regex(/^\/[\w.~\/-]*$/, {error: healthPathError, abort: true})
  .regex(/^(?!.*\/\/)(?!.*\/\.\.?(\/|$))/, {error: (iss) => `${show(iss.input)} has an empty, "." or ".." segment, which nginx normalizes away, so the check would never match (e.g. "/healthz")`})

export const ipv4 = z.ipv4({error: expected('an IPv4 address')})

export const cidr = z.cidrv4({error: expected('an IPv4 network in CIDR form', 'e.g. "10.10.0.0/24"')})

const domainError = expected('a domain name', 'e.g. "example.com"')
export const hostname = z
  .string({error: domainError})
  .regex(/^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]$/, {
    error: domainError,
  })

const nodeNameError = expected('a host name', 'lowercase letters, digits and "-", starting with a letter, at most 31 characters')
export const nodeName = z.string({error: nodeNameError}).regex(/^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$/, {error: nodeNameError})

const port = (what = 'a port number from 1 to 65535') => z.int({error: expected(what)}).min(1).max(65535)
const wholeNumber = (min: number, max: number) => z.int({error: expected(`a whole number from ${min} to ${max}`)}).min(min).max(max)
const and = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`)

/**
 * The most entries of a list HAProxy gets on one line: it reads at most 64 words a line (the
 * rest is cut off and `haproxy -c` fails), and the longest such line (a rule's roles) has 15 words besides the list.
 */
export const HAPROXY_LIST_MAX = 40
/** For `.max(n, tooMany(n, 'aliases'))` on a list: `has 60 aliases; at most 40 (...)`. */
const tooMany = (n: number, what: string, why = 'HAProxy reads at most 64 words on one line') => ({
  error: (iss: {input?: unknown}) => `has ${Array.isArray(iss.input) ? iss.input.length : 'too many'} ${what}; at most ${n} (${why})`,
})

/** A mapping that allows only its own keys; its error message names the required and the optional keys. */
function mappingOf<T extends Record<string, z.ZodType>>(shape: T) {
  const keys = Object.keys(shape)
  const required = keys.filter((k) => !shape[k].safeParse(undefined).success)
  const optional = keys.filter((k) => !required.includes(k))
  return z.strictObject(shape, {
    error: expected(
      required.length > 0 ? `a mapping with ${and(required)}` : 'a mapping',
      optional.length > 0 ? `${required.length > 0 ? 'optional keys' : 'keys'}: ${optional.join(', ')}` : undefined,
    ),
  })
}

const fingerprintError = expected('a host key fingerprint', '"SHA256:" and 43 characters, as `ssh-keygen -lf` prints it')
/** A host key fingerprint as `ssh-keygen -lf` prints it (src/ssh/known-hosts.ts FINGERPRINT_RE). */
const hostKeyFingerprint = z.string({error: fingerprintError}).regex(/^SHA256:[A-Za-z0-9+/]{43}$/, {error: fingerprintError})

export const sshSchema = mappingOf({
  user: z
    .string({error: expected('a user name', 'e.g. "root" or "deploy"')})
    .regex(/^[a-z_][a-z0-9_-]*$/, {error: expected('a user name', 'e.g. "root" or "deploy"')})
    .default('root')
    .describe('Login user on every host: root, or a user with passwordless sudo.'),
  port: port().default(22).describe('SSH port on every host.'),
  privateKey: z
    .string({error: expected('a path to a private key file')})
    .min(1, {error: expected('a path to a private key file')})
    .optional()
    .describe('Path to the operator private key, relative to the inventory (~/ allowed). Omit to use the ssh-agent (SSH_AUTH_SOCK).'),
  connectTimeout: durationUpTo('5m')
    .default('10s')
    .describe('How long to wait for a host to answer. At most 5m: a host silent that long is down, not slow.'),
  parallel: wholeNumber(1, 64).default(10).describe('How many hosts are worked on at once.'),
  hostKeys: z
    .record(
      nodeName,
      z
        .array(hostKeyFingerprint, {error: expected('a list of host key fingerprints', 'e.g. ["SHA256:..."]')})
        .min(1, {error: 'is empty (expected at least one host key fingerprint, e.g. ["SHA256:..."])'}),
      {
        error: (iss) =>
          iss.code === 'invalid_key'
            ? `${show(iss.input)} is not a host name (lowercase letters, digits and "-", starting with a letter)`
            : expected('a mapping of host names to lists of host key fingerprints', 'e.g. {bastion: ["SHA256:..."]}')(iss),
      },
    )
    .optional()
    .describe(
      'Host key fingerprints each host must present, first contact included (host name → list of `SHA256:...`, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints them on the host\'s console). A host without an entry is pinned on first use.',
    ),
}).describe('How to reach the hosts. Keys only: infra never sends a password.')

export const bastionSchema = mappingOf({
  name: nodeName.default('bastion').describe('Host name of the bastion.'),
  publicAddress: ipv4.describe('The address clients and the operator reach: the only public address of the fleet.'),
  privateAddress: ipv4.describe('The bastion address on the private network (RFC 1918); web nodes route through it.'),
  privateNetwork: cidr.optional().describe('The private network in CIDR form. Default: the /24 of privateAddress.'),
  adminAllow: z
    .array(
      z.union([z.ipv4(), z.cidrv4()], {error: expected('an IPv4 address or network', 'e.g. "198.51.100.7" or "198.51.100.0/24"')}),
      {error: expected('a list of IPv4 addresses or networks')},
    )
    .default([])
    .describe('Addresses or networks allowed to SSH to the bastion. Empty: anyone (rate limited).'),
}).describe('The one host with a public address: HAProxy, firewall and NAT, the agents.')

export const webNodeSchema = mappingOf({
  name: nodeName.describe('Host name of the node (unique in the fleet).'),
  address: ipv4.describe('Private address of the node, inside the bastion private network.'),
  standby: z
    .boolean({error: expected('true or false')})
    .default(false)
    .describe('Installed but stopped and in maintenance until the scaler or the healer needs it.'),
})

export const healthCheckSchema = mappingOf({
  path: healthPathSchema
    .default('/healthz')
    .describe(`Path HAProxy requests (GET, expects 200) on every web node: letters, digits and . _ ~ / - only, no empty, "." or ".." segment, at most ${HEALTH_PATH_MAX} characters.`),
  interval: durationUpTo('1h')
    .default('2s')
    .describe('Time between two checks of a node. At most 1h: a dead node stays in the pool for fall times this long.'),
  fall: wholeNumber(1, 100).default(3).describe('Failed checks in a row before a node is taken out.'),
  rise: wholeNumber(1, 100).default(2).describe('Passed checks in a row before a node is put back.'),
})
  .prefault({})
  .describe('How HAProxy checks the web nodes.')

export const webSchema = mappingOf({
  port: port().default(80).describe('Port the web service (nginx) listens on, on the private address.'),
  appPort: port()
    .optional()
    .describe('When set, nginx proxies to an application listening on this local port of each node.'),
  healthCheck: healthCheckSchema,
  timeout: durationUpTo('1h')
    .default('30s')
    .describe(
      'How long HAProxy waits for a node to answer a request (timeout server). A GET, HEAD or OPTIONS still unanswered then is retried on another node; shorter means less wait when a node hangs or vanishes, but a slower answer is cut off. At most 1h (HAProxy\'s idle limit for WebSockets, timeout tunnel): a client waits up to 4 times this long when nodes hang.',
    ),
  nodes: z
    .array(webNodeSchema, {error: expected('a list of web nodes', 'each with name and address')})
    .min(1, {error: 'needs at least one web node'})
    .describe('The web nodes. Nodes with standby: true are spares for the scaler and the healer.'),
}).describe('The private web nodes behind the bastion.')

export const scalingSchema = mappingOf({
  cpuPercent: z
    .number({error: expected('a percentage from 1 to 100')})
    .min(1)
    .max(100)
    .default(80)
    .describe('Average CPU use of the active nodes above which one standby node is started.'),
  sustainFor: durationUpTo('24h')
    .default('5m')
    .describe('How long the CPU use must stay above cpuPercent before scaling up. At most 24h: the scaler keeps that long a history of samples.'),
  recheckEvery: durationUpTo('24h')
    .default('15m')
    .describe('After a scale-up, how long to wait before deciding again. At most 24h: a longer pause is `infra scale pause`.'),
  min: wholeNumber(1, 1000).default(1).describe('Fewest active web nodes.'),
  max: wholeNumber(1, 1000)
    .optional()
    .describe('Most active web nodes. Default: 3, but at least min and at most the number of web nodes.'),
  margin: z
    .number({error: expected('a number of percentage points from 0 to 99')})
    .min(0)
    .max(99)
    .default(20)
    .describe('Scale-in only when the load spread over one node fewer stays below cpuPercent minus this many points.'),
})
  .prefault({})
  .describe('Scale-up: start standby nodes when the active ones stay busy.')

export const healingSchema = mappingOf({
  every: durationUpTo('1h')
    .default('1m')
    .describe('How often the healer checks every node. At most 1h: a failed node waits up to this long for its first restart.'),
  attempts: wholeNumber(1, 20).default(3).describe('Restart attempts on a failed node before a standby node replaces it.'),
})
  .prefault({})
  .describe('Self-healing: restart failed web nodes, then replace them with standby nodes.')

export const tlsSchema = mappingOf({
  mode: z
    .enum(['self-signed', 'files'], {error: expected('"self-signed" or "files"')})
    .default('self-signed')
    .describe('"self-signed": the bastion makes its own certificate; "files": use cert and key.'),
  days: wholeNumber(1, 825).optional().describe('Lifetime of the self-signed certificate in days (mode self-signed). Default 365.'),
  cert: z
    .string({error: expected('a path to a PEM certificate file')})
    .min(1, {error: expected('a path to a PEM certificate file')})
    .optional()
    .describe('PEM certificate (with its chain), relative to the inventory (mode files).'),
  key: z
    .string({error: expected('a path to a PEM private key file')})
    .min(1, {error: expected('a path to a PEM private key file')})
    .optional()
    .describe('PEM private key of the certificate, relative to the inventory (mode files).'),
})
  .prefault({})
  .describe('The HTTPS certificate served by HAProxy.')

export type TlsConfig = {mode: 'self-signed'; days: number} | {mode: 'files'; cert: string; key: string}

const smtpUserError = expected('an SMTP user name', 'printable ASCII without spaces, ", \\ or :, at most 256 characters, e.g. "alerts@example.com"')

export const alertsSchema = mappingOf({
  email: z.email({error: expected('an e-mail address')}).optional().describe('Where alert e-mails go.'),
  // Refused: a webhook URL is a bearer secret (Slack and most chat hooks); it belongs in the
  // environment (webhookEnv), never in the inventory, a plan diff or the bastion's scripts.
  webhook: z
    .never({
      // The value is not echoed: it is the secret.
      error: (iss) =>
        `${typeof iss.input === 'string' ? 'a URL' : show(iss.input)} is not accepted here any more: a webhook URL is a secret (anyone who has it can post to it), so it must not be in the inventory. Move the URL to an environment variable and set alerts.webhookEnv: NAME (e.g. export INFRA_ALERT_WEBHOOK=... and alerts.webhookEnv: INFRA_ALERT_WEBHOOK)`,
    })
    .optional()
    .describe('Removed (refused): put the URL in an environment variable and name it in alerts.webhookEnv.'),
  webhookEnv: z
    .string({error: expected('an environment variable name', 'e.g. "INFRA_ALERT_WEBHOOK"')})
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {error: expected('an environment variable name', 'e.g. "INFRA_ALERT_WEBHOOK"')})
    .optional()
    .describe(
      'Environment variable holding the http(s) URL that receives a JSON POST for every alert, read at provision time (stored on the bastion, mode 600; never shown or logged).',
    ),
  smtp: mappingOf({
    url: z
      .string({error: expected('an smtp:// or smtps:// URL', 'e.g. "smtp://mail.example.com:587"')})
      .regex(/^smtps?:\/\/[^\s/@]+(:\d{1,5})?\/?$/, {error: expected('an smtp:// or smtps:// URL', 'e.g. "smtp://mail.example.com:587"')})
      .describe('SMTP server the bastion sends alert e-mails through (curl).'),
    from: z.email({error: expected('an e-mail address')}).optional().describe('Sender address. Default: infra@<domain>.'),
    // It goes into curl's config (`user = "USER:PASSWORD"`): no quote, backslash, colon (the
    // user/password separator), space or control character; e-mail addresses fit.
    user: z
      .string({error: smtpUserError})
      .regex(/^[!#-9;-[\]-~]{1,256}$/, {error: smtpUserError})
      .optional()
      .describe('SMTP user name, when the server needs a login: printable ASCII without spaces, ", \\ or : (e.g. an e-mail address).'),
    passwordEnv: z
      .string({error: expected('an environment variable name', 'e.g. "INFRA_SMTP_PASSWORD"')})
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {error: expected('an environment variable name', 'e.g. "INFRA_SMTP_PASSWORD"')})
      .optional()
      .describe('Environment variable holding the SMTP password at provision time (stored on the bastion, mode 600; never logged).'),
  })
    .optional()
    .describe('The SMTP server for alerts.email.'),
})
  .prefault({})
  .describe('Where alerts go (scaling, healing, a node down). Both are optional.')

const addressOrNetwork = z.union([z.ipv4(), z.cidrv4()], {error: expected('an IPv4 address or network', 'e.g. "198.51.100.7" or "198.51.100.0/24"')})

export const limitsSchema = mappingOf({
  enabled: z.boolean({error: expected('true or false')}).default(true).describe('Per-address flood limits at the bastion (on by default).'),
  requests: wholeNumber(1, 1_000_000).default(100).describe('Requests one address may send per window; above it HAProxy answers 429.'),
  window: durationUpTo('1h')
    .default('10s')
    .describe('The window over which requests are counted. At most 1h: a flood limit counts seconds to minutes; a longer window keeps every address in memory as long.'),
  banAfter: wholeNumber(0, 1_000_000)
    .default(100)
    .describe('Requests refused with 429 within one window before the address is banned. 0: never ban.'),
  banFor: durationUpTo('168h')
    .default('10m')
    .describe('How long an automatic ban lasts. At most 168h (a week; HAProxy\'s stick tables expire entries after at most 24.8 days): ban longer by hand with `infra ban`.'),
  banAction: z
    .enum(['deny', 'tarpit'], {error: expected('"deny" or "tarpit"')})
    .default('deny')
    .describe('What a banned address gets: "deny" (403 at once) or "tarpit" (403 after holding the request).'),
  connections: wholeNumber(1, 1_000_000).default(100).describe('Concurrent requests one address may have open; above it HAProxy answers 429.'),
  allow: z
    .array(addressOrNetwork, {error: expected('a list of IPv4 addresses or networks')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'entries', 'HAProxy reads at most 64 words on one line; list networks instead of their addresses'))
    .default([])
    .describe(`Addresses or networks never limited nor banned (monitoring, office). At most ${HAPROXY_LIST_MAX} (one HAProxy line).`),
})
  .prefault({})
  .describe('Flood limits and bans at the bastion (HAProxy stick tables).')

const originError = expected('an origin', 'scheme, host and optional port, e.g. "https://app.example.com" or "https://*.example.com"')
const corsOrigin = z.string({error: originError}).regex(/^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/, {error: originError})
const headerName = z
  .string({error: expected('an HTTP header name', 'e.g. "Content-Type"')})
  .regex(/^[A-Za-z0-9-]+$/, {error: expected('an HTTP header name', 'e.g. "Content-Type"')})

export const corsSchema = mappingOf({
  origins: z
    .array(
      corsOrigin,
      {error: expected('a list of origins')},
    )
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'origins', 'HAProxy reads at most 64 words on one line; use a pattern such as "https://*.example.com"'))
    .default([])
    .describe(`Origins allowed to call the site from a browser (exact, or "https://*.example.com"). Empty: CORS off. https://<domain> is always allowed. At most ${HAPROXY_LIST_MAX} (one HAProxy line).`),
  websocketOrigins: z
    .array(corsOrigin, {error: expected('a list of origins')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'origins', 'HAProxy reads at most 64 words on one line; use a pattern such as "https://*.example.com"'))
    .default([])
    .describe(
      `Origins allowed to open a WebSocket (same forms as origins). Set: an "Upgrade: websocket" request without Origin or from another origin gets 403, even with CORS off. https://<domain> is always allowed. At most ${HAPROXY_LIST_MAX} (one HAProxy line).`,
    ),
  methods: z
    .array(
      z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], {error: expected('an HTTP method', 'GET, HEAD, POST, PUT, PATCH or DELETE')}),
      {error: expected('a list of HTTP methods')},
    )
    .default(['GET', 'HEAD', 'POST'])
    .describe('Methods a preflight allows.'),
  headers: z
    .array(headerName, {error: expected('a list of HTTP header names')})
    .default(['Content-Type', 'Authorization'])
    .describe('Request headers a preflight allows.'),
  credentials: z.boolean({error: expected('true or false')}).default(false).describe('Allow cookies and Authorization (Access-Control-Allow-Credentials: true).'),
  maxAge: durationUpTo('24h')
    .default('10m')
    .describe('How long a browser may cache a preflight answer. At most 24h: browsers cap it anyway (Firefox 24h, Chromium 2h).'),
})
  .prefault({})
  .describe('Cross-origin requests (CORS), answered and enforced at the bastion.')

export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'] as const
const httpMethod = z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], {
  error: expected('an HTTP method', 'GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS'),
})
const pathPrefixError = expected('a URL path prefix starting with "/"', 'letters, digits and . _ ~ / - only, e.g. "/api/"')
const claimValue = z
  .string({error: expected('a text value', 'letters, digits and . _ : / @ - only')})
  .regex(/^[\w.:\/@-]+$/, {error: expected('a text value', 'letters, digits and . _ : / @ - only')})

export const authRuleSchema = mappingOf({
  path: z.string({error: pathPrefixError}).regex(/^\/[\w.~\/-]*$/, {error: pathPrefixError}).describe('Path prefix the rule covers.'),
  methods: z.array(httpMethod, {error: expected('a list of HTTP methods')}).optional().describe('Only these methods (default: all).'),
  roles: z
    .array(claimValue, {error: expected('a list of role names')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'roles'))
    .default([])
    .describe(`Roles allowed (the role claim must be one of them). Empty: any valid token. At most ${HAPROXY_LIST_MAX} (one HAProxy line).`),
})

export const authSchema = mappingOf({
  alg: z.enum(JWT_ALGORITHMS, {error: expected('a JWT algorithm', JWT_ALGORITHMS.join(', '))}).describe('The one signature algorithm accepted; any other header alg (e.g. "none") is refused.'),
  key: z
    .string({error: expected('a path to a PEM public key file')})
    .min(1, {error: expected('a path to a PEM public key file')})
    .optional()
    .describe('PEM public key (RS*/ES*), relative to the inventory; installed on the bastion.'),
  secretEnv: z
    .string({error: expected('an environment variable name', 'e.g. "JWT_SECRET"')})
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {error: expected('an environment variable name', 'e.g. "JWT_SECRET"')})
    .optional()
    .describe('Environment variable holding the HMAC secret (HS*), read by provision; installed on the bastion as a secret file.'),
  issuer: claimValue.optional().describe('Required "iss" claim.'),
  audience: claimValue.optional().describe('Required "aud" claim (a single string).'),
  roleClaim: z
    .string({error: expected('a claim name')})
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {error: expected('a claim name', 'letters, digits and _')})
    .default('role')
    .describe('Claim holding the role (a single string).'),
  rules: z
    .array(authRuleSchema, {error: expected('a list of rules', 'each with path and optional methods and roles')})
    .min(1, {error: 'needs at least one rule'})
    .describe('Protected paths, first match wins.'),
}).describe('JWT authentication and roles at the bastion, for some path prefixes. Absent: off.')

/** The inventory object before cross-field checks (what the JSON Schema describes). */
export const inventoryObject = mappingOf({
  domain: hostname.describe('The apex domain served by the fleet.'),
  aliases: z
    .array(hostname, {error: expected('a list of domain names')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'aliases'))
    .default([])
    .describe(`Other names (e.g. www.example.com), redirected to the domain. At most ${HAPROXY_LIST_MAX} (one HAProxy line).`),
  ssh: sshSchema.prefault({}),
  bastion: bastionSchema,
  web: webSchema,
  scaling: scalingSchema,
  healing: healingSchema,
  tls: tlsSchema,
  alerts: alertsSchema,
  limits: limitsSchema,
  cors: corsSchema,
  auth: authSchema.optional(),
}).describe('infra inventory: one file describes the fleet. Reference: docs/INVENTORY.md')

type ObjectOutput = z.output<typeof inventoryObject>

/**
 * The inventory as the rest of the tool sees it: every default filled in, including those that
 * depend on other keys (bastion.privateNetwork, scaling.max), and tls as a tagged union.
 */
export type Inventory = Omit<ObjectOutput, 'bastion' | 'scaling' | 'tls'> & {
  bastion: ObjectOutput['bastion'] & {privateNetwork: string}
  scaling: ObjectOutput['scaling'] & {max: number}
  tls: TlsConfig
}

function finish(inv: ObjectOutput): Inventory {
  const n = inv.web.nodes.length
  const {tls} = inv
  return {
    ...inv,
    bastion: {
      ...inv.bastion,
      privateNetwork: (inv.bastion.privateNetwork ? parseCidr(inv.bastion.privateNetwork) : cidrOf(inv.bastion.privateAddress, 24))!.text,
    },
    scaling: {...inv.scaling, max: inv.scaling.max ?? Math.min(n, Math.max(3, inv.scaling.min))},
    tls: tls.mode === 'files' ? {mode: 'files', cert: tls.cert ?? '', key: tls.key ?? ''} : {mode: 'self-signed', days: tls.days ?? 365},
  }
}

/** Shape, defaults, then the transform; no cross-field checks (validate.ts runs those on the raw document). */
export const inventoryShapeSchema = inventoryObject.transform(finish)

/** The whole inventory: shape, defaults and cross-field checks (not the file checks of the loader). */
export const inventorySchema = inventoryObject
  .superRefine((inv, ctx) => {
    for (const issue of crossCheck(inv)) ctx.addIssue({code: 'custom', path: issue.path, message: issue.message})
  })
  .transform(finish)

export type InventoryInput = z.input<typeof inventorySchema>
export type WebNode = z.output<typeof webNodeSchema>

/** A host as the rest of the tool sees it. */
export interface HostSpec {
  name: string
  role: 'bastion' | 'web'
  /** Address used to reach sshd: the public one for the bastion, the private one (through the bastion) for web nodes. */
  address: string
  privateAddress: string
  standby: boolean
}

export function hostsOf(inv: Inventory): HostSpec[] {
  return [
    {name: inv.bastion.name, role: 'bastion', address: inv.bastion.publicAddress, privateAddress: inv.bastion.privateAddress, standby: false},
    ...inv.web.nodes.map((n) => ({name: n.name, role: 'web' as const, address: n.address, privateAddress: n.address, standby: n.standby})),
  ]
}

export function durationMs(d: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(d)
  if (!m) throw new Error(`not a duration: ${d}`)
  return Number(m[1]) * {s: 1000, m: 60_000, h: 3_600_000}[m[2] as 's' | 'm' | 'h']
}

// ---------------------------------------------------------------------------------------------
// The JSON Schema file (generated by scripts/gen-schema.js, see json-schema.ts) and the line that points editors to it.

/**
 * Absolute path of schema/infra.schema.json in this package. This module lives in
 * src/inventory (development) or dist/inventory (installed); both are two levels below the root.
 */
export function schemaFilePath(): string {
  return fileURLToPath(new URL('../../schema/infra.schema.json', import.meta.url))
}

/**
 * The first line of every inventory infra writes, so that editors with the YAML language server
 * (VS Code's YAML extension, Neovim, JetBrains) complete and check keys while typing:
 *
 *     # yaml-language-server: $schema=../node_modules/infra-fleet/schema/infra.schema.json
 *
 * The path is relative to the inventory folder when the two share a folder below the root of the
 * file system (it survives moving the project as a whole), else absolute.
 */
export function schemaComment(inventoryDir: string, schemaPath = schemaFilePath()): string {
  const from = path.resolve(inventoryDir)
  const to = path.resolve(schemaPath)
  const rel = path.relative(from, to)
  const shared = commonPrefix(from, to)
  const useRelative = rel !== '' && !path.isAbsolute(rel) && shared !== path.parse(from).root
  const target = useRelative ? (rel.startsWith('..') ? rel : `./${rel}`).split(path.sep).join('/') : to
  return `# yaml-language-server: $schema=${target}`
}

function commonPrefix(a: string, b: string): string {
  const as = a.split(path.sep)
  const bs = b.split(path.sep)
  let i = 0
  while (i < as.length && i < bs.length && as[i] === bs[i]) i++
  const joined = as.slice(0, i).join(path.sep)
  return joined === '' ? path.parse(a).root : joined
}
