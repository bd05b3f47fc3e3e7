import type {HostSpec} from '../inventory/schema.js'
import {HostError} from '../lib/errors.js'
import type {SshAuth} from './auth.js'
import {consoleFingerprintCommand, type VerifyResult} from './known-hosts.js'

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

/** A duration as the messages show it: `10s`, or `1500ms` when not whole seconds. */
export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/** What the messages about one connection attempt say about it. */
export interface DialContext {
  host: HostSpec
  port: number
  user: string
  /** `address:port`. */
  target: string
  /** ` through bastion NAME` for a web node, '' for the bastion. */
  through: string
  /** ssh.connectTimeout, as shown (formatMs). */
  timeout: string
  /** The inventory file, as shown (fileLabel). */
  inv: string
  knownHostsPath: string
  /** ` -c FILE` for suggested commands (configFlag). */
  configFlag: string
}

export type DialPhase = 'connect' | 'handshake' | 'auth'
type Rejected<S extends VerifyResult['status']> = Extract<VerifyResult, {status: S}>

const CHANNEL_FAILURE = /^\(SSH\) Channel open failure: /
const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
}

function intercepted(c: DialContext): string {
  return (
    `Read the fingerprint on ${c.host.name}'s own console (your provider's web console), not over SSH: an intercepted ` +
    `connection would show you the interceptor's key. infra asks hosts for their ssh-ed25519 key first.`
  )
}

function consoleCheck(c: DialContext, r: {keyType: string; fingerprint: string}): string {
  return `\`${consoleFingerprintCommand(r.keyType)}\` on ${c.host.name}'s console prints ${r.fingerprint}`
}

/**
 * The one table of SSH error translations: every failure of the SSH layer (a socket error, an
 * ssh2 error level, a rejected host key, a lost connection) becomes the SshError the user reads.
 */
