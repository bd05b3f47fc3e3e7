/**
 * Inventories with `sites` for the sites tests (sites-render, sites-edge): the sites' PEMs made
 * once per name set (real self-signed certificates, src/tls/self-signed.ts), their error pages and
 * the basic-auth users of their protected units.
 */
import type {Inventory, InventoryInput} from '../../src/inventory/schema.js'
import type {RenderContext} from '../../src/roles/render.js'
import {readSiteAuth} from '../../src/tasks/provision/prepare.js'
import {createSelfSignedCert} from '../../src/tls/self-signed.js'
import {siteCertNames} from '../../src/tls/sites.js'
import {context, DOMAIN, testFleetPki} from './render-helpers.js'

type Sites = NonNullable<InventoryInput['sites']>

/** web1 and web2 active, web3 standby. */
export function sitesInventory(sites: Sites, addresses = {pub: '203.0.113.10', priv: '10.10.0.1', net: '10.10.0'}): InventoryInput {
  return {
    domain: DOMAIN,
    aliases: [`www.${DOMAIN}`],
    bastion: {publicAddress: addresses.pub, privateAddress: addresses.priv},
    web: {
      healthCheck: {interval: '1s'},
      nodes: [
        {name: 'web1', address: `${addresses.net}.11`},
        {name: 'web2', address: `${addresses.net}.12`},
        {name: 'web3', address: `${addresses.net}.13`, standby: true},
      ],
    },
    sites,
  }
}

/** The example of docs/SITES.md: aliases, two environments (one with a domain of its own), previews, a custom 404 and 503. */
export const SHOP: Sites[string] = {
  domain: 'shop.example.com',
  aliases: ['www.shop.example.com'],
  app: {image: 'shop', port: 8080},
  errorPages: {'404': 'errors/shop-404.html', '503': 'errors/shop-503.http'},
  environments: {preprod: {}, debug: {domain: 'debug-shop.example.com'}},
  previews: {domain: 'preview.shop.example.com'},
}

/** On web1 only, its own health path. */
export const BLOG: Sites[string] = {domain: 'blog.example.org', nodes: ['web1'], app: {image: 'blog', healthCheck: {path: '/up'}}}

export const ONE_SITE = sitesInventory({shop: SHOP})
export const TWO_SITES = sitesInventory({shop: SHOP, blog: BLOG})
export const FIVE_SITES = sitesInventory({
  shop: SHOP,
  blog: BLOG,
  // On the standby node and web2: web3's servers start disabled.
  docs: {domain: 'docs.example.net', aliases: ['www.docs.example.net', 'documentation.example.net'], nodes: ['web2', 'web3'], app: {image: 'docs'}, errorPages: {'500': 'errors/docs-500.html'}},
  api: {
    domain: 'api.example.io',
    app: {image: 'api'},
    // staging behind basic auth; dev only kept out of search engines.
    environments: {staging: {nodes: ['web1'], protect: {usersEnv: 'API_STAGING_USERS'}}, dev: {domain: 'dev-api.example.io', nodes: ['web2']}},
    errorPages: {'404': 'errors/api-404.html', '502': 'errors/api-502.html'},
  },
  labs: {domain: 'labs.example.com', app: {image: 'labs'}, previews: {domain: 'pr.labs.example.com', protect: {usersEnv: 'LABS_PREVIEW_USERS'}}},
})

/** The error page files every fixture names, as read beside the inventory. */
export const PAGE_FILES: Record<string, string> = {
  'errors/shop-404.html': '<!doctype html><title>shop</title><h1>Shop: no such page</h1>\n',
  'errors/shop-503.http': 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nCache-Control: no-cache\r\n\r\nThe shop is closed for a moment.\n',
  'errors/docs-500.html': '<h1>Docs broke</h1>\n',
  'errors/api-404.html': '<h1>API: not found</h1>\n',
  'errors/api-502.html': '<h1>API: bad gateway</h1>\n',
}

/**
 * The basic-auth users of the protected fixtures (`protect.usersEnv`), as the operator's
 * environment holds them: user:password pairs separated by spaces or line breaks.
 */
export const USERS_ENV: Record<string, string> = {
  SHOP_PREPROD_USERS: 'alice:Vg4pL9wq2ZrT8mXc3nBd\n  bob:kE7yH2sQ9fJ4uW6a/+x=',
  SHOP_PREVIEW_USERS: 'ci:Qm3nR8tZ5wX1yV7bC2dF',
  API_STAGING_USERS: 'ops:Hh5Jj8Kk2Ll9Mm4Nn7Pp',
  LABS_PREVIEW_USERS: 'ops:Hh5Jj8Kk2Ll9Mm4Nn7Pp dev:Rr3Ss6Tt9Uu2Vv5Ww8Xx',
}

const pems = new Map<string, string>()

/** A real self-signed PEM (certificate + key) covering `names` (the first as the subject). */
export function pemFor(names: string[]): string {
  const key = names.join(' ')
  let pem = pems.get(key)
  if (!pem) {
    const c = createSelfSignedCert({domain: names[0], aliases: names.slice(1)})
    pem = c.certPem + c.keyPem
    pems.set(key, pem)
  }
  return pem
}

/** What prepare.ts reads for the sites: their PEMs, error pages and basic-auth users (from USERS_ENV). */
export function siteInputs(inv: Inventory): Pick<RenderContext, 'siteCerts' | 'siteErrorPages' | 'siteAuth'> {
  const names = Object.keys(inv.sites)
  return {
    siteAuth: readSiteAuth(inv, USERS_ENV),
    siteCerts: Object.fromEntries(names.map((n) => [n, pemFor(siteCertNames(inv, n))])),
    siteErrorPages: Object.fromEntries(
      names.map((n) => [n, Object.fromEntries(Object.entries(inv.sites[n].errorPages).map(([code, file]) => [Number(code), PAGE_FILES[file]]))]),
    ),
  }
}

/** The render context of an inventory with sites (the fleet PKI too: sites run containers). */
export function sitesContext(inv: Inventory, extra: Partial<RenderContext> = {}): RenderContext {
  return context(inv, {fleet: testFleetPki(), ...siteInputs(inv), ...extra})
}
