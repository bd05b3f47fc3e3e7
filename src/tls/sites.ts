/**
 * One certificate per site (`sites`; docs/SITES.md), chosen by HAProxy from the client's SNI:
 * self-signed for now, kept in `tls/<site domain>.crt|.key` beside the inventory and made or kept
 * exactly like the main self-signed certificate (src/tls/ensure.ts), written only when asked.
 */
import {fileLabel, type LoadedInventory} from '../inventory/load.js'
import type {Inventory} from '../inventory/schema.js'
import {declaredUnits} from '../inventory/units.js'
import {ensureSelfSigned, type TlsMaterial} from './ensure.js'

/** Every name a site's certificate covers (and its SNI filters): apex, aliases, each environment's host, `*.<previews domain>`. */
export function siteCertNames(inv: Inventory, name: string): string[] {
  const site = inv.sites[name]
  const envHosts = declaredUnits(inv)
    .filter((u) => u.site === name)
    .flatMap((u) => u.hosts)
  const all = [site.domain, ...site.aliases, ...envHosts, ...(site.previews ? [`*.${site.previews.domain}`] : [])]
  return [...new Set(all.map((n) => n.toLowerCase()))]
}

/**
 * Each site's certificate, by site name: reused while it covers the site's names and stays valid
 * for more than 30 days, otherwise made anew (written with `write`, else in memory only with a
 * warning that provision writes it, as plan and doctor do for the main certificate).
 */
export async function ensureSiteCerts(loaded: LoadedInventory, opts: {write?: boolean} = {}): Promise<Record<string, TlsMaterial>> {
  const inv = loaded.inventory
  const days = inv.tls.mode === 'self-signed' ? inv.tls.days : undefined
  const out: Record<string, TlsMaterial> = {}
  // One after another: two sites never write the tls/ folder at once.
  for (const name of Object.keys(inv.sites ?? {})) {
    const [domain, ...aliases] = siteCertNames(inv, name)
    out[name] = await ensureSelfSigned({
      dir: loaded.dir,
      domain,
      aliases,
      ...(days === undefined ? {} : {days}),
      label: `${fileLabel(loaded.path)}: sites.${name} (self-signed certificate)`,
      write: opts.write,
    })
  }
  return out
}
