import {createHash, createHmac, timingSafeEqual} from 'node:crypto'

/**
 * Pure known_hosts logic (OpenSSH format), no I/O:
 *
 *   [@marker ]hostpattern[,hostpattern...] keytype base64key [comment]
 *
 * A host pattern is a name or an address, written `[host]:port` when the port is not 22, or a
 * hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, pattern))`; `*`, `?` and a leading `!`
 * (negation) work as in OpenSSH. Comment lines, blank lines and lines this code does not
 * understand are kept byte for byte when entries are added or removed.
 */

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number
  /** `@cert-authority` or `@revoked` when the line starts with a marker. */
  marker?: '@cert-authority' | '@revoked'
  /** The raw host field, e.g. `web1,10.42.0.11` or `|1|salt|hash`. */
  hosts: string
  /** The key type written in the file, e.g. `ssh-ed25519`. */
  keyType: string
  /** Base64 of the public key blob (the SSH wire format). */
  key: string
  comment?: string
}

export interface KnownHostsFile {
  /** Every line of the file as it was (without line terminators). */
  lines: string[]
  entries: KnownHostEntry[]
}

/** The identities of one host as the tool knows it: its inventory name and its address, and the SSH port. */
export interface HostIdentity {
  names: string[]
  port: number
}

export type VerifyResult =
  | {status: 'new'; keyType: string; fingerprint: string}
  | {status: 'match'; keyType: string; fingerprint: string; entry: KnownHostEntry}
  | {
      status: 'mismatch'
      keyType: string
      /** Fingerprint of the key the host presented now. */
      fingerprint: string
      /** What is pinned for the host (every entry that names it). */
      pinned: {keyType: string; fingerprint: string; line: number}[]
    }
  | {status: 'revoked'; keyType: string; fingerprint: string; entry: KnownHostEntry}

const MARKERS = new Set(['@cert-authority', '@revoked'])

export function parseKnownHosts(text: string): KnownHostsFile {
  const lines = text.split(/\r?\n/)
  // A trailing newline gives one empty last element: it is not a line of its own.
  if (lines.length > 0 && lines.at(-1) === '') lines.pop()
  const entries: KnownHostEntry[] = []
  lines.forEach((raw, i) => {
    const e = parseLine(raw, i + 1)
    if (e) entries.push(e)
  })
  return {lines, entries}
}

function parseLine(raw: string, line: number): KnownHostEntry | undefined {
  const t = raw.trim()
  if (t === '' || t.startsWith('#')) return undefined
  const fields = t.split(/\s+/)
  let marker: KnownHostEntry['marker']
  if (fields[0].startsWith('@')) {
    if (!MARKERS.has(fields[0])) return undefined
    marker = fields.shift() as KnownHostEntry['marker']
  }
  if (fields.length < 3) return undefined
  const [hosts, keyType, key, ...rest] = fields
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) return undefined
  return {line, marker, hosts, keyType, key, comment: rest.length > 0 ? rest.join(' ') : undefined}
}

/** The pattern OpenSSH looks up for a host: `host` on port 22, `[host]:port` otherwise. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replaceAll(/[.+^${}()|[\]\\]/g, String.raw`\$&`).replaceAll('*', '.*').replaceAll('?', '.')
  return new RegExp(`^${body}$`, 'i')
}

function hashedMatches(hashed: string, pattern: string): boolean {
  // |1|base64(salt)|base64(hmac-sha1(salt, pattern))
  const parts = hashed.split('|')
  if (parts.length !== 4 || parts[1] !== '1') return false
  const salt = Buffer.from(parts[2], 'base64')
  const want = Buffer.from(parts[3], 'base64')
  const got = createHmac('sha1', salt).update(pattern).digest()
  return want.length === got.length && timingSafeEqual(want, got)
}

/** Does the host field of an entry name `pattern` (already in `[host]:port` form when needed)? */
export function hostsFieldMatches(hosts: string, pattern: string): boolean {
  if (hosts.startsWith('|')) return hashedMatches(hosts, pattern)
  let matched = false
  for (const p of hosts.split(',')) {
    if (p === '') continue
    if (p.startsWith('!')) {
      if (globToRegExp(p.slice(1)).test(pattern)) return false
    } else if (globToRegExp(p).test(pattern)) {
      matched = true
    }
  }
  return matched
}

