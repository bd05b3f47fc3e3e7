/**
 * `infra deploy` and `infra rollback` (docs/DEPLOY.md) as one task list:
 * lock → image → stage + pull on every web node → release command → roll the serving nodes →
 * standby nodes → record the release → prune. One SSH connection per host for the whole run.
 */
import {userInfo, hostname} from 'node:os'

import {appCommand, envFileText, readHistoryCommand, registryGcScript, releaseFiles, stageReleaseScript, writeHistoryScript} from '../../app/commands.js'
import {
  beyondKeep,
  configDigest,
  currentRelease,
  defaultVersion,
  newReleaseId,
  parseHistory,
  promote,
  recordFailure,
  type Release,
  type ReleaseHistory,
  rollbackTarget,
  sameRelease,
  serializeHistory,
} from '../../app/release.js'
import {shq} from '../../host/quote.js'
import {configOf} from '../../inventory/config.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {ConfigError, HostError, UsageError} from '../../lib/errors.js'
import {mapLimit} from '../../lib/pool.js'
import type {Fleet} from '../../ssh/fleet.js'
import type {HostConnection} from '../../ssh/connection.js'
import {type ProgressMode, runSteps} from '../../ui/tasks.js'
import {buildImage, existingImage, loadArchive, type ResolvedImage} from './image.js'
import {checkArchive, checkBuildDir, gitCommit, readSecrets} from './inputs.js'
import {acquireDeployLock, releaseDeployLock} from './lock.js'
import {NodeFailure, type NodeOutcome, type NodeState, parseAppStatus, prepareStandby, rollNodes, switchBack} from './roll.js'

export interface DeployOptions {
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

interface Ctx {
  started: number
  warnings: string[]
  fleet?: Fleet
  bastion?: HostConnection
  lockRun?: string
  history: ReleaseHistory
  nodes: NodeState[]
  release?: Release
  image?: ResolvedImage
  env?: string
  previous: string | null
  outcomes: NodeOutcome[]
  pruned: string[]
  unchanged: boolean
}

function operator(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry: keep "unknown"
  }
  return `${user}@${hostname()}`
}

function requireApp(loaded: LoadedInventory) {
  const app = configOf(loaded.inventory).app
  if (!loaded.inventory.app || !app) {
    throw new ConfigError(`${loaded.path}: there is no app to deploy (no "app:" section)`, {
      hint: 'Add an app, e.g.\n  app:\n    image: shop\n    port: 8080\nthen run `infra provision` (it installs Docker and the registry) and `infra deploy --build DIR`.',
    })
  }
  return {spec: loaded.inventory.app, app}
}

async function readHistory(conn: HostConnection): Promise<ReleaseHistory> {
  const r = await conn.exec(readHistoryCommand(), {timeoutMs: 15_000})
  try {
    return parseHistory(r.stdout)
  } catch {
    throw new HostError(conn.host.name, 'the release history on the bastion cannot be read (releases.json is not JSON)', {hint: 'Look at it: `infra exec bastion -- cat /var/lib/infra/app/releases.json`.'})
  }
}

async function writeHistory(conn: HostConnection, h: ReleaseHistory): Promise<void> {
  const r = await conn.exec('bash -s', {stdin: writeHistoryScript(serializeHistory(h)), timeoutMs: 15_000})
  if (r.code !== 0) throw new HostError(conn.host.name, `recording the release failed: ${r.stderr.trim()}`)
}

/** Every web node's current release, in one command each. */
async function gatherNodes(loaded: LoadedInventory, fleet: Fleet): Promise<NodeState[]> {
  return mapLimit(loaded.inventory.web.nodes, loaded.inventory.ssh.parallel, async (n) => {
    const conn = await fleet.connect(n.name)
    const r = await conn.exec(appCommand('status'), {timeoutMs: 20_000})
    if (r.code === 127) throw new HostError(n.name, `${n.name} has no infra-app: the fleet was not provisioned with this app`, {hint: 'Run `infra provision` first (it installs Docker and infra-app on the web nodes).'})
    const s = parseAppStatus(r.stdout)
    return {name: n.name, conn, current: s.release, running: s.state === 'running', standby: n.standby}
  })
}

