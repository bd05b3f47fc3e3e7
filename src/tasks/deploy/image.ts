/**
 * How the release's image reaches the fleet registry (or is found in its own registry): a remote
 * build on the bastion's Docker (the context streamed over SSH as a tar), a `docker save` archive
 * loaded there, or a tag that is already in a registry. Returns the reference nodes run.
 */
import {buildCommand, loadArchiveScript, pushScript, resolveScript} from '../../app/commands.js'
import {factLines} from '../../host/facts.js'
import type {AppConfig} from '../../inventory/config.js'
import {HostError} from '../../lib/errors.js'
import type {HostConnection} from '../../ssh/connection.js'
import {archiveStream, tarStream} from './inputs.js'

export interface ResolvedImage {
  source: 'build' | 'archive' | 'registry' | 'promote'
  /** What nodes pull and run: `repo@sha256:…`, or `repo:tag` when the digest is not known. */
  ref: string
  digest: string | null
  /** The tag in the registry (`repo:version`). */
  tag: string
}

const tail = (s: string, n = 6) => s.trim().split('\n').slice(-n).join('\n  ')

async function push(conn: HostConnection, tag: string, repository: string): Promise<string> {
  const r = await conn.exec('bash -s', {stdin: pushScript(tag), timeoutMs: 15 * 60_000})
  const digest = factLines(r.stdout).find((l) => l.tag === '@@digest')?.fields[0]
  if (r.code !== 0 || !digest) {
    throw new HostError(conn.host.name, `pushing ${tag} to the fleet registry failed:\n  ${tail(r.stderr || r.stdout)}`, {
      hint: 'Check the registry: `infra doctor`, or `infra exec bastion -- journalctl -u docker-registry -n 30`.',
    })
  }
  return `${repository}@${digest}`
}

/** `--build DIR`: docker build on the bastion from the context on stdin, then push. */
export async function buildImage(conn: HostConnection, app: AppConfig, dir: string, version: string): Promise<ResolvedImage> {
  const tag = `${app.repository}:${version}`
  const {stream, done} = tarStream(dir)
  const r = await conn.exec(buildCommand(tag, version), {stdin: stream, timeoutMs: 30 * 60_000})
  const tarCode = await done
  if (tarCode !== 0) throw new HostError(conn.host.name, `reading the build context ${dir} failed (tar exited with ${tarCode})`)
  if (r.code !== 0) {
    throw new HostError(conn.host.name, `docker build on ${conn.host.name} failed:\n  ${tail(r.stderr || r.stdout, 12)}`, {
      hint: `Fix the Dockerfile in ${dir}; the lab and most fleets have no Docker Hub: build FROM scratch or from an image in your registry.`,
      code: 'EBUILD',
    })
  }
  const ref = await push(conn, tag, app.repository)
  return {source: 'build', ref, digest: ref.split('@')[1], tag}
}

/** `--archive FILE`: docker load on the bastion, tag, push. */
export async function loadArchive(conn: HostConnection, app: AppConfig, file: string, version: string): Promise<ResolvedImage> {
  const tag = `${app.repository}:${version}`
  const r = await conn.exec(loadArchiveScript(tag), {stdin: archiveStream(file), timeoutMs: 30 * 60_000})
  if (r.code !== 0) throw new HostError(conn.host.name, `loading ${file} on ${conn.host.name} failed:\n  ${tail(r.stderr || r.stdout)}`, {hint: 'Give a `docker save` archive.', code: 'EARCHIVE'})
  const ref = await push(conn, tag, app.repository)
  return {source: 'archive', ref, digest: ref.split('@')[1], tag}
}

/**
 * `--version V` alone: the image `repository:V` is already in a registry. For the fleet registry
 * its digest is resolved on the bastion; an outside registry's tag is pulled by the nodes as is.
 */
export async function existingImage(conn: HostConnection, app: AppConfig, version: string): Promise<ResolvedImage> {
  const tag = `${app.repository}:${version}`
  if (!app.fleetRegistry) return {source: 'registry', ref: tag, digest: null, tag}
  const r = await conn.exec('bash -s', {stdin: resolveScript(tag), timeoutMs: 10 * 60_000})
  const digest = factLines(r.stdout).find((l) => l.tag === '@@digest')?.fields[0]
  if (r.code !== 0 || !digest) {
    throw new HostError(conn.host.name, `${tag} is not in the fleet registry:\n  ${tail(r.stderr || r.stdout, 3)}`, {
      hint: 'Build it (`infra deploy --build DIR`), load it (`--archive FILE`), or pick a version from `infra releases`.',
      code: 'ENOIMAGE',
    })
  }
  return {source: 'registry', ref: `${app.repository}@${digest}`, digest, tag}
}
