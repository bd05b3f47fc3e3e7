/**
 * `infra exec` (one command on the hosts a target names) and `infra ssh` (one host): they take a
 * loaded inventory, do the work and return plain results; the commands only parse flags and render.
 */
import type {LoadedInventory} from '../inventory/load.js'
import {hostsOf, HostSpec} from '../inventory/schema.js'
import {UsageError} from '../lib/errors.js'
import {SshError} from '../ssh/errors.js'
import type {HostConnection} from '../ssh/connection.js'
import type {Fleet, FleetOptions} from '../ssh/fleet.js'
import type {HostKeyEvent} from '../ssh/pins.js'
import {resolveTarget} from '../ssh/targets.js'

export interface HostRun {
  host: string
  /** The command's exit status; null when it could not run (see `error`). */
  code: number | null
  stdout: string
  stderr: string
  /** Why the host could not run the command (unreachable, auth, host key changed, ...). */
  error?: {kind: string; message: string; hint?: string}
}

export interface RunOptions {
  /** Live output, one call per chunk (the command prefixes lines). */
  onOutput?: (host: string, stream: 'stdout' | 'stderr', chunk: Buffer) => void
  onHostKeyNew?: (e: HostKeyEvent) => void
  /** Stop the command on a host after this long. */
  timeoutMs?: number
  /** Keep output in the results (default true). */
  collect?: boolean
  /** Stop: the connections close and every host still running reports an error. */
  signal?: AbortSignal
  /** Open the fleet with these options (tests). */
  fleet?: Omit<FleetOptions, 'only' | 'onHostKeyNew'>
}

export function errorInfo(e: Error): {kind: string; message: string; hint?: string} {
  if (e instanceof SshError) return {kind: e.kind, message: e.reason, hint: e.hint}
  return {kind: 'error', message: e.message, hint: (e as {hint?: string}).hint}
}

/** Did every host run the command and exit 0? */
export function allSucceeded(runs: HostRun[]): boolean {
  return runs.every((r) => r.code === 0 && !r.error)
}

/**
 * Run one command on the hosts a target names (see resolveTarget), in parallel up to
 * ssh.parallel, web nodes through the bastion. Never throws for a host's failure: each result
 * carries its exit status or its error. Throws ConfigError/UsageError for bad input.
 */
export async function runOnTargets(loaded: LoadedInventory, target: string, command: string, opts: RunOptions = {}): Promise<HostRun[]> {
  const {Fleet} = await import('../ssh/fleet.js')
  const hosts = resolveTarget(loaded.inventory, target)
  const fleet = Fleet.open(loaded, {...opts.fleet, only: hosts.map((h) => h.name), onHostKeyNew: opts.onHostKeyNew})
  const stop = () => void fleet.close()
  opts.signal?.addEventListener('abort', stop, {once: true})
  try {
    const results = await fleet.forEach((conn) =>
      conn.exec(command, {
        timeoutMs: opts.timeoutMs,
        collect: opts.collect,
        onStdout: opts.onOutput && ((d) => opts.onOutput!(conn.host.name, 'stdout', d)),
        onStderr: opts.onOutput && ((d) => opts.onOutput!(conn.host.name, 'stderr', d)),
      }),
    )
    return hosts.map((h) => {
      const r = results.get(h.name)!
      if (r.ok) return {host: h.name, code: r.value.code, stdout: r.value.stdout, stderr: r.value.stderr}
      return {host: h.name, code: null, stdout: '', stderr: '', error: errorInfo(r.error)}
    })
  } finally {
    opts.signal?.removeEventListener('abort', stop)
    await fleet.close()
  }
}

/** The one host `infra ssh` talks to: a host name or `bastion`. */
export function resolveOneHost(loaded: LoadedInventory, name: string, resolve: (inv: LoadedInventory['inventory'], t: string) => HostSpec[]): HostSpec {
  const hosts = resolve(loaded.inventory, name)
  if (hosts.length !== 1) {
    throw new UsageError(`"${name}" names ${hosts.length} hosts; infra ssh works on one`, {
      hint: `Name one host (${hostsOf(loaded.inventory)
        .map((h) => h.name)
        .join(', ')}), or use \`infra exec ${name} -- COMMAND\` to run a command on several.`,
    })
  }
  return hosts[0]
}

/** Open the fleet and connect to one host (through the bastion for a web node). */
export async function connectOne(
  loaded: LoadedInventory,
  name: string,
  opts: {onHostKeyNew?: (e: HostKeyEvent) => void} = {},
): Promise<{fleet: Fleet; conn: HostConnection}> {
  const {Fleet} = await import('../ssh/fleet.js')
  const host = resolveOneHost(loaded, name, resolveTarget)
  const fleet = Fleet.open(loaded, {only: [host.name], onHostKeyNew: opts.onHostKeyNew})
  try {
    return {fleet, conn: await fleet.connect(host.name)}
  } catch (error) {
    await fleet.close()
    throw error
  }
}
