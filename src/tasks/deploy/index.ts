/**
 * `infra deploy` and `infra rollback` (docs/DEPLOY.md) as one task list:
 * lock → image → stage + pull on every web node → release command → roll the serving nodes →
 * standby nodes → record the release → prune. One SSH connection per host for the whole run.
 */
import {envFileText} from '../../app/commands.js'
import {defaultVersion, type ReleaseHistory, rollbackTarget} from '../../app/release.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {ConfigError, HostError, UsageError} from '../../lib/errors.js'
import {type ProgressMode, runSteps} from '../../ui/tasks.js'
import {checkArchive, checkBuildDir, gitCommit, readRegistryLogin, readSecrets} from './inputs.js'
import {deploySteps} from './release-steps.js'
import {closeAll, type Ctx, type DeployOptions, type DeployResult, newCtx, openSteps, readHistory, requireApp, resultOf, rollSteps} from './steps.js'

export {DeployFailure, type DeployOptions, type DeployResult} from './steps.js'

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
  if (opts.version !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(opts.version)) {
    throw new UsageError(`--version ${JSON.stringify(opts.version)} cannot be an image tag`, {
      hint: 'Use letters, digits, _ . - (not starting with . or -), at most 128 characters, e.g. `--version v2.1.0` or `--version "$(git rev-parse --short HEAD)"`.',
    })
  }
  // Everything local first: a bad input touches no host.
  const secrets = await readSecrets(loaded, opts.env)
  const login = readRegistryLogin(loaded, opts.env)
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
        ...deploySteps(loaded, {spec, app, buildDir, archive, version, commit, env, login}),
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
