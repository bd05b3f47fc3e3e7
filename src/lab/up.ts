/** Bringing the lab up: a fresh one, or the running one kept (hosts whose nspawn died started again). */
import {existsSync} from 'node:fs'
import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {schemaComment} from '../inventory/schema.js'
import {InfraError, UsageError} from '../lib/errors.js'
import {killAndRemoveCgroups, labCgroupBases} from './cgroups.js'
import {describeReport, teardown} from './down.js'
import {ensureImage, imageKey} from './image.js'
import {isLabInventory, LAB_KEY_DIR, renderLabInventory} from './inventory.js'
import {isNspawnOf, layerOf, leaderPid, prepareLayer, startHost, waitReady} from './hosts.js'
import {withLock} from './lock.js'
import {fmt, type Log, stderrLog} from './log.js'
import {checkNetwork, createNetwork, rootRoutes} from './network.js'
import {ensurePrerequisites} from './prereq.js'
import {run} from './run.js'
import {hostDir, HostState, LAB_LOCK, LabState, readState, writeState} from './state.js'
import {info, type LabInfo} from './status.js'
import {DEFAULT_STANDBY, DEFAULT_WEB, INTERNET_NETWORK, planLab, PRIVATE_NETWORK, PUBLIC_NETWORK, rangeCollisions, ROOT_LINK} from './topology.js'

export interface LabUpOptions {
  /** Inventory to write (default ./infra.yaml). */
  config?: string
  /** Active web nodes (default 1, or the running lab's count). */
  web?: number
  /** Standby web nodes (default 2, or the running lab's count). */
  standby?: number
  /** How long to wait for every host to boot (default 120 s). */
  timeoutSec?: number
  /** Progress lines (default: stderr). */
  log?: Log
}

/** Bring the lab up (or keep the running one), write its inventory, and return where everything is. */
export async function labUp(opts: LabUpOptions = {}): Promise<LabInfo> {
  const log = opts.log ?? stderrLog
  const started = Date.now()
  const config = path.resolve(opts.config ?? 'infra.yaml')
  if (opts.web !== undefined || opts.standby !== undefined) validateCounts(opts.web ?? DEFAULT_WEB, opts.standby ?? DEFAULT_STANDBY)
  await ensurePrerequisites(log)
  return withLock(LAB_LOCK, async () => {
    if (existsSync(config) && !isLabInventory(await readFile(config, 'utf8'))) {
      throw new UsageError(`${config} exists and is not a lab inventory: \`infra lab up\` will not overwrite it`, {
        hint: 'Pass another path, e.g. `infra lab up --config lab/infra.yaml`, or move the file away.',
        code: 'ELABCONFIG',
      })
    }
    let state = await readState()
    let cleanedLeftovers = false
    if (state) {
      if (state.config !== config) {
        throw new UsageError(`a lab is already running on this machine, for ${state.config}`, {
          hint: `Use it with \`--config ${state.config}\`, or stop it first with \`infra lab down\`.`,
          code: 'ELABBUSY',
        })
      }
      const web = opts.web ?? state.web
      const standby = opts.standby ?? state.standby
      if (web !== state.web || standby !== state.standby) {
        throw new UsageError(`the running lab has ${state.web} active + ${state.standby} standby web nodes, not ${web} + ${standby}`, {
          hint: 'Stop it with `infra lab down`, then run `infra lab up` with the new counts.',
          code: 'ELABBUSY',
        })
      }
      const problems = await checkNetwork(planLab(web, standby))
      if (!existsSync(state.image.rootfs)) problems.push(`its image ${state.image.rootfs} is gone`)
      if (problems.length === 0) return resume(state, opts, log, started)
      log(`lab: the recorded lab is damaged (${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; …' : ''}); starting it over`)
      await teardown(state, log)
      state = undefined
      cleanedLeftovers = true
    }
    const report = await teardown(undefined, log)
    if (report.processes + report.mounts.length + report.namespaces.length + report.links.length + report.cgroups.length > 0) {
      log(`lab: removed leftovers of an earlier run (${describeReport(report)})`)
      cleanedLeftovers = true
    }
    return fresh(config, opts.web ?? DEFAULT_WEB, opts.standby ?? DEFAULT_STANDBY, opts, log, started, cleanedLeftovers)
  }, {onWait: () => log('lab: waiting for another `infra lab` command on this machine to finish…')})
}

