/**
 * The parts deploy and rollback share (src/tasks/deploy/index.ts): the run's context, the lock
 * and node steps that open a run, the roll/standby/record steps that end it, and their helpers.
 */
import {hostname, userInfo} from 'node:os'

import {readHistoryCommand, registryGcScript, unitCommand, writeHistoryScript} from '../../app/commands.js'
import {type UnitPaths, unitPaths} from '../../host/paths.js'
import type {DeployUnit} from '../../inventory/units.js'
import type {DeployTarget} from './target.js'
import {beyondKeep, currentRelease, digestsToDelete, markPruned, parseAppStatus, parseHistory, promote, recordFailure, type Release, type ReleaseHistory, serializeHistory} from '../../app/release.js'
import {configOf} from '../../inventory/config.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {ConfigError, HostError} from '../../lib/errors.js'
import {mapLimit} from '../../lib/pool.js'
import type {HostConnection} from '../../ssh/connection.js'
import type {Fleet} from '../../ssh/fleet.js'
import type {HostUpdate} from '../../ui/progress.js'
import type {ProgressMode} from '../../ui/tasks.js'
import type {ResolvedImage} from './image.js'
import {acquireDeployLock, releaseDeployLock} from './lock.js'
import {NodeFailure, type NodeOutcome, type NodeState, prepareStandby, rollNodes, switchBack} from './roll.js'

export interface DeployOptions {
  /** A site (default: the single app). */
  site?: string
  /** The site's environment (default: prod). */
  environment?: string
  /** A unit resolved by the caller (a preview): overrides site and environment. */
  target?: DeployTarget
  version?: string
  build?: string
  archive?: string
  progress?: ProgressMode
  env?: NodeJS.ProcessEnv
}

export interface DeployResult {
  operation: 'deploy' | 'rollback'
  /** The release now current (on failure: the one that failed). */
  release: Release
  /** The release that was current before. */
  previous: string | null
  /** true when the release was current already on every node (nothing changed). */
  unchanged: boolean
  image?: Omit<ResolvedImage, 'tag'> & {tag: string}
  nodes: NodeOutcome[]
  pruned: string[]
  warnings: string[]
  ms: number
}

/** A failed deploy: exit 1, with the node's output (the container's last lines) and the result so far. */
export class DeployFailure extends HostError {
  constructor(
    failure: NodeFailure,
    readonly result: DeployResult,
  ) {
    super(failure.host ?? 'web', failure.message, {
      hint: `The container's last lines are above. ${result.nodes.some((n) => n.result === 'rolled-back') ? 'Nodes already switched were switched back. ' : ''}See \`infra releases\` and \`infra logs <node> --unit app\`.`,
      code: 'EDEPLOY',
      cause: failure,
    })
  }
}

export interface Ctx {
  /** What is deployed: the single app, a site's environment or a preview (its paths, nodes, backend). */
  unit: DeployUnit
  started: number
  warnings: string[]
  fleet?: Fleet
  bastion?: HostConnection
  lockRun?: string
  history: ReleaseHistory
  nodes: NodeState[]
  release?: Release
  /** promote: the source environment's current release, whose image (by digest) is deployed. */
  promoted?: Release
  image?: ResolvedImage
  env?: string
  previous: string | null
  outcomes: NodeOutcome[]
  pruned: string[]
  unchanged: boolean
}

export function operator(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry: keep "unknown"
  }
  return `${user}@${hostname()}`
}

export function requireApp(loaded: LoadedInventory) {
  const app = configOf(loaded.inventory).app
  if (!loaded.inventory.app || !app) {
    throw new ConfigError(`${loaded.path}: there is no app to deploy (no "app:" section)`, {
      hint: 'Add an app, e.g.\n  app:\n    image: shop\n    port: 8080\nthen run `infra provision` (it installs Docker and the registry) and `infra deploy --build DIR`.',
    })
  }
  return {spec: loaded.inventory.app, app}
}

export async function readHistory(conn: HostConnection, paths: UnitPaths = unitPaths()): Promise<ReleaseHistory> {
  const r = await conn.exec(readHistoryCommand(paths), {timeoutMs: 15_000})
  try {
    return parseHistory(r.stdout)
  } catch {
    throw new HostError(conn.host.name, 'the release history on the bastion cannot be read (releases.json is not JSON)', {hint: `Look at it: \`infra exec bastion -- cat ${paths.history}\`.`})
  }
}

