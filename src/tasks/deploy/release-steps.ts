/** The steps only a deploy has: the image (build, archive or registry), the pull on every node, the release command. */
import {loginCommand, releaseCommand, releaseFiles, stageReleaseScript} from '../../app/commands.js'
import {unitNginxConf} from '../../app/unit-nginx.js'
import {configDigest, currentRelease, newReleaseId, recordFailure, sameRelease} from '../../app/release.js'
import type {AppConfig} from '../../inventory/config.js'
import type {LoadedInventory} from '../../inventory/load.js'
import type {Inventory} from '../../inventory/schema.js'
import {HostError} from '../../lib/errors.js'
import type {HostUpdate} from '../../ui/progress.js'
import type {Step} from '../../ui/tasks.js'
import {buildImage, existingImage, loadArchive} from './image.js'
import type {RegistryLogin} from './inputs.js'
import {type Ctx, operator, split, writeHistory} from './steps.js'

export interface DeployInputs {
  spec: NonNullable<Inventory['app']>
  app: AppConfig
  buildDir?: string
  archive?: string
  version: string
  commit: string | null
  /** The env file's text (secrets included): never logged. */
  env: string
  /** app.registry's credentials (an outside registry): the nodes log in before they pull. */
  login?: RegistryLogin
}

/** The image step: build, load, resolve or take the promoted one; then decide the release (or that nothing changes). */
function imageStep(loaded: LoadedInventory, inputs: DeployInputs): Step<Ctx> {
  const {app, buildDir, archive, version, commit, env} = inputs
  return {
    title: buildDir ? `Build ${version} on the bastion` : archive ? `Load ${archive}` : version === PROMOTED ? 'The promoted image' : `Image ${app.repository}:${version}`,
    run: async (c: Ctx) => {
      const p = c.promoted
      c.image = p
        ? {source: 'promote', ref: p.image, digest: p.digest, tag: `${app.repository}:${p.version}`}
        : buildDir
          ? await buildImage(c.bastion!, app, buildDir, version)
          : archive
            ? await loadArchive(c.bastion!, app, archive, version)
            : await existingImage(c.bastion!, app, version)
      const files = releaseFiles(loaded.inventory, c.image.ref, env, app.healthPath, c.unit)
      const digest = configDigest(files)
      const ver = p?.version ?? version
      const same = sameRelease(c.history, ver, c.image.ref, digest)
      const current = currentRelease(c.history)
      const onAll = (id: string) => c.nodes.every((n) => (n.standby && !n.running ? n.current === id : n.running && n.current === id))
      if (same && same.id === current?.id && onAll(same.id)) {
        c.unchanged = true
        c.release = same
        return
      }
      c.release = same ?? {id: newReleaseId(c.history, ver), version: ver, image: c.image.ref, digest: c.image.digest, configDigest: digest, at: new Date().toISOString(), by: operator(), commit: p?.commit ?? commit, state: 'current'}
      c.release = {...c.release, at: new Date().toISOString(), by: operator()}
      c.env = env
    },
  }
}

/** The version deploySteps is given by a promotion: the promoted release's own version is used. */
export const PROMOTED = '(promoted)'

export function deploySteps(loaded: LoadedInventory, inputs: DeployInputs): Step<Ctx>[] {
  const {spec, app, login} = inputs
  return [
    imageStep(loaded, inputs),
    {
      title: 'Pull on every web node',
      enabled: (c: Ctx) => !c.unchanged,
      hosts: (c: Ctx) => c.nodes.map((n) => n.name),
      run: async (c: Ctx, update: HostUpdate) => {
        const files = releaseFiles(loaded.inventory, c.image!.ref, c.env!, app.healthPath, c.unit)
        const nginxConf = c.unit.key !== undefined ? unitNginxConf(c.unit, app.healthPath) : undefined
        const failures: string[] = []
        await Promise.all(
          c.nodes.map(async (n) => {
            if (login) {
              update(n.name, 'docker login', login.registry)
              const l = await n.conn.exec(loginCommand(login.registry, login.user), {stdin: login.password, timeoutMs: 60_000})
              if (l.code !== 0) {
                const why = `docker login to ${login.registry} as ${login.user} failed: ${(l.stderr || l.stdout).trim().split('\n').at(-1)}`
                update(n.name, 'failed', why)
                failures.push(`${n.name}: ${why}`)
                return
              }
            }
            update(n.name, 'pulling', c.image!.ref)
            const r = await n.conn.exec('bash -s', {stdin: stageReleaseScript(c.release!.id, files, {pull: true, login: login !== undefined, paths: c.unit.paths, nginxConf}), timeoutMs: 15 * 60_000})
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
        const cmd = releaseCommand(c.release!.id, c.image!.ref, spec, c.unit.paths, c.unit.network)
        const r = await node.conn.exec(cmd, {timeoutMs: 30 * 60_000})
        if (r.code !== 0) {
          const why = `the release command (${spec.release!.join(' ')}) failed on ${node.name} with exit ${r.code}`
          await writeHistory(c.bastion!, recordFailure(c.history, c.release!, why), c.unit.paths)
          throw new HostError(node.name, `${why}; nothing was switched:\n  ${(r.stderr || r.stdout).trim().split('\n').slice(-10).join('\n  ')}`, {code: 'ERELEASECMD'})
        }
      },
    },
  ]
}
