/** The host lock as provision names it: run ids, who holds it, whether a dead run's lock can be taken over. */
import {randomBytes} from 'node:crypto'
import {hostname, userInfo} from 'node:os'

import {LOCK_FILE} from '../../host/paths.js'

export function newRunId(): string {
  const t = new Date().toISOString().replaceAll(/[-:]/g, '').slice(0, 15)
  return `${t}-${randomBytes(3).toString('hex')}`
}

/** Who runs this provision, as the host's lock records it: `user@machine pid N`. */
export function holderName(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (a container): keep "unknown"
  }
  return `${user}@${hostname()} pid ${process.pid}`
}

/**
 * A lock holder that is a process of this machine which no longer runs (a provision killed with
 * Ctrl-C or SIGKILL): its lock can be taken over rather than waited out.
 */
export function holderIsGone(holder: string, machine = hostname(), alive = pidAlive): boolean {
  const m = /^\S+@(\S+) pid (\d+)$/.exec(holder)
  if (!m || m[1] !== machine) return false
  return Number(m[2]) !== process.pid && !alive(Number(m[2]))
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The error for a host another run holds (its lock names who and until when). */
export function lockedMessage(host: string, locked: {holder: string; run?: string; until?: number}): string {
  const until = locked.until ? new Date(locked.until * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : undefined
  return (
    `${host} is being provisioned by ${locked.holder || 'another run'}${locked.run ? ` (run ${locked.run})` : ''}: nothing was changed. ` +
    `Run again when it has finished${until ? `; if that run died, its lock expires at ${until}, or remove it: infra exec ${host} -- rm ${LOCK_FILE}` : ''}`
  )
}

