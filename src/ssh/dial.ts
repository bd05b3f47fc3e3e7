import net from 'node:net'
import type {Duplex} from 'node:stream'
import type {Client, ConnectConfig} from 'ssh2'

import {fileLabel, type LoadedInventory} from '../inventory/load.js'
import type {HostSpec} from '../inventory/schema.js'
import {ConfigError} from '../lib/errors.js'
import type {SshAuth} from './auth.js'
import {Connection} from './connection.js'
import {type DialContext, type DialPhase, formatMs, SshError, sshErrors} from './errors.js'
import {fingerprint, hostKeyAlgorithmsFor} from './known-hosts.js'
import {checkAndPin, type HostKeyEvent, identityOf, pinAnnouncedKey, pinnedKeys, readKnownHosts} from './pins.js'
import {configFlag} from './targets.js'
import type {ParsedKey} from 'ssh2'

/**
 * The dialling step: one SSH login to one host, straight to the bastion or through a tunnel over
 * the bastion's connection (`forwardOut`) for a web node. Keys only; the host key is checked
 * against (or pinned in) the known_hosts file beside the inventory. Every failure becomes an
 * SshError from the table in errors.ts.
 *
 * ssh2 is imported on first dial, so importing this module costs nothing at CLI start-up.
 */

type Ssh2 = typeof import('ssh2')
let ssh2Module: Promise<Ssh2> | undefined
function loadSsh2(): Promise<Ssh2> {
  ssh2Module ??= import('ssh2').then((m) => (m as unknown as {default?: Ssh2}).default ?? m)
  return ssh2Module
}

export interface PrivateKey {
  privateKey: Buffer
  fingerprint: string
}

/** What dialling needs from its fleet. */
export interface DialSettings {
  loaded: LoadedInventory
  user: string
  port: number
  connectTimeoutMs: number
  auth: SshAuth
  /** A host key was pinned (`via`: the type of the pinned key that verified an announced one). */
  onHostKey(e: Omit<HostKeyEvent, 'message'>, via?: string): void
  /** A known_hosts write still running (a key a host announced): the fleet waits for it on close. */
  onWrite(write: Promise<unknown>): void
  /** A connection logged in. */
  onOpen(conn: Connection): void
}

/** What one attempt knows before it starts. */
interface AttemptSetup {
  ssh2: Ssh2
  settings: DialSettings
  ctx: DialContext
  key?: PrivateKey
  via?: Connection
  listed: string[]
  pinnedTypes: string[]
}

export class Dialer {
  private key?: PrivateKey

  constructor(private readonly settings: DialSettings) {}

  /** Log in to `host`, through `via` (the bastion's connection) for a web node. */
  async dial(host: HostSpec, via?: Connection): Promise<Connection> {
    const {loaded, port} = this.settings
    const ssh2 = await loadSsh2()
    const key = this.loadKey(ssh2)
    const knownHostsPath = loaded.knownHostsPath
    const pinnedTypes = pinnedKeys(await readKnownHosts(knownHostsPath), identityOf(host, port)).map((k) => k.keyType)
    const ctx: DialContext = {
      host,
      port,
      user: this.settings.user,
      target: `${host.address}:${port}`,
      through: via ? ` through bastion ${via.host.name}` : '',
      timeout: formatMs(this.settings.connectTimeoutMs),
      inv: fileLabel(loaded.path),
      knownHostsPath,
      configFlag: configFlag(loaded),
    }
    const listed = loaded.inventory.ssh.hostKeys?.[host.name] ?? []
    return new Promise<Connection>((resolve, reject) => {
      new Attempt({ssh2, settings: this.settings, ctx, key, via, listed, pinnedTypes}, resolve, reject).begin()
    })
  }

