import {createHash} from 'node:crypto'
import {createWriteStream, existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rename, rm, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {labImagePackages} from '../roles/packages.js'
import {UsageError} from '../lib/errors.js'
import {readMirror} from './mirror.js'
import {removeTree} from './mounts.js'
import {run} from './run.js'
import {LAB_CACHE_DIR} from './state.js'

export const SUITE = 'bookworm'
export const VARIANT = 'minbase'
/** Bump when the image recipe below changes: it is part of the cache key. */
export const IMAGE_RECIPE = 4

export const IMAGES_DIR = path.join(LAB_CACHE_DIR, 'images')
export const DEBS_DIR = path.join(LAB_CACHE_DIR, 'debs')
export const BUILD_LOG = path.join(LAB_CACHE_DIR, 'build.log')

/** The cache key of the lab image: a hash of everything that decides its content. */
export function imageKey(packages: string[] = labImagePackages()): string {
  const h = createHash('sha256').update(JSON.stringify({suite: SUITE, variant: VARIANT, packages: [...packages].sort(), recipe: IMAGE_RECIPE}))
  return h.digest('hex').slice(0, 12)
}

export interface LabImage {
  key: string
  rootfs: string
  packages: string[]
  /** true when this call built it. */
  built: boolean
  buildMs?: number
}

export function imageDir(key: string): string {
  return path.join(IMAGES_DIR, `${SUITE}-${key}`)
}

/**
 * Return the cached base image for the current package list, building it with debootstrap when
 * missing (about a minute). Old images are pruned after a build, except `keep` (in use by a lab).
 */
export async function ensureImage(log: (msg: string) => void, keep?: string): Promise<LabImage> {
  const packages = labImagePackages()
  const key = imageKey(packages)
  const dir = imageDir(key)
  const rootfs = path.join(dir, 'rootfs')
  if (existsSync(path.join(dir, 'image.json')) && existsSync(path.join(rootfs, 'sbin/init'))) {
    return {key, rootfs, packages, built: false}
  }
  await mkdir(IMAGES_DIR, {recursive: true})
  await mkdir(DEBS_DIR, {recursive: true})
  // Leftovers of an interrupted build (we hold the lab lock: no build is running).
  for (const entry of await readdir(IMAGES_DIR)) {
    if (entry.startsWith('.build-')) await removeTree(path.join(IMAGES_DIR, entry))
  }
  const mirror = readMirror()
  if (!mirror) {
    throw new UsageError('no Debian mirror found in this machine\'s apt sources (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list)', {
      hint: 'Add a Debian source to apt, or set INFRA_LAB_MIRROR to a Debian mirror URL.',
      code: 'ELABMIRROR',
    })
  }
  const tmp = path.join(IMAGES_DIR, `.build-${key}-${process.pid}`)
  const started = Date.now()
  log(`lab: building the lab image (debootstrap ${SUITE} ${VARIANT}, ${packages.length} packages, mirror ${mirror.uri} from ${mirror.from}); this takes about a minute, once`)
  const logStream = createWriteStream(BUILD_LOG)
  let lastLine = ''
  let buffered = ''
  const ticker = setInterval(() => log(`lab:   … ${lastLine || 'building'} (${Math.round((Date.now() - started) / 1000)} s)`), 15_000)
  try {
    const argv = [
      'debootstrap',
      `--variant=${VARIANT}`,
      '--components=main',
      `--include=${packages.join(',')}`,
      `--cache-dir=${DEBS_DIR}`,
      ...(mirror.keyring ? [`--keyring=${mirror.keyring}`] : []),
      SUITE,
      path.join(tmp, 'rootfs'),
      mirror.uri,
    ]
    logStream.write(`$ ${argv.join(' ')}\n`)
    const r = await run(argv, {
      allowFail: true,
      timeoutMs: 30 * 60_000,
      onStdout: (chunk) => {
        logStream.write(chunk)
        buffered += chunk
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const l of lines) if (l.startsWith('I: ')) lastLine = l.slice(3)
      },
    })
    logStream.write(r.stderr)
    if (r.code !== 0) {
      const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-4).join('\n  ')
      throw new UsageError(`building the lab image failed (debootstrap exited with ${r.code}):\n  ${tail}`, {
        hint: `Full log: ${BUILD_LOG}. Check that this machine reaches ${mirror.uri} (\`apt-get update\`).`,
        code: 'ELABIMAGE',
      })
    }
    await customizeImage(path.join(tmp, 'rootfs'))
    const buildMs = Date.now() - started
    await writeFile(
      path.join(tmp, 'image.json'),
      JSON.stringify({key, suite: SUITE, variant: VARIANT, recipe: IMAGE_RECIPE, packages, mirror: mirror.uri, builtAt: new Date().toISOString(), buildMs}, null, 2) + '\n',
    )
    await removeTree(dir)
    await rename(tmp, dir)
    log(`lab: image built in ${(buildMs / 1000).toFixed(1)} s (${dir})`)
    await pruneImages([key, ...(keep ? [keep] : [])])
    return {key, rootfs, packages, built: true, buildMs}
  } finally {
    clearInterval(ticker)
    logStream.end()
    if (existsSync(tmp)) await removeTree(tmp)
  }
}

