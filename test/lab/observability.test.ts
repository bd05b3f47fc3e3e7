/**
 * Observability against the shared lab (issue 7): a real scrape through the bastion of HAProxy's
 * exporter and of every node exporter, the agents' own metrics after they run, `infra status`
 * (--json reflects a node stopped by hand at once; --watch redraws on a pseudo-terminal).
 */
import {spawn} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {beforeAll, describe, expect, inject, it} from 'vitest'
import {parse} from 'yaml'

import {loadInventory} from '../../src/inventory/load.js'
import {labExec, labHostCgroup} from '../../src/lab/index.js'
import {dashboardMetricNames, fleetDashboard} from '../../src/monitoring/dashboard.js'
import {metricNamesOfExpr} from '../../src/monitoring/promql.js'
import {ruleCases} from '../../src/monitoring/rules.js'
import {BIN, infra} from './helpers.js'


let config: string
let bastionName: string
let privateAddress: string
let webNodes: {name: string; address: string; standby?: boolean}[]

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function onBastion(cmd: string): Promise<string> {
  const r = await labExec(bastionName, cmd, {timeoutMs: 30_000})
  if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`)
  return r.stdout
}

/** A real scrape, made on the bastion against its private stats address (where Prometheus scrapes). */
const scrape = (p: string) => onBastion(`curl -sf -m 5 http://${privateAddress}:8404${p}`)

/** Metric families (names) in a Prometheus text exposition. */
function families(text: string): Set<string> {
  return new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][\w:]*/.exec(l)![0]))
}
function value(text: string, series: RegExp): number | undefined {
  const line = text.split('\n').find((l) => series.test(l))
  return line === undefined ? undefined : Number(line.trim().split(/\s+/).at(-1))
}

interface StatusJson {
  nodes: {name: string; state: string; health: {haproxy: string; probe: number | null}; cpuPercent: number | null; memoryPercent: number | null; sessions: number}[]
  bastion: {certificate: {daysLeft: number} | null; requestsTotal: number}
  activeNodes: number
  problems: string[]
  scaler: {paused: boolean} | null
}
async function status(): Promise<StatusJson> {
  const r = await infra(['status', '--json'], config)
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as StatusJson
}

beforeAll(async () => {
  config = inject('labConfig')
  const inv = parse(await readFile(config, 'utf8'))
  bastionName = inv.bastion.name
  privateAddress = inv.bastion.privateAddress
  webNodes = inv.web.nodes
  const r = await infra(['provision', '--yes'], config)
  expect(r.code, r.stderr).toBe(0)
}, 180_000)

