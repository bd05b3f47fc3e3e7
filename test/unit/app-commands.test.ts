/**
 * The shell a deploy sends (src/app/commands.ts): every builder's output parses (bash -n, and dash's
 * sh -n for the commands an SSH exec may hand to a plain sh), odd inputs arrive as the same words,
 * and the app's secrets travel only on stdin: never in a script's text, and never in the arguments
 * of a process the scripts start. The scripts run for real here, in a temp folder, with the host
 * paths moved into it and fakes of docker, curl, systemctl and infra-app on PATH; every other
 * command they spawn goes through a spy that records its arguments.
 */
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {
  appCommand,
  buildCommand,
  envFileText,
  type LockInfo,
  loadArchiveScript,
  lockScript,
  loginCommand,
  releaseCommand,
  parseReleaseFiles,
  pushScript,
  readHistoryCommand,
  readReleaseFilesScript,
  registryGcScript,
  releaseFiles,
  resolveScript,
  stageReleaseScript,
  unlockScript,
  writeHistoryScript,
} from '../../src/app/commands.js'
import {configDigest, promote, type Release, serializeHistory} from '../../src/app/release.js'
import {factLines, unb64} from '../../src/host/facts.js'
import {APP_PATHS} from '../../src/host/paths.js'
import {shq} from '../../src/host/quote.js'
import {configOf} from '../../src/inventory/config.js'
import {type InventoryInput, inventorySchema} from '../../src/inventory/schema.js'
import {appWebFiles} from '../../src/roles/app.js'
import {context, fileAt, INVENTORIES, inventory, requireTool, tempDir} from './render-helpers.js'

const SECRETS = {
  DATABASE_PASSWORD: `p@ss w0rd 'single' "double" $HOME \`id\` $(id) ;|&<> \\ ünï-9f3a`,
  SECRET_KEY_BASE: 'skb-4f1c9e2a7d0b-never-on-a-command-line',
}
const ODD = `it's a "word" with $HOME, \`id\`, $(id) and a \\`

const appInput = (app: Partial<NonNullable<InventoryInput['app']>> = {}): InventoryInput => ({
  ...INVENTORIES['three active, no aliases'],
  app: {
    image: 'shop',
    port: 3000,
    env: {RAILS_ENV: 'production', GREETING: `hello 'world' "x" $HOME`, WORKERS: 4},
    secrets: ['DATABASE_PASSWORD', 'SECRET_KEY_BASE'],
    memory: '512m',
    cpus: 1.5,
    volumes: ['uploads:/app/public/uploads', 'cache:/tmp/cache'],
    command: ['bin/server', '--greeting', 'hello world', "it's"],
    ...app,
  },
})
const inv = inventory(appInput())
const app = configOf(inv).app!
const IMAGE = `${app.repository}@sha256:${'ab'.repeat(32)}`
const ENV = envFileText(inv, SECRETS)
const FILES = releaseFiles(inv, IMAGE, ENV, app.healthPath)

/** Every form a secret could take in a leak: its value, and the env file as base64 (what the stage script carries). */
const LEAKS = [...Object.values(SECRETS), Buffer.from(ENV).toString('base64')]

const roots: string[] = []
afterAll(() => {
  for (const r of roots) rmSync(r, {recursive: true, force: true})
})

// --- running a script for real ------------------------------------------------------------------

/** Real commands the scripts use: each runs through a wrapper that records its arguments first. */
const SPIED = ['base64', 'chmod', 'mv', 'mkdir', 'rm', 'cat', 'sed', 'grep', 'head', 'tail', 'dirname', 'seq', 'sleep', 'tr', 'wc']

let realPaths: Record<string, string> | undefined
function spiedPaths(): Record<string, string> {
  realPaths ??= Object.fromEntries(
    SPIED.map((name) => {
      const real = spawnSync('sh', ['-c', `PATH=/usr/bin:/bin command -v ${name}`], {encoding: 'utf8'}).stdout.trim()
      if (!real) throw new Error(`${name} not found`)
      return [name, real]
    }),
  )
  return realPaths
}

interface Ran {
  code: number
  stdout: string
  stderr: string
}

