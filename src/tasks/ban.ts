/** `infra ban`, `unban` and `bans`: the bastion's `infra-bans` script (src/edge/bans.ts builds its commands and reads its list). */
import {type Ban, banCommand, cleanReason, iso, listCommand, parseList, parseTarget, unbanCommand} from '../edge/bans.js'
import type {LoadedInventory} from '../inventory/load.js'
import {HostError} from '../lib/errors.js'
import {onBastion} from './bastion.js'

/** Run one `infra-bans` command on the bastion; a failure is a HostError with the script's words. */
async function runBans(loaded: LoadedInventory, cmd: string): Promise<string> {
  return onBastion(loaded, async (conn, name) => {
    const r = await conn.exec(cmd, {timeoutMs: 20_000})
    if (r.code === 127 || /infra-bans: (No such file|not found)/.test(r.stderr)) {
      throw new HostError(name, 'the bastion has no infra-bans script', {hint: 'Run `infra provision` first: it installs the ban list and its script.'})
    }
    if (r.code !== 0) throw new HostError(name, `infra-bans failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`)
    return r.stdout
  })
}

export interface BanResult {
  address: string
  until: string | null
  reason: string | null
}

export async function ban(loaded: LoadedInventory, opts: {target: string; forMs?: number; reason?: string; now?: number}): Promise<BanResult> {
  const address = parseTarget(opts.target)
  const reason = cleanReason(opts.reason)
  const until = opts.forMs === undefined ? null : Math.ceil(((opts.now ?? Date.now()) + opts.forMs) / 1000)
  await runBans(loaded, banCommand(address, until, reason))
  return {address, until: until === null ? null : iso(until), reason: reason === '-' ? null : reason}
}

export interface UnbanResult {
  address: string
  /** Was it in the ban list? */
  listed: boolean
  /** Was it banned automatically (flood)? */
  auto: boolean
}

export async function unban(loaded: LoadedInventory, target: string): Promise<UnbanResult> {
  const address = parseTarget(target)
  const out = await runBans(loaded, unbanCommand(address))
  return {address, listed: /listed=yes/.test(out), auto: /auto=yes/.test(out)}
}

export async function listBans(loaded: LoadedInventory): Promise<Ban[]> {
  return parseList(await runBans(loaded, listCommand()))
}
