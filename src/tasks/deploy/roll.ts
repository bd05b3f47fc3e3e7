/**
 * The rolling switch of deploy and rollback, node by node: start the new release beside the old
 * one, wait until it is healthy, point nginx at it (graceful reload), drain and stop the old one.
 * A node is never without a ready container, so HAProxy never sees it fail (docs/DEPLOY.md).
 */
import {unitCommand} from '../../app/commands.js'
import {type UnitPaths, unitPaths} from '../../host/paths.js'
import {HostError} from '../../lib/errors.js'
import {mapLimit} from '../../lib/pool.js'
import type {HostConnection} from '../../ssh/connection.js'
import type {HostUpdate} from '../../ui/progress.js'

/** A web node as a deploy sees it. */
export interface NodeState {
  name: string
  conn: HostConnection
  /** Its current release (infra-app status), null when none yet. */
  current: string | null
  /** The current release's container runs (the node serves, or is about to). */
  running: boolean
  standby: boolean
}

export interface NodeOutcome {
  name: string
  /** switched: serves the release; created: standby, container created; unchanged: it ran it already; rolled-back; failed. */
  result: 'switched' | 'created' | 'unchanged' | 'rolled-back' | 'failed' | 'skipped'
  from: string | null
  detail?: string
}

/** A node that could not start or switch to the release: its own output (the container's last lines). */
export class NodeFailure extends HostError {
  constructor(
    host: string,
    message: string,
    readonly logs: string,
  ) {
    super(host, message, {code: 'EDEPLOYNODE'})
  }
}

/** `infra-app status` → its fields. */
async function run(conn: HostConnection, cmd: string, timeoutMs: number) {
  return conn.exec(cmd, {timeoutMs})
}

export interface RollOptions {
  batch: number
  /** ms: the health wait of infra-app (its own timeout) plus slack. */
  timeoutMs: number
  drainSeconds: number
  /** Seconds between two health probes of a new container. */
  intervalSeconds: number
  /**
   * Rollback: start the release's kept containers on every node at once (beside the current ones,
   * no traffic moves), then switch batch by batch: the nodes' switches no longer wait for each start.
   */
  prestart?: boolean
  update: HostUpdate
  /** The deploy unit's files (default: the single app). */
  paths?: UnitPaths
}

const cmdOf = (paths: UnitPaths | undefined) => (verb: string, ...args: (string | number)[]) => unitCommand(paths ?? unitPaths(), verb, ...args)

/** Starts `to` beside the current release on every node in parallel; a node that fails throws before anything switched. */
async function prestart(nodes: NodeState[], to: string, opts: RollOptions): Promise<void> {
  const appCommand = cmdOf(opts.paths)
  const env = `INFRA_APP_TIMEOUT=${Math.ceil(opts.timeoutMs / 1000)} INFRA_APP_INTERVAL=${opts.intervalSeconds}`
  const results = await Promise.all(
    nodes
      .filter((n) => !(n.running && n.current === to))
      .map(async (node) => {
        opts.update(node.name, `starting ${to}`)
        return {node, r: await run(node.conn, `${env} ${appCommand('start', to)}`, opts.timeoutMs + 60_000)}
      }),
  )
  const bad = results.find((x) => x.r.code !== 0)
  if (bad) {
    const first = bad.r.stderr.split('\n').find((l) => l.startsWith('infra-app:')) ?? `infra-app start exited with ${bad.r.code}`
    throw new NodeFailure(bad.node.name, `${bad.node.name}: release ${to} did not become healthy: ${first.replace(/^infra-app: /, '')}`, bad.r.stderr.trim())
  }
}