  /** The private key of ssh.privateKey, parsed once (none with the ssh-agent). */
  private loadKey(ssh2: Ssh2): PrivateKey | undefined {
    const auth = this.settings.auth
    if (auth.kind !== 'key') return undefined
    if (!this.key) {
      // Typed as one key, but a file with several keys parses to an array at run time.
      const parsed: ParsedKey | ParsedKey[] | Error = ssh2.utils.parseKey(auth.text)
      const key: ParsedKey | Error | undefined = parsed instanceof Array ? (parsed as ParsedKey[])[0] : parsed
      if (key instanceof Error || !key || !key.isPrivateKey()) {
        const why = key instanceof Error ? key.message : 'no private key in the file'
        throw new ConfigError(`${this.settings.loaded.path}: ssh.privateKey: cannot use ${auth.path}: ${why}`, {
          hint: 'Use an unencrypted OpenSSH or PEM private key (ed25519, ecdsa or rsa), or remove ssh.privateKey to use the ssh-agent.',
        })
      }
      this.key = {privateKey: auth.text, fingerprint: fingerprint(key.getPublicSSH())}
    }
    return this.key
  }
}

/** One connection attempt: a socket (TCP or tunnel), the SSH handshake, the host key, the login. */
class Attempt {
  private readonly client: Client
  private readonly timer: NodeJS.Timeout
  private settled = false
  private phase: DialPhase = 'connect'
  private hostKeyError?: SshError
  private agentError?: Error
  private sock?: Duplex
  /** The type of the key the host presented and we accepted. */
  private presented?: string

  constructor(
    private readonly s: AttemptSetup,
    private readonly resolve: (c: Connection) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.client = new s.ssh2.Client()
    this.timer = setTimeout(() => this.fail(sshErrors.connectTimeout(s.ctx, this.phase)), s.settings.connectTimeoutMs)
  }

  begin(): void {
    const client = this.client
    client.on('error', (err: Error & {level?: string}) => this.onError(err))
    client.on('handshake', () => {
      this.phase = 'auth'
    })
    client.on('close', () => this.fail(this.hostKeyError ?? sshErrors.closedBeforeLogin(this.s.ctx)))
    client.on('hostkeys', (keys) => this.onAnnounced(keys))
    client.once('ready', () => this.onReady())
    if (this.s.via) this.tunnel(this.s.via)
    else this.direct()
  }

