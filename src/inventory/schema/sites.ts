/**
 * Several sites on one fleet (`sites`; docs/SITES.md): each site has its own domain, aliases,
 * application, error pages and nodes, optional environments (preprod, dev, debug…) with their own
 * subdomain, values, nodes and release history, and optional per-branch previews.
 */
import {z} from 'zod'

import {durationUpTo, expected, HAPROXY_LIST_MAX, mappingOf, show, tooMany, wholeNumber} from './base.js'
import {appSchema, envKey, envValue} from './app.js'
import {envVarName, hostname, nodeName} from './fields.js'

const siteNameError = expected('a site name', 'lowercase letters, digits and single "-", starting with a letter, at most 24 characters, e.g. "shop"')
/** A site's name: part of file names, Docker names and HAProxy backend names on every host. */
export const siteName = z
  .string({error: siteNameError})
  .regex(/^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$/, {error: siteNameError, abort: true})
  .refine((n) => !n.includes('--'), {error: (iss) => `${show(iss.input)} has "--", which infra keeps to join a site and an environment`})
  .refine((n) => n !== 'app' && n !== 'web', {error: (iss) => `${show(iss.input)} is reserved (the single-app inventory's "app" and HAProxy's "web" backend); choose another name`})

const envNameError = expected('an environment name', 'lowercase letters and digits, starting with a letter, at most 16 characters, e.g. "preprod"')
/** An environment's name (`prod` is the site itself). */
export const envName = z.string({error: envNameError}).regex(/^[a-z][a-z0-9]{0,15}$/, {error: envNameError})

/** The production environment: the site's own domain, app and release history. */
export const PROD_ENV = 'prod'

/** A record's error: a refused key keeps its own reason ("is reserved"), anything else says what the record is. */
function recordError(what: string) {
  const base = expected(what)
  return (iss: {code?: string; input?: unknown; issues?: {message: string}[]}) => (iss.code === 'invalid_key' && iss.issues?.[0] ? `${show(iss.input)} ${iss.issues[0].message.replace(/^"[^"]*" /, '')}` : base(iss))
}

const nodeList = z
  .array(nodeName, {error: expected('a list of web node names')})
  .min(1, {error: 'is empty (name at least one web node, or remove the key to use every web node)'})

/**
 * Basic auth in front of a non-production unit (docs/SITES.md#protection): the environment
 * variable holding its `user:password` pairs, read when you run plan, provision or doctor. Only a
 * SHA-256 of each pair's Authorization header goes into haproxy.cfg.
 */
export const protectSchema = mappingOf({
  usersEnv: envVarName('SHOP_PREPROD_USERS').describe('Environment variable holding the "user:password" pairs allowed in, separated by spaces or line breaks (read when you run plan, provision or doctor).'),
}).describe('Basic auth in front of these host names: only the users of usersEnv get in (HAProxy answers 401 to anyone else).')

export const environmentSchema = mappingOf({
  domain: hostname.optional().describe('The environment\'s host name. Default: "<environment>.<site domain>".'),
  env: z
    .record(envKey, envValue, {error: expected('a mapping of NAME: value')})
    .default({})
    .describe('Values that replace or add to the site\'s app.env in this environment.'),
  secrets: z
    .array(envKey, {error: expected('a list of environment variable names')})
    .optional()
    .describe('Secret names of this environment (default: the site\'s app.secrets).'),
  secretsFile: z.string().min(1).optional().describe('The NAME=value file of this environment\'s secrets (default: "secrets.<site>.<environment>.env" beside the inventory).'),
  nodes: nodeList.optional().describe('The web nodes this environment runs on (default: the site\'s).'),
  protect: protectSchema.optional(),
}).describe('An environment of the site: its own subdomain, values, nodes and release history.')

export const previewsSchema = mappingOf({
  domain: hostname.describe('Previews answer at "<branch-slug>.<domain>" (one wildcard certificate), e.g. "preview.example.com".'),
  max: wholeNumber(1, 50).default(5).describe('At most this many previews of the site at once.'),
  ttl: durationUpTo('596h').default('168h').describe('A preview without a deploy for this long is removed by a timer on the bastion.'),
  onLimit: z
    .enum(['refuse', 'evict'], {error: (iss) => `${show(iss.input)} is not "refuse" or "evict"`})
    .default('refuse')
    .describe('At the limit, a new preview is refused, or the least recently deployed one is removed first (evict).'),
  protect: protectSchema.optional(),
}).describe('Preview environments per branch: `infra preview deploy SITE --branch NAME`.')

export const siteSchema = mappingOf({
  domain: hostname.describe('The site\'s apex domain (HTTPS, HSTS; http:// and the aliases redirect here).'),
  aliases: z
    .array(hostname, {error: expected('a list of domain names')})
    .max(HAPROXY_LIST_MAX, tooMany(HAPROXY_LIST_MAX, 'aliases'))
    .default([])
    .describe('Other names of the site (e.g. www.<domain>), redirected to its domain.'),
  app: appSchema,
  nodes: nodeList.optional().describe('The web nodes the site runs on (default: every web node).'),
  errorPages: z
    .record(z.string().regex(/^[1-5]\d\d$/, {error: expected('an HTTP status code, e.g. "404"')}), z.string().min(1), {error: expected('a mapping of status code: file')})
    .default({})
    .describe('The site\'s own error pages: status code → an HTML file (or a raw HTTP response) beside the inventory, e.g. {"404": "errors/shop-404.html"}.'),
  environments: z
    .record(envName, environmentSchema, {error: recordError('a mapping of environment name: settings')})
    .default({})
    .describe('Environments besides prod (the site itself), e.g. preprod, dev, debug.'),
  previews: previewsSchema.optional(),
}).describe('A site: a domain with its own application, deployed with `infra deploy SITE`.')

export const sitesSchema = z
  .record(siteName, siteSchema, {error: recordError('a mapping of site name: site')})
  .default({})
  .describe('Several sites on one fleet (docs/SITES.md); `infra site add` writes here.')

export type SiteSpec = z.output<typeof siteSchema>
export type EnvironmentSpec = z.output<typeof environmentSchema>
export type ProtectSpec = z.output<typeof protectSchema>
