import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

/**
 * The Debian mirror for the lab image comes from this machine's own apt sources, read at run
 * time: whatever mirror (or proxy) apt uses here is the one debootstrap uses.
 */
export interface AptSource {
  uri: string
  suites: string[]
  components: string[]
  /** Signed-By: a keyring path (inline keys are ignored). */
  signedBy?: string
  file: string
}

export interface Mirror {
  uri: string
  keyring?: string
  /** Where it was read from (for messages). */
  from: string
}

/** Parse deb822 `.sources` text (Types/URIs/Suites/Components/Signed-By stanzas); `deb` types only. */
export function parseDeb822(text: string, file: string): AptSource[] {
  const sources: AptSource[] = []
  const stanzas = text.split(/\n\s*\n/)
  for (const stanza of stanzas) {
    const fields = new Map<string, string>()
    let last: string | undefined
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)}\n${raw.trim()}`)
        continue
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw)
      if (m) {
        last = m[1].toLowerCase()
        fields.set(last, m[2].trim())
      }
    }
    const types = (fields.get('types') ?? '').split(/\s+/)
    if (!types.includes('deb')) continue
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue
    const signedBy = fields.get('signed-by')
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      sources.push({
        uri,
        suites: (fields.get('suites') ?? '').split(/\s+/).filter(Boolean),
        components: (fields.get('components') ?? '').split(/\s+/).filter(Boolean),
        signedBy: signedBy && !signedBy.includes('\n') && signedBy.startsWith('/') ? signedBy.split(/\s+/)[0] : undefined,
        file,
      })
    }
  }
  return sources
}

/** Parse one-line `sources.list` text (`deb [options] URI SUITE COMPONENTS...`). */
export function parseOneLine(text: string, file: string): AptSource[] {
  const sources: AptSource[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim()
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line)
    if (!m) continue
    const signed = /signed-by=(\S+)/.exec(m[1] ?? '')
    sources.push({uri: m[2], suites: [m[3]], components: m[4].split(/\s+/).filter(Boolean), signedBy: signed?.[1], file})
  }
  return sources
}

/**
 * The source that serves `suite` from Debian's main archive: one listing the suite itself is best;
 * otherwise any main-archive source (a suite without "-updates"/"-security", not a security archive),
 * since a Debian mirror serves every release.
 */
export function pickMirror(sources: AptSource[], suite = 'bookworm'): AptSource | undefined {
  const usable = sources.filter((s) => /^(https?|file):/.test(s.uri) && (s.components.length === 0 || s.components.includes('main')))
  const isMainArchive = (s: AptSource) => !/security/.test(s.uri) && s.suites.some((x) => !x.includes('-') && !x.includes('/'))
  return usable.find((s) => s.suites.includes(suite) && isMainArchive(s)) ?? usable.find(isMainArchive)
}

export const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'

/** Read this machine's apt sources and pick the mirror for the lab image. INFRA_LAB_MIRROR overrides. */
export function readMirror(root = '/', env: NodeJS.ProcessEnv = process.env): Mirror | undefined {
  const keyringOf = (p?: string) => (p && existsSync(path.join(root, p)) ? p : existsSync(path.join(root, DEFAULT_KEYRING)) ? DEFAULT_KEYRING : undefined)
  if (env.INFRA_LAB_MIRROR) return {uri: env.INFRA_LAB_MIRROR, keyring: keyringOf(), from: 'INFRA_LAB_MIRROR'}
  const sources: AptSource[] = []
  const dir = path.join(root, 'etc/apt/sources.list.d')
  const files = existsSync(dir) ? readdirSync(dir).sort() : []
  for (const f of files.filter((f) => f.endsWith('.sources'))) sources.push(...parseDeb822(readFileSync(path.join(dir, f), 'utf8'), path.join('/etc/apt/sources.list.d', f)))
  const main = path.join(root, 'etc/apt/sources.list')
  if (existsSync(main)) sources.push(...parseOneLine(readFileSync(main, 'utf8'), '/etc/apt/sources.list'))
  for (const f of files.filter((f) => f.endsWith('.list'))) sources.push(...parseOneLine(readFileSync(path.join(dir, f), 'utf8'), path.join('/etc/apt/sources.list.d', f)))
  const picked = pickMirror(sources)
  return picked ? {uri: picked.uri, keyring: keyringOf(picked.signedBy), from: picked.file} : undefined
}
