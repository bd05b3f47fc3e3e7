/** `infra hosts list|trust|forget`: the operator's host key pins (known_hosts beside the inventory). Files only; nothing connects. */
import type {LoadedInventory} from '../inventory/load.js'
import {hostsOf} from '../inventory/schema.js'
import {ConfigError, HostError, UsageError} from '../lib/errors.js'
import {fingerprint, isFingerprint} from '../ssh/known-hosts.js'
import {forgetHostAll, identityOf, pendingFingerprints, type PinnedKey, pinnedKeys, readKnownHosts, trustHost} from '../ssh/pins.js'

export interface HostPinInfo {
  name: string
  role: 'bastion' | 'web'
  address: string
  standby: boolean
  /** The first pinned key's fingerprint (`SHA256:...`), null when the host's key is not pinned yet. */
  fingerprint: string | null
  keyType: string | null
  /** Every pinned key that names the host (usually one). */
  pinned: PinnedKey[]
  /** Fingerprints trusted with `infra hosts trust`, waiting for the first contact (then replaced by the full key). */
  pending: string[]
  /** The fingerprints ssh.hostKeys lists for the host (every connection must match one). */
  expected: string[]
}

/** Each inventory host with what known_hosts pins for it. Reads files only; no connection. */
export async function listHostPins(loaded: LoadedInventory): Promise<HostPinInfo[]> {
  const text = await readKnownHosts(loaded.knownHostsPath)
  const port = loaded.inventory.ssh.port
  return hostsOf(loaded.inventory).map((h) => {
    const pinned = pinnedKeys(text, identityOf(h, port))
    return {
      name: h.name,
      role: h.role,
      address: h.address,
      standby: h.standby,
      fingerprint: pinned[0]?.fingerprint ?? null,
      keyType: pinned[0]?.keyType ?? null,
      pinned,
      pending: pendingFingerprints(text, identityOf(h, port)),
      expected: loaded.inventory.ssh.hostKeys?.[h.name] ?? [],
    }
  })
}

export interface ForgetResult {
  host: string
  knownHostsPath: string
  removed: PinnedKey[]
  /** Pending fingerprints (`infra hosts trust`) removed. */
  removedPending: string[]
}

/**
 * Remove the pinned keys of a host (by its name and address, at ssh.port) so that the next
 * connection pins the key it presents. A name not in the inventory is accepted only when
 * known_hosts still has entries for it (a removed node); otherwise UsageError (exit 2).
 */
export async function forgetHostPin(loaded: LoadedInventory, name: string): Promise<ForgetResult> {
  const port = loaded.inventory.ssh.port
  const all = hostsOf(loaded.inventory)
  const host = all.find((h) => h.name === name) ?? (name === 'bastion' ? all[0] : undefined)
  const id = host ? identityOf(host, port) : {names: [name], port}
  const text = await readKnownHosts(loaded.knownHostsPath)
  const before = pinnedKeys(text, id)
  if (!host && before.length === 0 && pendingFingerprints(text, id).length === 0) {
    throw new UsageError(`unknown host "${name}": not in ${loaded.path} and not in ${loaded.knownHostsPath}`, {
      hint: `Hosts of this inventory: ${all.map((h) => h.name).join(', ')}.`,
    })
  }
  const removed = await forgetHostAll(loaded.knownHostsPath, id)
  return {
    host: host?.name ?? name,
    knownHostsPath: loaded.knownHostsPath,
    removed: removed.entries.map((e) => ({keyType: e.keyType, fingerprint: fingerprint(e.key), line: e.line})),
    removedPending: removed.pending.map((p) => p.fingerprint),
  }
}

export interface TrustHostResult {
  host: string
  knownHostsPath: string
  /**
   * `pending`: the fingerprints are written; the next connection must present one of them, and
   * its full key then replaces them. `pinned`: the host's key is pinned already and has one of
   * them (nothing written).
   */
  status: 'pending' | 'pinned'
  /** The fingerprints the host must present (all pending ones, or the pinned keys' ones). */
  fingerprints: string[]
  /** Fingerprints this call added (pending only). */
  added: string[]
}

/**
 * Trust a host's key by its fingerprint before the first contact (`infra hosts trust`). Nothing
 * connects. Usage errors (exit 2): unknown host, a malformed fingerprint, or a fingerprint
 * ssh.hostKeys does not list for the host (both must hold, so it could never connect). A host
 * already pinned to another key is a failure (exit 1): that is what `infra hosts forget` is for.
 */
export async function trustHostKey(loaded: LoadedInventory, name: string, fps: string[]): Promise<TrustHostResult> {
  const all = hostsOf(loaded.inventory)
  const host = all.find((h) => h.name === name) ?? (name === 'bastion' ? all[0] : undefined)
  if (!host) {
    throw new UsageError(`unknown host "${name}": not in ${loaded.path}`, {hint: `Hosts of this inventory: ${all.map((h) => h.name).join(', ')}.`})
  }
  if (fps.length === 0) throw new UsageError('no fingerprint given', {hint: `On ${host.name}'s console: \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`, then \`infra hosts trust ${host.name} SHA256:...\`.`})
  const bad = fps.find((fp) => !isFingerprint(fp))
  if (bad !== undefined) {
    throw new UsageError(`"${bad}" is not a host key fingerprint: expected "SHA256:" and 43 characters, as \`ssh-keygen -lf\` prints it`, {
      hint: `On ${host.name}'s console: \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` prints "256 SHA256:... root@${host.name} (ED25519)": give the second field.`,
    })
  }
  const listed = loaded.inventory.ssh.hostKeys?.[host.name] ?? []
  const unlisted = fps.filter((fp) => listed.length > 0 && !listed.includes(fp))
  if (unlisted.length > 0) {
    throw new ConfigError(`ssh.hostKeys.${host.name} in ${loaded.path} lists ${listed.join(', ')}, not ${unlisted.join(', ')}: a connection must match both, so it never could`, {
      hint: `ssh.hostKeys already checks ${host.name}'s key on first contact; fix the list there, or trust only a fingerprint it lists.`,
    })
  }
  const id = identityOf(host, loaded.inventory.ssh.port)
  const r = await trustHost(loaded.knownHostsPath, id, fps)
  if (r.status === 'conflict') {
    const pinned = r.pinned.map((k) => `${k.keyType} ${k.fingerprint} (line ${k.line})`).join(', ')
    throw new HostError(host.name, `${host.name} is already pinned in ${loaded.knownHostsPath} to ${pinned}, not to ${fps.join(', ')}`, {
      code: 'EHOSTKEY_PINNED',
      hint: `If ${host.name}'s key really changed (check its console), run \`infra hosts forget ${host.name}\` first, then trust the new fingerprint.`,
    })
  }
  if (r.status === 'pinned') return {host: host.name, knownHostsPath: loaded.knownHostsPath, status: 'pinned', fingerprints: r.pinned.map((k) => k.fingerprint), added: []}
  return {host: host.name, knownHostsPath: loaded.knownHostsPath, status: 'pending', fingerprints: r.pending, added: r.added}
}
