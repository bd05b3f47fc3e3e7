/**
 * npm run bench: what users feel, measured on the local lab (not part of npm test).
 * Prints a table (median, min, max of several runs) and writes docs/BENCHMARKS.md.
 * Traffic goes only to the lab's own addresses, bounded in time.
 *
 *   INFRA_BENCH_RUNS=3 (runs per figure)   INFRA_BENCH_SKIP=10nodes,load,deploy (comma list)
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parse} from 'yaml'

import {labExec, labHostCgroup, labNetExec} from '../src/lab/index.js'
import {aptInstall, which} from '../src/lab/prereq.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const BIN = path.join(ROOT, 'bin/run.js')
const DIR = process.env.INFRA_BENCH_DIR ?? '/tmp/infra-bench'
const CONFIG = path.join(DIR, 'infra.yaml')
const RUNS = Number(process.env.INFRA_BENCH_RUNS ?? 3)
const SKIP = new Set((process.env.INFRA_BENCH_SKIP ?? '').split(',').filter(Boolean))
const ENV = {...process.env, CI: 'true', NO_COLOR: '1'}

interface Row {
  what: string
  unit: string
  values: number[]
  target?: string
  note?: string
}
const rows: Row[] = []
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`)

function infra(args: string[], opts: {allowFail?: boolean} = {}): {ms: number; code: number; stdout: string; stderr: string} {
  const t = process.hrtime.bigint()
  const r = spawnSync('node', [BIN, ...args], {env: ENV, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  if (r.status !== 0 && !opts.allowFail) throw new Error(`infra ${args.join(' ')} exited ${r.status}\n${r.stderr}`)
  return {ms, code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr}
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (n: number, unit: string) => (unit === 's' ? (n / 1000).toFixed(2) : unit === 'ms' ? n.toFixed(0) : n.toFixed(unit === 'ratio' ? 2 : 0))

function debInstalled(pkg: string): boolean {
  return spawnSync('dpkg-query', ['-W', '-f=${db:Status-Status}', pkg], {encoding: 'utf8'}).stdout === 'installed'
}

async function ensureTools(): Promise<void> {
  // wrk for the load; busybox-static for the sample app's image (examples/hello is FROM scratch).
  const missing = [...['wrk'].filter((t) => !which(t)), ...(debInstalled('busybox-static') ? [] : ['busybox-static'])]
  if (missing.length > 0) {
    log(`installing ${missing.join(' ')} from Debian`)
    const r = await aptInstall(missing)
    if (r.code !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed:\n${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-15).join('\n')}`)
  }
}

function labUp(web: number, standby: number): number {
  infra(['lab', 'down', '--force', '-c', CONFIG], {allowFail: true})
  rmSync(DIR, {recursive: true, force: true})
  mkdirSync(DIR, {recursive: true})
  const ms = infra(['lab', 'up', '--web', String(web), '--standby', String(standby), '-c', CONFIG]).ms
  // The load generator is one client address: lift the default flood limit for the bench fleet.
  writeFileSync(CONFIG, readFileSync(CONFIG, 'utf8') + 'limits:\n  enabled: false\n')
  return ms
}

function provisionTimes(label: string, web: number, standby: number): {first: number[]; again: number[]} {
  const first: number[] = []
  const again: number[] = []
  const boots: number[] = []
  for (let i = 0; i < RUNS; i++) {
    boots.push(labUp(web, standby))
    const a = infra(['provision', '--yes', '-c', CONFIG])
    first.push(a.ms)
    const b = infra(['provision', '--yes', '-c', CONFIG])
    if (!/0 changes on/.test(b.stderr)) throw new Error(`re-run was not a no-change run:\n${b.stderr}`)
    again.push(b.ms)
    log(`${label}: lab up ${(boots.at(-1)! / 1000).toFixed(1)} s, first provision ${(a.ms / 1000).toFixed(2)} s, re-run ${(b.ms / 1000).toFixed(2)} s`)
  }
  rows.push({what: `lab up (warm image cache), ${label} — excluded from the next line`, unit: 's', values: boots})
  // The absolute targets are the 3-node fleet's; at 10 nodes the target is the ratio (rows below).
  const three = web + standby === 3
  rows.push({what: `first provision, ${label}`, unit: 's', values: first, target: three ? '< 10 s' : ''})
  rows.push({what: `no-change re-run, ${label}`, unit: 's', values: again, target: three ? '< 1.5 s' : ''})
  return {first, again}
}

function startup(): void {
  for (const args of [['--version'], ['--help']]) {
    infra(args)
    const v: number[] = []
    for (let i = 0; i < 9; i++) v.push(infra(args).ms)
    rows.push({what: `infra ${args[0]}`, unit: 'ms', values: v, target: '< 300 ms'})
  }
}

function wrkRun(argv: string[]): ReturnType<typeof wrkSummary> {
  return wrkSummary(execFileSync(argv[0], argv.slice(1), {encoding: 'utf8', timeout: 60_000}))
}

function proxyOverhead(publicAddress: string, web1: string): void {
  // Through the bastion (TLS, from this machine) vs straight to a web node from inside the private network (the bastion's namespace).
  const through = wrkRun(['wrk', '-t2', '-c16', '-d8s', '--latency', '-H', 'Host: example.test', `https://${publicAddress}/`])
  const direct = wrkRun(['ip', 'netns', 'exec', 'infl-bastion', 'wrk', '-t2', '-c16', '-d8s', '--latency', `http://${web1}/`])
  rows.push({what: 'requests/s through the bastion (HTTPS, 16 connections, 8 s)', unit: 'n', values: [through.rps]})
  rows.push({what: 'requests/s direct to a web node (HTTP, private network)', unit: 'n', values: [direct.rps]})
  rows.push({what: 'p99 latency through the bastion', unit: 'ms', values: [through.p99]})
  rows.push({what: 'p99 latency direct', unit: 'ms', values: [direct.p99]})
  rows.push({what: 'throughput ratio bastion / direct', unit: 'ratio', values: [through.rps / direct.rps]})
}

/**
 * Start watching HAProxy's view of a server on the bastion itself (every 100 ms, bounded): resolves
 * with the bastion's clock (epoch ms; the lab's hosts share this machine's clock) when the server's
 * status first matches `pattern`, or NaN after `timeoutSec`.
 */
