import type {HostSpec, Inventory} from '../inventory/schema.js'
import type {HostDesiredState} from '../plan/types.js'
import type {DoctorFacts} from './facts.js'

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip'

export interface CheckResult {
  id: string
  /** Host name, or `internet` for the checks made from this machine. */
  host: string
  status: CheckStatus
  /** What was measured, short (e.g. `12 days`, `UP 2, MAINT 1`). */
  value: string
  message: string
  /** For warn/fail: the command to run, or the file and key to change. Empty otherwise. */
  fix: string
  /** Longer detail for people (a diff); not part of the --json contract's required keys. */
  detail?: string
}

export type Verdict = Omit<CheckResult, 'id' | 'host'>

export interface HostCheckContext {
  inventory: Inventory
  host: HostSpec
  desired: HostDesiredState
  facts: DoctorFacts
  /** Epoch seconds on this machine when the host's facts were read (midpoint of the round trip). */
  localTime: number
  /** The bastion's facts, for web-node checks that depend on HAProxy's view (undefined if unreachable). */
  bastion?: DoctorFacts
  thresholds: Thresholds
}

export interface Thresholds {
  skewWarnSec: number
  skewFailSec: number
  diskWarnPercent: number
  diskFailPercent: number
  memWarnAvailPercent: number
  memFailAvailPercent: number
  loadWarnPerCpu: number
  loadFailPerCpu: number
  certWarnDays: number
  certFailDays: number
  /** Heartbeat older than this many runs' worth of time → warn; then fail. */
  heartbeatWarnSec: number
  heartbeatFailSec: number
  /** A missing heartbeat is fine this long after the agents were installed. */
  heartbeatGraceSec: number
  pausedWarnSec: number
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  skewWarnSec: 5,
  skewFailSec: 60,
  diskWarnPercent: 80,
  diskFailPercent: 90,
  memWarnAvailPercent: 10,
  memFailAvailPercent: 3,
  loadWarnPerCpu: 2,
  loadFailPerCpu: 6,
  certWarnDays: 30,
  certFailDays: 7,
  heartbeatWarnSec: 5 * 60,
  heartbeatFailSec: 15 * 60,
  heartbeatGraceSec: 3 * 60,
  pausedWarnSec: 60 * 60,
}

export interface HostCheck {
  id: string
  roles: ('bastion' | 'web')[]
  /** Only for some inventories (e.g. with an app); absent: always. */
  applies?(ctx: Pick<HostCheckContext, 'inventory'>): boolean
  summary: string
  run(ctx: HostCheckContext): Verdict
}