describe('metrics, scraped for real through the bastion', () => {
  it("HAProxy's exporter on the private stats address", async () => {
    const text = await scrape('/metrics')
    const f = families(text)
    for (const m of ['haproxy_process_start_time_seconds', 'haproxy_frontend_http_requests_total', 'haproxy_backend_active_servers', 'haproxy_server_status', 'haproxy_server_check_status']) {
      expect(f, m).toContain(m)
    }
    // Every web node is a server of the backend "web".
    for (const n of webNodes) expect(text).toMatch(new RegExp(`^haproxy_server_status\\{proxy="web",server="${n.name}"`, 'm'))
  })

  it('every host\'s node exporter, each really that host, at /nodes/<host>/metrics', async () => {
    for (const name of [bastionName, ...webNodes.map((n) => n.name)]) {
      const text = await scrape(`/nodes/${name}/metrics`)
      const f = families(text)
      for (const m of ['node_cpu_seconds_total', 'node_memory_MemAvailable_bytes', 'node_memory_MemTotal_bytes', 'node_load1', 'node_filesystem_avail_bytes', 'node_network_receive_bytes_total']) {
        expect(f, `${name}: ${m}`).toContain(m)
      }
      expect(text, name).toMatch(new RegExp(`^node_uname_info\\{[^}]*nodename="${name}"`, 'm'))
    }
  })

  it('web nodes listen on their private address only; the bastion on loopback', async () => {
    for (const n of webNodes) {
      const ss = (await labExec(n.name, "ss -Hltn 'sport = :9100'")).stdout.trim()
      expect(ss.split('\n').map((l) => l.trim().split(/\s+/)[3]), n.name).toEqual([`${n.address}:9100`])
    }
    const ss = (await labExec(bastionName, "ss -Hltn 'sport = :9100'")).stdout.trim()
    expect(ss.split('\n').map((l) => l.trim().split(/\s+/)[3])).toEqual(['127.0.0.1:9100'])
  })

  it("the agents' metrics appear after they run, and count what they do", async () => {
    const t0 = Math.floor(Date.now() / 1000) - 2
    await onBastion('rm -f /var/lib/prometheus/node-exporter/infra_*.prom')
    expect(families(await scrape(`/nodes/${bastionName}/metrics`))).not.toContain('infra_agent_last_run_timestamp_seconds')
    await onBastion('infra-healthcheck once && infra-scaler once')
    const text = await scrape(`/nodes/${bastionName}/metrics`)
    for (const agent of ['healthcheck', 'scaler']) {
      expect(value(text, new RegExp(`^infra_agent_last_run_timestamp_seconds\\{agent="${agent}"\\}`)), agent).toBeGreaterThanOrEqual(t0)
    }
    const s = await status()
    expect(value(text, /^infra_web_nodes\{state="active"\}/)).toBe(s.activeNodes)
    expect(value(text, /^infra_scaler_paused /)).toBe(0)
    const certEnd = value(text, /^infra_tls_certificate_expiry_timestamp_seconds\{/)!
    expect(Math.floor((certEnd * 1000 - Date.now()) / 86_400_000)).toBe(s.bastion.certificate!.daysLeft)
    for (const src of ['list', 'auto']) expect(value(text, new RegExp(`^infra_edge_banned_addresses\\{source="${src}"\\}`))).toBeGreaterThanOrEqual(0)

    // A scale-up by hand is the scaler's own action: its counter goes up by one.
    const before = value(text, /^infra_agent_actions_total\{action="scale_up",agent="scaler"\}/)!
    const up = await infra(['scale', 'up', '--yes'], config)
    expect(up.code, up.stderr).toBe(0)
    try {
      // Published as soon as the step by hand is done.
      const after = await scrape(`/nodes/${bastionName}/metrics`)
      expect(value(after, /^infra_agent_actions_total\{action="scale_up",agent="scaler"\}/)).toBe(before + 1)
    } finally {
      const down = await infra(['scale', 'down', '--yes'], config)
      expect(down.code, down.stderr).toBe(0)
    }
  }, 120_000)
})

describe('infra monitoring export, against a real scrape', () => {
  it('every metric an exported alert rule or dashboard panel reads is one the lab really exports', async () => {
    const {inventory} = await loadInventory(config)
    // After the agents have run (the test above), so their textfile metrics are in the scrape.
    await onBastion('infra-healthcheck once && infra-scaler once')
    const exported = new Set<string>(['up']) // `up` is made by Prometheus itself for every target.
    for (const p of ['/metrics', ...[bastionName, ...webNodes.map((n) => n.name)].map((n) => `/nodes/${n}/metrics`)]) {
      for (const f of families(await scrape(p))) exported.add(f)
    }
    const rules = ruleCases(inventory, `${privateAddress}:8404`).flatMap((c) => metricNamesOfExpr(c.rule.expr))
    const panels = dashboardMetricNames(fleetDashboard(inventory))
    expect(rules.length).toBeGreaterThan(10)
    expect(panels.length).toBeGreaterThan(10)
    const missing = [...new Set([...rules, ...panels])].filter((m) => !exported.has(m))
    expect(missing, 'read by a rule or panel but absent from every scrape of the lab').toEqual([])
  }, 60_000)
})

describe('infra status', () => {
  it('--json: every web node with its state, health, CPU and memory; the certificate; no problem on a healthy fleet', async () => {
    const s = await status()
    expect(s.nodes.map((n) => n.name)).toEqual(webNodes.map((n) => n.name))
    for (const n of s.nodes) {
      const spare = webNodes.find((w) => w.name === n.name)!.standby === true
      expect(n.state, n.name).toBe(spare ? 'standby' : 'active')
      expect(n.health.probe, n.name).toBe(spare ? null : 200)
      expect(n.cpuPercent, n.name).toBeGreaterThanOrEqual(0)
      expect(n.memoryPercent, n.name).toBeGreaterThan(0)
    }
    expect(s.activeNodes).toBe(webNodes.filter((n) => !n.standby).length)
    expect(s.bastion.certificate!.daysLeft).toBeGreaterThan(14)
    expect(s.scaler).not.toBeNull()
    expect(s.problems).toEqual([])
  }, 30_000)

  it('reflects a web service stopped by hand at the next refresh, with the command to look further', async () => {
    const active = webNodes.find((n) => !n.standby)!.name
    await labExec(active, 'systemctl stop nginx')
    try {
      const s = await status()
      const n = s.nodes.find((x) => x.name === active)!
      expect(n.state).toBe('failed')
      expect(n.health.probe).toBeNull()
      expect(s.problems.join('\n')).toContain(`infra logs ${active} --unit nginx`)
    } finally {
      await labExec(active, 'systemctl start nginx')
    }
    for (let i = 0; i < 40; i++) {
      if ((await status()).nodes.find((x) => x.name === active)!.state === 'active') return
      await sleep(500)
    }
    throw new Error(`${active} did not come back to active`)
  }, 60_000)

  it('shows a host that does not answer at all as down (a frozen standby host)', async () => {
    const spare = webNodes.find((n) => n.standby)
    if (!spare) return
    const dir = await labHostCgroup(spare.name, 'freezer')
    if (!dir) throw new Error(`no freezer cgroup for ${spare.name}`)
    await writeFile(path.join(dir, 'freezer.state'), 'FROZEN')
    try {
      const s = await status()
      expect(s.nodes.find((x) => x.name === spare.name)!.state).toBe('down')
      expect(s.problems.join('\n')).toContain(`${spare.name} does not answer`)
    } finally {
      await writeFile(path.join(dir, 'freezer.state'), 'THAWED')
    }
  }, 30_000)

  it('--watch redraws in place on a terminal and stops cleanly on Ctrl-C', async () => {
    // util-linux `script` gives the command a pseudo-terminal; Ctrl-C is typed into it. `script` runs
    // the command through $SHELL -c: `exec` makes infra the terminal's only foreground process (dash
    // would otherwise stay in between and die of the same Ctrl-C, so `script` would report 130).
    const child = spawn('script', ['-qfec', `exec node ${BIN} status --watch --interval 1 --config ${config}`, '/dev/null'], {
      env: {...process.env, SHELL: '/bin/sh', CI: 'true', NO_COLOR: '1', TERM: 'xterm'},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const clears = () => out.split('\u001B[H\u001B[2J').length - 1
    for (let i = 0; i < 100 && clears() < 3; i++) await sleep(200)
    child.stdin.write('\u0003')
    const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)])
    if (code === 'timeout') child.kill('SIGKILL')
    expect(clears(), out).toBeGreaterThanOrEqual(3)
    const lastFrame = out.split('\u001B[H\u001B[2J').at(-1)!
    expect(lastFrame).toMatch(/NODE\s+STATE\s+HEALTH\s+REQ\/S\s+SESSIONS\s+CPU\s+MEM/)
    for (const n of webNodes) expect(lastFrame).toContain(n.name)
    expect(lastFrame).toContain('every 1s; Ctrl-C to stop')
    expect(code).toBe(0)
  }, 40_000)

  it('--watch with --json is a usage error (exit 2), before connecting', async () => {
    const r = await infra(['status', '--watch', '--json'], config)
    expect(r.code).toBe(2)
    // With --json the error itself is JSON on stdout, as for every command.
    expect(JSON.parse(r.stdout).error).toMatchObject({code: 'EUSAGE', message: '--watch and --json cannot be used together'})
  })
})
