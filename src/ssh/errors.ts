import {HostError} from '../lib/errors.js'

/**
 * Why a host could not be reached or used over SSH. Each kind has its own message and fix:
 * - `unreachable`: the TCP connection failed (refused, no route) or was closed before login.
 * - `timeout`: no answer within `ssh.connectTimeout`.
 * - `handshake`: something answered but the SSH handshake failed (not sshd, no common algorithm).
 * - `auth`: the host refused the key (or the agent's keys) for the user.
 * - `hostkey-changed`: the host presented a key other than the pinned one.
 * - `hostkey-revoked`: the host presented a key marked `@revoked` in known_hosts.
 * - `hostkey-unexpected`: the host presented a key the operator did not say to expect (not in
 *   ssh.hostKeys for it, or not the fingerprint trusted with `infra hosts trust`), on first contact too.
 * - `bastion-down`: a web node could not be reached because its bastion could not be.
 * - `closed`: the connection broke while in use.
 * - `command-timeout`: a command did not finish within its time limit.
 */
export type SshErrorKind =
  | 'unreachable'
  | 'timeout'
  | 'handshake'
  | 'auth'
  | 'hostkey-changed'
  | 'hostkey-revoked'
  | 'hostkey-unexpected'
  | 'bastion-down'
  | 'closed'
  | 'command-timeout'

export class SshError extends HostError {
  readonly kind: SshErrorKind
  /** The message without the leading host name (for output already prefixed by it, e.g. `web1 | ...`). */
  readonly reason: string

  /** The message is `HOST: REASON`; `code` is `ESSH_` + the kind (e.g. `ESSH_HOSTKEY_CHANGED`). */
  constructor(kind: SshErrorKind, host: string, reason: string, opts: {hint?: string; cause?: unknown} = {}) {
    super(host, `${host}: ${reason}`, {...opts, code: 'ESSH_' + kind.toUpperCase().replaceAll('-', '_')})
    this.kind = kind
    this.reason = reason
  }
}

export function isSshError(e: unknown, kind?: SshErrorKind): e is SshError {
  return e instanceof SshError && (kind === undefined || e.kind === kind)
}
