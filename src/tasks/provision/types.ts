/** The values provision passes around: what it needs from SSH, its options, its result. */
import type {HostSpec} from '../../inventory/schema.js'
import type {HostDesiredState} from '../../plan/types.js'

/** What the provisioner needs from an SSH connection (src/ssh provides it). */
export interface Conn {
  exec(cmd: string, opts?: {stdin?: string | Buffer; timeoutMs?: number}): Promise<{code: number; stdout: string; stderr: string}>
}

/** What the provisioner needs from the fleet of connections (src/ssh provides it). */
export interface FleetLike {
  connect(name: string): Promise<Conn>
  /** A NEW connection (new TCP session), used to prove the operator can still log in after a guarded change. */
  connectFresh(name: string): Promise<Conn & {close(): Promise<void> | void}>
  close(): Promise<void>
  /** The operator's host key pins as they are now (known_hosts beside the inventory), if the fleet keeps any. */
  knownHosts?(): Promise<string>
}

export type HostPhase = 'waiting' | 'connecting' | 'facts' | 'planning' | 'applying' | 'confirming' | 'settling' | 'done' | 'failed'

export interface ProvisionOptions {
  dryRun?: boolean
  /** Limit to these host names. */
  only?: string[]
  /** Seconds before an unconfirmed firewall/sshd change reverts by itself. */
  guardSeconds?: number
  concurrency?: number
  onProgress?: (host: string, phase: HostPhase, detail?: string) => void
  /** How long to wait after changes for every node in rotation to pass HAProxy's health check. */
  settleMs?: number
}

export interface HostResult {
  host: string
  role: 'bastion' | 'web'
  ok: boolean
  /** One line per change (planned in a dry run, applied otherwise). */
  changes: string[]
  changeCount: number
  durationMs: number
  /** Unified diffs of files and lists of package/service changes (dry run). */
  diff?: string
  error?: string
  /** Tool output that explains the error (validator lines, apt, systemctl). */
  details?: string[]
  /** A guarded change (firewall, sshd) was reverted because no new connection could confirm it. */
  reverted?: boolean
}

/** A web node as HAProxy sees it after the run. */
export interface BackendServer {
  server: string
  /** UP, DOWN, MAINT, DRAIN, `UP 1/2` (going up)... */
  status: string
  check: string
}

export interface ProvisionResult {
  dryRun: boolean
  hosts: HostResult[]
  /** After changes: the web backend once every node in rotation passed its health check (or the wait ran out). */
  backends?: {settled: boolean; servers: BackendServer[]}
  totalChanges: number
  failed: string[]
  durationMs: number
  /** For the user: e.g. a certificate that expires soon. */
  warnings?: string[]
  /** The plan was shown and the operator declined it: nothing was applied. */
  declined?: boolean
}

export interface PreparedHost {
  spec: HostSpec
  desired: HostDesiredState & {absent?: string[]}
  /**
   * Bastion fact hook (agents, issue 4): on the bastion, a command whose output the web nodes'
   * desired state depends on (the agents' public key, created on the bastion and never copied off
   * it). provisionFleet runs it after the bastion is applied (first, in a dry run) and before the
   * web nodes are planned. `dryRun` asks for a read-only command.
   */
  bastionFact?: (dryRun: boolean) => string
  /** Web nodes: the desired state given the bastion fact's output (replaces `desired`). */
  withBastionFact?: (output: string) => HostDesiredState
  /**
   * Bastion: its desired state given the operator's host key pins as they are once the web nodes
   * are connected (the agents' known_hosts is seeded from them; a first contact pins them during
   * the run). provisionFleet calls it with `FleetLike.knownHosts()` before planning the bastion.
   */
  withPins?: (knownHosts: string) => HostDesiredState
  /** The desired state to plan with, awaited after the facts are read (set by provisionFleet). */
  refresh?: () => Promise<HostDesiredState & {absent?: string[]}>
}

