/**
 * Everything provision (and plan, and doctor) computes on this machine before touching a host:
 * error-page and template overrides, the sites' certificates and error pages, the alert secrets,
 * the sites' basic-auth users (as digests), and the desired state of every host. It reads files
 * and writes none, except the sites' self-signed certificates when provision's own TLS step ran
 * (the main certificate is written there, src/tasks/provision/index.ts). Any problem here is a ConfigError (exit 2) raised before
 * a single SSH connection is opened, with its own hint.
 */
import type {FleetPki} from '../../tls/fleet.js'
import {readdir, readFile} from 'node:fs/promises'
import path from 'node:path'

import {sha256} from '../../host/hash.js'
import {hostsOf, type Inventory} from '../../inventory/schema.js'
import {type LoadedInventory, resolveFrom} from '../../inventory/load.js'
import {hasApps} from '../../inventory/units.js'
import {whyUnreadable} from '../../inventory/validate.js'
import {ConfigError} from '../../lib/errors.js'
import type {SiteAuthDigests} from '../../roles/common.js'
import type {TlsMaterial} from '../../tls/ensure.js'
import type {PreparedHost} from './types.js'

/** Error pages a user overrides: `errors/<code>.http` (a whole raw HTTP response) beside the inventory. */
export async function readErrorPageOverrides(loaded: LoadedInventory): Promise<Record<number, string>> {
  const dir = path.join(loaded.dir, 'errors')
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return {}
  }
  const out: Record<number, string> = {}
  for (const name of names) {
    const m = /^(\d{3})\.http$/.exec(name)
    if (!m) continue
    out[Number(m[1])] = await readFile(path.join(dir, name), 'utf8')
  }
  return out
}

/**
 * Each site's error pages (`sites.<name>.errorPages`: status code → a file relative to the
 * inventory's folder), by site name and code. A file that cannot be read is a ConfigError naming
 * the key and the path.
 */
export async function readSiteErrorPages(loaded: LoadedInventory): Promise<Record<string, Record<number, string>>> {
  const out: Record<string, Record<number, string>> = {}
  for (const [name, site] of Object.entries(loaded.inventory.sites ?? {})) {
    const pages: Record<number, string> = {}
    for (const [code, file] of Object.entries(site.errorPages)) {
      const abs = resolveFrom(loaded, file)
      try {
        pages[Number(code)] = await readFile(abs, 'utf8')
      } catch (error) {
        const u = whyUnreadable(error, abs)
        throw new ConfigError(`sites.${name}.errorPages.${code}: cannot read ${abs}: ${u.reason}`, {
          hint: `${u.fix.charAt(0).toUpperCase()}${u.fix.slice(1)}; the file holds the page's HTML (or a whole raw HTTP response).`,
        })
      }
    }
    out[name] = pages
  }
  return out
}

/**
 * The alert secrets the inventory names by environment variable (alerts.smtp.passwordEnv,
 * alerts.webhookEnv), read when you run plan, provision or doctor. A named variable that is unset
 * or empty, or a value the agents could not pass on intact, is a ConfigError naming the key and
 * the variable, never the value.
 */
export function readAlertSecrets(inv: Inventory, env: NodeJS.ProcessEnv = process.env): {smtpPassword?: string; alertWebhook?: string} {
  const out: {smtpPassword?: string; alertWebhook?: string} = {}
  const read = (key: string, name: string, what: string): string => {
    const value = env[name]
    if (value === undefined || value === '') {
      throw new ConfigError(`${key}: the environment variable ${name} is not set (it holds ${what})`, {
        hint: `Set it before running infra, e.g. export ${name}=... (never put the secret in infra.yaml).`,
      })
    }
    // curl's config (how the agents pass it, on stdin) is one line per option.
    if (/[\r\n\0]/.test(value)) throw new ConfigError(`${key}: the value of ${name} has a line break`, {hint: `Put ${what} on one line.`})
    return value
  }
  const passwordEnv = inv.alerts.smtp?.passwordEnv
  if (passwordEnv) out.smtpPassword = read('alerts.smtp.passwordEnv', passwordEnv, 'the SMTP password')
  const webhookEnv = inv.alerts.webhookEnv
  if (webhookEnv) {
    const url = read('alerts.webhookEnv', webhookEnv, 'the alert webhook URL')
    let protocol = ''
    try {
      protocol = new URL(url).protocol
    } catch {
      // not a URL: refused below
    }
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
    if (!/^https?:$/.test(protocol) || /[\s\x00-\x1f\x7f]/.test(url)) {
      throw new ConfigError(`alerts.webhookEnv: the value of ${webhookEnv} is not an http:// or https:// URL (the value is not shown: it is a secret)`, {
        hint: `Set ${webhookEnv} to the webhook's full URL, e.g. export ${webhookEnv}='https://hooks.example.com/services/...'.`,
      })
    }
    out.alertWebhook = url
  }
  return out
}

