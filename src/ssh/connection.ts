import {constants as osConstants} from 'node:os'
import type {Readable} from 'node:stream'
import type {Client, ClientChannel} from 'ssh2'

import type {HostSpec} from '../inventory/schema.js'
import {remoteCommand, TIMEOUT_EXIT_CODES} from './command.js'
import {type SshError, sshErrors} from './errors.js'

/** One SSH connection to one host (opened by dial.ts): commands, each in its own session. */
export interface ExecResult {
  /** Exit status; 128 + signal number when the command was killed by a signal. Never throws on non-zero. */
  code: number
  stdout: string
  stderr: string
  /** e.g. `SIGKILL` when the command was killed by a signal. */
  signal?: string
}

export interface ExecOptions {
  /** Sent to the command's stdin, then EOF. Without it, stdin is closed at once. */
  stdin?: string | Buffer | Readable
  /** Kill the command (and fail with `command-timeout`) when it runs longer. */
  timeoutMs?: number
  /** Run under `sudo -n` (default: when the login user is not root). */
  sudo?: boolean
  /** Called with each chunk as it arrives (for live output). */
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
  /** Keep the output in the result (default true; false for large streams handled by onStdout). */
  collect?: boolean
  /**
   * Stop the command when this signal aborts (e.g. a `journalctl -f` stream on Ctrl-C): its
   * channel is closed and exec rejects with the signal's reason. The connection stays usable.
   * (sshd ignores signal requests for root sessions: the command on the host sees its output
   * closed, and ends at its next write, or at once if it watches its output, as journalctl -f does.)
   */
  signal?: AbortSignal
}

export interface HostConnection {
  readonly host: HostSpec
  /** The underlying ssh2 client, for what exec does not cover (shell with a PTY, sftp, tunnels). */
  readonly client: Client
  /**
   * Run a command with `bash -c` (under `sudo -n` when the user is not root). Resolves with the
   * exit status, stdout and stderr; rejects only when the command could not run or finish
   * (SshError `closed` or `command-timeout`).
   */
  exec(cmd: string, opts?: ExecOptions): Promise<ExecResult>
  /** Close this connection (and, for a fresh web connection, its own bastion connection). */
  close(): Promise<void>
}

/**
 * At most this many commands at once on one connection. sshd's MaxSessions defaults to 10, and a
 * finished session still counts until sshd has collected its channel: 5 running + 5 closing fit.
 */
const SESSIONS_PER_CONNECTION = 5

/** What an aborted exec rejects with: the signal's reason (an AbortError unless the caller gave one). */
function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason
  if (r instanceof Error) return r
  const e = new Error(typeof r === 'string' && r !== '' ? r : 'the command was stopped')
  e.name = 'AbortError'
  return e
}

function signalNumber(signal: string | undefined): number | undefined {
  if (!signal) return undefined
  return (osConstants.signals as Record<string, number>)[signal]
}

export class Connection implements HostConnection {
  closed = false
  lastError?: Error
  private active = 0
  private waiting: (() => void)[] = []
  private closeHooks: (() => void)[] = []
  private owned: Connection[] = []

  constructor(
    readonly host: HostSpec,
    readonly client: Client,
    private readonly user: string,
  ) {
    client.on('error', (err: Error) => {
      this.lastError = err
    })
    client.on('close', () => {
      this.closed = true
      for (const fn of this.closeHooks.splice(0)) fn()
    })
  }

  onClose(fn: () => void): void {
    if (this.closed) fn()
    else this.closeHooks.push(fn)
  }

  /** Close `other` when this connection is closed (a fresh web connection owns its bastion connection). */
  own(other: Connection): void {
    this.owned.push(other)
  }

