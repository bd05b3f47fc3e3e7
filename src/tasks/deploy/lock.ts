/** The deploy lock on the bastion: one deploy or rollback at a time, whoever runs it. */
import {type LockInfo, lockScript, unlockScript} from '../../app/commands.js'
import {factLines, unb64} from '../../host/facts.js'
import {type UnitPaths, unitPaths} from '../../host/paths.js'
import {HostError} from '../../lib/errors.js'
import type {HostConnection} from '../../ssh/connection.js'
import {holderIsGone, holderName, newRunId} from '../provision/lock.js'

export interface HeldLock {
  run: string
  /** Set when a stale lock was taken over: what it was. */
  tookOver?: string
}

function iso(sec: number): string {
  return new Date(sec * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
}

/** A lock is stale when its holder on this machine is gone, or when it is older than `staleMs`. */
export function isStale(held: LockInfo, staleMs: number, nowSec = Math.floor(Date.now() / 1000)): boolean {
  return holderIsGone(held.holder) || (nowSec - held.since) * 1000 > staleMs
}

/** Takes the lock or throws (exit 1) naming who holds it and since when. */
export async function acquireDeployLock(conn: HostConnection, what: string, staleMs: number, paths: UnitPaths = unitPaths()): Promise<HeldLock> {
  const info: LockInfo = {holder: holderName(), run: newRunId(), since: Math.floor(Date.now() / 1000), what}
  const attempt = async (takeOver?: string) => {
    const r = await conn.exec('bash -s', {stdin: lockScript(info, takeOver, paths), timeoutMs: 15_000})
    const line = factLines(r.stdout)[0]
    if (line?.tag === '@@locked') return undefined
    if (line?.tag === '@@held') {
      try {
        return JSON.parse(unb64(line.fields[0])) as LockInfo
      } catch {
        return {holder: 'unknown', run: '', since: 0, what: 'unreadable lock'}
      }
    }
    throw new HostError(conn.host.name, `cannot take the deploy lock: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`)
  }
  const held = await attempt()
  if (!held) return {run: info.run}
  if (held.run && isStale(held, staleMs)) {
    const again = await attempt(held.run)
    if (!again) return {run: info.run, tookOver: `${held.holder} (${held.what}, since ${iso(held.since)})`}
  }
  throw new HostError(
    conn.host.name,
    `another deploy is in progress: ${held.what} by ${held.holder} since ${iso(held.since)}; nothing was changed`,
    {
      hint: `Wait for it to finish. If it died, its lock is taken over after deploy.lockStale, or remove it: infra exec ${conn.host.name} -- rm ${paths.deployLock}`,
      code: 'EDEPLOYLOCKED',
    },
  )
}

export async function releaseDeployLock(conn: HostConnection, run: string, paths: UnitPaths = unitPaths()): Promise<void> {
  await conn.exec('bash -s', {stdin: unlockScript(run, paths), timeoutMs: 15_000}).catch(() => undefined)
}
