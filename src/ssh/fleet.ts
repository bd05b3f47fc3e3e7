import net from 'node:net'
import {constants as osConstants} from 'node:os'
import path from 'node:path'
import type {Duplex, Readable} from 'node:stream'
import type {Client, ClientChannel, ConnectConfig} from 'ssh2'

import {fileLabel, type LoadedInventory} from '../inventory/load.js'
import {configOf} from '../inventory/config.js'
import {hostsOf, HostSpec, Inventory} from '../inventory/schema.js'
import {ConfigError, UsageError} from '../lib/errors.js'
import {authFromInventory, describeAuth, SshAuth} from './auth.js'
import {remoteCommand, TIMEOUT_EXIT_CODES} from './command.js'
import {SshError} from './errors.js'
import {fingerprint, hostKeyAlgorithmsFor} from './known-hosts.js'
import {checkAndPin, identityOf, pinAnnouncedKey, pinnedKeys, readKnownHosts} from './pins.js'

/**
 * Connections to the fleet. Keys only; host keys pinned in the known_hosts file beside the
 * inventory (on first use, unless ssh.hostKeys or a pending pin from `infra hosts trust` says
 * which key to expect, which then holds on the first contact too); web nodes reached only through a tunnel over the bastion's connection
 * (`forwardOut`), never directly. One connection per host per Fleet, opened on first use; the
 * bastion's connection carries its own commands and every web node's tunnel.
 *
 * ssh2 is imported on first connect, so importing this module costs nothing at CLI start-up.
 */

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

export interface FleetOptions {
  /** Limit `hosts` (and forEach) to these host names. */
  only?: string[]
  /**
   * Called when a host's key is pinned (first contact, or a key of a better type the host
   * announced). Without it, `event.message` is written to stderr: a pin is never silent.
   */
  onHostKeyNew?: (e: HostKeyEvent) => void
  /** Override ssh.connectTimeout (ms). */
  connectTimeoutMs?: number
  /** Environment to read SSH_AUTH_SOCK from (tests). */
  env?: NodeJS.ProcessEnv
}

export type ForEachResult<T> = {ok: true; value: T} | {ok: false; error: Error}

type Ssh2 = typeof import('ssh2')
let ssh2Module: Promise<Ssh2> | undefined
function loadSsh2(): Promise<Ssh2> {
  ssh2Module ??= import('ssh2').then((m) => (m as unknown as {default?: Ssh2}).default ?? m)
  return ssh2Module
}

/**
 * At most this many commands at once on one connection. sshd's MaxSessions defaults to 10, and a
 * finished session still counts until sshd has collected its channel: 5 running + 5 closing fit.
 */
const SESSIONS_PER_CONNECTION = 5

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/** The name OpenSSH gives a host key file of this type: /etc/ssh/ssh_host_<name>_key. */
function hostKeyFileType(keyType: string): string {
  if (keyType.startsWith('ecdsa-')) return 'ecdsa'
  return keyType.replace(/^ssh-/, '')
}

/** The command that prints a host key's fingerprint on the host itself (its console). */
export function consoleFingerprintCommand(keyType: string): string {
  return `ssh-keygen -lf /etc/ssh/ssh_host_${hostKeyFileType(keyType)}_key.pub`
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

/** What an aborted exec rejects with: the signal's reason (an AbortError unless the caller gave one). */
function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason
  if (r instanceof Error) return r
  const e = new Error(r === undefined ? 'the command was stopped' : String(r))
  e.name = 'AbortError'
  return e
}

function signalNumber(signal: string | undefined): number | undefined {
  if (!signal) return undefined
  return (osConstants.signals as Record<string, number>)[signal]
}