function validateCounts(web: number, standby: number): void {
  try {
    planLab(web, standby)
  } catch (error) {
    throw new UsageError((error as Error).message, {hint: 'See `infra lab up --help`.', code: 'ELABCOUNT'})
  }
}

async function fresh(config: string, web: number, standby: number, opts: LabUpOptions, log: Log, started: number, cleanedLeftovers: boolean): Promise<LabInfo> {
  validateCounts(web, standby)
  const plan = planLab(web, standby)
  const collisions = rangeCollisions(await rootRoutes())
  if (collisions.length > 0) {
    const c = collisions[0]
    throw new UsageError(`the lab's range ${c.range} overlaps this machine's own route ${c.route.dst}${c.route.dev ? ` dev ${c.route.dev}` : ''}`, {
      hint: 'The lab must not shadow a real network; run it on a machine whose networks do not use 198.51.100.0/24, 203.0.113.0/24 or 10.42.0.0/24.',
      code: 'ELABRANGE',
    })
  }
  const tImage = Date.now()
  const image = await ensureImage(log)
  const imageMs = Date.now() - tImage
  const keyDir = path.join(path.dirname(config), LAB_KEY_DIR)
  const {privateKey, publicKey} = await ensureOperatorKey(keyDir)
  const bases = labCgroupBases()
  const state: LabState = {
    version: 1,
    config,
    operatorKey: privateKey,
    image: {key: image.key, rootfs: image.rootfs},
    web,
    standby,
    createdAt: new Date().toISOString(),
    cgroupBases: bases,
    namespaces: plan.namespaces,
    links: [ROOT_LINK],
    hosts: plan.hosts.map((h) => ({...h, pid: 0, dir: hostDir(h.name), cgroups: []})),
  }
  // Recorded before anything is created: `lab down` can clean up after a crash from here on.
  await writeState(state)
  const tNet = Date.now()
  await createNetwork(plan)
  const networkMs = Date.now() - tNet
  log(`lab: network ready in ${fmt(networkMs)} (public ${PUBLIC_NETWORK} on ${ROOT_LINK}, private ${PRIVATE_NETWORK}, internet ${INTERNET_NETWORK})`)
  const tBoot = Date.now()
  await Promise.all(
    state.hosts.map(async (h) => {
      const layer = await prepareLayer(h, image.rootfs, publicKey, keyDir)
      Object.assign(h, await startHost(h, layer, bases))
    }),
  )
  await writeState(state)
  log(`lab: booting ${state.hosts.length} hosts (1 bastion + ${web} active + ${standby} standby web nodes)…`)
  await waitAll(state, opts.timeoutSec ?? 120, log)
  const bootMs = Date.now() - tBoot
  log(`lab: all ${state.hosts.length} hosts up in ${fmt(bootMs)} (systemd running, sshd answering)`)
  await writeInventory(config, plan, true)
  return info(state, {image: {...image}, reused: false, restarted: [], cleanedLeftovers, timings: {totalMs: Date.now() - started, imageMs, networkMs, bootMs}})
}

