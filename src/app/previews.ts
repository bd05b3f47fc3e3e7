/**
 * Preview environments per branch (docs/SITES.md), the pure half: what the bastion keeps about each
 * preview (`preview.json` in the unit's folder), how they are read in one command, which slug a
 * branch gets, and which preview the limit evicts.
 */
import {factLines} from '../host/facts.js'
import {UNITS_DIR, unitPaths} from '../host/paths.js'
import {unitCommand} from './commands.js'
import {shq} from '../host/quote.js'
import {branchSlug} from './slug.js'

export interface PreviewMeta {
  site: string
  branch: string
  slug: string
  /** The unit's key: SITE--p-SLUG. */
  key: string
  url: string
  /** ISO time of the last deploy (the TTL counts from it). */
  deployedAt: string
  by: string
  release?: string
}

export const previewKey = (site: string, slug: string) => `${site}--p-${slug}`
export const previewMetaPath = (key: string) => `${UNITS_DIR}/${key}/preview.json`

/** Prints `@@preview<TAB>base64(preview.json)` for each preview of `site` (every site's without one). */
export function listPreviewsScript(site?: string): string {
  const glob = `${UNITS_DIR}/${site ? `${shq(site)}--p-*` : '*--p-*'}/preview.json`
  return `for f in ${glob}; do [ -r "$f" ] && printf '@@preview\\t%s\\n' "$(base64 -w0 < "$f")"; done; true`
}

export function parsePreviews(out: string): PreviewMeta[] {
  const metas: PreviewMeta[] = []
  for (const l of factLines(out)) {
    if (l.tag !== '@@preview') continue
    try {
      const m = JSON.parse(Buffer.from(l.fields[0] ?? '', 'base64').toString('utf8')) as PreviewMeta
      if (typeof m.key === 'string' && typeof m.branch === 'string') metas.push(m)
    } catch {
      // a half-written meta file: not a preview yet
    }
  }
  return metas.sort((a, b) => a.key.localeCompare(b.key))
}

export function writeMetaScript(meta: PreviewMeta): string {
  const f = previewMetaPath(meta.key)
  return `set -e; mkdir -p "$(dirname ${f})"; printf %s ${shq(Buffer.from(JSON.stringify(meta, null, 2) + '\n').toString('base64'))} | base64 -d > ${f}.tmp; mv ${f}.tmp ${f}`
}

export interface PreviewPlan {
  slug: string
  key: string
  /** true when the branch already has a preview (an update). */
  existing: boolean
  /** The preview removed first to stay within previews.max (onLimit: evict). */
  evict?: PreviewMeta
  /** Set when the limit refuses a new preview (onLimit: refuse). */
  refused?: string
}

/**
 * The slug of `branch` among a site's previews (the same branch keeps its slug; another branch
 * with the same slug gets a hashed one), and what the limit decides for a new preview.
 */
export function planPreview(site: string, branch: string, existing: readonly PreviewMeta[], limit: {max: number; onLimit: 'refuse' | 'evict'}): PreviewPlan {
  const mine = existing.find((m) => m.branch === branch)
  if (mine) return {slug: mine.slug, key: mine.key, existing: true}
  const taken = new Map(existing.map((m) => [m.slug, m.branch]))
  const slug = branchSlug(branch, taken)
  const key = previewKey(site, slug)
  if (existing.length < limit.max) return {slug, key, existing: false}
  const oldest = [...existing].sort((a, b) => a.deployedAt.localeCompare(b.deployedAt))[0]
  if (limit.onLimit === 'evict') return {slug, key, existing: false, evict: oldest}
  return {slug, key, existing: false, refused: `site ${site} has ${existing.length} previews already (previews.max ${limit.max}): ${existing.map((m) => m.branch).join(', ')}`}
}

/** The previews whose last deploy is older than `ttlMs`. */
export function expiredPreviews(metas: readonly PreviewMeta[], ttlMs: number, now = Date.now()): PreviewMeta[] {
  return metas.filter((m) => now - Date.parse(m.deployedAt) > ttlMs)
}

/** On a node: removes a preview's unit (containers, nginx files, state). */
export function destroyUnitCommand(key: string): string {
  return unitCommand(unitPaths(key), 'destroy')
}