class Connection implements HostConnection {
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
    const why = this.lastError ? `: ${this.lastError.message}` : ''
    return new SshError('closed', this.host.name, `the SSH connection to ${this.host.address} was lost${why}`, {
      hint: 'Run the command again; if it keeps happening, check the host (`infra doctor`).',
    })
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
          reject(
            new SshError('closed', this.host.name, `could not start a command: ${error.message}`, {
              cause: error,
              hint: 'sshd refused a new session; check MaxSessions in its configuration.',
            }),
          )
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
    const timedOut = () =>
      new SshError('command-timeout', this.host.name, `a command did not finish within ${formatMs(limit!)} and was stopped`, {
        hint: 'Run it by hand (`infra ssh HOST`) to see where it hangs.',
      })
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

/** How to pass `-c` in a suggested command, when the inventory is not ./infra.yaml. */
export function configFlag(loaded: LoadedInventory): string {
  if (path.resolve('infra.yaml') === loaded.path) return ''
  return ` -c ${fileLabel(loaded.path)}`
}

export class Fleet {
  /** The hosts this fleet works on (all of the inventory, or those named in `only`), bastion first. */
  readonly hosts: HostSpec[]
  readonly bastion: HostSpec
  readonly user: string
  readonly port: number
  readonly connectTimeoutMs: number
  readonly parallel: number
  private readonly all: HostSpec[]
  private readonly auth: SshAuth
  private readonly memo = new Map<string, Promise<Connection>>()
  private readonly live = new Set<Connection>()
  /** known_hosts writes still running (a key a host announced): close() waits for them. */
  private readonly writes = new Set<Promise<unknown>>()
  private key?: {privateKey: Buffer; fingerprint: string}

  private constructor(
    readonly loaded: LoadedInventory,
    private readonly opts: FleetOptions,
  ) {
    const inv = loaded.inventory
    this.all = hostsOf(inv)
    this.bastion = this.all[0]
    this.user = inv.ssh.user
    this.port = inv.ssh.port
    this.parallel = inv.ssh.parallel
    this.connectTimeoutMs = opts.connectTimeoutMs ?? configOf(inv).ms.sshConnectTimeout
    if (opts.only) {
      const valid = new Set(this.all.map((h) => h.name))
      const unknown = opts.only.filter((n) => !valid.has(n))
      if (unknown.length > 0) throw unknownHost(unknown[0], this.all)
      this.hosts = this.all.filter((h) => opts.only!.includes(h.name))
    } else {
      this.hosts = [...this.all]
    }
    checkHostKeys(loaded, this.all)
    this.auth = authFromInventory(loaded, opts.env)
  }

  /** The fingerprints ssh.hostKeys gives for a host (empty: none). */
  private listedKeys(host: HostSpec): string[] {
    return this.loaded.inventory.ssh.hostKeys?.[host.name] ?? []
  }

  private hostKeyEvent(e: Omit<HostKeyEvent, 'message'>, via?: string): void {
    const event: HostKeyEvent = {...e, message: hostKeyMessage(e, {configFlag: configFlag(this.loaded), via})}
    if (this.opts.onHostKeyNew) this.opts.onHostKeyNew(event)
    else process.stderr.write(event.message + '\n')
  }

  /**
   * A fleet for an inventory. Nothing connects yet (connections open on first use), but the
   * auth settings are checked now: a missing or passphrase-protected key, or no key and no
   * agent, throws ConfigError.
   */
  static open(loaded: LoadedInventory, opts: FleetOptions = {}): Fleet {
    return new Fleet(loaded, opts)
  }

  /** The inventory host with this name (any host, not only those in `hosts`). */
  host(name: string): HostSpec {
    const h = this.all.find((x) => x.name === name)
    if (!h) throw unknownHost(name, this.all)
    return h
  }

  /**
   * The connection to a host, opened on first use and shared afterwards. Web nodes are reached
   * through the bastion's connection. A failed connection is remembered for the Fleet's life,
   * so that when the bastion is down every web node says so at once (no N timeouts); a
   * connection that closes is forgotten and reopened on next use.
   */
  connect(name: string): Promise<HostConnection> {
    return this.memoConnect(name)
  }

  private memoConnect(name: string): Promise<Connection> {
    const host = this.host(name)
    let p = this.memo.get(name)
    if (!p) {
      const created: Promise<Connection> = this.establish(host, () => this.memoConnect(this.bastion.name))
      p = created
      this.memo.set(name, created)
      created.then(
        (conn) =>
          conn.onClose(() => {
            if (this.memo.get(name) === created) this.memo.delete(name)
          }),
        () => {},
      )
    }
    return p
  }

