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
}

export interface DesiredService {
  name: string
  enabled: boolean
  /** true: running; false: stopped; 'keep': whatever it is (e.g. web service on standby nodes is owned by the scaler). */
  running: boolean | 'keep'
}

/** Everything provision wants on one host. */
export interface HostDesiredState {
  host: HostSpec
  packages: string[]
  files: DesiredFile[]
  services: DesiredService[]
}