interface Sandbox {
  dir: string
  bin: string
  /** Runs `script` as `bash -s` does (the script on stdin), or as an SSH exec does (`bash -c`) with `input` on stdin. */
  run(script: string, opts?: {stdin?: string; shell?: 'bash-s' | 'bash-c'}): Ran
  /** Every process the runs started, as argv (argv[0] without its folder). */
  calls(): string[][]
  /** What the fakes read on stdin, by name, in call order. */
  stdins(name: string): string[]
}

/**
 * A temp folder with fakes (name → bash body; `$SANDBOX` is the folder, the fake's own tools are not
 * spied) and spies of SPIED on PATH.
 */
function sandbox(fakes: Record<string, string> = {}): Sandbox {
  const dir = tempDir('infra-app-cmd-')
  roots.push(dir)
  const bin = path.join(dir, 'bin')
  mkdirSync(bin)
  const log = path.join(dir, 'argv.log')
  const record = `{ printf '%s\\0' "\${0##*/}" "$@"; printf '\\036'; } >> ${shq(log)}`
  for (const [name, real] of Object.entries(spiedPaths())) {
    writeFileSync(path.join(bin, name), `#!/bin/bash\n${record}\nexec ${real} "$@"\n`, {mode: 0o755})
  }
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(path.join(bin, name), `#!/bin/bash\n${record}\nPATH=/usr/bin:/bin\nn=$(ls "$SANDBOX"/stdin.${name}.* 2>/dev/null | wc -l)\n${body}\n`, {mode: 0o755})
  }
  return {
    dir,
    bin,
    run(script, opts = {}) {
      // --norc: bash reads ~/.bashrc when its stdin is a socket (as Node's pipes are), like under sshd.
      const argv = opts.shell === 'bash-c' ? ['--norc', '-c', script] : ['--norc', '-s']
      const input = opts.shell === 'bash-c' ? (opts.stdin ?? '') : script
      const r = spawnSync('bash', argv, {input, encoding: 'utf8', timeout: 20_000, env: {PATH: `${bin}:/usr/bin:/bin`, SANDBOX: dir, LC_ALL: 'C'}})
      if (r.error) throw r.error
      return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
    },
    calls() {
      if (!existsSync(log)) return []
      return readFileSync(log, 'utf8')
        .split('\x1e')
        .filter(Boolean)
        .map((c) => c.split('\0').slice(0, -1))
    },
    stdins(name) {
      return readdirSync(dir)
        .filter((f) => f.startsWith(`stdin.${name}.`))
        .sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1)))
        .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    },
  }
}

/** A fake's body that keeps what it reads on stdin (stdin.NAME.N in the sandbox). */
const keepStdin = (name: string) => `cat > "$SANDBOX/stdin.${name}.$n"`

/** The script with host paths moved (each must be in it). */
function retarget(script: string, moves: Record<string, string>): string {
  let out = script
  for (const [from, to] of Object.entries(moves)) {
    expect(out, `the script names ${from}`).toContain(from)
    out = out.replaceAll(from, to)
  }
  return out
}

function expectParses(script: string): void {
  for (const shell of ['bash', 'sh']) {
    const r = spawnSync(shell, ['-n'], {input: script, encoding: 'utf8'})
    expect(r.status, `${shell} -n:\n${r.stderr}\n${script}`).toBe(0)
  }
  // Errors only: the builders are one-liners joined by the deploy (an unused loop counter is a warning).
  const sc = spawnSync('shellcheck', ['-s', 'bash', '-S', 'error', '-'], {input: script, encoding: 'utf8'})
  expect(sc.status, `shellcheck:\n${sc.stdout}\n${script}`).toBe(0)
}

function expectNoLeak(text: string, where: string): void {
  for (const s of LEAKS) expect(text.includes(s), `${where} holds a secret`).toBe(false)
}

const digest = (c: string) => `sha256:${c.repeat(64)}`
const LOCK: LockInfo = {holder: `ana o'brien "x"@laptop pid 4242`, run: 'run-1', since: 1796150000, what: `deploy it's $(v2)`}
const release: Release = {id: 'v2', version: 'v2', image: IMAGE, digest: digest('a'), configDigest: configDigest(FILES), at: '2026-12-02T18:44:03Z', by: 'ana@laptop', commit: null, state: 'current'}