/** Start `to` on the node and switch to it; resolves with the drain of the old release (run in the background). */
async function switchNode(node: NodeState, to: string, opts: RollOptions): Promise<{drain?: Promise<void>}> {
  const {conn, name} = node
  const appCommand = cmdOf(opts.paths)
  opts.update(name, opts.prestart ? `switching to ${to}` : `starting ${to}`)
  // This deploy's own timeout and probe interval (the inventory may have changed since provision
  // rendered infra-app); start and switch in one round trip (exit 90: the switch failed).
  const env = `INFRA_APP_TIMEOUT=${Math.ceil(opts.timeoutMs / 1000)} INFRA_APP_INTERVAL=${opts.intervalSeconds}`
  // Already started (rollback's prestart): the switch alone.
  const cmd = opts.prestart ? `${appCommand('switch', to)} || exit 90` : `${env} ${appCommand('start', to)}; rc=$?; [ $rc = 0 ] || exit $rc; ${appCommand('switch', to)} || exit 90`
  const r = await run(conn, cmd, opts.timeoutMs + 60_000)
  if (r.code === 90) throw new NodeFailure(name, `${name}: switching to ${to} failed: ${r.stderr.trim().split('\n').at(-1)}`, r.stderr)
  if (r.code !== 0) {
    const logs = r.stderr.trim()
    const first = logs.split('\n').find((l) => l.startsWith('infra-app:')) ?? `infra-app start exited with ${r.code}`
    throw new NodeFailure(name, `${name}: release ${to} did not become healthy: ${first.replace(/^infra-app: /, '')}`, logs)
  }
  const from = node.running ? node.current : null
  node.current = to
  node.running = true
  if (!from || from === to) return {}
  // The old container drains on the node (a transient unit) while the roll goes on.
  const drain = run(conn, appCommand('drain-later', from, opts.drainSeconds), 60_000).then(() => undefined)
  return {drain}
}

/**
 * Rolls `nodes` (the serving ones) to `to`, `batch` at a time. On the first failure it stops and
 * throws the NodeFailure, with `done` holding the nodes already switched (for the caller's rollback).
 */
export async function rollNodes(nodes: NodeState[], to: string, opts: RollOptions, done: {node: NodeState; from: string | null}[]): Promise<NodeOutcome[]> {
  const outcomes: NodeOutcome[] = []
  const drains: Promise<void>[] = []
  if (opts.prestart) await prestart(nodes, to, opts)
  for (let i = 0; i < nodes.length; i += opts.batch) {
    const batch = nodes.slice(i, i + opts.batch)
    const results = await Promise.allSettled(
      batch.map(async (node) => {
        const from = node.running ? node.current : null
        if (from === to) {
          opts.update(node.name, 'done', `runs ${to} already`)
          return {name: node.name, result: 'unchanged', from} satisfies NodeOutcome
        }
        const {drain} = await switchNode(node, to, opts)
        done.push({node, from})
        if (drain) drains.push(drain.then(() => opts.update(node.name, 'done', `serves ${to}${from ? ` (${from} drains, then stops; kept for rollback)` : ''}`)))
        else opts.update(node.name, 'done', `serves ${to}`)
        return {name: node.name, result: 'switched', from} satisfies NodeOutcome
      }),
    )
    const failure = results.find((r) => r.status === 'rejected')
    for (const r of results) if (r.status === 'fulfilled') outcomes.push(r.value)
    if (failure) {
      await Promise.allSettled(drains)
      throw (failure).reason
    }
  }
  await Promise.all(drains)
  return outcomes
}

/** Switches nodes that a failed deploy had already moved back to the release they ran. */
export async function switchBack(done: {node: NodeState; from: string | null}[], failedRelease: string, opts: RollOptions): Promise<NodeOutcome[]> {
  return mapLimit(done, Math.max(1, opts.batch), async ({node, from}): Promise<NodeOutcome> => {
    if (!from) return {name: node.name, result: 'failed', from, detail: `had no release before ${failedRelease}: left on it`}
    try {
      node.running = true
      node.current = failedRelease
      const {drain} = await switchNode(node, from, {...opts, prestart: false})
      await drain
      opts.update(node.name, 'done', `back on ${from}`)
      return {name: node.name, result: 'rolled-back', from: failedRelease}
    } catch (error) {
      opts.update(node.name, 'failed', (error as Error).message)
      return {name: node.name, result: 'failed', from: failedRelease, detail: (error as Error).message}
    }
  })
}

/** Standby nodes (not serving): the release's container is created, not started, so the scaler and the healer start it. */
export async function prepareStandby(nodes: NodeState[], to: string, update: HostUpdate, paths?: UnitPaths): Promise<NodeOutcome[]> {
  const appCommand = cmdOf(paths)
  return Promise.all(
    nodes.map(async (node): Promise<NodeOutcome> => {
      const r = await run(node.conn, appCommand('create', to), 60_000)
      if (r.code !== 0) {
        update(node.name, 'failed', (r.stderr || r.stdout).trim())
        return {name: node.name, result: 'failed', from: node.current, detail: (r.stderr || r.stdout).trim()}
      }
      update(node.name, 'done', `standby: ${to} created, not started`)
      const from = node.current
      node.current = to
      return {name: node.name, result: 'created', from}
    }),
  )
}