/** The lab is recorded and its network intact: keep running hosts, start the ones whose nspawn died. */
async function resume(state: LabState, opts: LabUpOptions, log: Log, started: number): Promise<LabInfo> {
  const keyDir = path.join(path.dirname(state.config), LAB_KEY_DIR)
  const {publicKey, created} = await ensureOperatorKey(keyDir)
  const restarted: string[] = []
  const tBoot = Date.now()
  await Promise.all(
    state.hosts.map(async (h) => {
      if (created) await addAuthorizedKey(h, publicKey)
      if (isNspawnOf(h.pid, h.netns) && leaderPid(h.pid)) return
      log(`lab: ${h.name} is not running (its systemd-nspawn is gone); starting it again with its own layer`)
      await killAndRemoveCgroups(h.cgroups)
      const layer = await prepareLayer(h, state.image.rootfs, publicKey, keyDir)
      Object.assign(h, await startHost(h, layer, state.cgroupBases))
      restarted.push(h.name)
    }),
  )
  await writeState(state)
  await waitAll(state, opts.timeoutSec ?? 120, log)
  const bootMs = Date.now() - tBoot
  if (state.image.key !== imageKey()) log('lab: note: the running lab uses an older image than the current package list; `infra lab down && infra lab up` rebuilds it')
  log(restarted.length > 0 ? `lab: restarted ${restarted.join(', ')} in ${fmt(bootMs)}; the rest of the lab kept running` : `lab: the lab is already running (${state.hosts.length} hosts); kept it`)
  await writeInventory(state.config, planLab(state.web, state.standby), false)
  return info(state, {
    image: {...state.image, built: false},
    reused: true,
    restarted,
    cleanedLeftovers: false,
    timings: {totalMs: Date.now() - started, imageMs: 0, networkMs: 0, bootMs},
  })
}

async function waitAll(state: LabState, timeoutSec: number, log: Log): Promise<void> {
  const deadline = Date.now() + timeoutSec * 1000
  const bastion = state.hosts.find((h) => h.role === 'bastion')!
  const results = await Promise.all(state.hosts.map(async (h) => ({h, r: await waitReady(h, h.pid, bastion.netns, deadline)})))
  const bad = results.filter((x) => !x.r.ready)
  for (const {h, r} of results) {
    if (r.ready && r.failedUnits.length > 0) log(`lab: warning: ${h.name} is degraded (failed units: ${r.failedUnits.join(', ')})`)
  }
  if (bad.length > 0) {
    const lines = bad.map(({h, r}) => `  ${h.name}: systemd ${r.system}${r.system === 'running' || r.system === 'degraded' ? '; sshd did not answer' : ''} (console log: ${layerOf(h.name).log})`)
    throw new InfraError(`${bad.map((b) => b.h.name).join(', ')} did not come up within ${timeoutSec} s:\n${lines.join('\n')}`, {
      hint: 'Read the console logs above; `infra lab down` then `infra lab up` starts over (use --timeout on a slow machine).',
      code: 'ELABBOOT',
    })
  }
}

async function writeInventory(config: string, plan: ReturnType<typeof planLab>, overwrite: boolean): Promise<void> {
  if (!overwrite && existsSync(config)) return
  await mkdir(path.dirname(config), {recursive: true})
  await writeFile(config, renderLabInventory(plan, schemaComment(path.dirname(config))))
}

async function ensureOperatorKey(keyDir: string): Promise<{privateKey: string; publicKey: string; created: boolean}> {
  await mkdir(keyDir, {recursive: true, mode: 0o700})
  await chmod(keyDir, 0o700)
  const privateKey = path.join(keyDir, 'id_ed25519')
  let created = false
  if (!existsSync(privateKey) || !existsSync(`${privateKey}.pub`)) {
    await run(['rm', '-f', privateKey, `${privateKey}.pub`])
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'infra-lab-operator', '-f', privateKey])
    created = true
  }
  await chmod(privateKey, 0o600)
  return {privateKey, publicKey: (await readFile(`${privateKey}.pub`, 'utf8')).trim(), created}
}

async function addAuthorizedKey(h: HostState, publicKey: string): Promise<void> {
  const file = path.join(layerOf(h.name).merged, 'root/.ssh/authorized_keys')
  const text = existsSync(file) ? await readFile(file, 'utf8') : ''
  if (!text.includes(publicKey)) await writeFile(file, text + publicKey + '\n', {mode: 0o600})
}
