/** Pure helpers that build the command line sent to a host. */
import {shellWord} from '../host/quote.js'


/** Join words into one command line, quoting each word that needs it (as `ssh host a b c` would not). */
export function shellJoin(words: string[]): string {
  return words.map((w) => shellWord(w)).join(' ')
}

/**
 * The command line sshd receives for `cmd`: run by bash (`bash -c`, not a login shell, so the
 * same syntax works whatever the user's shell is), under `sudo -n` when the login user is not
 * root. `sudo -n` never prompts: a user without passwordless sudo gets an error, not a hang.
 */
export function remoteCommand(cmd: string, user: string, opts: {sudo?: boolean; timeoutMs?: number} = {}): string {
  const sudo = opts.sudo ?? user !== 'root'
  // A time limit is enforced on the host by coreutils `timeout` (TERM, then KILL 5 s later, to the
  // whole process group): SSH "signal" requests are ignored by sshd for root sessions.
  const limit = opts.timeoutMs && opts.timeoutMs > 0 ? `timeout -k 5 ${Number((opts.timeoutMs / 1000).toFixed(3))} ` : ''
  return `${sudo ? 'sudo -n ' : ''}${limit}bash -c ${shellWord(cmd)}`
}

/** Exit statuses of `timeout` when it stopped the command (TERM: 124, KILL after -k: 137). */
export const TIMEOUT_EXIT_CODES: readonly number[] = [124, 137]