  /** The operator's host key pins as they are now (known_hosts beside the inventory; '' when absent). */
  async knownHosts(): Promise<string> {
    return readKnownHosts(this.loaded.knownHostsPath)
  }

  /**
   * A new, separate connection to a host, not shared and not remembered; for a web node it
   * goes through a new bastion connection too. Use it to prove that a change to sshd or the
   * firewall still lets the operator in. Close it when done.
   */
  async connectFresh(name: string): Promise<HostConnection> {
    const host = this.host(name)
    if (host.role === 'bastion') return this.dial(host)
    let jump: Connection
    try {
      jump = await this.dial(this.bastion)
    } catch (error) {
      throw this.bastionDown(host, error)
    }
    try {
      const conn = await this.dial(host, jump)
      conn.own(jump)
      return conn
    } catch (error) {
      await jump.close()
      throw error
    }
  }

  /** A TCP stream to `address:port` opened by the bastion (e.g. a web node's HTTP port). */
  async tunnel(address: string, port: number): Promise<Duplex> {
    const b = await this.memoConnect(this.bastion.name)
    return new Promise<Duplex>((resolve, reject) => {
      try {
        b.client.forwardOut('127.0.0.1', 0, address, port, (err, stream) => {
          if (err) {
            reject(
              new SshError('unreachable', this.bastion.name, `cannot open a tunnel to ${address}:${port}: ${err.message.replace(/^\(SSH\) Channel open failure: /, '')}`),
            )
          } else resolve(stream)
        })
      } catch {
        reject(new SshError('closed', this.bastion.name, 'the SSH connection to the bastion was lost'))
      }
    })
  }