/** Every script and command line a deploy builds, with the inputs above. */
const BUILT: Record<string, string> = {
  'stageReleaseScript (pull)': stageReleaseScript('v2', FILES, {pull: true}),
  'stageReleaseScript (no pull)': stageReleaseScript('v2', FILES, {pull: false}),
  readReleaseFilesScript: readReleaseFilesScript('v2'),
  'appCommand status': appCommand('status'),
  'appCommand start': appCommand('start', 'v2'),
  'appCommand drain-later': appCommand('drain-later', 'v1', 30),
  'appCommand prune': appCommand('prune', 5, 'v2', 'v1', ODD),
  loginCommand: loginCommand('ghcr.io', ODD),
  lockScript: lockScript(LOCK),
  'lockScript (take over)': lockScript(LOCK, 'run-0'),
  unlockScript: unlockScript(LOCK.run),
  readHistoryCommand: readHistoryCommand(),
  writeHistoryScript: writeHistoryScript(serializeHistory(promote({releases: []}, release))),
  buildCommand: buildCommand(`${app.repository}:v2`, ODD),
  pushScript: pushScript(`${app.repository}:v2`),
  loadArchiveScript: loadArchiveScript(`${app.repository}:v2`),
  resolveScript: resolveScript(`${app.repository}:v2`),
  registryGcScript: registryGcScript(configOf(inv).registryAddress, app.repositoryPath, [digest('1'), digest('2')], [`${app.repository}:v1`, `${app.repository}:${ODD}`]),
  'registryGcScript (tags only)': registryGcScript(configOf(inv).registryAddress, app.repositoryPath, [], [`${app.repository}:v1`]),
  'registryGcScript (nothing)': registryGcScript(configOf(inv).registryAddress, app.repositoryPath, [], []),
}

describe('every script parses and carries no secret in its text', () => {
  requireTool('shellcheck', 'shellcheck')
  requireTool('dash', 'dash')

  it.each(Object.entries(BUILT))('%s', (name, script) => {
    expectParses(script)
    if (name.startsWith('stageReleaseScript')) {
      // The env file rides inside the script (base64), which goes to `bash -s` on stdin: the values never appear as such.
      for (const v of Object.values(SECRETS)) expect(script.includes(v)).toBe(false)
    } else {
      expectNoLeak(script, name)
    }
  })

  it('a release record and the history hold no secret (the config digest is a hash)', () => {
    expectNoLeak(serializeHistory(promote({releases: []}, release)), 'releases.json')
    expect(release.configDigest).toMatch(/^[0-9a-f]{64}$/)
    expectNoLeak(FILES.run + FILES.health, 'the .run and .health files')
  })
})

