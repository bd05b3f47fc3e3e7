import type {Duplex} from 'node:stream'

import type {LoadedInventory} from '../inventory/load.js'
import {configOf} from '../inventory/config.js'
import {hostsOf, type HostSpec} from '../inventory/schema.js'
import {mapLimit} from '../lib/pool.js'
import {authFromInventory} from './auth.js'
import type {Connection, HostConnection} from './connection.js'
import {Dialer} from './dial.js'
import {sshErrors} from './errors.js'
import {type HostKeyEvent, hostKeyMessage, readKnownHosts} from './pins.js'
import {checkHostKeys, configFlag, unknownHost} from './targets.js'

/**
 * Connections to the fleet. Keys only; host keys pinned in the known_hosts file beside the
 * inventory (on first use, unless ssh.hostKeys or a pending pin from `infra hosts trust` says
 * which key to expect, which then holds on the first contact too); web nodes reached only through a tunnel over the bastion's connection
 * (`forwardOut`), never directly. One connection per host per Fleet, opened on first use; the
 * bastion's connection carries its own commands and every web node's tunnel.
 *
 * ssh2 is imported on first connect (dial.ts), so importing this module costs nothing at CLI start-up.
 */

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

export class Fleet {
  /** The hosts this fleet works on (all of the inventory, or those named in `only`), bastion first. */
  readonly hosts: HostSpec[]
  readonly bastion: HostSpec
  readonly user: string
  readonly port: number
  readonly connectTimeoutMs: number
  readonly parallel: number
  private readonly all: HostSpec[]
  private readonly dialer: Dialer
  private readonly memo = new Map<string, Promise<Connection>>()
  private readonly live = new Set<Connection>()
  /** known_hosts writes still running (a key a host announced): close() waits for them. */
  private readonly writes = new Set<Promise<unknown>>()

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
    this.dialer = new Dialer({
      loaded,
      user: this.user,
      port: this.port,
      connectTimeoutMs: this.connectTimeoutMs,
      auth: authFromInventory(loaded, opts.env),
      onHostKey: (e, via) => this.hostKeyEvent(e, via),
      onWrite: (w) => {
        this.writes.add(w)
        void w.finally(() => this.writes.delete(w))
      },
      onOpen: (conn) => {
        this.live.add(conn)
        conn.onClose(() => this.live.delete(conn))
      },
    })
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
    if (host.role === 'bastion') return this.dialer.dial(host)
    let jump: Connection
    try {
      jump = await this.dialer.dial(this.bastion)
    } catch (error) {
      throw this.bastionDown(host, error)
    }
    try {
      const conn = await this.dialer.dial(host, jump)
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
            reject(sshErrors.streamFailed(this.bastion.name, address, port, err))
          } else resolve(stream)
        })
      } catch {
        reject(sshErrors.channelLost(this.bastion.name, 'the SSH connection to the bastion was lost'))
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
    const results = await mapLimit(names, opts.concurrency ?? this.parallel, async (name): Promise<ForEachResult<T>> => {
      try {
        const conn = await this.connect(name)
        return {ok: true, value: await fn(conn)}
      } catch (error) {
        return {ok: false, error: error instanceof Error ? error : new Error(String(error))}
      }
    })
    return new Map(names.map((name, i) => [name, results[i]]))
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
    if (host.role === 'bastion') return this.dialer.dial(host)
    let via: Connection
    try {
      via = await jump()
    } catch (error) {
      throw this.bastionDown(host, error)
    }
    return this.dialer.dial(host, via)
  }

  private bastionDown(host: HostSpec, error: unknown): Error {
    return sshErrors.bastionDown(host.name, this.bastion.name, error)
  }
}

/** Same as `Fleet.open` (for callers that prefer a function). */
export function openFleet(loaded: LoadedInventory, opts: FleetOptions = {}): Fleet {
  return Fleet.open(loaded, opts)
}
