import type {HostSpec} from '../inventory/schema.js'

/** A file as it should be on a host. Rendered by src/roles, compared and applied by src/plan. */
export interface DesiredFile {
  /** Absolute path on the host. */
  path: string
  content: string
  /** Numeric mode, e.g. 0o644. */
  mode: number
  owner: string
  group: string
  /** Never show its content in a diff, a log or --json (private keys). */
  secret?: boolean
  /**
   * A command that validates the staged file before it replaces the live one; `{}` is replaced
   * by the staged path (e.g. `haproxy -c -f {}`). A failing check keeps the live file.
   */
  validate?: string
  /** Services to reload (or restart) when this file changes. */
  notify?: {service: string; action: 'reload' | 'restart'}[]
  /**
   * Applied with an automatic rollback: the change is reverted after a timeout unless a NEW SSH
   * connection made after it confirms the operator can still get in (firewall, sshd).
   * The apply engine also treats files that notify `nftables` or `ssh` as guarded.
   */
  guarded?: boolean
  /**
   * Run `systemctl daemon-reload` after this file changes (systemd units and drop-ins), before
   * any service in `notify` is reloaded or restarted.
   */
  daemonReload?: boolean
  /**
   * Runtime data seeded by provision (e.g. the bastion's ban list): created with `content` when
   * missing, never overwritten once it exists (its mode and owner are still kept right).
   */
  ifAbsent?: boolean
}

export interface DesiredService {
  name: string
  enabled: boolean
  /** true: running; false: stopped; 'keep': whatever it is (e.g. web service on standby nodes is owned by the scaler). */
  running: boolean | 'keep'
  /** Run before a reload/restart; a failure skips the reload and is reported (e.g. `nginx -t`). */
  check?: string
  /** Run after a reload/restart/start to prove it took effect (e.g. HAProxy owns :443). */
  verify?: string
  /**
   * Only with `running: 'keep'`: the state to put the service in when provision finds the host
   * not provisioned before (e.g. nginx that Debian's package just started on a standby node:
   * `false` stops it). After that, 'keep' leaves it to the scaler.
   */
  initial?: boolean
}

/** Everything provision wants on one host. */
export interface HostDesiredState {
  host: HostSpec
  packages: string[]
  files: DesiredFile[]
  services: DesiredService[]
  /** Paths to remove if present (e.g. Debian's default nginx site in sites-enabled). */
  absent?: string[]
}