describe('release files', () => {
  it('the env file: app.env in order, then the secrets, KEY=value as Docker reads it (no quoting)', () => {
    expect(ENV).toBe(
      [
        'RAILS_ENV=production',
        `GREETING=hello 'world' "x" $HOME`,
        'WORKERS=4',
        `DATABASE_PASSWORD=${SECRETS.DATABASE_PASSWORD}`,
        `SECRET_KEY_BASE=${SECRETS.SECRET_KEY_BASE}`,
        '',
      ].join('\n'),
    )
    expect(envFileText(inventory(appInput({env: {}, secrets: []})), {})).toBe('')
    expect(envFileText(inventory(INVENTORIES['three active, no aliases']), SECRETS)).toBe('')
  })

  it('the run file: options, the image by digest, the command, one argument per line; infra-app reads them back as the same words', () => {
    expect(FILES.run).toBe(['--memory=512m', '--cpus=1.5', '--volume=uploads:/app/public/uploads', '--volume=cache:/tmp/cache', IMAGE, 'bin/server', '--greeting', 'hello world', "it's", ''].join('\n'))
    expect(FILES.health).toBe('/healthz\n')
    const minimal = releaseFiles(inventory(appInput({memory: undefined, cpus: undefined, volumes: [], command: undefined})), `${app.repository}:v1`, '', '/up')
    expect(minimal).toEqual({run: `${app.repository}:v1\n`, env: '', health: '/up\n'})
    // infra-app: `mapfile -t args < ID.run`, then `docker create ... "${args[@]}"`; its image is the first line not starting with "-".
    const s = sandbox()
    writeFileSync(path.join(s.dir, 'v2.run'), FILES.run)
    const r = s.run(`mapfile -t args < "$SANDBOX/v2.run"; printf '%s\\0' "\${args[@]}"; awk '!/^-/ { print; exit }' "$SANDBOX/v2.run" >&2`)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(FILES.run.split('\n').slice(0, -1))
    expect(r.stderr).toBe(`${IMAGE}\n`)
  })

  // BUG (reported, not fixed here): a command word with a line break (a YAML block scalar, e.g.
  // `command: [sh, -c, "step one\nstep two"]`, which the schema accepts) becomes two lines of the run
  // file, so infra-app hands docker two arguments.
  it('a command word with a line break is refused by the inventory (the run file has one word per line)', () => {
    const r = inventorySchema.safeParse(appInput({command: ['sh', '-c', 'echo one\necho two']}))
    expect(r.success).toBe(false)
    expect(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([expect.stringMatching(/^app\.command\.2: has a line break or a NUL/)])
  })
})

describe('staging a release on a node', () => {
  function stage(opts: {pull: boolean; pullExit?: number; before?: (releases: string) => void}) {
    const s = sandbox({'infra-app': `echo "pulled $2"\nexit ${opts.pullExit ?? 0}`})
    const releases = path.join(s.dir, 'state', 'releases')
    opts.before?.(releases)
    const moves = {[`${APP_PATHS.stateDir}/releases`]: releases, ...(opts.pull ? {[APP_PATHS.script]: path.join(s.bin, 'infra-app')} : {})}
    const script = retarget(stageReleaseScript('v2', FILES, {pull: opts.pull}), moves)
    return {s, releases, r: s.run(script)}
  }

  it('writes the env file 0600 (byte for byte, secrets included), the run and health files 0644, then pulls the release', () => {
    const {s, releases, r} = stage({pull: true})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('pulled v2\n')
    expect(readFileSync(path.join(releases, 'v2.env'), 'utf8')).toBe(ENV)
    expect(readFileSync(path.join(releases, 'v2.run'), 'utf8')).toBe(FILES.run)
    expect(readFileSync(path.join(releases, 'v2.health'), 'utf8')).toBe(FILES.health)
    const mode = (f: string) => (statSync(path.join(releases, f)).mode & 0o777).toString(8)
    expect([mode('v2.env'), mode('v2.run'), mode('v2.health')]).toEqual(['600', '644', '644'])
    expect((statSync(releases).mode & 0o777).toString(8)).toBe('700')
    expect(readdirSync(releases).sort()).toEqual(['v2.env', 'v2.health', 'v2.run'])
    const pulls = s.calls().filter((c) => c[0] === 'infra-app')
    expect(pulls).toEqual([['infra-app', 'pull', 'v2']])
  })

  it('no process it starts has a secret (or the env file as base64) in its arguments', () => {
    const {s, r} = stage({pull: true})
    expect(r.code, r.stderr).toBe(0)
    const calls = s.calls()
    // It did spawn processes (base64, chmod, mv, mkdir): the spies saw them.
    expect(new Set(calls.map((c) => c[0]))).toEqual(new Set(['mkdir', 'base64', 'chmod', 'mv', 'infra-app']))
    for (const c of calls) expectNoLeak(c.join(' '), `argv of ${c[0]}`)
  })

  it("reports the pull's failure with its exit status", () => {
    const {r} = stage({pull: true, pullExit: 5})
    expect(r.code).toBe(5)
  })

  it('replaces the files of a release staged before (a retried deploy)', () => {
    const {releases, r} = stage({
      pull: false,
      before: (dir) => {
        mkdirSync(dir, {recursive: true})
        writeFileSync(path.join(dir, 'v2.env'), 'OLD=1\n', {mode: 0o644})
      },
    })
    expect(r.code, r.stderr).toBe(0)
    expect(readFileSync(path.join(releases, 'v2.env'), 'utf8')).toBe(ENV)
    expect(statSync(path.join(releases, 'v2.env')).mode & 0o777).toBe(0o600)
  })

  // BUG (reported, not fixed here): each file is written by an `a && b && c` list, which `set -e`
  // does not stop on, so a write that fails is skipped and the script goes on (exit 0 without a pull).
  it('a release file that cannot be written fails the script', () => {
    const {r} = stage({pull: false, before: (dir) => mkdirSync(path.join(dir, 'v2.health.tmp'), {recursive: true})})
    expect(r.code).not.toBe(0)
  })
})

describe('copying a release to a standby node (read on one node, staged on the other)', () => {
  function staged() {
    const s = sandbox({'infra-app': ':'})
    const releases = path.join(s.dir, 'state', 'releases')
    const moves = {[`${APP_PATHS.stateDir}/releases`]: releases}
    const w = s.run(retarget(stageReleaseScript('v2', FILES, {pull: false}), moves))
    expect(w.code, w.stderr).toBe(0)
    return {s, releases, read: () => s.run(retarget(readReleaseFilesScript('v2'), moves))}
  }

  it('reads back exactly the files that were staged, secrets included, without putting them in an argument', () => {
    const {s, read} = staged()
    const r = read()
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t').slice(0, 2).join(' '))).toEqual(['@@relfile env', '@@relfile run', '@@relfile health'])
    expect(parseReleaseFiles(r.stdout)).toEqual(FILES)
    for (const c of s.calls()) expectNoLeak(c.join(' '), `argv of ${c[0]}`)
  })

  it('a release with a file missing is refused, naming the file; the parser finds nothing', () => {
    const {releases, read} = staged()
    rmSync(path.join(releases, 'v2.health'))
    const r = read()
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('release v2 has no .health file here\n')
    expect(parseReleaseFiles(r.stdout)).toBeUndefined()
  })

  it.each<[string, string, ReturnType<typeof parseReleaseFiles>]>([
    ['all three, an empty env file', '@@relfile\tenv\t\n@@relfile\trun\taW1nCg==\n@@relfile\thealth\tL3VwCg==\n', {env: '', run: 'img\n', health: '/up\n'}],
    ['noise around the lines', 'motd\n@@relfile\trun\taW1nCg==\n@@other\tx\n@@relfile\tenv\tQT0xCg==\n@@relfile\thealth\tL3VwCg==\n', {env: 'A=1\n', run: 'img\n', health: '/up\n'}],
    ['no env line', '@@relfile\trun\taW1nCg==\n@@relfile\thealth\tL3VwCg==\n', undefined],
    ['an empty run file', '@@relfile\tenv\t\n@@relfile\trun\t\n@@relfile\thealth\tL3VwCg==\n', undefined],
    ['nothing', '', undefined],
  ])('parseReleaseFiles: %s', (_what, out, expected) => {
    expect(parseReleaseFiles(out)).toEqual(expected)
  })
})

describe('infra-app commands', () => {
  it.each<[string, (string | number)[]]>([
    ['status', []],
    ['start', ['v2']],
    ['drain-later', ['v1', 30]],
    ['prune', [5, 'v3', 'v2', 'v1']],
    ['logs', [ODD, 20]],
    ['remove', ['a b', '', "'", '"', '$(id)', 'line\nbreak']],
  ])('%s %j: the node sees exactly these words', (verb, args) => {
    const s = sandbox({'infra-app': ':'})
    const cmd = retarget(appCommand(verb, ...args), {[APP_PATHS.script]: path.join(s.bin, 'infra-app')})
    expect(appCommand(verb, ...args).startsWith(`${APP_PATHS.script} ${verb}`)).toBe(true)
    const r = s.run(cmd, {shell: 'bash-c'})
    expect(r.code, r.stderr).toBe(0)
    expect(s.calls()).toEqual([['infra-app', verb, ...args.map(String)]])
  })
})

describe('the release command (app.release)', () => {
  it('runs the release\'s image with its env file, volumes and limits, each word one argument, named so a leftover is removed first', () => {
    const spec = inventory(appInput({release: ['bin/migrate', ODD]})).app!
    const s = sandbox({docker: ':'})
    const r = s.run(releaseCommand('v2', IMAGE, spec), {shell: 'bash-c'})
    expect(r.code, r.stderr).toBe(0)
    const docker = s.calls().filter((c) => c[0] === 'docker')
    expect(docker[0]).toEqual(['docker', 'rm', '-f', 'app-release-v2'])
    expect(docker[1]).toEqual([
      'docker', 'run', '--rm', '--name', 'app-release-v2', '--log-driver', 'journald', '--log-opt', 'tag=app-release',
      '--env-file', `${APP_PATHS.stateDir}/releases/v2.env`, '--memory=512m', '--cpus=1.5',
      '--volume=uploads:/app/public/uploads', '--volume=cache:/tmp/cache', IMAGE, 'bin/migrate', ODD,
    ])
    for (const c of s.calls()) expectNoLeak(c.join(' '), `argv of ${c[0]}`)
  })
})

describe('an outside registry: docker login', () => {
  it('passes the password on stdin only; registry and user arrive as one word each', () => {
    const password = SECRETS.DATABASE_PASSWORD
    const s = sandbox({docker: keepStdin('docker')})
    const dir = path.join(s.dir, 'registry-login')
    const r = s.run(retarget(loginCommand('ghcr.io', ODD), {[APP_PATHS.registryLogin]: dir}), {shell: 'bash-c', stdin: password})
    expect(r.code, r.stderr).toBe(0)
    expect(s.calls().filter((c) => c[0] === 'docker')).toEqual([['docker', 'login', 'ghcr.io', '--username', ODD, '--password-stdin']])
    // Its own DOCKER_CONFIG, 0700: root's config.json (the fleet registry's, provision's) is left alone.
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(loginCommand('ghcr.io', 'u')).toContain(`DOCKER_CONFIG=${APP_PATHS.registryLogin} docker login`)
    expect(s.stdins('docker')).toEqual([password])
  })
})

describe('the deploy lock on the bastion', () => {
  function lockSandbox() {
    const s = sandbox()
    const lock = path.join(s.dir, 'app', 'deploy.lock')
    const run = (script: string) => s.run(retarget(script, {[APP_PATHS.deployLock]: lock}))
    return {s, lock, run}
  }
  const other: LockInfo = {holder: 'bob@ci pid 7', run: 'run-2', since: 1796150100, what: 'rollback'}

  it('is taken once; a second taker learns who holds it (odd characters intact)', () => {
    const {lock, run} = lockSandbox()
    const first = run(lockScript(LOCK))
    expect(first).toMatchObject({code: 0, stdout: '@@locked\n'})
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(LOCK)
    const second = run(lockScript(other))
    expect(second.code).toBe(0)
    const [line] = factLines(second.stdout)
    expect(line.tag).toBe('@@held')
    expect(JSON.parse(unb64(line.fields[0]))).toEqual(LOCK)
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(LOCK)
  })

  it('a stale lock is taken over only when it is still the one judged stale', () => {
    const {lock, run} = lockSandbox()
    run(lockScript(LOCK))
    // Someone else's lock replaced the stale one meanwhile: no take-over.
    expect(factLines(run(lockScript(other, 'run-0')).stdout)[0].tag).toBe('@@held')
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(LOCK)
    // A run ID that is a prefix of the holder's does not match it.
    expect(factLines(run(lockScript(other, 'run-')).stdout)[0].tag).toBe('@@held')
    expect(run(lockScript(other, LOCK.run)).stdout).toBe('@@locked\n')
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(other)
  })

  it("is released only by its holder's run", () => {
    const {lock, run} = lockSandbox()
    run(lockScript(LOCK))
    expect(run(unlockScript('run-2')).code).toBe(0)
    expect(existsSync(lock)).toBe(true)
    expect(run(unlockScript(LOCK.run)).code).toBe(0)
    expect(existsSync(lock)).toBe(false)
    // Releasing a lock that is gone is not an error.
    expect(run(unlockScript(LOCK.run)).code).toBe(0)
  })
})

describe('the release history file', () => {
  it('is written and read back byte for byte; reading it before the first deploy gives nothing, without failing', () => {
    const s = sandbox()
    const file = path.join(s.dir, 'app', 'releases.json')
    const moves = {[APP_PATHS.releases]: file}
    expect(s.run(retarget(readHistoryCommand(), moves), {shell: 'bash-c'})).toEqual({code: 0, stdout: '', stderr: ''})
    const text = serializeHistory(promote({releases: []}, {...release, by: ODD, error: 'line\nbreak ünï'}))
    const w = s.run(retarget(writeHistoryScript(text), moves))
    expect(w.code, w.stderr).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe(text)
    expect(s.run(retarget(readHistoryCommand(), moves), {shell: 'bash-c'}).stdout).toBe(text)
    expect(existsSync(`${file}.tmp`)).toBe(false)
  })
})

describe('images on the bastion (docker faked)', () => {
  const tag = `${app.repository}:v2`
  const d = digest('e')

  it('build: the context on stdin, the version as build argument and label, one word each', () => {
    const s = sandbox({docker: `${keepStdin('docker')}\necho sha256:${'f'.repeat(64)}`})
    const r = s.run(buildCommand(tag, ODD), {shell: 'bash-c', stdin: 'TAR BYTES'})
    expect(r.code, r.stderr).toBe(0)
    expect(s.calls()).toEqual([['docker', 'build', '--quiet', '--build-arg', `VERSION=${ODD}`, '--label', `infra.version=${ODD}`, '--tag', tag, '-']])
    expect(s.stdins('docker')).toEqual(['TAR BYTES'])
  })

  it("push: prints the digest from docker push's output", () => {
    const s = sandbox({docker: `[ "$1" = push ] || exit 9\necho "The push refers to repository [${app.repository}]"\necho "5f70bf18a086: Pushed"\necho "v2: digest: ${d} size: 527"`})
    const r = s.run(pushScript(tag))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`@@digest\t${d}\n`)
    expect(s.calls().filter((c) => c[0] === 'docker')).toEqual([['docker', 'push', tag]])
  })

  it('push: without a digest line, asks docker inspect for the repo digest', () => {
    const s = sandbox({docker: `case "$1" in push) echo "Layer already exists" ;; inspect) echo ${shq(`${app.repository}@${d}`)} ;; *) exit 9 ;; esac`})
    const r = s.run(pushScript(tag))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`@@digest\t${d}\n`)
  })

  it("push: a failure exits 1 with docker's last lines on stderr", () => {
    const s = sandbox({docker: 'for i in 1 2 3 4 5 6 7; do echo "line $i"; done; echo "unauthorized: authentication required"; exit 1'})
    const r = s.run(pushScript(tag))
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(['line 4', 'line 5', 'line 6', 'line 7', 'unauthorized: authentication required', ''].join('\n'))
  })

  it.each([
    ['Loaded image: shop:v2', 'shop:v2'],
    [`Loaded image ID: ${d}`, d],
  ])('load: "%s" is tagged as the release', (said, img) => {
    const s = sandbox({docker: `case "$1" in load) ${keepStdin('docker')}; echo ${shq(said)} ;; tag) : ;; *) exit 9 ;; esac`})
    const r = s.run(loadArchiveScript(`${app.repository}:${ODD}`), {shell: 'bash-c', stdin: 'ARCHIVE'})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`@@loaded\t${img}\n`)
    expect(s.calls().filter((c) => c[0] === 'docker')).toEqual([['docker', 'load'], ['docker', 'tag', img, `${app.repository}:${ODD}`]])
    expect(s.stdins('docker')).toEqual(['ARCHIVE'])
  })

  it('load: an archive with no image is refused, and nothing is tagged', () => {
    const s = sandbox({docker: 'cat >/dev/null; echo "open /var/lib/docker/tmp/docker-import: no such file"'})
    const r = s.run(loadArchiveScript(tag), {shell: 'bash-c', stdin: 'not a tar'})
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('the archive holds no image (docker load said: open /var/lib/docker/tmp/docker-import: no such file)')
    expect(s.calls().filter((c) => c[0] === 'docker').map((c) => c[1])).toEqual(['load'])
  })

  it('resolve: pulls the tag and prints its digest; a missing tag exits 1 with the reason', () => {
    const ok = sandbox({docker: `case "$1" in pull) echo ${shq(tag)} ;; inspect) echo ${shq(`${app.repository}@${d}`)} ;; *) exit 9 ;; esac`})
    const r = ok.run(resolveScript(tag))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`@@digest\t${d}\n`)
    expect(ok.calls().filter((c) => c[0] === 'docker').map((c) => c.slice(1))).toEqual([['pull', '--quiet', tag], ['inspect', '-f', '{{range .RepoDigests}}{{println .}}{{end}}', tag]])
    const missing = sandbox({docker: 'echo "Error response from daemon: manifest unknown"; exit 1'})
    const m = missing.run(resolveScript(tag))
    expect(m.code).toBe(1)
    expect(m.stderr).toContain('manifest unknown')
  })
})

