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
  /** Fingerprints trusted ahead of the first contact (`infra hosts trust`), see PENDING_MARK. */
  pending: PendingPin[]
}

/**
 * A fingerprint pinned before the first contact (`infra hosts trust`): known_hosts stores full
 * keys, but an operator who reads a host's console has only its fingerprint. It is kept in the
 * same file as a comment line, which OpenSSH's tools ignore (and keep):
 *
 *   #infra-trust web1,10.42.0.11 SHA256:Q2w9xVx0... [comment]
 *
 * The first connection must present a key with this fingerprint; its full key then replaces
 * the line.
 */
export interface PendingPin {
  /** 1-based line number in the file. */
  line: number
  /** The host field, as in an entry (`web1,10.42.0.11`, `[web1]:2222,...`). */
  hosts: string
  fingerprint: string
}

export const PENDING_MARK = '#infra-trust'

/** A host key fingerprint as `ssh-keygen -lf` prints it: `SHA256:` + 43 characters of unpadded base64. */
export const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/

export function isFingerprint(s: string): boolean {
  return FINGERPRINT_RE.test(s)
}

/** The identities of one host as the tool knows it: its inventory name and its address, and the SSH port. */
export interface HostIdentity {
  names: string[]
  port: number
}

export type VerifyResult =
  | {status: 'new'; keyType: string; fingerprint: string}
  /** Not pinned yet, and the key is one the operator expects (ssh.hostKeys or a pending pin): pin it. */
  | {status: 'expected'; keyType: string; fingerprint: string; by: 'inventory' | 'pending'}
  /**
   * The key is not one the operator said to expect: not in the inventory's list (ssh.hostKeys)
   * for the host, or not the fingerprint trusted with `infra hosts trust`.
   */
  | {status: 'unexpected'; keyType: string; fingerprint: string; listed: string[]; pending: PendingPin[]}
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
  const pending: PendingPin[] = []
  lines.forEach((raw, i) => {
    const e = parseLine(raw, i + 1)
    if (e) entries.push(e)
    const p = parsePending(raw, i + 1)
    if (p) pending.push(p)
  })
  return {lines, entries, pending}
}