/** A basic-auth password shorter than this is refused: haproxy.cfg holds an unsalted SHA-256 of it. */
export const PROTECT_PASSWORD_MIN = 16

/**
 * The SHA-256 (lower-case hex) of the Authorization header a client sends for user:password
 * (`Basic <base64("user:password")>`, RFC 7617 with UTF-8): what haproxy.cfg compares, with
 * `req.fhdr(authorization),sha2(256),hex,lower`.
 */
export function basicAuthDigest(user: string, password: string): string {
  return sha256(`Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`)
}

/**
 * The digests of the `user:password` pairs in a `protect.usersEnv` variable (separated by spaces
 * or line breaks). Errors name the key, the variable and the pair's position, never a value.
 */
export function basicAuthDigests(key: string, name: string, value: string | undefined): string[] {
  const pairs = (value ?? '').trim().split(/\s+/).filter(Boolean)
  const what = 'the user:password pairs of basic auth'
  if (pairs.length === 0) {
    throw new ConfigError(`${key}: the environment variable ${name} is not set (it holds ${what})`, {
      hint: `Set it before running infra, e.g. export ${name}="alice:$(openssl rand -base64 24)" (never put a password in infra.yaml).`,
    })
  }
  return pairs.map((pair, i) => {
    const at = `${key}: pair ${i + 1} of ${pairs.length} in ${name}`
    const colon = pair.indexOf(':')
    if (colon <= 0 || colon === pair.length - 1) {
      throw new ConfigError(`${at} is not user:password (the value is not shown: it is a secret)`, {hint: `Give "user:password" pairs separated by spaces or line breaks; a user name has no ":".`})
    }
    // Printable ASCII only: clients encode other characters differently, so the header would never match.
    if (!/^[!-~]+$/.test(pair)) {
      throw new ConfigError(`${at} has a character other than printable ASCII`, {hint: 'Use letters, digits and ASCII punctuation only, e.g. a password from openssl rand -base64 24.'})
    }
    const password = pair.slice(colon + 1)
    if (password.length < PROTECT_PASSWORD_MIN) {
      throw new ConfigError(`${at}: the password is shorter than ${PROTECT_PASSWORD_MIN} characters`, {
        hint: `haproxy.cfg holds an unsalted SHA-256 of it: use a long random password, e.g. openssl rand -base64 24.`,
      })
    }
    return basicAuthDigest(pair.slice(0, colon), password)
  })
}

/**
 * The basic auth of the sites' protected units (`sites.<name>.environments.<env>.protect` and
 * `sites.<name>.previews.protect`), read from the operator's environment when you run plan,
 * provision or doctor; by site name, digests only (basicAuthDigests). A site without protected
 * units is left out.
 */
export function readSiteAuth(inv: Inventory, env: NodeJS.ProcessEnv = process.env): Record<string, SiteAuthDigests> {
  const out: Record<string, SiteAuthDigests> = {}
  for (const [name, site] of Object.entries(inv.sites ?? {})) {
    const digests: SiteAuthDigests = {environments: {}}
    for (const [envName, e] of Object.entries(site.environments)) {
      if (e.protect) digests.environments[envName] = basicAuthDigests(`sites.${name}.environments.${envName}.protect.usersEnv`, e.protect.usersEnv, env[e.protect.usersEnv])
    }
    const previews = site.previews?.protect
    if (previews) digests.previews = basicAuthDigests(`sites.${name}.previews.protect.usersEnv`, previews.usersEnv, env[previews.usersEnv])
    if (Object.keys(digests.environments).length > 0 || digests.previews) out[name] = digests
  }
  return out
}

export interface PrepareOptions {
  /**
   * The TLS material provision's certificate step produced; read without writing when absent. Given
   * (provision, not a dry run), the sites' self-signed certificates are written too when they must
   * be made; absent (plan, doctor), they are made in memory only, with a warning.
   */
  tls?: TlsMaterial
  /** The fleet PKI provision's certificate step produced (an inventory with app); read without writing when absent. */
  fleet?: FleetPki
}

export interface PreparedFleet {
  hosts: PreparedHost[]
  /** For the user (e.g. a certificate that expires soon, or one provision will write). */
  warnings: string[]
}