  /**
   * Run `fn` on every host (or `opts.hosts`), at most `concurrency` (default ssh.parallel) at
   * once. One host failing (to connect or in `fn`) does not stop the others. The map is in
   * host order.
   */
  async forEach<T>(
    fn: (conn: HostConnection) => Promise<T>,
    opts: {concurrency?: number; hosts?: string[]} = {},
  ): Promise<Map<string, ForEachResult<T>>> {
    const names = opts.hosts ?? this.hosts.map((h) => h.name)
    for (const n of names) this.host(n)
    const results = new Map<string, ForEachResult<T>>()
    let next = 0
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]
        try {
          const conn = await this.connect(name)
          results.set(name, {ok: true, value: await fn(conn)})
        } catch (error) {
          results.set(name, {ok: false, error: error instanceof Error ? error : new Error(String(error))})
        }
      }
    }
    const n = Math.max(1, Math.min(opts.concurrency ?? this.parallel, names.length))
    await Promise.all(Array.from({length: n}, () => worker()))
    return new Map(names.map((name) => [name, results.get(name)!]))
  }

  /** Close every connection this fleet opened (web nodes first, then the bastion). */
  async close(): Promise<void> {
    // All at once: a web node's session ends with the bastion's (its channel closes), so waiting
    // for the web nodes first only adds a round trip.
    await Promise.all([...this.live].map((c) => c.close()))
    await Promise.all([...this.writes])
    this.memo.clear()
  }

  // --- connecting ---------------------------------------------------------------------------

  private async establish(host: HostSpec, jump: () => Promise<Connection>): Promise<Connection> {
    if (host.role === 'bastion') return this.dial(host)
    let via: Connection
    try {
      via = await jump()
    } catch (error) {
      throw this.bastionDown(host, error)
    }
    return this.dial(host, via)
  }

  private bastionDown(host: HostSpec, error: unknown): Error {
    if (!(error instanceof SshError)) return error instanceof Error ? error : new Error(String(error))
    const b = this.bastion.name
    const down = error.kind === 'unreachable' || error.kind === 'timeout' || error.kind === 'handshake' || error.kind === 'closed'
    const reason = down ? `bastion ${b} is down: ${error.reason}` : `cannot go through bastion ${b}: ${error.reason}`
    return new SshError('bastion-down', host.name, reason, {hint: error.hint, cause: error})
  }

  private loadKey(ssh2: Ssh2): {privateKey: Buffer; fingerprint: string} | undefined {
    if (this.auth.kind !== 'key') return undefined
    if (!this.key) {
      const parsed = ssh2.utils.parseKey(this.auth.text)
      const key = Array.isArray(parsed) ? parsed[0] : parsed
      if (key instanceof Error || !key || !key.isPrivateKey()) {
        const why = key instanceof Error ? key.message : 'no private key in the file'
        throw new ConfigError(`${this.loaded.path}: ssh.privateKey: cannot use ${this.auth.path}: ${why}`, {
          hint: 'Use an unencrypted OpenSSH or PEM private key (ed25519, ecdsa or rsa), or remove ssh.privateKey to use the ssh-agent.',
        })
      }
      this.key = {privateKey: this.auth.text, fingerprint: fingerprint(key.getPublicSSH())}
    }
    return this.key
  }

  private async dial(host: HostSpec, via?: Connection): Promise<Connection> {
    const ssh2 = await loadSsh2()
    const key = this.loadKey(ssh2)
    const id = identityOf(host, this.port)
    const knownHostsPath = this.loaded.knownHostsPath
    const pinnedTypes = pinnedKeys(await readKnownHosts(knownHostsPath), id).map((k) => k.keyType)
    const listed = this.listedKeys(host)
    const target = `${host.address}:${this.port}`
    const through = via ? ` through bastion ${via.host.name}` : ''
    const timeout = formatMs(this.connectTimeoutMs)
    const inv = fileLabel(this.loaded.path)
    const user = this.user
    const auth = this.auth

    return new Promise<Connection>((resolve, reject) => {
      const client = new ssh2.Client()
      let settled = false
      let phase: 'connect' | 'handshake' | 'auth' = 'connect'
      let hostKeyError: SshError | undefined
      let agentError: Error | undefined
      let sock: Duplex | undefined
      /** The type of the key the host presented and we accepted. */
      let presented: string | undefined

      const fail = (err: Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        try {
          client.end()
        } catch {}
        sock?.destroy()
        reject(err)
      }

      const timer = setTimeout(() => {
        const reasons = {
          connect: `unreachable: no answer from ${target}${through} within ${timeout} (ssh.connectTimeout)`,
          handshake: `connected to ${target}${through}, but no SSH handshake within ${timeout} (ssh.connectTimeout)`,
          auth: `login to ${target}${through} did not finish within ${timeout} (ssh.connectTimeout)`,
        }
        const hints = {
          connect: `Check that ${host.name} is up and that ${host.address} (${host.role === 'bastion' ? 'bastion.publicAddress' : 'web.nodes[].address'} in ${inv}) is right; a firewall may drop packets to port ${this.port}. Raise ssh.connectTimeout for slow links.`,
          handshake: `Something accepted the connection but did not speak SSH: check ssh.port in ${inv} and that sshd runs on ${host.name}.`,
          auth: 'The host is slow to accept the login (or the ssh-agent waits for a confirmation). Raise ssh.connectTimeout if it is just slow.',
        }
        fail(new SshError('timeout', host.name, reasons[phase], {hint: hints[phase]}))
      }, this.connectTimeoutMs)

      client.on('error', (err: Error & {level?: string}) => {
        if (settled) return
        if (err.level === 'agent') {
          agentError = err
          return
        }
        if (hostKeyError) return fail(hostKeyError)
        if (err.level === 'client-authentication') {
          const reason =
            auth.kind === 'key'
              ? `${user}@${target}${through} refused key ${auth.display} (${key!.fingerprint})`
              : agentError
                ? `cannot log in as ${user} to ${target}${through}: the ssh-agent at ${auth.socket} failed: ${agentError.message}`
                : `${user}@${target}${through} accepted none of the ssh-agent's keys (SSH_AUTH_SOCK=${auth.socket})`
          const hint =
            auth.kind === 'key'
              ? `Put the public key (\`ssh-keygen -y -f ${auth.path}\`) in ~${user}/.ssh/authorized_keys on ${host.name}, or fix ssh.user / ssh.privateKey in ${inv}. infra uses keys only, never passwords.`
              : `\`ssh-add -l\` lists the agent's keys; add the right one with \`ssh-add KEYFILE\`, or set ssh.privateKey in ${inv}. infra uses keys only, never passwords.`
          return fail(new SshError('auth', host.name, reason, {hint, cause: err}))
        }
        if (err.level === 'client-socket' && phase === 'handshake') {
          return fail(
            new SshError('unreachable', host.name, `the connection to ${target}${through} broke during the SSH handshake: ${err.message}`, {cause: err}),
          )
        }
        fail(
          new SshError('handshake', host.name, `SSH handshake with ${target}${through} failed: ${err.message}`, {
            cause: err,
            hint: `Check that sshd (OpenSSH) listens on port ${this.port} of ${host.name} and allows modern algorithms (curve25519-sha256, ssh-ed25519, aes*-gcm or chacha20-poly1305).`,
          }),
        )
      })
      client.on('handshake', () => {
        phase = 'auth'
      })
      client.on('close', () => {
        if (hostKeyError) return fail(hostKeyError)
        fail(
          new SshError('unreachable', host.name, `${target}${through} closed the connection before login`, {
            hint: `sshd on ${host.name} dropped the connection (MaxStartups, a TCP wrapper, or an AllowUsers/DenyUsers rule for ${user}?). Its log says why: journalctl -u ssh.`,
          }),
        )
      })
      // OpenSSH announces all its host keys after the login (hostkeys-00@openssh.com) and ssh2
      // keeps those it proves the host holds. When the key that verified this connection is not
      // Ed25519 (an ECDSA or RSA pin, e.g. from an imported known_hosts), pin the host's Ed25519
      // key too: infra then asks for it first, and the sshd it installs no longer offers ECDSA.
      client.on('hostkeys', (keys) => {
        if (presented === undefined || presented === 'ssh-ed25519') return
        const ed = keys.find((k) => k.type === 'ssh-ed25519')
        if (!ed) return
        const blob = ed.getPublicSSH()
        const via = presented
        const w = pinAnnouncedKey(knownHostsPath, id, blob, listed).then(
          (written) => {
            if (written) this.hostKeyEvent({host, keyType: 'ssh-ed25519', fingerprint: fingerprint(blob), knownHostsPath, trust: 'announced'}, via)
          },
          () => {},
        )
        this.writes.add(w)
        void w.finally(() => this.writes.delete(w))
      })
      client.once('ready', () => {
        if (settled) {
          client.end()
          return
        }
        settled = true
        clearTimeout(timer)
        const conn = new Connection(host, client, user)
        this.live.add(conn)
        conn.onClose(() => this.live.delete(conn))
        resolve(conn)
      })

      const hostVerifier = (blob: Buffer, verify: (ok: boolean) => void) => {
        checkAndPin(knownHostsPath, id, blob, listed).then(
          (r) => {
            if (r.status === 'match') {
              presented = r.keyType
              return verify(true)
            }
            if (r.status === 'new' || r.status === 'expected') {
              presented = r.keyType
              const trust = r.status === 'new' ? 'first-use' : r.by
              this.hostKeyEvent({host, keyType: r.keyType, fingerprint: r.fingerprint, knownHostsPath, trust})
              return verify(true)
            }
            const forget = `infra hosts forget ${host.name}${configFlag(this.loaded)}`
            if (r.status === 'unexpected') {
              // The fix is in the message itself: provision prints messages, not hints.
              const check = `\`${consoleFingerprintCommand(r.keyType)}\` on ${host.name}'s console prints ${r.fingerprint}`
              const hint =
                `Read the fingerprint on ${host.name}'s own console (your provider's web console), not over SSH: an intercepted ` +
                `connection would show you the interceptor's key. infra asks hosts for their ssh-ed25519 key first.`
              if (listed.length > 0 && !listed.includes(r.fingerprint)) {
                hostKeyError = new SshError(
                  'hostkey-unexpected',
                  host.name,
                  `${target} presented host key ${r.keyType} ${r.fingerprint}, which is not in ssh.hostKeys.${host.name} (${inv}): ` +
                    `${listed.join(', ')}. infra stopped before logging in. If ${check}, put that fingerprint in ssh.hostKeys.${host.name}; ` +
                    `if not, someone may be intercepting the connection: do not go on.`,
                  {hint},
                )
              } else {
                const trusted = r.pending.map((p) => p.fingerprint).join(', ')
                const lines = r.pending.map((p) => p.line).join(', ')
                hostKeyError = new SshError(
                  'hostkey-unexpected',
                  host.name,
                  `${target} presented host key ${r.keyType} ${r.fingerprint}, which is not the fingerprint trusted with \`infra hosts trust ${host.name}\` ` +
                    `(${trusted}, ${knownHostsPath} line ${lines}). infra stopped before logging in. If ${check}, run \`${forget}\` then ` +
                    `\`infra hosts trust ${host.name} ${r.fingerprint}${configFlag(this.loaded)}\`; if not, someone may be intercepting the connection: do not go on.`,
                  {hint},
                )
              }
            } else if (r.status === 'revoked') {
              hostKeyError = new SshError(
                'hostkey-revoked',
                host.name,
                `${target} presented host key ${r.keyType} ${r.fingerprint}, which is marked @revoked in ${knownHostsPath} (line ${r.entry.line})`,
                {hint: 'The host must get a new host key; do not use it until it has one.'},
              )
            } else {
              const pinned = r.pinned.map((p) => `${p.keyType} ${p.fingerprint}`).join(', ')
              hostKeyError = new SshError(
                'hostkey-changed',
                host.name,
                `host key of ${target} has CHANGED: pinned ${pinned} (${knownHostsPath}), presented ${r.keyType} ${r.fingerprint}. ` +
                  'Either the host was reinstalled or its keys were regenerated, or someone is intercepting the connection.',
                {
                  hint: `If you expect this change, check the new fingerprint on the host's console (\`ssh-keygen -lf /etc/ssh/ssh_host_${hostKeyFileType(r.keyType)}_key.pub\`), then run \`${forget}\` and connect again.`,
                },
              )
            }
            verify(false)
          },
          (error: unknown) => {
            hostKeyError = new SshError('handshake', host.name, `cannot read or write ${knownHostsPath}: ${(error as Error).message}`, {cause: error})
            verify(false)
          },
        )
      }

      const start = (s: Duplex) => {
        sock = s
        phase = 'handshake'
        const cfg: ConnectConfig = {
          sock: s as ConnectConfig['sock'],
          username: user,
          authHandler: [auth.kind === 'key' ? 'publickey' : 'agent'],
          hostVerifier,
          readyTimeout: 0,
          keepaliveInterval: 15_000,
          keepaliveCountMax: 4,
          algorithms: {serverHostKey: hostKeyAlgorithmsFor(pinnedTypes) as NonNullable<ConnectConfig['algorithms']>['serverHostKey']},
        }
        if (key) cfg.privateKey = key.privateKey
        else if (auth.kind === 'agent') cfg.agent = auth.socket
        try {
          client.connect(cfg)
        } catch (error) {
          fail(new SshError('handshake', host.name, `cannot start SSH to ${target}: ${(error as Error).message}`, {cause: error}))
        }
      }

      if (via) {
        try {
          via.client.forwardOut('127.0.0.1', 0, host.address, this.port, (err, stream) => {
            if (err) {
              const e = err as Error & {reason?: number | string}
              if (via.closed) return fail(this.bastionDown(host, via.lost()))
              const desc = e.message.replace(/^\(SSH\) Channel open failure: /, '')
              if (e.reason === 1) {
                return fail(
                  new SshError('unreachable', host.name, `bastion ${via.host.name} refused to open a tunnel to ${target} (${desc})`, {
                    hint: `sshd on the bastion must allow TCP forwarding for ${user} (AllowTcpForwarding yes or local; DisableForwarding no).`,
                  }),
                )
              }
              const kind = /timed out/i.test(desc) ? 'timeout' : 'unreachable'
              return fail(
                new SshError(kind, host.name, `cannot connect to ${target}${through}: ${desc}`, {
                  hint: `Check that ${host.name} is up, that ${host.address} (web.nodes[].address in ${inv}) is right, and that sshd runs on it.`,
                }),
              )
            }
            if (settled) {
              stream.destroy()
              return
            }
            start(stream)
          })
        } catch {
          fail(this.bastionDown(host, new SshError('closed', via.host.name, 'the SSH connection was lost')))
        }
      } else {
        const s = net.connect({host: host.address, port: this.port})
        sock = s
        const onError = (err: NodeJS.ErrnoException) => {
          const what: Record<string, string> = {
            ECONNREFUSED: 'connection refused',
            EHOSTUNREACH: 'no route to host',
            ENETUNREACH: 'network unreachable',
            ETIMEDOUT: 'timed out',
          }
          const reason = `cannot connect to ${target}: ${what[err.code ?? ''] ?? err.message}`
          fail(
            new SshError(err.code === 'ETIMEDOUT' ? 'timeout' : 'unreachable', host.name, reason, {
              cause: err,
              hint:
                err.code === 'ECONNREFUSED'
                  ? `Nothing listens on port ${this.port} at ${host.address}, or a firewall rejects it: check bastion.publicAddress and ssh.port in ${inv}, and that sshd runs.`
                  : `Check bastion.publicAddress in ${inv} and this machine's network.`,
            }),
          )
        }
        s.once('error', onError)
        s.once('connect', () => {
          s.removeListener('error', onError)
          if (settled) {
            s.destroy()
            return
          }
          start(s)
        })
      }
    })
  }
}