  lost(): SshError {
    return sshErrors.connectionLost(this.host, this.lastError)
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= SESSIONS_PER_CONNECTION) await new Promise<void>((r) => this.waiting.push(r))
    this.active++
    try {
      return await fn()
    } finally {
      this.active--
      this.waiting.shift()?.()
    }
  }

  exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.slot(() => this.run(cmd, opts))
  }

  /**
   * Open a session channel running `line`. sshd counts a finished session until it has
   * collected its channel, which can be just after we opened the next one ("no more sessions"):
   * a refused open ran nothing, so it is retried a few times. `use` is called synchronously
   * with the channel, before any of its events can fire.
   */
  private openExec(line: string, use: (ch: ClientChannel) => void, reject: (e: Error) => void): void {
    let attempt = 0
    const tryOpen = () => {
      if (this.closed) return reject(this.lost())
      try {
        this.client.exec(line, (error, ch) => {
          if (!error) return use(ch)
          if (this.closed) return reject(this.lost())
          if (++attempt <= 8) {
            setTimeout(tryOpen, 25 * attempt)
            return
          }
          reject(sshErrors.sessionRefused(this.host.name, error))
        })
      } catch {
        reject(this.lost())
      }
    }
    tryOpen()
  }

  private run(cmd: string, opts: ExecOptions): Promise<ExecResult> {
    if (opts.signal?.aborted) return Promise.reject(abortReason(opts.signal))
    const limit = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? opts.timeoutMs : undefined
    const line = remoteCommand(cmd, this.user, {sudo: opts.sudo, timeoutMs: limit})
    return new Promise<ExecResult>((resolve, reject) => this.openExec(line, (ch) => this.attach(ch, opts, limit, resolve, reject), reject))
  }

  private attach(ch: ClientChannel, opts: ExecOptions, limit: number | undefined, resolve: (r: ExecResult) => void, reject: (e: Error) => void): void {
    const started = Date.now()
    const collect = opts.collect !== false
    const out: Buffer[] = []
    const err: Buffer[] = []
    let done = false
    let code: number | null | undefined
    let signal: string | undefined
    const timedOut = () => sshErrors.commandTimeout(this.host.name, limit!)
    // The host stops the command itself (`timeout`); this timer only covers a connection that
    // stopped answering, so it fires a little later.
    const timer = limit
      ? setTimeout(() => {
          if (done) return
          done = true
          ch.close()
          reject(timedOut())
        }, limit + 2000)
      : undefined
    ch.on('data', (d: Buffer) => {
      if (collect) out.push(d)
      opts.onStdout?.(d)
    })
    ch.stderr.on('data', (d: Buffer) => {
      if (collect) err.push(d)
      opts.onStderr?.(d)
    })
    ch.on('exit', (c: number | null, s?: string) => {
      code = c
      signal = s ?? undefined
    })
    ch.on('error', () => {})
    const abort = opts.signal
    const onAbort = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      ch.close()
      reject(abortReason(abort!))
    }
    abort?.addEventListener('abort', onAbort, {once: true})
    ch.on('close', () => {
      clearTimeout(timer)
      abort?.removeEventListener('abort', onAbort)
      if (opts.stdin !== undefined && typeof opts.stdin !== 'string' && !Buffer.isBuffer(opts.stdin)) opts.stdin.unpipe(ch)
      if (done) return
      done = true
      if (code === undefined) return reject(this.lost())
      // The host's `timeout` started a little before this side saw the channel open: allow for that.
      if (limit && code !== null && TIMEOUT_EXIT_CODES.includes(code) && Date.now() - started >= limit - 150) return reject(timedOut())
      const result: ExecResult = {
        code: code ?? 128 + (signalNumber(signal) ?? 127),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }
      if (signal) result.signal = signal
      resolve(result)
    })
    if (abort?.aborted) return onAbort()
    if (opts.stdin === undefined) ch.end()
    else if (typeof opts.stdin === 'string' || Buffer.isBuffer(opts.stdin)) ch.end(opts.stdin)
    else opts.stdin.pipe(ch)
  }

  async close(): Promise<void> {
    if (!this.closed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.client.destroy()
          resolve()
        }, 2000)
        this.onClose(() => {
          clearTimeout(t)
          resolve()
        })
        this.client.end()
      })
    }
    for (const o of this.owned.splice(0)) await o.close()
  }
}