/** Serving nodes roll; the others (standby, not running) get the container created. */
function split(nodes: NodeState[]): {serving: NodeState[]; standby: NodeState[]} {
  const serving = nodes.filter((n) => n.running || !n.standby)
  return {serving, standby: nodes.filter((n) => !serving.includes(n))}
}

function resultOf(ctx: Ctx, operation: DeployResult['operation']): DeployResult {
  const img = ctx.image ? {source: ctx.image.source, ref: ctx.image.ref, digest: ctx.image.digest, tag: ctx.image.tag} : undefined
  return {operation, release: ctx.release!, previous: ctx.previous, unchanged: ctx.unchanged, ...(img ? {image: img} : {}), nodes: ctx.outcomes, pruned: ctx.pruned, warnings: ctx.warnings, ms: Date.now() - ctx.started}
}

async function prune(loaded: LoadedInventory, ctx: Ctx): Promise<void> {
  const inv = loaded.inventory
  const ids = ctx.history.releases.filter((r) => r.state !== 'failed').map((r) => r.id)
  await Promise.all(ctx.nodes.map((n) => n.conn.exec(appCommand('prune', inv.app!.keep, ...ids), {timeoutMs: 120_000})))
  const app = configOf(inv).app!
  if (!app.fleetRegistry) return
  const old = beyondKeep(ctx.history, inv.registry.keep).filter((r) => r.digest)
  if (old.length === 0) return
  const script = registryGcScript(configOf(inv).registryAddress, app.repositoryPath, old.map((r) => r.digest!), old.map((r) => `${app.repository}:${r.version}`))
  const r = await ctx.bastion!.exec('bash -s', {stdin: script, timeoutMs: 5 * 60_000})
  if (r.code === 0) ctx.pruned.push(...old.map((r0) => r0.id))
  else ctx.warnings.push(`registry garbage collection failed: ${r.stderr.trim().split('\n').at(-1)}`)
}

/** Open the fleet, take the lock, read the history and every node's state. */
function openSteps(loaded: LoadedInventory, what: (ctx: Ctx) => string) {
  return [
    {
      title: 'Deploy lock',
      run: async (ctx: Ctx) => {
        const {openFleet} = await import('../../ssh/fleet.js')
        ctx.fleet = openFleet(loaded)
        ctx.bastion = await ctx.fleet.connect(loaded.inventory.bastion.name)
        const lock = await acquireDeployLock(ctx.bastion, what(ctx), configOf(loaded.inventory).ms.deployLockStale)
        ctx.lockRun = lock.run
        if (lock.tookOver) ctx.warnings.push(`took over a stale deploy lock of ${lock.tookOver}`)
        ctx.history = await readHistory(ctx.bastion)
        ctx.previous = currentRelease(ctx.history)?.id ?? null
      },
    },
    {
      title: 'Web nodes',
      hosts: () => loaded.inventory.web.nodes.map((n) => n.name),
      run: async (ctx: Ctx, update: (h: string, p: string, d?: string) => void) => {
        ctx.nodes = await gatherNodes(loaded, ctx.fleet!)
        for (const n of ctx.nodes) update(n.name, 'done', n.current ? `${n.current} ${n.running ? 'running' : 'stopped'}` : 'no release yet')
      },
    },
  ]
}

async function closeAll(ctx: Ctx): Promise<void> {
  if (ctx.bastion && ctx.lockRun) await releaseDeployLock(ctx.bastion, ctx.lockRun)
  await ctx.fleet?.close()
}