function entryNamesHost(entry: KnownHostEntry, id: HostIdentity): boolean {
  return id.names.some((n) => hostsFieldMatches(entry.hosts, hostPattern(n, id.port)))
}

/** Plain (unmarked) entries that name any of the host's identities. */
export function findEntries(file: KnownHostsFile, id: HostIdentity): KnownHostEntry[] {
  return file.entries.filter((e) => e.marker === undefined && entryNamesHost(e, id))
}

/** `SHA256:` + unpadded base64 of the SHA-256 of the key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(key: Buffer | string): string {
  const blob = typeof key === 'string' ? Buffer.from(key, 'base64') : key
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/** The key type inside a public key blob (its first SSH string), e.g. `ssh-ed25519`. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) throw new Error('not an SSH public key blob')
  const len = blob.readUInt32BE(0)
  if (len === 0 || len > 64 || blob.length < 4 + len) throw new Error('not an SSH public key blob')
  return blob.subarray(4, 4 + len).toString('ascii')
}

function sameKey(entryKey: string, blob: Buffer): boolean {
  const a = Buffer.from(entryKey, 'base64')
  return a.length === blob.length && timingSafeEqual(a, blob)
}

/** Compare the key a host presented with what the file pins for it. */
export function verifyHostKey(file: KnownHostsFile, id: HostIdentity, blob: Buffer): VerifyResult {
  const keyType = keyTypeOf(blob)
  const fp = fingerprint(blob)
  const revoked = file.entries.find(
    (e) => e.marker === '@revoked' && sameKey(e.key, blob) && (e.hosts === '*' || entryNamesHost(e, id)),
  )
  if (revoked) return {status: 'revoked', keyType, fingerprint: fp, entry: revoked}
  const pinned = findEntries(file, id)
  if (pinned.length === 0) return {status: 'new', keyType, fingerprint: fp}
  const same = pinned.find((e) => sameKey(e.key, blob))
  if (same) return {status: 'match', keyType, fingerprint: fp, entry: same}
  return {
    status: 'mismatch',
    keyType,
    fingerprint: fp,
    pinned: pinned.map((e) => ({keyType: e.keyType, fingerprint: fingerprint(e.key), line: e.line})),
  }
}

/** One known_hosts line for a host: `name,address keytype base64` (each in `[x]:port` form when port ≠ 22). */
export function formatEntry(id: HostIdentity, blob: Buffer, comment?: string): string {
  const hosts = [...new Set(id.names)].map((n) => hostPattern(n, id.port)).join(',')
  return `${hosts} ${keyTypeOf(blob)} ${blob.toString('base64')}${comment ? ' ' + comment : ''}`
}

/** The file's text with one entry appended (every other line kept as it was). */
export function addEntry(text: string, id: HostIdentity, blob: Buffer, comment?: string): string {
  const sep = text === '' || text.endsWith('\n') ? '' : '\n'
  return `${text}${sep}${formatEntry(id, blob, comment)}\n`
}

/**
 * The file's text without the plain entries that name the host (by any identity, hashed or
 * not). A line naming several hosts is removed whole, as `ssh-keygen -R` does. Comments,
 * markers and other hosts' entries are kept.
 */
export function removeHost(text: string, id: HostIdentity): {text: string; removed: KnownHostEntry[]} {
  const file = parseKnownHosts(text)
  const removed = findEntries(file, id)
  if (removed.length === 0) return {text, removed}
  const drop = new Set(removed.map((e) => e.line))
  const kept = file.lines.filter((_, i) => !drop.has(i + 1))
  return {text: kept.length === 0 ? '' : kept.join('\n') + '\n', removed}
}

/**
 * Map known_hosts key types to the host key algorithms that produce them: pinned types are
 * offered first so that a host with several keys keeps presenting the pinned one.
 */
export function hostKeyAlgorithmsFor(types: string[]): string[] {
  const byType: Record<string, string[]> = {
    'ssh-ed25519': ['ssh-ed25519'],
    'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
    'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
    'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
    'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256'],
  }
  const defaults = Object.values(byType).flat()
  const first = types.flatMap((t) => byType[t] ?? [])
  return [...new Set([...first, ...defaults])]
}