export async function writeHistory(conn: HostConnection, h: ReleaseHistory, paths: UnitPaths = unitPaths()): Promise<void> {
  const r = await conn.exec('bash -s', {stdin: writeHistoryScript(serializeHistory(h), paths), timeoutMs: 15_000})
  if (r.code !== 0) throw new HostError(conn.host.name, `recording the release failed: ${r.stderr.trim()}`)
}

/** Every web node's current release, in one command each. */
export async function gatherNodes(loaded: LoadedInventory, fleet: Fleet, paths: UnitPaths = unitPaths()): Promise<NodeState[]> {
  return mapLimit(loaded.inventory.web.nodes, loaded.inventory.ssh.parallel, async (n) => {
    const conn = await fleet.connect(n.name)
    const r = await conn.exec(unitCommand(paths, 'status'), {timeoutMs: 20_000})
    if (r.code === 127) throw new HostError(n.name, `${n.name} has no infra-app: the fleet was not provisioned with this app`, {hint: 'Run `infra provision` first (it installs Docker and infra-app on the web nodes).'})
    const s = parseAppStatus(r.stdout)
    return {name: n.name, conn, current: s.release, running: s.state === 'running', standby: n.standby}
  })
}

/** Serving nodes roll; the others (standby, not running) get the container created. */
export function split(nodes: NodeState[]): {serving: NodeState[]; standby: NodeState[]} {
  const serving = nodes.filter((n) => n.running || !n.standby)
  return {serving, standby: nodes.filter((n) => !serving.includes(n))}
}

export function resultOf(ctx: Ctx, operation: DeployResult['operation']): DeployResult {
  const img = ctx.image ? {source: ctx.image.source, ref: ctx.image.ref, digest: ctx.image.digest, tag: ctx.image.tag} : undefined
  return {operation, release: ctx.release!, previous: ctx.previous, unchanged: ctx.unchanged, ...(img ? {image: img} : {}), nodes: ctx.outcomes, pruned: ctx.pruned, warnings: ctx.warnings, ms: Date.now() - ctx.started}
}

export async function prune(loaded: LoadedInventory, ctx: Ctx): Promise<void> {
  const inv = loaded.inventory
  const ids = ctx.history.releases.filter((r) => r.state !== 'failed').map((r) => r.id)
  await Promise.all(ctx.nodes.map((n) => n.conn.exec(unitCommand(ctx.unit.paths, 'prune', inv.app!.keep, ...ids), {timeoutMs: 120_000})))
  const app = configOf(inv).app!
  // A site's environments and previews share their image repository (a promotion runs the same
  // digest): the registry is pruned from the single app's history only (docs/SITES.md).
  if (!app.fleetRegistry || ctx.unit.key !== undefined) return
  const old = beyondKeep(ctx.history, inv.registry.keep)
  if (old.length === 0) return
  const keptTags = new Set(ctx.history.releases.filter((r) => !old.includes(r) && r.state !== 'failed').map((r) => r.version))
  const tags = [...new Set(old.map((r) => r.version))].filter((v) => !keptTags.has(v)).map((v) => `${app.repository}:${v}`)
  const script = registryGcScript(configOf(inv).registryAddress, app.repositoryPath, digestsToDelete(ctx.history, old), tags)
  const r = await ctx.bastion!.exec('bash -s', {stdin: script, timeoutMs: 5 * 60_000})
  if (r.code !== 0) {
    ctx.warnings.push(`registry garbage collection failed: ${r.stderr.trim().split('\n').at(-1)}`)
    return
  }
  ctx.pruned.push(...old.map((r0) => r0.id))
  ctx.history = markPruned(ctx.history, old.map((r0) => r0.id))
  await writeHistory(ctx.bastion!, ctx.history, ctx.unit.paths)
}