// --- targets -----------------------------------------------------------------------------------

function distance(a: string, b: string): number {
  const d = Array.from({length: a.length + 1}, (_, i) => [i, ...Array.from({length: b.length}, () => 0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
  return d[a.length][b.length]
}

function unknownHost(name: string, all: HostSpec[]): UsageError {
  const names = all.map((h) => h.name)
  const near = [...names, 'all', 'web', 'bastion'].filter((n) => distance(n, name) <= 2).sort((a, b) => distance(a, name) - distance(b, name))
  const mean = near.length > 0 ? ` Did you mean "${near[0]}"?` : ''
  return new UsageError(`unknown host or target "${name}".${mean}`, {
    hint: `Valid targets: all, web, bastion, or a host name (${names.join(', ')}); separate several with commas.`,
  })
}

/**
 * ssh.hostKeys may name only hosts of the inventory (a typo would leave a host unchecked):
 * ConfigError (exit 2) before anything connects.
 */
export function checkHostKeys(loaded: LoadedInventory, all: HostSpec[] = hostsOf(loaded.inventory)): void {
  const names = all.map((h) => h.name)
  for (const name of Object.keys(loaded.inventory.ssh.hostKeys ?? {})) {
    if (names.includes(name)) continue
    const near = names.filter((n) => distance(n, name) <= 2)
    throw new ConfigError(`${fileLabel(loaded.path)}: ssh.hostKeys.${name}: no host of this inventory is named "${name}"`, {
      hint: `${near.length > 0 ? `Did you mean "${near[0]}"? ` : ''}The keys of ssh.hostKeys are host names: ${names.join(', ')}.`,
    })
  }
}

/**
 * The hosts a target names: a host name, `bastion` (the bastion whatever its name), `web`
 * (every web node, standby included), `all`, or several of these separated by commas.
 * Unknown names throw a UsageError listing the valid ones. Result in inventory order.
 */
export function resolveTarget(inv: Inventory, target: string): HostSpec[] {
  const all = hostsOf(inv)
  const picked = new Set<string>()
  const parts = target
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (parts.length === 0) throw unknownHost(target, all)
  for (const part of parts) {
    if (part === 'all') for (const h of all) picked.add(h.name)
    else if (part === 'web') for (const h of all.filter((x) => x.role === 'web')) picked.add(h.name)
    else if (part === 'bastion') picked.add(all[0].name)
    else {
      const h = all.find((x) => x.name === part)
      if (!h) throw unknownHost(part, all)
      picked.add(h.name)
    }
  }
  return all.filter((h) => picked.has(h.name))
}

/** Same as `Fleet.open` (for callers that prefer a function). */
export function openFleet(loaded: LoadedInventory, opts: FleetOptions = {}): Fleet {
  return Fleet.open(loaded, opts)
}