  private fail(err: Error): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    try {
      this.client.end()
    } catch {
      // already ended
    }
    this.sock?.destroy()
    this.reject(err)
  }

  private onError(err: Error & {level?: string}): void {
    if (this.settled) return
    if (err.level === 'agent') {
      this.agentError = err
      return
    }
    if (this.hostKeyError) return this.fail(this.hostKeyError)
    const c = this.s.ctx
    if (err.level === 'client-authentication') return this.fail(sshErrors.authRefused(c, this.s.settings.auth, this.s.key?.fingerprint, this.agentError, err))
    if (err.level === 'client-socket' && this.phase === 'handshake') return this.fail(sshErrors.brokenInHandshake(c, err))
    this.fail(sshErrors.handshakeFailed(c, err))
  }

  private onReady(): void {
    if (this.settled) {
      this.client.end()
      return
    }
    this.settled = true
    clearTimeout(this.timer)
    const conn = new Connection(this.s.ctx.host, this.client, this.s.settings.user)
    this.s.settings.onOpen(conn)
    this.resolve(conn)
  }

  /**
   * OpenSSH announces all its host keys after the login (hostkeys-00@openssh.com) and ssh2
   * keeps those it proves the host holds. When the key that verified this connection is not
   * Ed25519 (an ECDSA or RSA pin, e.g. from an imported known_hosts), pin the host's Ed25519
   * key too: infra then asks for it first, and the sshd it installs no longer offers ECDSA.
   */
  private onAnnounced(keys: {type: string; getPublicSSH(): Buffer}[]): void {
    if (this.presented === undefined || this.presented === 'ssh-ed25519') return
    const ed = keys.find((k) => k.type === 'ssh-ed25519')
    if (!ed) return
    const blob = ed.getPublicSSH()
    const via = this.presented
    const {ctx, settings, listed} = this.s
    const w = pinAnnouncedKey(ctx.knownHostsPath, identityOf(ctx.host, ctx.port), blob, listed).then(
      (written) => {
        if (written) settings.onHostKey({host: ctx.host, keyType: 'ssh-ed25519', fingerprint: fingerprint(blob), knownHostsPath: ctx.knownHostsPath, trust: 'announced'}, via)
      },
      () => {},
    )
    settings.onWrite(w)
  }

  /** ssh2's hostVerifier: accept a pinned or expected key (pinning it), refuse any other. */
  private verifyHostKey(blob: Buffer, verify: (ok: boolean) => void): void {
    const {ctx, settings, listed} = this.s
    checkAndPin(ctx.knownHostsPath, identityOf(ctx.host, ctx.port), blob, listed).then(
      (r) => {
        if (r.status === 'match' || r.status === 'new' || r.status === 'expected') {
          this.presented = r.keyType
          if (r.status !== 'match') {
            const trust = r.status === 'new' ? 'first-use' : r.by
            settings.onHostKey({host: ctx.host, keyType: r.keyType, fingerprint: r.fingerprint, knownHostsPath: ctx.knownHostsPath, trust})
          }
          return verify(true)
        }
        // The fix is in the message itself: provision prints messages, not hints.
        if (r.status === 'unexpected') {
          this.hostKeyError = listed.length > 0 && !listed.includes(r.fingerprint) ? sshErrors.hostKeyNotListed(ctx, r, listed) : sshErrors.hostKeyNotTrusted(ctx, r)
        } else if (r.status === 'revoked') this.hostKeyError = sshErrors.hostKeyRevoked(ctx, r)
        else this.hostKeyError = sshErrors.hostKeyChanged(ctx, r)
        verify(false)
      },
      (error: unknown) => {
        this.hostKeyError = sshErrors.knownHostsUnusable(ctx, error)
        verify(false)
      },
    )
  }

  /** Start the SSH handshake over `sock`. */
  private start(sock: Duplex): void {
    this.sock = sock
    this.phase = 'handshake'
    const {settings, key, pinnedTypes} = this.s
    const auth = settings.auth
    const cfg: ConnectConfig = {
      sock: sock,
      username: settings.user,
      authHandler: [auth.kind === 'key' ? 'publickey' : 'agent'],
      hostVerifier: (blob: Buffer, verify: (ok: boolean) => void) => this.verifyHostKey(blob, verify),
      readyTimeout: 0,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      algorithms: {serverHostKey: hostKeyAlgorithmsFor(pinnedTypes) as NonNullable<ConnectConfig['algorithms']>['serverHostKey']},
    }
    if (key) cfg.privateKey = key.privateKey
    else if (auth.kind === 'agent') cfg.agent = auth.socket
    try {
      this.client.connect(cfg)
    } catch (error) {
      this.fail(sshErrors.cannotStart(this.s.ctx, error))
    }
  }

  /** A web node: a tunnel to its sshd over the bastion's connection. */
  private tunnel(via: Connection): void {
    const {ctx} = this.s
    const bastionDown = (e: unknown) => sshErrors.bastionDown(ctx.host.name, via.host.name, e)
    try {
      via.client.forwardOut('127.0.0.1', 0, ctx.host.address, ctx.port, (err, stream) => {
        if (err) return this.fail(via.closed ? bastionDown(via.lost()) : sshErrors.tunnelFailed(ctx, via.host.name, err))
        if (this.settled) {
          stream.destroy()
          return
        }
        this.start(stream)
      })
    } catch {
      this.fail(bastionDown(sshErrors.channelLost(via.host.name)))
    }
  }

  /** The bastion: a TCP connection to its public address. */
  private direct(): void {
    const {ctx} = this.s
    const s = net.connect({host: ctx.host.address, port: ctx.port})
    this.sock = s
    const onError = (err: NodeJS.ErrnoException) => this.fail(sshErrors.tcpFailed(ctx, err))
    s.once('error', onError)
    s.once('connect', () => {
      s.removeListener('error', onError)
      if (this.settled) {
        s.destroy()
        return
      }
      this.start(s)
    })
  }
}
