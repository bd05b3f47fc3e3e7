/**
 * The slug of a preview's branch (docs/SITES.md): the name of the preview in its host name
 * ("<slug>.<previews.domain>"), its unit key ("SITE--p-<slug>") and HAProxy/Docker names. Pure.
 *
 * A slug is lowercase letters, digits and single "-", starts with a letter, ends with a letter or a
 * digit, never holds "--" (the unit key's separator) and has at most SLUG_MAX characters.
 */
import {sha256} from '../host/hash.js'

/** Longest slug: a DNS label allows 63, but the slug also goes into unit keys and HAProxy names. */
export const SLUG_MAX = 40
/** Hex characters of the branch's sha256 that make a shortened or clashing slug unique. */
const HASH_CHARS = 6
/** Longest branch name accepted (git itself has no limit, a file name has 255). */
const BRANCH_MAX = 255

/** The branch's name as a slug, before any shortening: "feature/Login-Page" → "feature-login-page". */
function plainSlug(branch: string): string {
  const s = branch
    .toLowerCase()
    .replaceAll(/[^a-z0-9]+/g, '-')
    .replaceAll(/^-+|-+$/g, '')
  if (s === '') return 'branch'
  return /^[0-9]/.test(s) ? `b-${s}` : s
}

/** `plain` cut so that "-" and `hashChars` hex characters of the branch's sha256 fit in SLUG_MAX. */
function hashedSlug(plain: string, branch: string, hashChars: number): string {
  const head = plain.slice(0, SLUG_MAX - 1 - hashChars).replace(/-+$/, '')
  return `${head}-${sha256(branch).slice(0, hashChars)}`
}

/**
 * The preview slug of `branch`. `taken` maps the slugs in use to their branches: a branch that
 * already has one keeps it; a slug another branch uses is not given out again. The slug is the
 * branch's plain slug ("feature/Login-Page" → "feature-login-page") when it fits in SLUG_MAX
 * characters and is free; otherwise it is cut and ends with "-" and the first 6 hex characters of
 * sha256(branch) (more characters in the unlikely case that one is taken too). Deterministic.
 */
export function branchSlug(branch: string, taken: ReadonlyMap<string, string> = new Map()): string {
  for (const [slug, owner] of taken) if (owner === branch) return slug
  const plain = plainSlug(branch)
  const free = (slug: string) => {
    const owner = taken.get(slug)
    return owner === undefined || owner === branch
  }
  if (plain.length <= SLUG_MAX && free(plain)) return plain
  for (let chars = HASH_CHARS; chars <= SLUG_MAX - 8; chars++) {
    const slug = hashedSlug(plain, branch, chars)
    if (free(slug)) return slug
  }
  // Would take distinct branches whose sha256 share their first 32 hex characters.
  throw new Error(`no free preview slug for branch ${JSON.stringify(branch)}`)
}

/** Characters git refuses in a branch name (besides spaces and control characters). */
const GIT_FORBIDDEN = /[~^:?*[\\]/

/**
 * Why `s` is not a usable branch name (roughly git's check-ref-format rules), or undefined when it
 * is one. The reason follows the name in a message: `"a b" has a space or a control character`.
 */
export function isBranchName(s: string): string | undefined {
  if (s === '') return 'is empty'
  if (s.length > BRANCH_MAX) return `is longer than ${BRANCH_MAX} characters`
  // eslint-disable-next-line no-control-regex -- control characters are what this test looks for
  if (/[\u0000-\u0020\u007f]/.test(s)) return 'has a space or a control character'
  const bad = GIT_FORBIDDEN.exec(s)
  if (bad) return `has ${JSON.stringify(bad[0])}, which git does not allow in a branch name`
  if (s.includes('..')) return 'has "..", which git does not allow in a branch name'
  if (s.includes('@{')) return 'has "@{", which git does not allow in a branch name'
  if (s === '@') return 'is "@", which git does not allow as a branch name'
  if (s.startsWith('-')) return 'starts with "-"'
  if (s.startsWith('/') || s.endsWith('/') || s.includes('//')) return 'has an empty path component (a leading, trailing or double "/")'
  if (s.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock'))) return 'has a component starting with "." or ending with ".lock"'
  if (s.endsWith('.')) return 'ends with "."'
  return undefined
}