/** Open the fleet, take the lock, read the history and every node's state. */
export function openSteps(loaded: LoadedInventory, what: (ctx: Ctx) => string) {
  return [
    {
      title: 'Deploy lock',
      run: async (ctx: Ctx) => {
        const {openFleet} = await import('../../ssh/fleet.js')
        ctx.fleet = openFleet(loaded)
        ctx.bastion = await ctx.fleet.connect(loaded.inventory.bastion.name)
        // The web nodes' connections (through the bastion) open while the lock is taken.
        for (const n of loaded.inventory.web.nodes) ctx.fleet.connect(n.name).catch(() => undefined)
        const lock = await acquireDeployLock(ctx.bastion, what(ctx), configOf(loaded.inventory).ms.deployLockStale, ctx.unit.paths)
        ctx.lockRun = lock.run
        if (lock.tookOver) ctx.warnings.push(`took over a stale deploy lock of ${lock.tookOver}`)
        ctx.history = await readHistory(ctx.bastion, ctx.unit.paths)
        ctx.previous = currentRelease(ctx.history)?.id ?? null
      },
    },
    {
      title: 'Web nodes',
      hosts: () => loaded.inventory.web.nodes.map((n) => n.name),
      run: async (ctx: Ctx, update: HostUpdate) => {
        ctx.nodes = await gatherNodes(loaded, ctx.fleet!, ctx.unit.paths)
        for (const n of ctx.nodes) update(n.name, 'done', n.current ? `${n.current} ${n.running ? 'running' : 'stopped'}` : 'no release yet')
      },
    },
  ]
}

export async function closeAll(ctx: Ctx): Promise<void> {
  if (ctx.bastion && ctx.lockRun) await releaseDeployLock(ctx.bastion, ctx.lockRun, ctx.unit.paths)
  await ctx.fleet?.close()
}

/** The roll, the standby nodes and, on failure, the switch back and the failure record. */
export function rollSteps(loaded: LoadedInventory, operation: DeployResult['operation']) {
  const inv = loaded.inventory
  const ms = configOf(inv).ms
  return [
    {
      title: 'Roll the serving nodes',
      enabled: (ctx: Ctx) => !ctx.unchanged,
      hosts: (ctx: Ctx) => split(ctx.nodes).serving.map((n) => n.name),
      run: async (ctx: Ctx, update: HostUpdate) => {
        const opts = {
          batch: inv.deploy.batch,
          timeoutMs: ms.deployTimeout,
          drainSeconds: Math.ceil(ms.deployDrain / 1000),
          intervalSeconds: Math.max(1, Math.round(ms.appHealthInterval / 1000)),
          prestart: operation === 'rollback',
          update,
          paths: ctx.unit.paths,
        }
        const done: {node: NodeState; from: string | null}[] = []
        try {
          ctx.outcomes.push(...(await rollNodes(split(ctx.nodes).serving, ctx.release!.id, opts, done)))
        } catch (error) {
          if (!(error instanceof NodeFailure)) throw error
          update(error.host ?? '', 'failed', error.message)
          ctx.outcomes.push({name: error.host ?? '?', result: 'failed', from: null, detail: error.message})
          if (inv.deploy.onFailure === 'rollback' && done.length > 0) {
            const back = await switchBack(done, ctx.release!.id, opts)
            ctx.outcomes = ctx.outcomes.filter((o) => !back.some((b) => b.name === o.name)).concat(back)
          }
          if (operation === 'deploy') await writeHistory(ctx.bastion!, recordFailure(ctx.history, ctx.release!, error.message), ctx.unit.paths)
          throw new DeployFailure(error, resultOf(ctx, operation))
        }
      },
    },
    {
      title: 'Standby nodes',
      enabled: (ctx: Ctx) => !ctx.unchanged && split(ctx.nodes).standby.length > 0,
      hosts: (ctx: Ctx) => split(ctx.nodes).standby.map((n) => n.name),
      run: async (ctx: Ctx, update: HostUpdate) => {
        const out = await prepareStandby(split(ctx.nodes).standby, ctx.release!.id, update, ctx.unit.paths)
        ctx.outcomes.push(...out)
        for (const o of out) if (o.result === 'failed') ctx.warnings.push(`${o.name} (standby) was not updated: ${o.detail}`)
      },
    },
    {
      title: 'Record the release',
      enabled: (ctx: Ctx) => !ctx.unchanged,
      run: async (ctx: Ctx) => {
        ctx.history = promote(ctx.history, ctx.release!)
        await writeHistory(ctx.bastion!, ctx.history, ctx.unit.paths)
        await prune(loaded, ctx)
      },
    },
  ]
}

export function newCtx(unit: DeployUnit): Ctx {
  return {unit, started: Date.now(), warnings: [], history: {releases: []}, nodes: [], previous: null, outcomes: [], pruned: [], unchanged: false}
}