/** The roll, the standby nodes and, on failure, the switch back and the failure record. */
function rollSteps(loaded: LoadedInventory, operation: DeployResult['operation']) {
  const inv = loaded.inventory
  const ms = configOf(inv).ms
  return [
    {
      title: 'Roll the serving nodes',
      enabled: (ctx: Ctx) => !ctx.unchanged,
      hosts: (ctx: Ctx) => split(ctx.nodes).serving.map((n) => n.name),
      run: async (ctx: Ctx, update: (h: string, p: string, d?: string) => void) => {
        const opts = {batch: inv.deploy.batch, timeoutMs: ms.deployTimeout, drainSeconds: Math.ceil(ms.deployDrain / 1000), intervalSeconds: Math.max(1, Math.round(ms.appHealthInterval / 1000)), update}
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
          if (operation === 'deploy') await writeHistory(ctx.bastion!, recordFailure(ctx.history, ctx.release!, error.message))
          throw new DeployFailure(error, resultOf(ctx, operation))
        }
      },
    },
    {
      title: 'Standby nodes',
      enabled: (ctx: Ctx) => !ctx.unchanged && split(ctx.nodes).standby.length > 0,
      hosts: (ctx: Ctx) => split(ctx.nodes).standby.map((n) => n.name),
      run: async (ctx: Ctx, update: (h: string, p: string, d?: string) => void) => {
        const out = await prepareStandby(split(ctx.nodes).standby, ctx.release!.id, update)
        ctx.outcomes.push(...out)
        for (const o of out) if (o.result === 'failed') ctx.warnings.push(`${o.name} (standby) was not updated: ${o.detail}`)
      },
    },
    {
      title: 'Record the release',
      enabled: (ctx: Ctx) => !ctx.unchanged,
      run: async (ctx: Ctx) => {
        ctx.history = promote(ctx.history, ctx.release!)
        await writeHistory(ctx.bastion!, ctx.history)
        await prune(loaded, ctx)
      },
    },
  ]
}

function newCtx(): Ctx {
  return {started: Date.now(), warnings: [], history: {releases: []}, nodes: [], previous: null, outcomes: [], pruned: [], unchanged: false}
}

export async function runDeploy(loaded: LoadedInventory, opts: DeployOptions = {}): Promise<DeployResult> {
  const {spec, app} = requireApp(loaded)
  if (opts.build && opts.archive) throw new UsageError('--build and --archive cannot be used together', {hint: 'Build from a directory, or load an archive.'})
  if (!opts.build && !opts.archive && !opts.version) {
    throw new UsageError('nothing to deploy: give --build DIR, --archive FILE, or --version V of an image already in the registry', {hint: 'e.g. `infra deploy --build .`'})
  }
  if (!app.fleetRegistry && (opts.build || opts.archive)) {
    throw new ConfigError(`${loaded.path}: app.image ${spec.image} is in an outside registry; --build and --archive push to the fleet registry`, {
      hint: `Use an image name without a registry host (e.g. "${app.repositoryPath.split('/').at(-1)}") to build into the fleet registry, or deploy a tag of ${spec.image} with --version.`,
    })
  }
  // Everything local first: a bad input touches no host.
  const secrets = await readSecrets(loaded, opts.env)
  const buildDir = opts.build ? await checkBuildDir(opts.build) : undefined
  const archive = opts.archive ? await checkArchive(opts.archive) : undefined
  const commit = buildDir ? await gitCommit(buildDir) : null
  const version = opts.version ?? defaultVersion(commit)
  const env = envFileText(loaded.inventory, secrets)
  const ctx = newCtx()
  try {
    await runSteps(
      ctx,
      [
        ...openSteps(loaded, () => `deploy ${version}`),
        {
          title: buildDir ? `Build ${version} on the bastion` : archive ? `Load ${archive}` : `Image ${app.repository}:${version}`,
          run: async (c: Ctx) => {
            c.image = buildDir
              ? await buildImage(c.bastion!, app, buildDir, version)
              : archive
                ? await loadArchive(c.bastion!, app, archive, version)
                : await existingImage(c.bastion!, app, version)
            const files = releaseFiles(loaded.inventory, c.image.ref, env, app.healthPath)
            const digest = configDigest(files)
            const same = sameRelease(c.history, version, c.image.ref, digest)
            const current = currentRelease(c.history)
            const onAll = (id: string) => c.nodes.every((n) => (n.standby && !n.running ? n.current === id : n.running && n.current === id))
            if (same && same.id === current?.id && onAll(same.id)) {
              c.unchanged = true
              c.release = same
              return
            }
            c.release = same ?? {id: newReleaseId(c.history, version), version, image: c.image.ref, digest: c.image.digest, configDigest: digest, at: new Date().toISOString(), by: operator(), commit, state: 'current'}
            c.release = {...c.release, at: new Date().toISOString(), by: operator()}
            c.env = env
          },
        },
        {
          title: 'Pull on every web node',
          enabled: (c: Ctx) => !c.unchanged,
          hosts: (c: Ctx) => c.nodes.map((n) => n.name),
          run: async (c: Ctx, update: (h: string, p: string, d?: string) => void) => {
            const files = releaseFiles(loaded.inventory, c.image!.ref, c.env!, app.healthPath)
            const failures: string[] = []
            await Promise.all(
              c.nodes.map(async (n) => {
                update(n.name, 'pulling', c.image!.ref)
                const r = await n.conn.exec('bash -s', {stdin: stageReleaseScript(c.release!.id, files, {pull: true}), timeoutMs: 15 * 60_000})
                if (r.code === 0) update(n.name, 'done', r.stdout.trim().split('\n').at(-1))
                else {
                  const why = (r.stderr || r.stdout).trim().replace(/^infra-app: /, '')
                  update(n.name, 'failed', why)
                  failures.push(`${n.name}: ${why}`)
                }
              }),
            )
            if (failures.length > 0) {
              throw new HostError(failures[0].split(':')[0], `pulling ${c.image!.ref} failed on ${failures.length} node(s); nothing was switched:\n  ${failures.join('\n  ')}`, {
                hint: app.fleetRegistry ? 'Check the fleet registry: `infra doctor`.' : `Check that the nodes reach ${app.registryHost} (through the bastion's NAT) and the credentials (app.registry).`,
                code: 'EPULL',
              })
            }
          },
        },
        {
          title: 'Release command',
          enabled: (c: Ctx) => !c.unchanged && spec.release !== undefined,
          run: async (c: Ctx) => {
            const node = split(c.nodes).serving[0] ?? c.nodes[0]
            const cmd = ['docker run --rm --log-driver journald --log-opt tag=app-release', `--env-file /var/lib/infra/app/releases/${c.release!.id}.env`, shq(c.image!.ref), ...spec.release!.map((w) => shq(w))].join(' ')
            const r = await node.conn.exec(cmd, {timeoutMs: 30 * 60_000})
            if (r.code !== 0) {
              const why = `the release command (${spec.release!.join(' ')}) failed on ${node.name} with exit ${r.code}`
              await writeHistory(c.bastion!, recordFailure(c.history, c.release!, why))
              throw new HostError(node.name, `${why}; nothing was switched:\n  ${(r.stderr || r.stdout).trim().split('\n').slice(-10).join('\n  ')}`, {code: 'ERELEASECMD'})
            }
          },
        },
        ...rollSteps(loaded, 'deploy'),
      ],
      opts.progress,
    )
  } finally {
    await closeAll(ctx)
  }
  return resultOf(ctx, 'deploy')
}

