import {randomBytes} from 'node:crypto'
import {readFile, rename, stat, unlink, writeFile} from 'node:fs/promises'

import type {HostSpec} from '../inventory/schema.js'
import {
  addEntry,
  findEntries,
  fingerprint,
  HostIdentity,
  KnownHostEntry,
  parseKnownHosts,
  removeHost,
  verifyHostKey,
  VerifyResult,
} from './known-hosts.js'

/**
 * The known_hosts file beside the inventory: read, pin on first use, forget. Writes are atomic
 * (temporary file + rename) and serialised within the process, so hosts pinned in parallel do
 * not lose each other's lines.
 */

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
  } catch {}
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
 * Check a presented host key against the file and pin it when the host has no entry yet
 * (trust on first use). Returns what the check found; `new` means it was just written.
 */
export async function checkAndPin(file: string, id: HostIdentity, blob: Buffer): Promise<VerifyResult> {
  const first = verifyHostKey(parseKnownHosts(await readKnownHosts(file)), id, blob)
  if (first.status !== 'new') return first
  return withLock(file, async () => {
    const text = await readKnownHosts(file)
    const again = verifyHostKey(parseKnownHosts(text), id, blob)
    if (again.status === 'new') await writeAtomic(file, addEntry(text, id, blob))
    return again
  })
}

/** Remove every entry that names the host. Returns the removed entries (none: file untouched). */
export async function forgetHost(file: string, id: HostIdentity): Promise<KnownHostEntry[]> {
  return withLock(file, async () => {
    const text = await readKnownHosts(file)
    const r = removeHost(text, id)
    if (r.removed.length > 0) await writeAtomic(file, r.text)
    return r.removed
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