/** The desired state of every host of the inventory (see PreparedFleet). */
export async function prepareHosts(loaded: LoadedInventory, opts: PrepareOptions = {}): Promise<PreparedHost[]> {
  return (await prepareFleet(loaded, opts)).hosts
}

/** The fleet PKI for the registry on the bastion's private address (written only when `write`). */
export async function fleetPkiOf(loaded: LoadedInventory, write: boolean): Promise<FleetPki> {
  const {ensureFleetPki} = await import('../../tls/fleet.js')
  return ensureFleetPki(loaded.dir, loaded.inventory.bastion.privateAddress, {write})
}

export async function prepareFleet(loaded: LoadedInventory, opts: PrepareOptions = {}): Promise<PreparedFleet> {
  const [{ensureTls, haproxyPem}, {desiredState}, {agentKeyCommand, parseAgentPublicKey, webNodePins}, {readAuthMaterial}, {readKnownHosts}, {ensureSiteCerts}] = await Promise.all([
    import('../../tls/ensure.js'),
    import('../../roles/render.js'),
    import('../../roles/agents.js'),
    import('../../edge/jwt.js'),
    import('../../ssh/pins.js'),
    import('../../tls/sites.js'),
  ])
  // The alert secrets from the environment, first: a named variable that is unset is a ConfigError.
  const {smtpPassword, alertWebhook} = readAlertSecrets(loaded.inventory)
  // The sites' basic-auth users, likewise (only their digests go on).
  const siteAuth = readSiteAuth(loaded.inventory)
  const tls = opts.tls ?? (await ensureTls(loaded, {write: false}))
  const errorPageOverrides = await readErrorPageOverrides(loaded)
  const templateOverridesDir = path.join(loaded.dir, 'templates')
  const tlsPem = haproxyPem(tls)
  // One self-signed certificate per site (SNI), made or kept like the main one, written when provision's TLS step ran.
  const siteTls = await ensureSiteCerts(loaded, {write: opts.tls !== undefined})
  const siteCerts = Object.fromEntries(Object.entries(siteTls).map(([name, m]) => [name, haproxyPem(m)]))
  const siteErrorPages = await readSiteErrorPages(loaded)
  // JWT key or HMAC secret for inventory `auth` (src/edge/jwt.ts); {} when auth is off.
  const authMaterial = await readAuthMaterial(loaded)
  // The operator's host key pins, for the agents' known_hosts (src/roles/agents.ts).
  const operatorKnownHosts = await readKnownHosts(loaded.knownHostsPath)
  const fleet = hasApps(loaded.inventory) ? (opts.fleet ?? (await fleetPkiOf(loaded, false))) : undefined
  const ctx = {
    inventory: loaded.inventory,
    tlsPem,
    ...(fleet ? {fleet} : {}),
    errorPageOverrides,
    siteCerts,
    siteErrorPages,
    siteAuth,
    templateOverridesDir,
    authMaterial,
    operatorKnownHosts,
    ...(smtpPassword ? {smtpPassword} : {}),
    ...(alertWebhook ? {alertWebhook} : {}),
  }
  try {
    const hosts = hostsOf(loaded.inventory).map((spec): PreparedHost => ({
      spec,
      desired: desiredState(ctx, spec),
      // The agents' key is created on the bastion; web nodes authorize its public key (src/roles/agents.ts).
      ...(spec.role === 'bastion'
        ? {
            bastionFact: agentKeyCommand,
            // A web node not pinned yet (a first contact) is pinned by this run's connection: the
            // agents' known_hosts is then rendered from the pins again, so a re-run has nothing to
            // change. When every node is pinned already, nothing waits for that.
            ...(webNodePins(ctx).some((p) => p.keys.length === 0)
              ? {
                  withPins: (knownHosts: string) => {
                    const pinned = {...ctx, operatorKnownHosts: knownHosts}
                    return desiredState(pinned, spec)
                  },
                }
              : {}),
          }
        : {withBastionFact: (out: string) => desiredState({...ctx, agentPublicKey: parseAgentPublicKey(out)}, spec)}),
    }))
    return {hosts, warnings: [...tls.warnings, ...Object.values(siteTls).flatMap((m) => m.warnings), ...(fleet?.warnings ?? [])]}
  } catch (error) {
    // A ConfigError of a renderer (a bad override, a value it refuses) keeps its own hint.
    if (error instanceof ConfigError) throw error
    throw new ConfigError(`rendering the configuration failed: ${(error as Error).message}`, {
      hint: `Check your overrides in ${path.join(loaded.dir, 'templates')} and ${path.join(loaded.dir, 'errors')}.`,
    })
  }
}
