/** The sections HAProxy enforces at the bastion: tls, limits, cors, auth. */
import {z} from 'zod'

import {durationUpTo, expected, HAPROXY_LIST_MAX, mappingOf, tooMany, wholeNumber} from './base.js'
import {envVarName, pathTo} from './fields.js'

export const tlsSchema = mappingOf({
  mode: z
    .enum(['self-signed', 'files'], {error: expected('"self-signed" or "files"')})
    .default('self-signed')
    .describe('"self-signed": the bastion makes its own certificate; "files": use cert and key.'),
  days: wholeNumber(1, 825).optional().describe('Lifetime of the self-signed certificate in days (mode self-signed). Default 365.'),
  cert: pathTo('a PEM certificate file')
    .optional()
    .describe('PEM certificate (with its chain), relative to the inventory (mode files).'),
  key: pathTo('a PEM private key file')
    .optional()
    .describe('PEM private key of the certificate, relative to the inventory (mode files).'),
})
  .prefault({})
  .describe('The HTTPS certificate served by HAProxy.')

export type TlsConfig = {mode: 'self-signed'; days: number} | {mode: 'files'; cert: string; key: string}

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
  .regex(/^[\w.:/@-]+$/, {error: expected('a text value', 'letters, digits and . _ : / @ - only')})

export const authRuleSchema = mappingOf({
  path: z.string({error: pathPrefixError}).regex(/^\/[\w.~/-]*$/, {error: pathPrefixError}).describe('Path prefix the rule covers.'),
  methods: z.array(httpMethod, {error: expected('a list of HTTP methods')}).optional().describe('Only these methods (default: all).'),
  roles: z
    .array(claimValue, {error: expected('a list of role names')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'roles'))
    .default([])
    .describe(`Roles allowed (the role claim must be one of them). Empty: any valid token. At most ${HAPROXY_LIST_MAX} (one HAProxy line).`),
})

export const authSchema = mappingOf({
  alg: z.enum(JWT_ALGORITHMS, {error: expected('a JWT algorithm', JWT_ALGORITHMS.join(', '))}).describe('The one signature algorithm accepted; any other header alg (e.g. "none") is refused.'),
  key: pathTo('a PEM public key file')
    .optional()
    .describe('PEM public key (RS*/ES*), relative to the inventory; installed on the bastion.'),
  secretEnv: envVarName('JWT_SECRET')
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
