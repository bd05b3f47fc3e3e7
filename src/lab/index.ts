/**
 * The local lab fleet: a bastion and web nodes as real Debian 12 systemd hosts on this machine
 * (network namespaces + systemd-nspawn on overlayfs), and a ready inventory for them.
 * Commands (`infra lab up|down|status`) are thin wrappers; tests call these functions directly.
 */
export * from './topology.js'
export {acquireLock, isLockHeld, withLock} from './lock.js'
export {LAB_TEST_LOCK} from './state.js'
export {isLabInventory, LAB_MARKER, renderLabInventory} from './inventory.js'
export type {RunResult} from './run.js'
export {fmt, type Log} from './log.js'
export {labUp, type LabUpOptions} from './up.js'
export {labDown, labLeftovers, type LabDownResult, type TeardownReport} from './down.js'
export {labAddresses, labInfo, labStatus, type LabHostInfo, type LabInfo, type LabStatus} from './status.js'
export {startLoad, type LoadOptions, type LoadReport, type LoadRun} from './load.js'
export {labExec, labHostCgroup, labHostPid, labHostReady, labNetExec} from './host-access.js'

// Layers live here; exported for troubleshooting output.
export {HOSTS_DIR, LAB_STATE_DIR} from './state.js'
