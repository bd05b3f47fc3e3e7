/**
 * Shared helpers for lab tests. The lab is brought up once per run by global-setup.ts; its
 * inventory path comes from `inject('labConfig')`. Every probe here stays on lab links: traffic
 * goes only to addresses of the lab's own namespaces, never off this machine.
 */
import {execFile, spawnSync} from 'node:child_process'
import path from 'node:path'
import {promisify} from 'node:util'
import {inject} from 'vitest'

import {BASTION_PUBLIC_ADDRESS, labInfo, LabInfo, ROOT_LINK} from '../../src/lab/index.js'

export {labExec, labHostCgroup, labHostPid, labNetExec, labStatus} from '../../src/lab/index.js'

/** Absolute path of the shared lab's inventory (infra.yaml). */
export function labConfig(): string {
  return inject('labConfig')
}

/** The running lab (hosts, addresses, operator key). Throws when none is up. */
export async function lab(): Promise<LabInfo> {
  const info = await labInfo()
  if (!info) throw new Error('no lab is running (global-setup should have started one)')
  return info
}

/** The bastion's public address (what clients on "the internet" use). Read it from here or the inventory, never hard-code it. */
export const PUBLIC = BASTION_PUBLIC_ADDRESS

function sh(argv: string[], timeoutMs = 15_000): {code: number; stdout: string; stderr: string} {
  const r = spawnSync(argv[0], argv.slice(1), {encoding: 'utf8', timeout: timeoutMs, input: ''})
  return {code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? ''}
}

/** The route this machine would use for an address (`ip route get` sends nothing). */
export function routeGet(address: string): {dst?: string; dev?: string; gateway?: string} {
  const r = sh(['ip', '-j', 'route', 'get', address])
  return r.code === 0 ? (JSON.parse(r.stdout) as {dev?: string; gateway?: string}[])[0] : {}
}

/**
 * From this machine, pinned to the lab's public link (SO_BINDTODEVICE: nothing can leave by another
 * link, whatever the routing table says), open a TCP connection and return the first line the
 * server sends, or undefined. (socat rather than `curl --interface`: it returns as soon as the
 * server goes quiet, instead of at curl's --max-time.)
 */
export function probeFromOutside(address: string, port: number, timeoutSec = 2): string | undefined {
  const r = sh(['socat', '-T0.3', '-u', `TCP:${address}:${port},so-bindtodevice=${ROOT_LINK},connect-timeout=${timeoutSec}`, 'STDOUT'], (timeoutSec + 5) * 1000)
  const line = r.stdout.split('\n')[0].trim()
  return line || undefined
}

/**
 * Run `fn` with a temporary host route in this machine's routing table: `address/32 via` the
 * bastion's public address, over the lab link only. This is what an attacker next to the bastion
 * could do; the route is removed afterwards (and goes with the link on `lab down`).
 */
export async function withForcedRoute<T>(address: string, fn: () => Promise<T> | T): Promise<T> {
  const add = sh(['ip', 'route', 'add', `${address}/32`, 'via', BASTION_PUBLIC_ADDRESS, 'dev', ROOT_LINK])
  if (add.code !== 0) throw new Error(`could not add the temporary route: ${add.stderr}`)
  try {
    return await fn()
  } finally {
    sh(['ip', 'route', 'del', `${address}/32`, 'via', BASTION_PUBLIC_ADDRESS, 'dev', ROOT_LINK])
  }
}

/** The first line a TCP server sends, read from inside a lab network namespace (host name, "internet" or a namespace). */
export function bannerFromNetns(netns: string, address: string, port: number, timeoutSec = 2): string | undefined {
  const r = sh(
    ['ip', 'netns', 'exec', netns, 'timeout', String(timeoutSec), 'bash', '-c', 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r l <&3 && printf %s "$l"', 'bash', address, String(port)],
    (timeoutSec + 5) * 1000,
  )
  return r.code === 0 && r.stdout ? r.stdout.trim() : undefined
}

const execFileP = promisify(execFile)
/** The repository's root folder. */
export const ROOT = path.resolve(import.meta.dirname, '../..')
/** The built CLI's entry point (`node BIN ARGS` is `infra ARGS`). */
export const BIN = path.join(ROOT, 'bin/run.js')
/** The environment the CLI runs with here: this process's as it is now, CI=true, no colour, and `extra`. */
export function infraEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {...process.env, CI: 'true', NO_COLOR: '1', ...extra}
}

export interface InfraRun {
  code: number
  stdout: string
  stderr: string
  /** How long the command took, in ms. */
  ms: number
}

export interface InfraOptions {
  /** Variables added to the environment. */
  env?: Record<string, string>
  /** Kill the command after this many ms (none by default). */
  timeoutMs?: number
  /** The exit code expected: any other throws, with the command's output. Unset: never throws. */
  exit?: number
}

/** `args` with `--config CONFIG` before a `--` separator, so it is never taken as part of a remote command. */
export function withConfig(args: string[], config: string): string[] {
  const i = args.indexOf('--')
  return i === -1 ? [...args, '--config', config] : [...args.slice(0, i), '--config', config, ...args.slice(i)]
}

/**
 * `infra ARGS --config CONFIG` as a user runs it (the built CLI, CI=true, no colour): the exit
 * code, stdout and stderr. It throws only when `opts.exit` is given and the exit code differs.
 */
export async function infra(args: string[], config: string, opts: InfraOptions = {}): Promise<InfraRun> {
  const t0 = Date.now()
  let r: Omit<InfraRun, 'ms'>
  try {
    const out = await execFileP('node', [BIN, ...withConfig(args, config)], {env: infraEnv(opts.env), maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs})
    r = {code: 0, stdout: out.stdout, stderr: out.stderr}
  } catch (error) {
    const e = error as {code?: number; stdout?: string; stderr?: string}
    r = {code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
  }
  if (opts.exit !== undefined && r.code !== opts.exit) throw new Error(`infra ${args.join(' ')} exited ${r.code}\n${r.stderr}\n${r.stdout}`)
  return {...r, ms: Date.now() - t0}
}