/** Make the debootstrapped tree a neutral base: no host identity, no DNS, no keys. */
async function customizeImage(rootfs: string): Promise<void> {
  const etc = path.join(rootfs, 'etc')
  // Each host gets its own host keys and machine-id in its own layer.
  for (const f of await readdir(path.join(etc, 'ssh'))) {
    if (f.startsWith('ssh_host_')) await rm(path.join(etc, 'ssh', f))
  }
  await writeFile(path.join(etc, 'machine-id'), '')
  const dbusId = path.join(rootfs, 'var/lib/dbus/machine-id')
  await rm(dbusId, {force: true})
  await mkdir(path.dirname(dbusId), {recursive: true})
  await symlink('/etc/machine-id', dbusId)
  await writeFile(path.join(etc, 'hostname'), 'localhost\n')
  // The lab has no DNS and no route off this machine.
  await rm(path.join(etc, 'resolv.conf'), {force: true})
  await writeFile(path.join(etc, 'resolv.conf'), '# infra lab: no DNS (lab hosts have no route off this machine)\n')
  await writeFile(path.join(etc, 'fstab'), '# infra lab host: file systems are set up by systemd-nspawn\n')
  // sshd must start at boot (it is enabled by its package; make sure).
  await run(['systemctl', `--root=${rootfs}`, 'enable', 'ssh.service'], {allowFail: true})
  // Docker and the registry are in the image for hosts of an inventory with an `app`; like on a
  // VPS before provision, they do not run until provision enables them.
  await run(['systemctl', `--root=${rootfs}`, 'disable', ...IMAGE_DISABLED_UNITS], {allowFail: true})
}

/** Units the image's packages enable that a plain host does not run (provision enables them when needed). */
export const IMAGE_DISABLED_UNITS = ['docker.service', 'docker.socket', 'containerd.service', 'docker-registry.service']

/** Remove cached images other than `keep`. */
export async function pruneImages(keep: string[]): Promise<void> {
  if (!existsSync(IMAGES_DIR)) return
  for (const entry of await readdir(IMAGES_DIR)) {
    if (entry.startsWith('.build-')) continue
    if (keep.some((k) => entry === `${SUITE}-${k}`)) continue
    await removeTree(path.join(IMAGES_DIR, entry))
  }
}

/** Remove the whole cache (`lab down --purge`). */
export async function purgeCache(): Promise<void> {
  await removeTree(LAB_CACHE_DIR)
}

export async function readImageInfo(key: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path.join(imageDir(key), 'image.json'), 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}