function watchServer(bastion: string, server: string, pattern: string, timeoutSec: number): Promise<number> {
  const script = `end=$(( $(date +%s) + ${timeoutSec} )); while [ "$(date +%s)" -lt "$end" ]; do ` +
    `st=$(echo 'show stat' | socat -t 1 stdio /run/haproxy/admin.sock | awk -F, '$1 == "web" && $2 == "${server}" { print $18 }'); ` +
    `case "$st" in ${pattern}) date +%s%3N; exit 0;; esac; sleep 0.1; done; exit 1`
  return labExec(bastion, script, {timeoutMs: (timeoutSec + 10) * 1000, allowFail: true}).then((r) => (r.code === 0 ? Number(r.stdout.trim()) : Number.NaN))
}

const toMs = (n: string, unit: string) => Number(n) * {us: 0.001, ms: 1, s: 1000}[unit as 'us' | 'ms' | 's']

/** wrk's summary: requests, failures (socket errors + non-2xx/3xx), p99 (with --latency) and max latency in ms. */
function wrkSummary(out: string): {rps: number; requests: number; failed: number; p99: number; maxMs: number} {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out)
  const max = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    requests,
    failed: (errs ? errs.slice(1).reduce((n, x) => n + Number(x), 0) : 0) + non2xx,
    p99: p99 ? toMs(p99[1], p99[2]) : 0,
    maxMs: max ? toMs(max[1], max[2]) : 0,
  }
}

/** HTTPS load through the bastion for `seconds`; `during` runs after `atMs`. */
async function underLoad(publicAddress: string, seconds: number, atMs: number, during: () => Promise<void>): Promise<ReturnType<typeof wrkSummary>> {
  const wrk = spawn('wrk', ['-t2', '-c8', `-d${seconds}s`, '--latency', '--timeout', '45s', '-H', 'Host: example.test', `https://${publicAddress}/`], {stdio: ['ignore', 'pipe', 'inherit']})
  let out = ''
  wrk.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const finished = new Promise<void>((resolve) => wrk.on('close', () => resolve()))
  await new Promise((r) => setTimeout(r, atMs))
  await during()
  await finished
  return wrkSummary(out)
}

