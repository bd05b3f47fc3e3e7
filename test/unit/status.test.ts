/**
 * `infra status` without a host: the script run on the bastion (executed for real by bash, with
 * curl/socat/openssl replaced by small scripts on PATH that print recorded answers), the parsers of
 * its output, the model (node states, rates, problems with the next command) and the table.
 */
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import type {ScaleStatus} from '../../src/roles/scaler.js'
import {type NodeSample, parseNodeMetrics, parseStatusOutput, type RawStatus, type Sample, statusScript} from '../../src/status/collect.js'
import {buildStatus} from '../../src/status/model.js'
import {renderStatus} from '../../src/status/render.js'
import {EDGE_FLEET, inventory, tempDir} from './render-helpers.js'

const inv = inventory({...EDGE_FLEET, domain: 'Example.com'})
const dir = tempDir('infra-status-')
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const STAT_HEADER = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,check_status,req_tot,hrsp_5xx'
const stat = (rows: string[]) => [STAT_HEADER, ...rows].join('\n') + '\n'

function exposition(o: {user: number; idle: number; memTotal?: number; memAvailable?: number; load1?: number}): string {
  return [
    '# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.',
    '# TYPE node_cpu_seconds_total counter',
    `node_cpu_seconds_total{cpu="0",mode="idle"} ${o.idle / 2}`,
    `node_cpu_seconds_total{cpu="0",mode="user"} ${o.user / 2}`,
    `node_cpu_seconds_total{cpu="1",mode="idle"} ${o.idle / 2}`,
    `node_cpu_seconds_total{cpu="1",mode="user"} ${o.user / 2}`,
    `node_memory_MemTotal_bytes ${o.memTotal ?? 1e9}`,
    `node_memory_MemAvailable_bytes ${o.memAvailable ?? 7.5e8}`,
    `node_load1 ${o.load1 ?? 0.25}`,
  ].join('\n')
}

describe('the script run on the bastion', () => {
  it('is valid bash for one and for two samples', () => {
    for (const samples of [1, 2] as const) {
      const r = spawnSync('bash', ['-n'], {input: statusScript(inv, {samples, gapMs: 500})})
      expect(r.status, r.stderr.toString()).toBe(0)
    }
  })

  it('reads every exporter, probes only web nodes with the apex Host, asks the runtime API and the scaler', () => {
    const s = statusScript(inv, {samples: 1})
    for (const a of ['10.10.0.11:9100', '10.10.0.12:9100', '10.10.0.13:9100', '127.0.0.1:9100']) expect(s).toContain(`http://${a}/metrics`)
    expect(s).toContain('http://10.10.0.11:80/healthz')
    expect(s).not.toContain('127.0.0.1:80/')
    expect(s).toContain("'Host: example.com'")
    expect(s).toContain('show stat')
    expect(s).toContain('status --json')
    expect(s).toContain('/etc/haproxy/certs/example.com.pem')
  })

  it('runs end to end in bash and its output parses back (fake curl, socat and openssl on PATH)', () => {
    const bin = path.join(dir, 'bin')
    mkdirSync(bin, {recursive: true})
    const tool = (name: string, body: string) => {
      writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`)
      chmodSync(path.join(bin, name), 0o755)
    }
    const metrics = exposition({user: 40, idle: 60})
    writeFileSync(path.join(dir, 'metrics.txt'), `${metrics}\nnode_network_receive_bytes_total{device="eth0"} 5\n`)
    writeFileSync(path.join(dir, 'stat.csv'), stat(['web,web1,0,0,3,5,,10,UP,L7OK,120,0', 'web,web2,0,0,0,1,,4,DOWN,L4CON,7,0']))
    // web2's exporter is down; web1 answers 200, web2 and web3 no answer / 503.
    tool('curl', `url="\${@: -1}"
case "$*" in
  *'-w'*) case "$url" in *10.10.0.11*) printf 200;; *10.10.0.13*) printf 503;; *) printf 000; exit 7;; esac;;
  *10.10.0.12*) exit 7;;
  *) cat ${JSON.stringify(path.join(dir, 'metrics.txt'))};;
