import {randomBytes} from 'node:crypto'
import {readFile, rename, stat, unlink, writeFile} from 'node:fs/promises'

import type {HostSpec} from '../inventory/schema.js'
import {
  addPending,
  consoleFingerprintCommand,
  findEntries,
  findPending,
  fingerprint,
  HostIdentity,
  KnownHostEntry,
  keyTypeOf,
  parseKnownHosts,
  PendingPin,
  pinKey,
  removeHost,
  removePending,
  verifyHostKey,
  VerifyResult,
} from './known-hosts.js'

/**
 * The known_hosts file beside the inventory: read, pin (on first use, or checked against
 * ssh.hostKeys or a pending pin from `infra hosts trust`), trust, forget. Writes are atomic
 * (temporary file + rename) and serialised within the process, so hosts pinned in parallel do
 * not lose each other's lines.
 */

export interface HostKeyEvent {
  host: HostSpec
  keyType: string
  fingerprint: string
  knownHostsPath: string
  /**
   * Why the key was accepted: `first-use` nothing said which key to expect (trust on first use:
   * the operator should check it); `inventory` it is in ssh.hostKeys; `pending` it is the
   * fingerprint trusted with `infra hosts trust`; `announced` the host announced it (and proved
   * it holds it) over a connection that its already pinned key of another type verified.
   */
  trust: 'first-use' | 'inventory' | 'pending' | 'announced'
  /** What to tell the operator (one line, plus a second with how to check the key for `first-use`). */
  message: string
}

/** The operator's message for a pinned key (HostKeyEvent.message). */
export function hostKeyMessage(e: Omit<HostKeyEvent, 'message'>, opts: {configFlag?: string; via?: string} = {}): string {
  const name = e.host.name
  const pinned = `${name}: pinned new host key ${e.keyType} ${e.fingerprint} in ${e.knownHostsPath}`
  switch (e.trust) {
    case 'inventory':
      return `${pinned} (it matches ssh.hostKeys.${name})`
    case 'pending':
      return `${pinned} (it matches the fingerprint trusted with \`infra hosts trust\`)`
    case 'announced':
      return `${pinned} (announced by ${name}, which proved it holds it, over the connection its pinned ${opts.via ?? 'key'} key verified)`
    case 'first-use':
      return (
        `${pinned} on first contact, unchecked: nothing said which key to expect (ssh.hostKeys, \`infra hosts trust\`).\n` +
        `  → Check it on ${name}'s console (not over SSH): \`${consoleFingerprintCommand(e.keyType)}\` must print ${e.fingerprint}. ` +
        `If it does not, stop: run \`infra hosts forget ${name}${opts.configFlag ?? ''}\` and find out who answered at ${e.host.address}.`
      )
  }
}

export function identityOf(host: Pick<HostSpec, 'name' | 'address'>, port: number): HostIdentity {
  return {names: [host.name, host.address], port}
}

export async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw error
  }
}

const locks = new Map<string, Promise<unknown>>()

async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(file) ?? Promise.resolve()
  const run = prev.then(fn, fn)
  const tail = run.then(
    () => {},
    () => {},
  )
  locks.set(file, tail)
  try {
    return await run
  } finally {
    if (locks.get(file) === tail) locks.delete(file)
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  let mode = 0o644
  try {
    mode = (await stat(file)).mode & 0o777
  } catch {
    // a new file: 0644
  }
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, text, {mode})
  try {
    await rename(tmp, file)
  } catch (error) {
    await unlink(tmp).catch(() => {})
    throw error
  }
}

/**
 * Check a presented host key against the file (and against `listed`, the fingerprints the
 * inventory's ssh.hostKeys gives for the host) and pin it when the host has no entry yet:
 * `expected` when the key matched ssh.hostKeys or a pending pin (which the full key then
 * replaces), `new` when nothing was expected (trust on first use). Both mean it was just written.
 */
export async function checkAndPin(file: string, id: HostIdentity, blob: Buffer, listed: readonly string[] = []): Promise<VerifyResult> {
  const first = verifyHostKey(parseKnownHosts(await readKnownHosts(file)), id, blob, listed)
  if (first.status !== 'new' && first.status !== 'expected') return first
  return withLock(file, async () => {
    const text = await readKnownHosts(file)
    const again = verifyHostKey(parseKnownHosts(text), id, blob, listed)
    if (again.status === 'new' || again.status === 'expected') await writeAtomic(file, pinKey(text, id, blob))
    return again
  })
}

