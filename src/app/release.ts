/**
 * Releases of the app (docs/DEPLOY.md): what a release is, how its ID is chosen, the history the
 * bastion keeps (releases.json, shared by everyone who deploys) and which release a rollback goes
 * to. Pure: values in, values out.
 */
import {createHash} from 'node:crypto'

export type ReleaseState = 'current' | 'previous' | 'old' | 'failed'

export interface Release {
  /** The release ID: the version, made unique (`v2`, `v2-2` for the same version with another image or configuration). */
  id: string
  version: string
  /** The image as the nodes run it: `repo@sha256:…` when the digest is known, else `repo:version`. */
  image: string
  digest: string | null
  /** sha256 of the release's configuration (env file, container options, health path). */
  configDigest: string
  /** ISO time the release was deployed. */
  at: string
  /** `user@machine` of the operator who deployed it. */
  by: string
  /** The git commit of the build directory, when there was one. */
  commit: string | null
  state: ReleaseState
  /** Why it failed (state failed). */
  error?: string
  /** Its image was deleted from the fleet registry (beyond registry.keep). */
  pruned?: boolean
}

export interface ReleaseHistory {
  /** Newest first. */
  releases: Release[]
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/

/** A version as a release ID: characters Docker allows in a container name, at most 80. */
export function sanitizeVersion(v: string): string {
  const s = v
    .trim()
    .replaceAll(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 80)
  return s || 'release'
}

export function isReleaseId(s: string): boolean {
  return ID_RE.test(s)
}

/** The default version: the git commit when known, else a UTC timestamp (`20261202-183000`). */
export function defaultVersion(commit: string | null, now = new Date()): string {
  if (commit) return commit
  return now.toISOString().replaceAll(/[-:]/g, '').replace('T', '-').slice(0, 15)
}

export function configDigest(parts: {env: string; run: string; health: string}): string {
  return createHash('sha256').update(JSON.stringify([parts.env, parts.run, parts.health])).digest('hex')
}

export function parseHistory(text: string): ReleaseHistory {
  if (!text.trim()) return {releases: []}
  const parsed = JSON.parse(text) as Partial<ReleaseHistory>
  return {releases: Array.isArray(parsed.releases) ? parsed.releases : []}
}

/** A shell line printing the bastion's release history as `@@releases<TAB>base64` (empty when there is none yet). */
export function releasesFactLine(file: string): string {
  return `if [ -e ${file} ]; then printf '@@releases\\t%s\\n' "$(base64 -w0 < ${file})"; else printf '@@releases\\t\\n'; fi`
}

/** The current release's ID from a `@@releases` field: null when none yet, undefined when the history is not JSON. */
export function currentFromFact(b64: string | undefined): string | null | undefined {
  try {
    return currentRelease(parseHistory(Buffer.from(b64 ?? '', 'base64').toString('utf8')))?.id ?? null
  } catch {
    return undefined
  }
}

export function serializeHistory(h: ReleaseHistory): string {
  return JSON.stringify(h, null, 2) + '\n'
}

export function currentRelease(h: ReleaseHistory): Release | undefined {
  return h.releases.find((r) => r.state === 'current')
}

/** The release of the same version, image and configuration, if it was deployed before (not failed): deploying it again changes nothing. */
export function sameRelease(h: ReleaseHistory, version: string, image: string, config: string): Release | undefined {
  return h.releases.find((r) => r.state !== 'failed' && r.version === version && r.image === image && r.configDigest === config)
}

/** A new ID for `version`: itself, or `version-N` when taken by another image or configuration. */
export function newReleaseId(h: ReleaseHistory, version: string): string {
  const base = sanitizeVersion(version)
  const taken = new Set(h.releases.map((r) => r.id))
  if (!taken.has(base)) return base
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`
}

/**
 * The history after `id` became current: the old current becomes previous, the old previous old.
 * `release` is the new record (or an existing one, for a rollback).
 */
export function promote(h: ReleaseHistory, release: Release): ReleaseHistory {
  // The current release rolled again (e.g. to a node that lacked it): states stay as they are.
  if (currentRelease(h)?.id === release.id) return {releases: h.releases.map((r) => (r.id === release.id ? {...release, state: 'current'} : r))}
  const others = h.releases
    .filter((r) => r.id !== release.id)
    .map((r): Release => (r.state === 'current' ? {...r, state: 'previous'} : r.state === 'previous' ? {...r, state: 'old'} : r))
  return {releases: [{...release, state: 'current'}, ...others]}
}

/**
 * The history with a failed attempt recorded (newest first; current and previous unchanged). A
 * release that is already in the history as a good one (rolled again) keeps its record: it did
 * work once, and a rollback may still go to it; the failure is the deploy's exit status.
 */
export function recordFailure(h: ReleaseHistory, release: Release, error: string): ReleaseHistory {
  if (h.releases.some((r) => r.id === release.id && r.state !== 'failed')) return h
  return {releases: [{...release, state: 'failed', error}, ...h.releases.filter((r) => r.id !== release.id)]}
}

/** The releases still kept (not failed), newest first: what nodes and the registry keep. */
export function goodReleases(h: ReleaseHistory): Release[] {
  return h.releases.filter((r) => r.state !== 'failed')
}

/**
 * The release a rollback goes to: `id` when given (any good release), else the previous one (the
 * newest good release that is not current). An Error with what is possible otherwise.
 */
export function rollbackTarget(h: ReleaseHistory, id?: string): Release {
  const current = currentRelease(h)
  const good = goodReleases(h).filter((r) => r.id !== current?.id)
  if (id) {
    // An exact ID first; a version names its newest good release that is not current.
    const r = h.releases.find((x) => x.id === id) ?? good.find((x) => x.version === id) ?? h.releases.find((x) => x.version === id)
    if (!r) throw new Error(`no release "${id}"${good.length ? `; releases to roll back to: ${good.map((x) => x.id).join(', ')}` : ''}`)
    if (r.state === 'failed') throw new Error(`release ${r.id} failed when it was deployed; it cannot be rolled back to`)
    if (r.id === current?.id) throw new Error(`release ${r.id} is the current release already`)
    return r
  }
  const prev = good.find((r) => r.state === 'previous') ?? good[0]
  if (!prev) throw new Error('there is no previous release to roll back to')
  return prev
}

/** Releases beyond the newest `keep` good ones (the current one is always kept), not pruned yet: what to prune. */
export function beyondKeep(h: ReleaseHistory, keep: number): Release[] {
  const good = goodReleases(h)
  return good.slice(keep).filter((r) => r.state !== 'current' && !r.pruned)
}

/**
 * The registry manifests to delete for `old` releases: their digests, except a digest a kept
 * release still uses (an env-only change makes a new release with the same image).
 */
export function digestsToDelete(h: ReleaseHistory, old: Release[]): string[] {
  const leaving = new Set(old.map((r) => r.id))
  const kept = new Set(h.releases.filter((r) => r.state !== 'failed' && !r.pruned && !leaving.has(r.id)).map((r) => r.digest))
  return [...new Set(old.map((r) => r.digest).filter((d): d is string => d !== null && !kept.has(d)))]
}

/** The history with these releases marked pruned from the registry. */
export function markPruned(h: ReleaseHistory, ids: string[]): ReleaseHistory {
  const set = new Set(ids)
  return {releases: h.releases.map((r) => (set.has(r.id) ? {...r, pruned: true} : r))}
}

/** `infra releases` as a table. */
export function renderHistory(h: ReleaseHistory): string {
  if (h.releases.length === 0) return 'No release yet: run `infra deploy`.'
  const rows = h.releases.map((r) => [r.id, r.state, r.at.replace(/\.\d+Z$/, 'Z'), r.by, (r.digest ?? r.image).replace(/^.*@/, '').slice(0, 19), r.commit ?? '-'])
  const head = ['RELEASE', 'STATE', 'DEPLOYED', 'BY', 'IMAGE', 'COMMIT']
  const widths = head.map((h0, i) => Math.max(h0.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  const failed = h.releases.filter((r) => r.state === 'failed' && r.error).map((r) => `  ${r.id}: ${r.error}`)
  return [line(head), ...rows.map(line), ...(failed.length ? ['', 'Failed:', ...failed] : [])].join('\n')
}

export interface AppStatus {
  release: string | null
  state: string
  health: string
  restarts: number
  exit: number
}

/** `infra-app status` on a node: `release=ID state=running health=ok restarts=0 exit=0`. */
export function parseAppStatus(out: string): AppStatus {
  const f = Object.fromEntries([...out.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]))
  return {
    release: f.release && f.release !== 'none' ? f.release : null,
    state: f.state ?? 'missing',
    health: f.health ?? 'failed',
    restarts: Number(f.restarts ?? 0),
    exit: Number(f.exit ?? 0),
  }
}

