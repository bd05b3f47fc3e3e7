/**
 * `infra deploy` and `infra rollback` (docs/DEPLOY.md) as one task list:
 * lock → image → stage + pull on every web node → release command → roll the serving nodes →
 * standby nodes → record the release → prune. One SSH connection per host for the whole run.
 */
import {envFileText} from '../../app/commands.js'
import {currentRelease, defaultVersion, type ReleaseHistory, rollbackTarget} from '../../app/release.js'
import {resolveTarget} from './target.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {ConfigError, HostError, UsageError} from '../../lib/errors.js'
import {type ProgressMode, runSteps} from '../../ui/tasks.js'
import {checkArchive, checkBuildDir, gitCommit, readRegistryLogin, readSecrets} from './inputs.js'
import {deploySteps, PROMOTED} from './release-steps.js'
import {closeAll, type Ctx, type DeployOptions, type DeployResult, newCtx, openSteps, readHistory, requireApp, resultOf, rollSteps} from './steps.js'

export {DeployFailure, type DeployOptions, type DeployResult} from './steps.js'

export async function runDeploy(all: LoadedInventory, opts: DeployOptions = {}): Promise<DeployResult> {
  const target = opts.target ?? resolveTarget(all, opts.site, opts.environment)
  const loaded = target.loaded
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
  const ctx = newCtx(target.unit)
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
export async function runRollback(all: LoadedInventory, opts: {to?: string; site?: string; environment?: string; progress?: ProgressMode} = {}): Promise<DeployResult> {
  const target = resolveTarget(all, opts.site, opts.environment)
  const loaded = target.loaded
  requireApp(loaded)
  const ctx = newCtx(target.unit)
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
                const r = await n.conn.exec(`test -r ${c.unit.paths.releasesDir}/${c.release!.id}.run`, {timeoutMs: 10_000})
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
export async function listReleases(all: LoadedInventory, opts: {site?: string; environment?: string} = {}): Promise<ReleaseHistory> {
  const target = resolveTarget(all, opts.site, opts.environment)
  requireApp(target.loaded)
  const {onBastion} = await import('../bastion.js')
  return onBastion(target.loaded, (conn) => readHistory(conn, target.unit.paths))
}

/**
 * `infra promote SITE FROM TO`: deploys to TO exactly the image (by digest) FROM runs, with TO's
 * own configuration (values, secrets, nodes), without building. The release keeps FROM's version.
 */
export async function runPromote(all: LoadedInventory, site: string, from: string, to: string, opts: {progress?: ProgressMode; env?: NodeJS.ProcessEnv} = {}): Promise<DeployResult & {from: string}> {
  if (from === to) throw new UsageError(`promote from ${from} to itself`, {hint: `e.g. \`infra promote ${site} preprod prod\`.`})
  const source = resolveTarget(all, site, from)
  const target = resolveTarget(all, site, to)
  const loaded = target.loaded
  const {spec, app} = requireApp(loaded)
  const secrets = await readSecrets(loaded, opts.env)
  const login = readRegistryLogin(loaded, opts.env)
  const env = envFileText(loaded.inventory, secrets)
  const ctx = newCtx(target.unit)
  try {
    await runSteps(
      ctx,
      [
        ...openSteps(loaded, () => `promote ${site} ${from} → ${to}`),
        {
          title: `The release ${from} runs`,
          run: async (c: Ctx) => {
            const h = await readHistory(c.bastion!, source.unit.paths)
            const cur = currentRelease(h)
            if (!cur) throw new UsageError(`${source.unit.label} has no current release to promote`, {hint: `Deploy it first: \`infra deploy ${site} --env ${from} --build DIR\`.`})
            if (!cur.digest) throw new UsageError(`${source.unit.label} runs ${cur.image}, whose digest is unknown (an outside registry's tag); promote needs a digest`, {hint: `Deploy the same tag instead: \`infra deploy ${site} --env ${to} --version ${cur.version}\`.`})
            c.promoted = cur
          },
        },
        ...deploySteps(loaded, {spec, app, version: PROMOTED, commit: null, env, login}),
        ...rollSteps(loaded, 'deploy'),
      ],
      opts.progress,
    )
  } finally {
    await closeAll(ctx)
  }
  return {...resultOf(ctx, 'deploy'), from}
}