function parsePending(raw: string, line: number): PendingPin | undefined {
  const fields = raw.trim().split(/\s+/)
  if (fields[0] !== PENDING_MARK || fields.length < 3 || !isFingerprint(fields[2])) return undefined
  return {line, hosts: fields[1], fingerprint: fields[2]}
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

/** Pending pins (`infra hosts trust`) that name any of the host's identities. */
export function findPending(file: KnownHostsFile, id: HostIdentity): PendingPin[] {
  return file.pending.filter((p) => id.names.some((n) => hostsFieldMatches(p.hosts, hostPattern(n, id.port))))
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

/** The name OpenSSH gives a host key file of this type: /etc/ssh/ssh_host_<name>_key. */
function hostKeyFileType(keyType: string): string {
  if (keyType.startsWith('ecdsa-')) return 'ecdsa'
  return keyType.replace(/^ssh-/, '')
}

/** The command that prints a host key's fingerprint on the host itself (its console). */
export function consoleFingerprintCommand(keyType: string): string {
  return `ssh-keygen -lf /etc/ssh/ssh_host_${hostKeyFileType(keyType)}_key.pub`
}

function sameKey(entryKey: string, blob: Buffer): boolean {
  const a = Buffer.from(entryKey, 'base64')
  return a.length === blob.length && timingSafeEqual(a, blob)
}

/**
 * Compare the key a host presented with what the file pins for it, and with the fingerprints
 * the operator expects for it (`listed`: ssh.hostKeys in the inventory; and the file's pending
 * pins). An expectation is checked on every connection, the first one included: the key must
 * be one of the listed fingerprints (when the inventory lists any) and one of the pending ones
 * (when there are any).
 */
export function verifyHostKey(file: KnownHostsFile, id: HostIdentity, blob: Buffer, listed: readonly string[] = []): VerifyResult {
  const keyType = keyTypeOf(blob)
  const fp = fingerprint(blob)
  const revoked = file.entries.find(
    (e) => e.marker === '@revoked' && sameKey(e.key, blob) && (e.hosts === '*' || entryNamesHost(e, id)),
  )
  if (revoked) return {status: 'revoked', keyType, fingerprint: fp, entry: revoked}
  const pending = findPending(file, id)
  if ((listed.length > 0 && !listed.includes(fp)) || (pending.length > 0 && !pending.some((p) => p.fingerprint === fp))) {
    return {status: 'unexpected', keyType, fingerprint: fp, listed: [...listed], pending}
  }
  const pinned = findEntries(file, id)
  if (pinned.length === 0) {
    if (pending.length > 0) return {status: 'expected', keyType, fingerprint: fp, by: 'pending'}
    if (listed.length > 0) return {status: 'expected', keyType, fingerprint: fp, by: 'inventory'}
    return {status: 'new', keyType, fingerprint: fp}
  }
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

/** Remove the given 1-based lines from the text (the rest kept byte for byte). */
function dropLines(file: KnownHostsFile, drop: Set<number>): string {
  const kept = file.lines.filter((_, i) => !drop.has(i + 1))
  return kept.length === 0 ? '' : kept.join('\n') + '\n'
}

/**
 * Pin a host's full key: the entry is appended and the host's pending pins (which the key
 * satisfied) are removed, in one text.
 */
export function pinKey(text: string, id: HostIdentity, blob: Buffer): string {
  const file = parseKnownHosts(text)
  const pending = findPending(file, id)
  const base = pending.length === 0 ? text : dropLines(file, new Set(pending.map((p) => p.line)))
  return addEntry(base, id, blob)
}

/** One pending pin line for a host (see PendingPin). */
export function formatPending(id: HostIdentity, fp: string): string {
  if (!isFingerprint(fp)) throw new Error(`not a SHA256 fingerprint: ${fp}`)
  const hosts = [...new Set(id.names)].map((n) => hostPattern(n, id.port)).join(',')
  return `${PENDING_MARK} ${hosts} ${fp} (infra hosts trust: the first connection must present this key)`
}

/** The file's text with a pending pin appended, unless the host already has it. */
export function addPending(text: string, id: HostIdentity, fp: string): string {
  if (findPending(parseKnownHosts(text), id).some((p) => p.fingerprint === fp)) return text
  const sep = text === '' || text.endsWith('\n') ? '' : '\n'
  return `${text}${sep}${formatPending(id, fp)}\n`
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
  return {text: dropLines(file, new Set(removed.map((e) => e.line))), removed}
}

/** The file's text without the host's pending pins (`infra hosts trust`). */
export function removePending(text: string, id: HostIdentity): {text: string; removed: PendingPin[]} {
  const file = parseKnownHosts(text)
  const removed = findPending(file, id)
  if (removed.length === 0) return {text, removed}
  return {text: dropLines(file, new Set(removed.map((p) => p.line))), removed}
}

/**
 * Map known_hosts key types to the host key algorithms that produce them: pinned types are
 * offered first so that a host with several keys keeps presenting the pinned one, and among
 * pinned types Ed25519 first, then RSA, then ECDSA (the order of the defaults too): the sshd
 * infra installs offers Ed25519 and RSA only, and may regenerate a short RSA key, so an
 * Ed25519 pin is the one to use whenever there is one. SHA-1 `ssh-rsa` signatures are never asked for.
 */
export function hostKeyAlgorithmsFor(types: string[]): string[] {
  const byType: Record<string, string[]> = {
    'ssh-ed25519': ['ssh-ed25519'],
    'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256'],
    'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
    'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
    'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  }
  const order = Object.keys(byType)
  const defaults = Object.values(byType).flat()
  const first = order.filter((t) => types.includes(t)).flatMap((t) => byType[t])
  return [...new Set([...first, ...defaults])]
}
