import {accessSync, constants, existsSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {UsageError} from '../lib/errors.js'
import {run, type RunResult, SYSTEM_PATH} from './run.js'

/** Tools the lab runs, and the Debian package that provides each. */
export const LAB_TOOLS: Record<string, string> = {
  debootstrap: 'debootstrap',
  'systemd-nspawn': 'systemd-container',
  systemctl: 'systemd',
  ip: 'iproute2',
  'ssh-keygen': 'openssh-client',
  nsenter: 'util-linux',
  flock: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  bash: 'bash',
  timeout: 'coreutils',
}

export function which(tool: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of `${envPath}:${SYSTEM_PATH}`.split(':').filter(Boolean)) {
    const p = path.join(dir, tool)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return undefined
}

/** Debian packages that provide the missing tools (pure, for tests). */
export function missingPackages(missingTools: string[]): string[] {
  return [...new Set(missingTools.map((t) => LAB_TOOLS[t] ?? t))].sort()
}

/**
 * `apt-get install` Debian packages (no recommends, no prompts); on failure the package lists are
 * refreshed once and the install retried (a fresh machine may have none yet). Never throws: the
 * caller reads the result.
 */
export async function aptInstall(pkgs: string[]): Promise<RunResult> {
  const opts = {allowFail: true, env: {...process.env, DEBIAN_FRONTEND: 'noninteractive', PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}`}, timeoutMs: 600_000}
  const install = () => run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs], opts)
  const r = await install()
  if (r.code === 0) return r
  await run(['apt-get', 'update', '-q'], opts)
  return install()
}

/**
 * Check that the lab can run here: Linux, root, overlayfs, and every tool. Installs missing tools
 * with apt-get when root on Debian; otherwise fails with exit 2 and what to do.
 */
export async function ensurePrerequisites(log: (msg: string) => void): Promise<void> {
  if (process.platform !== 'linux') {
    throw new UsageError(`infra lab runs only on Linux (this is ${process.platform})`, {
      hint: 'Use a Debian 12 machine or VM where you are root; the lab needs network namespaces and systemd-nspawn.',
      code: 'ELABPLATFORM',
    })
  }
  if (process.getuid?.() !== 0) {
    throw new UsageError('infra lab needs root (it creates network namespaces, mounts and containers)', {
      hint: 'Run it as root, e.g. `sudo infra lab up`.',
      code: 'ELABROOT',
    })
  }
  let missing = Object.keys(LAB_TOOLS).filter((t) => !which(t))
  if (missing.length > 0) {
    const pkgs = missingPackages(missing)
    if (!existsSync('/etc/debian_version') || !which('apt-get')) {
      throw new UsageError(`infra lab needs these tools, which are missing: ${missing.join(', ')}`, {
        hint: `Install them (on Debian: apt-get install ${pkgs.join(' ')}) and run the command again.`,
        code: 'ELABTOOLS',
      })
    }
    log(`lab: installing prerequisites with apt-get: ${pkgs.join(' ')}`)
    const r = await aptInstall(pkgs)
    missing = Object.keys(LAB_TOOLS).filter((t) => !which(t))
    if (r.code !== 0 || missing.length > 0) {
      throw new UsageError(`could not install the lab's prerequisites (${pkgs.join(' ')}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`, {
        hint: `Install them by hand: apt-get update && apt-get install ${pkgs.join(' ')}`,
        code: 'ELABTOOLS',
      })
    }
  }
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) {
    await run(['modprobe', 'overlay'], {allowFail: true})
    if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) {
      throw new UsageError('this kernel has no overlayfs, which the lab uses for each host\'s writable layer', {
        hint: 'Load it with `modprobe overlay` (or use a kernel with CONFIG_OVERLAY_FS).',
        code: 'ELABOVERLAY',
      })
    }
  }
}