async function freeze(host: string, frozen: boolean): Promise<void> {
  const dir = await labHostCgroup(host, 'freezer')
  if (!dir) throw new Error(`no freezer cgroup for ${host}`)
  writeFileSync(path.join(dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED')
}

/** A host's network goes away (as when it loses power): its link in its namespace, down or up. */
async function link(host: string, up: boolean): Promise<void> {
  await labNetExec(host, ['ip', 'link', 'set', 'eth0', up ? 'up' : 'down'])
}

/**
 * `seconds` of HTTPS load through the bastion; at 3 s `inject` breaks `victim`. Resolves with wrk's
 * summary, when the fault was in place, and the time from then until HAProxy marks the victim DOWN
 * (watched on the bastion; the lab's hosts share this machine's clock).
 */
async function underFault(publicAddress: string, bastion: string, victim: string, seconds: number, inject: () => Promise<unknown>): Promise<{load: ReturnType<typeof wrkSummary>; faultAt: number; downMs: number}> {
  let faultAt = 0
  let down: Promise<number> = Promise.resolve(Number.NaN)
  const load = await underLoad(publicAddress, seconds, 3000, async () => {
    down = watchServer(bastion, victim, 'DOWN*', 30)
    await inject()
    faultAt = Date.now()
  })
  return {load, faultAt, downMs: (await down) - faultAt}
}

/**
 * A whole host's failure under load (40 s, so that no request is still waiting for a timeout when
 * wrk stops): failed requests, p99, the slowest request and the time until HAProxy stops sending to it.
 */
async function hostFault(publicAddress: string, bastion: string, victim: string, what: string, inject: () => Promise<unknown>): Promise<number> {
  const {load, faultAt, downMs} = await underFault(publicAddress, bastion, victim, 40, inject)
  rows.push({what: `failed requests while ${victim}'s ${what} under load (${load.requests} requests in 40 s)`, unit: 'n', values: [load.failed]})
  rows.push({what: 'p99 latency meanwhile (wrk corrects for coordinated omission: a connection stuck on one request counts the requests it could not send)', unit: 'ms', values: [load.p99]})
  rows.push({what: `slowest request meanwhile (one already sent to ${victim} waits for the server timeout, web.timeout 30 s, then is retried on another node)`, unit: 'ms', values: [load.maxMs]})
  rows.push({what: `time until HAProxy takes ${victim} out of rotation (DOWN: its health checks time out)`, unit: 'ms', values: [downMs]})
  return faultAt
}

/**
 * The whole host of an active node dies (its network gone, as a powered-off VPS: no answer at all),
 * then the time until the healthchecker has a standby serving in its place (restarts fail, then it
 * replaces the node).
 */
async function hostDeath(publicAddress: string, bastion: string, victim: string, standby: string): Promise<void> {
  try {
    const diedAt = await hostFault(publicAddress, bastion, victim, 'whole host dies (network gone)', () => link(victim, false))
    const upAt = await watchServer(bastion, standby, 'UP*', 420)
    rows.push({what: `time from the host's death until the healthchecker has standby ${standby} serving in its place (healing.every 1m, attempts 3)`, unit: 's', values: [upAt - diedAt]})
  } finally {
    await link(victim, true)
  }
}

/** An active node's host hangs (every process frozen, the kernel still accepting connections). */
async function hostHang(publicAddress: string, bastion: string, victim: string): Promise<void> {
  try {
    await hostFault(publicAddress, bastion, victim, 'host hangs (frozen)', () => freeze(victim, true))
  } finally {
    await freeze(victim, false)
  }
}

/** 12 s of load; at 3 s nginx is killed on web1 (web2 stays); then the healthchecker restarts it. */
async function failover(publicAddress: string, bastion: string): Promise<void> {
  const {load, faultAt, downMs} = await underFault(publicAddress, bastion, 'web1', 12, () => labExec('web1', 'systemctl kill -s KILL nginx'))
  rows.push({what: `failed requests while web1's nginx is killed under load (${load.requests} requests in 12 s)`, unit: 'n', values: [load.failed], target: '0'})
  rows.push({what: 'time until HAProxy takes the killed node out of rotation (DOWN)', unit: 'ms', values: [downMs]})
  // The healthchecker (cron, every minute by default) restarts it through the restricted key.
  const upAt = await watchServer(bastion, 'web1', 'UP*', 180)
  rows.push({what: 'time from the kill until the healthchecker has it serving again (cron, healing.every 1m)', unit: 's', values: [upAt - faultAt]})
  if (Number.isNaN(upAt)) await labExec('web1', 'systemctl start nginx')
}

/**
 * The app (docs/DEPLOY.md) on a fresh 1 bastion + 2 active + 1 standby fleet: the first deploy
 * (build on the bastion, push, pull everywhere), then v2 and a rollback, each while wrk runs.
 */
async function deployBench(): Promise<void> {
  labUp(2, 1)
  writeFileSync(CONFIG, readFileSync(CONFIG, 'utf8') + 'app:\n  image: hello\n  port: 8080\n')
  const inv = parse(readFileSync(CONFIG, 'utf8')) as {bastion: {publicAddress: string}}
  infra(['provision', '--yes', '-c', CONFIG])
  const ctx = path.join(DIR, 'hello')
  cpSync(path.join(ROOT, 'examples/hello'), ctx, {recursive: true})
  copyFileSync('/bin/busybox', path.join(ctx, 'rootfs/bin/busybox'))
  chmodSync(path.join(ctx, 'rootfs/bin/busybox'), 0o755)
  const first = infra(['deploy', '--build', ctx, '--version', 'v1', '--yes', '-c', CONFIG])
  rows.push({what: 'first deploy of the sample app (build on the bastion, push, pull on 3 nodes, 2 switched)', unit: 's', values: [first.ms]})
  let deployMs = 0
  const during = await underLoad(inv.bastion.publicAddress, 60, 3000, async () => {
    deployMs = infra(['deploy', '--build', ctx, '--version', 'v2', '--yes', '-c', CONFIG]).ms
  })
  rows.push({what: `failed requests during a rolling deploy v1 → v2 (${during.requests} requests in 60 s)`, unit: 'n', values: [during.failed], target: '0'})
  rows.push({what: 'rolling deploy v1 → v2 under that load (build, push, pull, 2 nodes switched one at a time, standby prepared)', unit: 's', values: [deployMs]})
  rows.push({what: 'p99 latency meanwhile', unit: 'ms', values: [during.p99]})
  let rollbackMs = 0
  const back = await underLoad(inv.bastion.publicAddress, 30, 3000, async () => {
    rollbackMs = infra(['rollback', '--yes', '-c', CONFIG]).ms
  })
  rows.push({what: `failed requests during a rollback v2 → v1 (${back.requests} requests in 30 s)`, unit: 'n', values: [back.failed], target: '0'})
  rows.push({what: 'rollback v2 → v1 under that load (containers kept on the nodes: no pull, no build)', unit: 's', values: [rollbackMs], target: 'seconds'})
  log(`deploy: first ${(first.ms / 1000).toFixed(1)} s; v2 under load ${(deployMs / 1000).toFixed(1)} s, ${during.failed} failed of ${during.requests}; rollback ${(rollbackMs / 1000).toFixed(1)} s, ${back.failed} failed of ${back.requests}`)
}

function writeReport(): string {
  const lines = [
    '| what | median | min | max | runs | target |',
    '|---|---:|---:|---:|---:|---|',
    ...rows.map((r) => {
      const unit = r.unit === 'n' || r.unit === 'ratio' ? '' : ` ${r.unit}`
      return `| ${r.what} | ${fmt(median(r.values), r.unit)}${unit} | ${fmt(Math.min(...r.values), r.unit)}${unit} | ${fmt(Math.max(...r.values), r.unit)}${unit} | ${r.values.length} | ${r.target ?? ''} |`
    }),
  ]
  return lines.join('\n')
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root (the lab)')
  await ensureTools()
  execFileSync('npm', ['run', 'build', '--silent'], {cwd: ROOT, stdio: 'inherit'})
  startup()
  let three: {first: number[]; again: number[]} | undefined
  if (!SKIP.has('3nodes')) three = provisionTimes('1 bastion + 3 web nodes', 2, 1)
  if (!SKIP.has('load') && three) {
    const inv = parse(readFileSync(CONFIG, 'utf8'))
    proxyOverhead(inv.bastion.publicAddress, inv.web.nodes[0].address)
    await failover(inv.bastion.publicAddress, inv.bastion.name)
    const nodes = inv.web.nodes as {name: string; standby?: boolean}[]
    const active = nodes.filter((n) => !n.standby).map((n) => n.name)
    const standby = nodes.find((n) => n.standby)?.name
    if (standby && active.length >= 2) {
      await hostDeath(inv.bastion.publicAddress, inv.bastion.name, active[0], standby)
      await hostHang(inv.bastion.publicAddress, inv.bastion.name, active[1])
    }
  }
  if (!SKIP.has('doctor') && three && spawnSync('node', [BIN, 'doctor', '--help'], {env: ENV}).status === 0) {
    const v: number[] = []
    for (let i = 0; i < 5; i++) v.push(infra(['doctor', '-c', CONFIG], {allowFail: true}).ms)
    rows.push({what: 'infra doctor, 1 bastion + 3 web nodes', unit: 's', values: v, target: '< 3 s'})
  }
  if (!SKIP.has('deploy')) await deployBench()
  if (!SKIP.has('10nodes') && three) {
    const ten = provisionTimes('1 bastion + 10 web nodes', 2, 8)
    rows.push({what: 'first provision, 10 nodes / 3 nodes', unit: 'ratio', values: [median(ten.first) / median(three.first)], target: '≤ 1.5'})
    rows.push({what: 'no-change re-run, 10 nodes / 3 nodes', unit: 'ratio', values: [median(ten.again) / median(three.again)], target: '≤ 1.5'})
  }
  infra(['lab', 'down', '--force', '-c', CONFIG], {allowFail: true})
  const table = writeReport()
  process.stdout.write(table + '\n')
  const header = `# Benchmarks\n\nMeasured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, on the local lab (systemd-nspawn hosts on this machine).\n\n`
  const file = path.join(ROOT, 'docs/BENCHMARKS.md')
  let notes = ''
  try {
    const old = readFileSync(file, 'utf8')
    const i = old.indexOf('## Notes')
    if (i >= 0) notes = '\n' + old.slice(i)
  } catch {
    // first run
  }
  writeFileSync(file, header + table + '\n' + notes)
  log(`wrote ${file}`)
}

await main()
