/**
 * The rolling switch of deploy and rollback, node by node: start the new release beside the old
 * one, wait until it is healthy, point nginx at it (graceful reload), drain and stop the old one.
 * A node is never without a ready container, so HAProxy never sees it fail (docs/DEPLOY.md).
 */
import {appCommand} from '../../app/commands.js'
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
export function parseAppStatus(out: string): {release: string | null; state: string; health: string; restarts: number; exit: number} {
  const f = Object.fromEntries([...out.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]))
  return {
    release: f.release && f.release !== 'none' ? f.release : null,
    state: f.state ?? 'missing',
    health: f.health ?? 'failed',
    restarts: Number(f.restarts ?? 0),
    exit: Number(f.exit ?? 0),
  }
}

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
  update: HostUpdate
}

/** Start `to` on the node and switch to it; resolves with the drain of the old release (run in the background). */
async function switchNode(node: NodeState, to: string, opts: RollOptions): Promise<{drain?: Promise<void>}> {
  const {conn, name} = node
  opts.update(name, `starting ${to}`)
  // This deploy's own timeout and probe interval (the inventory may have changed since provision rendered infra-app).
  const env = `INFRA_APP_TIMEOUT=${Math.ceil(opts.timeoutMs / 1000)} INFRA_APP_INTERVAL=${opts.intervalSeconds}`
  const started = await run(conn, `${env} ${appCommand('start', to)}`, opts.timeoutMs + 30_000)
  if (started.code !== 0) {
    const logs = started.stderr.trim()
    const first = logs.split('\n').find((l) => l.startsWith('infra-app:')) ?? `infra-app start exited with ${started.code}`
    throw new NodeFailure(name, `${name}: release ${to} did not become healthy: ${first.replace(/^infra-app: /, '')}`, logs)
  }
  opts.update(name, `switching to ${to}`)
  const switched = await run(conn, appCommand('switch', to), 60_000)
  if (switched.code !== 0) throw new NodeFailure(name, `${name}: switching to ${to} failed: ${(switched.stderr || switched.stdout).trim()}`, switched.stderr)
  const from = node.running ? node.current : null
  node.current = to
  node.running = true
  if (!from || from === to) return {}
  opts.update(name, `draining ${from}`)
  const drain = run(conn, appCommand('drain', from, opts.drainSeconds), opts.drainSeconds * 1000 + 60_000).then(() => undefined)
  return {drain}
}

/**
 * Rolls `nodes` (the serving ones) to `to`, `batch` at a time. On the first failure it stops and
 * throws the NodeFailure, with `done` holding the nodes already switched (for the caller's rollback).
 */
export async function rollNodes(nodes: NodeState[], to: string, opts: RollOptions, done: {node: NodeState; from: string | null}[]): Promise<NodeOutcome[]> {
  const outcomes: NodeOutcome[] = []
  const drains: Promise<void>[] = []
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
        if (drain) drains.push(drain.then(() => opts.update(node.name, 'done', `serves ${to}${from ? ` (was ${from}, stopped and kept)` : ''}`)))
        else opts.update(node.name, 'done', `serves ${to}`)
        return {name: node.name, result: 'switched', from} satisfies NodeOutcome
      }),
    )
    const failure = results.find((r) => r.status === 'rejected')
    for (const r of results) if (r.status === 'fulfilled') outcomes.push(r.value)
    if (failure) {
      await Promise.allSettled(drains)
      throw (failure as PromiseRejectedResult).reason
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
      const {drain} = await switchNode(node, from, opts)
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
export async function prepareStandby(nodes: NodeState[], to: string, update: HostUpdate): Promise<NodeOutcome[]> {
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