esac`)
    tool('socat', `cat ${JSON.stringify(path.join(dir, 'stat.csv'))}`)
    tool('openssl', 'echo "notAfter=Feb 20 12:00:00 2030 GMT"')
    const r = spawnSync('bash', ['-c', statusScript(inv, {samples: 2, gapMs: 50})], {env: {...process.env, PATH: `${bin}:${process.env.PATH}`}})
    expect(r.status, r.stderr.toString()).toBe(0)
    const raw = parseStatusOutput(r.stdout.toString())
    expect(raw.samples).toHaveLength(2)
    const [first, second] = raw.samples as [Sample, Sample]
    expect(second.time).toBeGreaterThan(first.time)
    expect(first.probes.size).toBe(0)
    expect(Object.fromEntries(second.probes)).toEqual({web1: '200', web2: '000', web3: '503'})
    expect(second.nodes.get('web2')?.up).toBe(false)
    expect(second.nodes.get('web1')).toEqual({up: true, cpuTotal: 100, cpuIdle: 60, memTotal: 1e9, memAvailable: 7.5e8, load1: 0.25})
    expect(second.nodes.get('edge')?.up).toBe(true)
    expect(second.stat.map((x) => `${x.svname}:${x.status}`)).toEqual(['web1:UP', 'web2:DOWN'])
    expect(raw.certNotAfter).toBe('Feb 20 12:00:00 2030 GMT')
    // No scaler installed at /usr/local/sbin on this machine: no @@scaler line, no status.
    expect(raw.scaler).toBeNull()
  })
})

describe('parsers', () => {
  it('sums CPU seconds per mode over every CPU, counting iowait as idle', () => {
    const m = parseNodeMetrics(
      'node_cpu_seconds_total{cpu="0",mode="idle"} 10\nnode_cpu_seconds_total{cpu="0",mode="iowait"} 2\nnode_cpu_seconds_total{cpu="0",mode="system"} 3\nnode_load1 1.5\n',
    )
    expect(m).toEqual({cpuTotal: 15, cpuIdle: 12, memTotal: null, memAvailable: null, load1: 1.5})
    expect(parseNodeMetrics('')).toEqual({cpuTotal: null, cpuIdle: null, memTotal: null, memAvailable: null, load1: null})
  })

  it('ignores unknown and malformed lines and a bad scaler JSON', () => {
    const raw = parseStatusOutput(['noise', '@@stat\tignored-before-sample', '@@sample\t1000', '@@scaler\t' + Buffer.from('{oops').toString('base64'), '@@cert\t'].join('\n'))
    expect(raw.samples).toHaveLength(1)
    expect(raw.scaler).toBeNull()
    expect(raw.certNotAfter).toBeNull()
  })
})

// --- The model ------------------------------------------------------------------------------------

const up = (o: Parameters<typeof exposition>[0]): NodeSample => ({up: true, ...parseNodeMetrics(exposition(o))})
const silent: NodeSample = {up: false, cpuTotal: null, cpuIdle: null, memTotal: null, memAvailable: null, load1: null}

function sample(time: number, rows: string[], nodes: Record<string, NodeSample>, probes: Record<string, string> = {}): Sample {
  return {time, stat: parseStatCsvRows(rows), nodes: new Map(Object.entries(nodes)), probes: new Map(Object.entries(probes))}
}
function parseStatCsvRows(rows: string[]): Record<string, string>[] {
  const keys = STAT_HEADER.slice(2).split(',')
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [keys[i], v])))
}

const T0 = Date.parse('2030-01-01T00:00:00Z')
const scaler: ScaleStatus = {
  paused: null,
  min: 1,
  max: 3,
  cpuPercent: 80,
  heartbeat: T0 / 1000 - 30,
  nodes: [{name: 'web3', state: 'standby', haproxy: 'MAINT', cpu: null, sessions: 0, standbyInInventory: true}],
  decisions: [{time: T0 / 1000 - 60, decision: 'hold', reason: 'average CPU 12% of 2 active nodes'}],
}

function healthy(): RawStatus {
  const nodes = {web1: up({user: 10, idle: 90}), web2: up({user: 10, idle: 90}), web3: up({user: 1, idle: 9}), edge: up({user: 5, idle: 95})}
  const before = sample(T0 - 2000, ['https,FRONTEND,0,0,1,2,,50,OPEN,,100,0', 'web,web1,0,0,1,2,,20,UP,L7OK,40,0', 'web,web2,0,0,0,2,,20,UP,L7OK,60,0', 'web,web3,0,0,0,0,,0,MAINT,L7OK,0,0', 'web,BACKEND,0,0,1,2,,40,UP,,100,0'], nodes)
  const now = sample(
    T0,
    ['https,FRONTEND,0,0,4,5,,90,OPEN,,140,0', 'web,web1,0,0,2,3,,30,UP,L7OK,60,0', 'web,web2,0,0,2,3,,30,UP,L7OK,80,0', 'web,web3,0,0,0,0,,0,MAINT,L7OK,0,0', 'web,BACKEND,0,0,4,5,,60,UP,,140,3'],
    {web1: up({user: 60, idle: 140, memAvailable: 2.5e8, load1: 0.7}), web2: up({user: 20, idle: 180}), web3: up({user: 1, idle: 19}), edge: up({user: 15, idle: 185})},
    {web1: '200', web2: '200', web3: '200'},
  )
  return {samples: [before, now], scaler, certNotAfter: 'Feb 20 12:00:00 2030 GMT'}
}

describe('the fleet status', () => {
  it('a healthy fleet: states, rates over the gap, CPU and memory, certificate days, no problems', () => {
    const s = buildStatus(inv, healthy())
    expect(s.nodes.map((n) => [n.name, n.state])).toEqual([
      ['web1', 'active'],
      ['web2', 'active'],
      ['web3', 'standby'],
    ])
    const web1 = s.nodes[0]
    expect(web1.requestsPerSecond).toBe(10) // 20 requests in 2 s
    expect(web1.sessions).toBe(2)
    expect(web1.cpuPercent).toBe(50) // user +50 of total +100
    expect(web1.memoryPercent).toBe(75)
    expect(web1.load1).toBe(0.7)
    expect(web1.health).toEqual({haproxy: 'UP', check: 'L7OK', probe: 200})
    expect(s.nodes[2].standbyInInventory).toBe(true)
    expect(s.activeNodes).toBe(2)
    expect(s.bastion).toMatchObject({requestsPerSecond: 20, sessions: 4, requestsTotal: 140, responses5xx: 3, cpuPercent: 10})
    expect(s.bastion.certificate).toEqual({notAfter: '2030-02-20T12:00:00.000Z', daysLeft: 50})
    expect(s.scaler).toMatchObject({paused: false, min: 1, max: 3, lastDecision: {decision: 'hold'}})
    expect(s.problems).toEqual([])
  })

  it('a single sample has no rates unless the previous frame is given', () => {
    const raw = healthy()
    const [before, now] = raw.samples as [Sample, Sample]
    const once = buildStatus(inv, {...raw, samples: [now]})
    expect(once.nodes[0].requestsPerSecond).toBeNull()
    expect(once.nodes[0].cpuPercent).toBeNull()
    const watched = buildStatus(inv, {...raw, samples: [now]}, before)
    expect(watched.nodes[0].requestsPerSecond).toBe(10)
  })

  it('a counter reset (HAProxy reloaded) gives no rate rather than a negative one', () => {
    const raw = healthy()
    const [before, now] = raw.samples as [Sample, Sample]
    const reset = {...now, stat: now.stat.map((r) => ({...r, req_tot: '1'}))}
    expect(buildStatus(inv, {...raw, samples: [before, reset]}).nodes[0].requestsPerSecond).toBeNull()
  })

  it('a node whose web service stopped is failed, with the logs command to run', () => {
    const raw = healthy()
    const now = raw.samples[1]
    now.stat = now.stat.map((r) => (r.svname === 'web2' ? {...r, status: 'DOWN', check_status: 'L4CON'} : r))
    now.probes.set('web2', '000')
    const s = buildStatus(inv, raw)
    expect(s.nodes[1]).toMatchObject({state: 'failed', health: {haproxy: 'DOWN', check: 'L4CON', probe: null}})
    expect(s.activeNodes).toBe(1)
    expect(s.problems).toEqual([expect.stringContaining('infra logs web2 --unit nginx --since 10m')])
  })

  it('a node still UP in HAProxy but failing the probe now is failed (seen before the checks fall)', () => {
    const raw = healthy()
    raw.samples[1].probes.set('web1', '503')
    expect(buildStatus(inv, raw).nodes[0].state).toBe('failed')
  })

  it('a host that answers nothing is down; a parked node the healthchecker marked failed stays failed', () => {
    const raw = healthy()
    const now = raw.samples[1]
    now.nodes.set('web2', silent)
    now.probes.delete('web2')
    now.stat = now.stat.map((r) => (r.svname === 'web2' ? {...r, status: 'DOWN', check_status: 'L4TOUT'} : r))
    raw.scaler = {...scaler, nodes: [{name: 'web3', state: 'failed', haproxy: 'MAINT', cpu: null, sessions: 0, standbyInInventory: true}]}
    const s = buildStatus(inv, raw)
    expect(s.nodes.map((n) => n.state)).toEqual(['active', 'down', 'failed'])
    expect(s.problems).toEqual([expect.stringContaining('infra doctor --host web2'), expect.stringMatching(/^web3 was taken out of rotation by the healthchecker/)])
  })

  it('draining, a silent exporter, a near certificate, a stale scaler and no runtime API are problems', () => {
    const raw = healthy()
    const now = raw.samples[1]
    now.stat = now.stat.map((r) => (r.svname === 'web2' ? {...r, status: 'DRAIN'} : r))
    now.nodes.set('web1', silent)
    raw.certNotAfter = 'Jan 10 00:00:00 2030 GMT'
    raw.scaler = {...scaler, heartbeat: T0 / 1000 - 600, paused: T0 / 1000 - 700}
    const s = buildStatus(inv, raw)
    expect(s.nodes[1].state).toBe('draining')
    expect(s.nodes[0].state).toBe('active')
    expect(s.nodes[0].cpuPercent).toBeNull()
    expect(s.scaler!.paused).toBe(true)
    expect(s.problems.join('\n')).toMatch(/web1: its node exporter does not answer: `infra provision`/)
    expect(s.problems.join('\n')).toMatch(/certificate expires in 9 days/)
    expect(s.problems.join('\n')).toMatch(/scaler last ran 600 s ago/)

    const fresh = healthy().samples[1]
    const noApi = buildStatus(inv, {...healthy(), scaler: null, certNotAfter: null, samples: [{...fresh, stat: []}]})
    expect(noApi.nodes.map((n) => [n.state, n.health.haproxy])).toEqual([
      ['active', 'unknown'],
      ['active', 'unknown'],
      ['active', 'unknown'],
    ])
    expect(noApi.problems).toEqual([
      expect.stringContaining("runtime API did not answer on edge"),
      expect.stringContaining('certificate on edge could not be read'),
      expect.stringContaining('agents are not installed on edge'),
    ])
  })

  it('no node serving is the first problem', () => {
    const raw = healthy()
    const now = raw.samples[1]
    now.stat = now.stat.map((r) => (r.pxname === 'web' && r.svname !== 'BACKEND' ? {...r, status: 'DOWN'} : r))
    expect(buildStatus(inv, raw).problems[0]).toBe('no web node is serving: `infra doctor`')
  })

  it('refuses output without a sample', () => {
    expect(() => buildStatus(inv, {samples: [], scaler: null, certNotAfter: null})).toThrow(/no sample/)
  })
})

describe('the table', () => {
  it('one aligned row per node, the bastion totals, the certificate and the scaler', () => {
    const raw = healthy()
    raw.samples[1].stat = raw.samples[1].stat.map((r) => (r.svname === 'web2' ? {...r, status: 'DOWN', check_status: 'L4CON'} : r))
    raw.samples[1].probes.set('web2', '000')
    const text = renderStatus(buildStatus(inv, raw))
    const lines = text.split('\n')
    expect(lines[0]).toBe('Example.com at 2030-01-01 00:00:00 UTC: 1 active web node (min 1, max 3)')
    const head = lines.findIndex((l) => l.startsWith('NODE'))
    expect(lines[head]).toMatch(/^NODE\s+STATE\s+HEALTH\s+REQ\/S\s+SESSIONS\s+CPU\s+MEM$/)
    expect(lines[head + 1]).toMatch(/^web1\s+active\s+UP L7OK, http 200\s+10\.0\s+2\s+50\.0%\s+75\.0%$/)
    expect(lines[head + 2]).toMatch(/^web2\s+failed\s+DOWN L4CON, no answer\s+/)
    expect(lines[head + 3]).toMatch(/^web3\s+standby\s+MAINT L7OK, http 200\s+0\.0\s+0\s+0\.0%\s+25\.0%$/)
    // Columns line up: STATE starts at the same offset on every row.
    const col = lines[head].indexOf('STATE')
    for (const l of lines.slice(head + 1, head + 4)) expect(l.slice(col, col + 1)).toMatch(/[a-z]/)
    expect(text).toContain('bastion edge: 20.0 req/s, 4 sessions, 140 requests, 3 5xx, CPU 10.0%')
    expect(text).toContain('certificate 50 days left (until 2030-02-20)')
    expect(text).toContain('scaler: running; last decision 2029-12-31 23:59:00 hold: average CPU 12% of 2 active nodes')
    expect(text).toMatch(/needs a look:\n {2}- web2 fails its health check/)
    expect(text).not.toContain('\u001B[')
    expect(renderStatus(buildStatus(inv, raw), {color: true})).toContain('\u001B[31mfailed')
  })
})

describe('with an app', () => {
  const appInv = inventory({...EDGE_FLEET, app: {image: 'shop'}})
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  const releases = b64(JSON.stringify({releases: [{id: 'v2', state: 'current'}, {id: 'v1', state: 'previous'}]}))
  const withApp = (lines: string[]): RawStatus => {
    const app = parseStatusOutput(lines.join('\n')).app
    return {...healthy(), ...(app ? {app} : {})}
  }

  it('asks the node agents for each container and reads the history, in valid bash; not without an app', () => {
    const s = statusScript(appInv, {samples: 1})
    expect(spawnSync('bash', ['-n'], {input: s}).status).toBe(0)
    for (const n of ['web1', 'web2', 'web3']) expect(s).toContain(`agent ${n} app`)
    expect(s).toContain('/var/lib/infra/app/releases.json')
    expect(statusScript(inv, {samples: 1})).not.toContain(' app >')
  })

  it('shows each node\'s release and container, and the current release', () => {
    const raw = withApp([
      `@@releases\t${releases}`,
      '@@app\tweb1\trelease=v2 state=running health=ok restarts=0 exit=0',
      '@@app\tweb2\trelease=v2 state=running health=ok restarts=2 exit=0',
      '@@app\tweb3\trelease=v2 state=created health=failed restarts=0 exit=0',
    ])
    const s = buildStatus(appInv, raw)
    expect(s.release).toEqual({current: 'v2'})
    expect(s.nodes.map((n) => n.app?.release)).toEqual(['v2', 'v2', 'v2'])
    expect(s.problems).toEqual([])
    const table = renderStatus(s)
    expect(table).toContain('release v2')
    expect(table).toMatch(/^web1 .*v2 running$/m)
    expect(table).toMatch(/^web2 .*v2 running, 2 restarts$/m)
    expect(table).toMatch(/^web3 .*v2 created$/m)
  })

  it('a serving node on another release, an unhealthy container and a silent node are problems or dashes', () => {
    const raw = withApp([
      `@@releases\t${releases}`,
      '@@app\tweb1\trelease=v1 state=running health=ok restarts=0 exit=0',
      '@@app\tweb2\trelease=v2 state=running health=failed restarts=0 exit=0',
      '@@app\tweb3\t',
    ])
    const s = buildStatus(appInv, raw)
    expect(s.problems).toEqual([
      'web1 serves v1, not the current v2: `infra doctor --host web1`',
      'web2: the app\'s container is running, health failed: `infra logs web2 --unit app`',
    ])
    expect(s.nodes[2].app).toBeNull()
    expect(renderStatus(s)).toMatch(/^web3 .* -$/m)
  })

  it('before the first deploy: "none deployed yet", with the command', () => {
    const s = buildStatus(appInv, withApp(['@@releases\t', '@@app\tweb1\trelease=none state=missing health=failed restarts=0 exit=0']))
    expect(s.release).toEqual({current: null})
    expect(s.problems).toContain('no release of the app is deployed yet: `infra deploy --build DIR`')
    expect(renderStatus(s)).toContain('release none deployed yet')
  })
})