/** `infra rollback [ID]`: the same rolling switch to a release whose containers are still on the nodes. */
export async function runRollback(loaded: LoadedInventory, opts: {to?: string; progress?: ProgressMode} = {}): Promise<DeployResult> {
  requireApp(loaded)
  const ctx = newCtx()
  try {
    await runSteps(
      ctx,
      [
        ...openSteps(loaded, () => `rollback${opts.to ? ` to ${opts.to}` : ''}`),
        {
          title: 'Target release',
          run: async (c: Ctx) => {
            try {
              c.release = rollbackTarget(c.history, opts.to)
            } catch (error) {
              throw new UsageError((error as Error).message, {hint: 'See `infra releases`.'})
            }
            const missing: string[] = []
            await Promise.all(
              c.nodes.map(async (n) => {
                const r = await n.conn.exec(`test -r /var/lib/infra/app/releases/${c.release!.id}.run`, {timeoutMs: 10_000})
                if (r.code !== 0) missing.push(n.name)
              }),
            )
            if (missing.length > 0) {
              throw new HostError(missing[0], `release ${c.release.id} is no longer on ${missing.join(', ')} (pruned, or a new node)`, {
                hint: `Deploy it again instead: \`infra deploy --version ${c.release.version}\` (its image is in the registry while it is among the last ${loaded.inventory.registry.keep}).`,
              })
            }
          },
        },
        ...rollSteps(loaded, 'rollback'),
      ],
      opts.progress,
    )
  } finally {
    await closeAll(ctx)
  }
  return resultOf(ctx, 'rollback')
}

/** `infra releases`: the history on the bastion. */
export async function listReleases(loaded: LoadedInventory): Promise<ReleaseHistory> {
  requireApp(loaded)
  const {onBastion} = await import('../bastion.js')
  return onBastion(loaded, (conn) => readHistory(conn))
}