/**
 * Pin one more key of a host that is already verified, e.g. the Ed25519 key a host announced
 * (and proved it holds) over a connection its pinned ECDSA or RSA key verified. Written only when
 * the host has no pinned key of that type yet, and the key is not refused by `listed`
 * (ssh.hostKeys). Returns whether it was written.
 */
export async function pinAnnouncedKey(file: string, id: HostIdentity, blob: Buffer, listed: readonly string[] = []): Promise<boolean> {
  const type = keyTypeOf(blob)
  if (listed.length > 0 && !listed.includes(fingerprint(blob))) return false
  return withLock(file, async () => {
    const text = await readKnownHosts(file)
    const f = parseKnownHosts(text)
    const pinned = findEntries(f, id)
    // Only next to a pin: a host with none (or with a pending one) is pinned by checkAndPin.
    if (pinned.length === 0 || findPending(f, id).length > 0 || pinned.some((e) => e.keyType === type)) return false
    if (verifyHostKey(f, id, blob, listed).status === 'revoked') return false
    await writeAtomic(file, pinKey(text, id, blob))
    return true
  })
}

/** Remove every entry (and pending pin) that names the host. Returns the removed entries (none: file untouched). */
export async function forgetHost(file: string, id: HostIdentity): Promise<KnownHostEntry[]> {
  return (await forgetHostAll(file, id)).entries
}

/** Remove every entry and every pending pin that names the host; returns both lists. */
export async function forgetHostAll(file: string, id: HostIdentity): Promise<{entries: KnownHostEntry[]; pending: PendingPin[]}> {
  return withLock(file, async () => {
    const text = await readKnownHosts(file)
    const r = removeHost(text, id)
    const p = removePending(r.text, id)
    if (r.removed.length > 0 || p.removed.length > 0) await writeAtomic(file, p.text)
    return {entries: r.removed, pending: p.removed}
  })
}

export type TrustResult =
  /** Written: the next connection must present a key with one of these fingerprints. */
  | {status: 'pending'; added: string[]; pending: string[]}
  /** The host's full key is pinned already and has one of these fingerprints: nothing to do. */
  | {status: 'pinned'; pinned: PinnedKey[]}
  /** The host's pinned key has none of these fingerprints. Nothing written. */
  | {status: 'conflict'; pinned: PinnedKey[]}

/**
 * Trust fingerprints for a host before the first contact: a pending pin per fingerprint (see
 * PendingPin), which the first connection must match and then replaces with the full key. A
 * host already pinned is only checked against them.
 */
export async function trustHost(file: string, id: HostIdentity, fps: string[]): Promise<TrustResult> {
  return withLock(file, async () => {
    const text = await readKnownHosts(file)
    const pinned = pinnedKeys(text, id)
    if (pinned.length > 0) return pinned.some((k) => fps.includes(k.fingerprint)) ? {status: 'pinned', pinned} : {status: 'conflict', pinned}
    const before = findPending(parseKnownHosts(text), id).map((p) => p.fingerprint)
    let next = text
    for (const fp of fps) next = addPending(next, id, fp)
    if (next !== text) await writeAtomic(file, next)
    const added = fps.filter((fp) => !before.includes(fp))
    return {status: 'pending', added: [...new Set(added)], pending: [...new Set([...before, ...fps])]}
  })
}

export interface PinnedKey {
  keyType: string
  fingerprint: string
  line: number
}

export function pinnedKeys(text: string, id: HostIdentity): PinnedKey[] {
  return findEntries(parseKnownHosts(text), id).map((e) => ({keyType: e.keyType, fingerprint: fingerprint(e.key), line: e.line}))
}

/** The fingerprints trusted for the host with `infra hosts trust` and not yet replaced by its full key. */
export function pendingFingerprints(text: string, id: HostIdentity): string[] {
  return findPending(parseKnownHosts(text), id).map((p) => p.fingerprint)
}