describe('registry garbage collection', () => {
  const address = configOf(inv).registryAddress
  /** root's Docker credentials as provision renders them (the script reads the password from there). */
  const dockerAuth = fileAt(appWebFiles(context(inv)), APP_PATHS.dockerAuth)
  /** `infra:<password>`, as curl's config gets it. */
  const credentials = Buffer.from(JSON.parse(dockerAuth.content).auths[address].auth, 'base64').toString()

  function gc(digests: string[], tags: string[], deleteStatus = '202') {
    const s = sandbox({
      // DELETE → deleteStatus (each one's stdin kept: the credentials); GET /v2/ → 401 (the registry is back).
      curl: `if [[ " $* " == *" DELETE "* ]]; then ${keepStdin('curl')}; printf ${deleteStatus}; else printf 401; fi`,
      docker: ':',
      systemctl: ':',
      'docker-registry': ':',
    })
    const auth = path.join(s.dir, 'docker-config.json')
    writeFileSync(auth, dockerAuth.content)
    chmodSync(auth, 0o600)
    const r = s.run(retarget(registryGcScript(address, app.repositoryPath, digests, tags), {[APP_PATHS.dockerAuth]: auth}))
    return {s, r}
  }

  it('deletes each manifest with the credentials on curl\'s stdin, then garbage-collects with the registry stopped', () => {
    const {s, r} = gc([digest('1'), digest('2')], [`${app.repository}:v1`, `${app.repository}:${ODD}`])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('@@gc\t2\n')
    expect(s.stdins('curl')).toEqual([`user = "${credentials}"\n`, `user = "${credentials}"\n`])
    const calls = s.calls().filter((c) => ['curl', 'docker', 'systemctl', 'docker-registry'].includes(c[0]))
    const deletes = calls.filter((c) => c[0] === 'curl' && c.includes('DELETE')).map((c) => c.at(-1))
    expect(deletes).toEqual([1, 2].map((n) => `https://${address}/v2/${app.repositoryPath}/manifests/${digest(String(n))}`))
    const order = calls.map((c) => (c[0] === 'curl' ? (c.includes('DELETE') ? 'delete' : 'probe') : c.slice(0, 2).join(' ')))
    expect(order).toEqual(['delete', 'delete', 'docker rmi', 'docker rmi', 'systemctl stop', 'docker-registry garbage-collect', 'systemctl start', 'probe', 'docker image'])
    expect(calls.filter((c) => c[1] === 'rmi').map((c) => c[2])).toEqual([`${app.repository}:v1`, `${app.repository}:${ODD}`])
  })

  it('never puts the registry password (or its base64) in a process argument', () => {
    const {s, r} = gc([digest('1')], [])
    expect(r.code, r.stderr).toBe(0)
    const password = credentials.split(':')[1]
    expect(password.length).toBeGreaterThan(8)
    const auth = Buffer.from(credentials).toString('base64')
    for (const c of s.calls()) {
      expect(c.join(' ').includes(password), `argv of ${c[0]}`).toBe(false)
      expect(c.join(' ').includes(auth), `argv of ${c[0]}`).toBe(false)
    }
  })

  it('counts only the manifests the registry deleted (202) or no longer has (404)', () => {
    expect(gc([digest('1')], [], '404').r.stdout).toBe('@@gc\t1\n')
    expect(gc([digest('1'), digest('2')], [], '500').r.stdout).toBe('@@gc\t0\n')
  })

  it('with only local tags, removes them without stopping the registry', () => {
    const {s, r} = gc([], [`${app.repository}:v1`])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('@@gc\t0\n')
    expect(s.calls().some((c) => c[0] === 'systemctl' || c[0] === 'docker-registry' || c[0] === 'curl')).toBe(false)
  })

  it('with nothing to delete, does nothing', () => {
    expect(registryGcScript(address, app.repositoryPath, [], [])).toBe('true')
  })
})