export const sshErrors = {
  /** ssh.connectTimeout passed in this phase of the connection. */
  connectTimeout(c: DialContext, phase: DialPhase): SshError {
    const {host, target, through, timeout, inv} = c
    const reasons = {
      connect: `unreachable: no answer from ${target}${through} within ${timeout} (ssh.connectTimeout)`,
      handshake: `connected to ${target}${through}, but no SSH handshake within ${timeout} (ssh.connectTimeout)`,
      auth: `login to ${target}${through} did not finish within ${timeout} (ssh.connectTimeout)`,
    }
    const hints = {
      connect: `Check that ${host.name} is up and that ${host.address} (${host.role === 'bastion' ? 'bastion.publicAddress' : 'web.nodes[].address'} in ${inv}) is right; a firewall may drop packets to port ${c.port}. Raise ssh.connectTimeout for slow links.`,
      handshake: `Something accepted the connection but did not speak SSH: check ssh.port in ${inv} and that sshd runs on ${host.name}.`,
      auth: 'The host is slow to accept the login (or the ssh-agent waits for a confirmation). Raise ssh.connectTimeout if it is just slow.',
    }
    return new SshError('timeout', host.name, reasons[phase], {hint: hints[phase]})
  },

  /** ssh2 `client-authentication`: the host refused the key or the agent's keys (or the agent failed). */
  authRefused(c: DialContext, auth: SshAuth, keyFingerprint: string | undefined, agentError: Error | undefined, cause: Error): SshError {
    const {user, target, through, inv} = c
    const reason =
      auth.kind === 'key'
        ? `${user}@${target}${through} refused key ${auth.display} (${keyFingerprint})`
        : agentError
          ? `cannot log in as ${user} to ${target}${through}: the ssh-agent at ${auth.socket} failed: ${agentError.message}`
          : `${user}@${target}${through} accepted none of the ssh-agent's keys (SSH_AUTH_SOCK=${auth.socket})`
    const hint =
      auth.kind === 'key'
        ? `Put the public key (\`ssh-keygen -y -f ${auth.path}\`) in ~${user}/.ssh/authorized_keys on ${c.host.name}, or fix ssh.user / ssh.privateKey in ${inv}. infra uses keys only, never passwords.`
        : `\`ssh-add -l\` lists the agent's keys; add the right one with \`ssh-add KEYFILE\`, or set ssh.privateKey in ${inv}. infra uses keys only, never passwords.`
    return new SshError('auth', c.host.name, reason, {hint, cause})
  },

  /** ssh2 `client-socket` during the handshake. */
  brokenInHandshake(c: DialContext, err: Error): SshError {
    return new SshError('unreachable', c.host.name, `the connection to ${c.target}${c.through} broke during the SSH handshake: ${err.message}`, {cause: err})
  },

  /** Any other ssh2 error before login. */
  handshakeFailed(c: DialContext, err: Error): SshError {
    return new SshError('handshake', c.host.name, `SSH handshake with ${c.target}${c.through} failed: ${err.message}`, {
      cause: err,
      hint: `Check that sshd (OpenSSH) listens on port ${c.port} of ${c.host.name} and allows modern algorithms (curve25519-sha256, ssh-ed25519, aes*-gcm or chacha20-poly1305).`,
    })
  },

  closedBeforeLogin(c: DialContext): SshError {
    return new SshError('unreachable', c.host.name, `${c.target}${c.through} closed the connection before login`, {
      hint: `sshd on ${c.host.name} dropped the connection (MaxStartups, a TCP wrapper, or an AllowUsers/DenyUsers rule for ${c.user}?). Its log says why: journalctl -u ssh.`,
    })
  },

  /** ssh2's connect() threw. */
  cannotStart(c: DialContext, error: unknown): SshError {
    return new SshError('handshake', c.host.name, `cannot start SSH to ${c.target}: ${(error as Error).message}`, {cause: error})
  },

  /** A TCP connection straight to the bastion failed. */
  tcpFailed(c: DialContext, err: NodeJS.ErrnoException): SshError {
    const reason = `cannot connect to ${c.target}: ${ERRNO_TEXT[err.code ?? ''] ?? err.message}`
    return new SshError(err.code === 'ETIMEDOUT' ? 'timeout' : 'unreachable', c.host.name, reason, {
      cause: err,
      hint:
        err.code === 'ECONNREFUSED'
          ? `Nothing listens on port ${c.port} at ${c.host.address}, or a firewall rejects it: check bastion.publicAddress and ssh.port in ${c.inv}, and that sshd runs.`
          : `Check bastion.publicAddress in ${c.inv} and this machine's network.`,
    })
  },

  /** The bastion could not open the tunnel to a web node's sshd. */
  tunnelFailed(c: DialContext, bastion: string, err: Error & {reason?: number | string}): SshError {
    const desc = err.message.replace(CHANNEL_FAILURE, '')
    if (err.reason === 1) {
      return new SshError('unreachable', c.host.name, `bastion ${bastion} refused to open a tunnel to ${c.target} (${desc})`, {
        hint: `sshd on the bastion must allow TCP forwarding for ${c.user} (AllowTcpForwarding yes or local; DisableForwarding no).`,
      })
    }
    return new SshError(/timed out/i.test(desc) ? 'timeout' : 'unreachable', c.host.name, `cannot connect to ${c.target}${c.through}: ${desc}`, {
      hint: `Check that ${c.host.name} is up, that ${c.host.address} (web.nodes[].address in ${c.inv}) is right, and that sshd runs on it.`,
    })
  },

  /** A key not in ssh.hostKeys for the host. */
  hostKeyNotListed(c: DialContext, r: Rejected<'unexpected'>, listed: readonly string[]): SshError {
    const name = c.host.name
    return new SshError(
      'hostkey-unexpected',
      name,
      `${c.target} presented host key ${r.keyType} ${r.fingerprint}, which is not in ssh.hostKeys.${name} (${c.inv}): ` +
        `${listed.join(', ')}. infra stopped before logging in. If ${consoleCheck(c, r)}, put that fingerprint in ssh.hostKeys.${name}; ` +
        `if not, someone may be intercepting the connection: do not go on.`,
      {hint: intercepted(c)},
    )
  },

  /** A key other than the fingerprint trusted with `infra hosts trust`. */
  hostKeyNotTrusted(c: DialContext, r: Rejected<'unexpected'>): SshError {
    const name = c.host.name
    const trusted = r.pending.map((p) => p.fingerprint).join(', ')
    const lines = r.pending.map((p) => p.line).join(', ')
    return new SshError(
      'hostkey-unexpected',
      name,
      `${c.target} presented host key ${r.keyType} ${r.fingerprint}, which is not the fingerprint trusted with \`infra hosts trust ${name}\` ` +
        `(${trusted}, ${c.knownHostsPath} line ${lines}). infra stopped before logging in. If ${consoleCheck(c, r)}, run \`infra hosts forget ${name}${c.configFlag}\` then ` +
        `\`infra hosts trust ${name} ${r.fingerprint}${c.configFlag}\`; if not, someone may be intercepting the connection: do not go on.`,
      {hint: intercepted(c)},
    )
  },

  hostKeyRevoked(c: DialContext, r: Rejected<'revoked'>): SshError {
    return new SshError(
      'hostkey-revoked',
      c.host.name,
      `${c.target} presented host key ${r.keyType} ${r.fingerprint}, which is marked @revoked in ${c.knownHostsPath} (line ${r.entry.line})`,
      {hint: 'The host must get a new host key; do not use it until it has one.'},
    )
  },

  hostKeyChanged(c: DialContext, r: Rejected<'mismatch'>): SshError {
    const pinned = r.pinned.map((p) => `${p.keyType} ${p.fingerprint}`).join(', ')
    return new SshError(
      'hostkey-changed',
      c.host.name,
      `host key of ${c.target} has CHANGED: pinned ${pinned} (${c.knownHostsPath}), presented ${r.keyType} ${r.fingerprint}. ` +
        'Either the host was reinstalled or its keys were regenerated, or someone is intercepting the connection.',
      {
        hint: `If you expect this change, check the new fingerprint on the host's console (\`${consoleFingerprintCommand(r.keyType)}\`), then run \`infra hosts forget ${c.host.name}${c.configFlag}\` and connect again.`,
      },
    )
  },

  knownHostsUnusable(c: DialContext, error: unknown): SshError {
    return new SshError('handshake', c.host.name, `cannot read or write ${c.knownHostsPath}: ${(error as Error).message}`, {cause: error})
  },

  /** A web node's connection failed because of its bastion's (`error`). Other errors pass unchanged. */
  bastionDown(host: string, bastion: string, error: unknown): Error {
    if (!(error instanceof SshError)) return error instanceof Error ? error : new Error(String(error))
    const down = error.kind === 'unreachable' || error.kind === 'timeout' || error.kind === 'handshake' || error.kind === 'closed'
    const reason = down ? `bastion ${bastion} is down: ${error.reason}` : `cannot go through bastion ${bastion}: ${error.reason}`
    return new SshError('bastion-down', host, reason, {hint: error.hint, cause: error})
  },

  /** A connection in use broke (`lastError`: the client's last error, if any). */
  connectionLost(host: HostSpec, lastError?: Error): SshError {
    const why = lastError ? `: ${lastError.message}` : ''
    return new SshError('closed', host.name, `the SSH connection to ${host.address} was lost${why}`, {
      hint: 'Run the command again; if it keeps happening, check the host (`infra doctor`).',
    })
  },

  /** A channel (a tunnel) asked of a connection that is gone. */
  channelLost(host: string, reason = 'the SSH connection was lost'): SshError {
    return new SshError('closed', host, reason)
  },

  sessionRefused(host: string, error: Error): SshError {
    return new SshError('closed', host, `could not start a command: ${error.message}`, {
      cause: error,
      hint: 'sshd refused a new session; check MaxSessions in its configuration.',
    })
  },

  commandTimeout(host: string, limitMs: number): SshError {
    return new SshError('command-timeout', host, `a command did not finish within ${formatMs(limitMs)} and was stopped`, {
      hint: 'Run it by hand (`infra ssh HOST`) to see where it hangs.',
    })
  },

  /** Fleet.tunnel: the bastion could not open a TCP stream to `address:port`. */
  streamFailed(bastion: string, address: string, port: number, err: Error): SshError {
    return new SshError('unreachable', bastion, `cannot open a tunnel to ${address}:${port}: ${err.message.replace(CHANNEL_FAILURE, '')}`)
  },
}
