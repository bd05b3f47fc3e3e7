/**
 * The agents on the lab (issue 4): the restricted key, the healthchecker (restart, then fail over
 * to a standby with alerts), the scaler (scale out under sustained load, scale in with draining),
 * and `infra scale`. Short intervals come from a copy of the lab inventory (healing every 10 s,
 * sustain 20 s, recheck 30 s). Alerts go to an SMTP sink and an HTTP sink on the lab's "internet"
 * server (203.0.113.x, reachable only from inside the lab). The webhook URL is a secret
 * (alerts.webhookEnv, issue 13): it never shows in plan --json, a process list or the journal. The
 * agents' known_hosts holds the operator's pins. The lab is restored at the end: web1 and web2
 * active, web3 standby, the original inventory provisioned.
 */
import {execFile, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {INTERNET_SERVER_ADDRESS, labExec, labHostCgroup, labNetExec} from '../../src/lab/index.js'
import {infra} from './helpers.js'

const run = promisify(execFile)
const HTTP_SINK_PORT = 8091
const SMTP_SINK_PORT = 2525
const EVERY_S = 10
const SUSTAIN_S = 20
const RECHECK_S = 30
/** The webhook URL's secret part, and the variable that carries the URL to provision. */
const WEBHOOK_TOKEN = `T0LAB${randomBytes(8).toString('hex')}`
const WEBHOOK_ENV = 'INFRA_LAB_ALERT_WEBHOOK'
const WEBHOOK_PATH = `/infra/services/${WEBHOOK_TOKEN}`

let original: string
let config: string
let sinkDir: string
let domain: string
let publicAddress: string
const measured: Record<string, string> = {}
/** What beforeAll saw: `infra plan --json` and `infra provision` output with the webhook configured. */
const outputs: Record<string, string> = {}
const cleanups: (() => Promise<unknown>)[] = []

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const log = (m: string) => process.stderr.write(`[agents] ${m}\n`)

async function bastion(cmd: string, allowFail = true) {
  return labExec('bastion', cmd, {allowFail, timeoutMs: 120_000})
}

/** HAProxy's view of the web backend: name → status (UP, DOWN, MAINT, DRAIN, ...). */
async function hapStates(): Promise<Record<string, string>> {
  const r = await bastion("echo 'show stat web 4 -1' | socat -t 3 stdio UNIX-CONNECT:/run/haproxy/admin.sock")
  const out: Record<string, string> = {}
  for (const line of r.stdout.split('\n')) {
    const f = line.split(',')
    if (f[0] === 'web' && f[1] && f[1] !== 'BACKEND') out[f[1]] = f[17] ?? ''
  }
  return out
}

/** Nodes in rotation (not MAINT, not DRAIN). */
async function activeSet(): Promise<string[]> {
  const s = await hapStates()
  return Object.keys(s)
    .filter((n) => !s[n].startsWith('MAINT') && !s[n].startsWith('DRAIN'))
    .sort()
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined | false>, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** One request through the bastion (this machine on the lab's public side): status and the serving node. */
function request(): Promise<{status: number; servedBy?: string}> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sk', '-o', '/dev/null', '-D', '-', '--max-time', '5', '--resolve', `${domain}:443:${publicAddress}`, `https://${domain}/`])
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.on('close', () => {
      const status = Number(/^HTTP\/[\d.]+ (\d{3})/m.exec(out)?.[1] ?? 0)
      const servedBy = /^x-served-by: *(\S+)/im.exec(out)?.[1]
      resolve({status, servedBy})
    })
  })
}

/** A client polling through the bastion (about 4 requests a second, bounded) until stopped. */
function poller(maxRequests = 2000) {
  let stop = false
  const results: {status: number; servedBy?: string}[] = []
  const done = (async () => {
    while (!stop && results.length < maxRequests) {
      results.push(await request())
      await sleep(250)
    }
  })()
  return {
    async stop() {
      stop = true
      await done
      return results
    },
  }
}

/** Busy loops on a lab host (counted in its own cgroup), bounded in time; returns a stop function (kills them by PID). */
async function busy(host: string, loops: number, seconds: number): Promise<() => Promise<void>> {
  const pidFile = `/run/infra-test-busy-${Date.now()}`
  const r = await labExec(host, `for i in $(seq ${loops}); do setsid -f sh -c 'echo $$ >> ${pidFile}; exec timeout ${seconds} sh -c "while :; do :; done"' </dev/null >/dev/null 2>&1; done; sleep 0.5; cat ${pidFile}`)
  const pids = r.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))
  expect(pids.length).toBe(loops)
  return async () => {
    await labExec(host, `for p in ${pids.join(' ')}; do pkill -TERM -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; rm -f ${pidFile}`, {allowFail: true})
  }
}

async function freeze(host: string, frozen: boolean): Promise<void> {
  const dir = await labHostCgroup(host, 'freezer')
  if (!dir) throw new Error(`no freezer cgroup for ${host}`)
  await writeFile(path.join(dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED')
}

async function journal(tag: string, since: number): Promise<string> {
  return (await bastion(`journalctl -t ${tag} --since @${since} --no-pager -o cat`)).stdout
}

const SMTP_SINK = `
import socketserver, sys, os, time
out = sys.argv[2]
class H(socketserver.StreamRequestHandler):
    def handle(self):
        w = lambda s: self.wfile.write((s + "\\r\\n").encode())
        w("220 sink ESMTP")
        data = None
        while True:
            line = self.rfile.readline()
            if not line: return
            if data is not None:
                if line in (b".\\r\\n", b".\\n"):
                    with open(out, "ab") as f: f.write(b"".join(data) + b"\\n=====\\n")
                    data = None; w("250 queued")
                else: data.append(line)
                continue
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"): w("250 sink")
            elif cmd.startswith(b"DATA"): data = []; w("354 go")
            elif cmd.startswith(b"QUIT"): w("221 bye"); return
            else: w("250 ok")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
`

// Answers after 1.5 s, so the agent's curl is long enough in the bastion's process list to be seen;
// keeps the bodies (out) and the request targets (out.paths).
const HTTP_SINK = `
import http.server, sys, time
out = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(1.5)
        with open(out, "ab") as f: f.write(body + b"\\n")
        with open(out + ".paths", "ab") as f: f.write(self.path.encode() + b"\\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
`

async function startSink(name: string, code: string, port: number): Promise<void> {
  const script = path.join(sinkDir, `sink_${name}.py`) // not http.py: it would shadow the http module
  await writeFile(script, code)
  const out = path.join(sinkDir, `${name}.out`)
  const pidFile = path.join(sinkDir, `${name}.pid`)
  // Bounded in time; the PID is kept to stop exactly this process afterwards.
  await labNetExec('internet', ['sh', '-c', `setsid -f sh -c 'echo $$ > ${pidFile}; exec timeout 900 python3 ${script} ${port} ${out}' </dev/null >/dev/null 2>&1`])
  cleanups.push(async () => {
    const pid = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : ''
    if (/^\d+$/.test(pid)) await run('kill', [pid]).catch(() => {})
  })
}

beforeAll(async () => {
  original = inject('labConfig')
  const inv = parse(await readFile(original, 'utf8'))
  domain = inv.domain
  publicAddress = inv.bastion.publicAddress
  inv.scaling = {...inv.scaling, cpuPercent: 30, sustainFor: `${SUSTAIN_S}s`, recheckEvery: `${RECHECK_S}s`}
  inv.healing = {every: `${EVERY_S}s`, attempts: 2}
  inv.alerts = {
    email: 'ops@example.test',
    webhookEnv: WEBHOOK_ENV,
    smtp: {url: `smtp://${INTERNET_SERVER_ADDRESS}:${SMTP_SINK_PORT}`, from: 'infra@example.test'},
  }
  // Beside the lab's inventory: same operator key, known_hosts and TLS files.
  config = path.join(path.dirname(original), 'infra-agents.yaml')
  await writeFile(config, stringify(inv))
  sinkDir = await mkdtemp(path.join(tmpdir(), 'infra-agents-sinks-'))
  await startSink('smtp', SMTP_SINK, SMTP_SINK_PORT)
  await startSink('http', HTTP_SINK, HTTP_SINK_PORT)
  // The webhook URL reaches infra only through the environment (cli passes it on).
  process.env[WEBHOOK_ENV] = `http://${INTERNET_SERVER_ADDRESS}:${HTTP_SINK_PORT}${WEBHOOK_PATH}`
  cleanups.push(async () => delete process.env[WEBHOOK_ENV])
  const plan = await infra(['plan', '--json'], config, {exit: 0})
  outputs['plan --json'] = plan.stdout + plan.stderr
  const prov = await infra(['provision', '--yes'], config, {exit: 0})
  outputs['provision'] = prov.stdout + prov.stderr
  // Fresh agent state for this run; then wait for cron's first runs.
  await bastion('rm -f /var/lib/infra/scaler.* /var/lib/infra/nodes.state; rm -rf /var/lib/infra/heal')
  await until('the first heartbeats of both agents', 75_000, async () => {
    const r = await bastion('cat /var/lib/infra/healthcheck.heartbeat /var/lib/infra/scaler.heartbeat')
    return r.code === 0 && r.stdout.trim().split('\n').length === 2
  })
}, 180_000)

afterAll(async () => {
  for (const host of ['web1', 'web2', 'web3']) await freeze(host, false).catch(() => {})
  for (const c of cleanups.reverse()) await c().catch(() => {})
  // Back to the lab's own inventory and active set: web1, web2 in rotation, web3 parked and stopped.
  await infra(['provision', '--yes'], original)
  await bastion(`
    . /usr/local/lib/infra/agents.sh
    exec 9>"$LOCK"; flock -w 120 9
    for n in web1 web2; do agent "$n" start; wait_healthy "$n" 20; hap_set "$n" ready; done
    hap_set web3 maint; agent web3 stop
    rm -f /var/lib/infra/nodes.state /var/lib/infra/scaler.history /var/lib/infra/scaler.last-change /var/lib/infra/scaler.cpu; rm -rf /var/lib/infra/heal`)
  await rm(config, {force: true})
  if (sinkDir) await rm(sinkDir, {recursive: true, force: true})
  log(`measurements: ${JSON.stringify(measured)}`)
  await writeFile(path.join(tmpdir(), 'infra-agents-measurements.json'), JSON.stringify(measured, null, 2)).catch(() => {})
}, 240_000)

describe('the restricted key', () => {
  it('runs only the node agent verbs, from the bastion, and refuses anything else', async () => {
    const agent = (verb: string) => bastion(`. /usr/local/lib/infra/agents.sh; agent web1 ${JSON.stringify(verb)}`)
    expect((await agent('status')).stdout.trim()).toBe('active')
    expect((await agent('sample')).stdout).toMatch(/^cpu=\d+ mem=\d+ ncpu=\d+ source=cgroup2?\n$/)
    for (const cmd of ['id', 'cat /etc/shadow']) {
      const r = await agent(cmd)
      expect(r.code, cmd).toBe(126)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain('refused')
    }
    const logged = (await labExec('web1', 'journalctl -t infra-node-agent --no-pager -o cat')).stdout
    expect(logged).toMatch(/refused "id" from 10\.\d+\.\d+\.\d+/)
    expect(logged).toMatch(/refused "cat \/etc\/shadow"/)
  })

  it('keeps the operator key off the bastion and the operator lines on the web nodes', async () => {
    // The bastion holds only its own agents' key; no private key of the operator.
    const keys = await bastion('ls /root/.ssh 2>/dev/null; ls /var/lib/infra/agent')
    expect(keys.stdout.split('\n').filter((l) => /^id_/.test(l))).toEqual(['id_ed25519', 'id_ed25519.pub'])
    const operatorPub = readFileSync(path.join(path.dirname(original), '.infra-lab/id_ed25519.pub'), 'utf8').split(' ')[1]
    expect((await labExec('web2', 'cat /root/.ssh/authorized_keys')).stdout).toContain(operatorPub)
    expect((await bastion('cat /root/.ssh/id_* 2>/dev/null; true')).stdout).toBe('')
  })
})

describe('healthchecker', () => {
  it('restarts nginx stopped on an active node: serving again within two runs, with the reason in the journal', async () => {
    const since = Math.floor(Date.now() / 1000)
    await labExec('web2', 'systemctl stop nginx')
    const t0 = Date.now()
    await until('web2 to serve again', 2 * EVERY_S * 1000 + 15_000, async () => {
      const r = await bastion(`curl -fsS -m 2 -o /dev/null -w '%{http_code}' http://$(. /usr/local/lib/infra/agents.sh; node_field web2 2)/healthz`)
      return r.stdout === '200'
    }, 500)
    const ms = Date.now() - t0
    measured['nginx stopped → serving again'] = `${(ms / 1000).toFixed(1)} s (healing.every ${EVERY_S}s)`
    log(`nginx on web2 stopped → serving again in ${(ms / 1000).toFixed(1)} s`)
    expect(ms).toBeLessThanOrEqual(2 * EVERY_S * 1000 + 10_000)
    const j = await until('the restart in the journal', 15_000, async () => {
      const t = await journal('infra-healthcheck', since)
      return /web2 serves again/.test(t) && t
    })
    expect(j).toMatch(/restarting the web service of web2, attempt 1\/2: health check failed/)
    expect(await activeSet()).toEqual(['web1', 'web2'])
  }, 90_000)

  it('provision does not change the active set', async () => {
    await bastion("echo 'set server web/web3 state ready' | socat -t 3 stdio UNIX-CONNECT:/run/haproxy/admin.sock; echo 'set server web/web3 state maint' | socat -t 3 stdio UNIX-CONNECT:/run/haproxy/admin.sock")
    const before = await activeSet()
    await infra(['provision', '--yes'], config, {exit: 0})
    expect(await activeSet()).toEqual(before)
  }, 120_000)

  it('replaces a node whose host stopped entirely with a standby node, and alerts by e-mail and webhook', async () => {
    const since = Math.floor(Date.now() / 1000)
    await freeze('web2', true)
    const t0 = Date.now()
    try {
      await until('web3 in rotation in place of web2', 120_000, async () => {
        const s = await hapStates()
        return s.web3?.startsWith('UP') && s.web2?.startsWith('MAINT')
      })
      measured['host stopped → standby in rotation'] = `${((Date.now() - t0) / 1000).toFixed(1)} s (healing.every ${EVERY_S}s, attempts 2)`
      const served = new Set<string>()
      for (let i = 0; i < 10; i++) {
        const r = await request()
        expect(r.status).toBe(200)
        served.add(r.servedBy ?? '?')
      }
      expect([...served].sort()).toEqual(['web1', 'web3'])
      expect((await bastion('cat /var/lib/infra/nodes.state')).stdout).toMatch(/^web2 failed \d+ /m)
      const mail = await until('the alert e-mail', 30_000, async () => existsSync(path.join(sinkDir, 'smtp.out')) && readFileSync(path.join(sinkDir, 'smtp.out'), 'utf8'))
      expect(mail).toMatch(/^Subject: \[infra\] web node web2 is down/m)
      expect(mail).toMatch(/What the agent did: parked web2 \(maintenance\) and put standby web3 in rotation/)
      expect(mail).toMatch(/What to check: /)
      const hook = await until('the webhook', 30_000, async () => existsSync(path.join(sinkDir, 'http.out')) && readFileSync(path.join(sinkDir, 'http.out'), 'utf8'))
      const alert = JSON.parse(hook.trim().split('\n')[0])
      expect(alert).toMatchObject({kind: 'node-failed', node: 'web2', bastion: 'bastion'})
      expect(alert.did).toContain('web3 in rotation')
      expect(await journal('infra-healthcheck', since)).toMatch(/web2 marked failed after 2 restart attempts/)
    } finally {
      await freeze('web2', false)
    }
    // Healthy again: back to standby (stopped, parked), not into rotation.
    await until('web2 back to standby', 90_000, async () => /^web2 standby /m.test((await bastion('cat /var/lib/infra/nodes.state')).stdout))
    expect((await hapStates()).web2).toMatch(/^MAINT/)
    expect((await labExec('web2', 'systemctl is-active nginx', {allowFail: true})).stdout.trim()).not.toBe('active')
    expect(await activeSet()).toEqual(['web1', 'web3'])
  }, 300_000)
})

describe('infra scale', () => {
  it('shows each node with its state, and refuses beyond min/max (exit 2)', async () => {
    const s = JSON.parse((await infra(['scale', 'status', '--json'], config, {exit: 0})).stdout)
    expect(s.status.nodes.map((n: {name: string; state: string}) => `${n.name}:${n.state}`)).toEqual(['web1:active', 'web2:standby', 'web3:active'])
    const text = (await infra(['scale', 'status'], config, {exit: 0})).stdout
    expect(text).toMatch(/^web2\s+standby\s+MAINT/m)
    const over = await infra(['scale', '--to', '4', '--yes'], config)
    expect(over.code).toBe(2)
    expect(over.stderr).toMatch(/scaling\.min\.\.scaling\.max \(1\.\.3\)/)
    const noYes = await infra(['scale', 'up'], config)
    expect(noYes.code).toBe(2)
    expect(noYes.stderr).toContain('--yes')
  }, 60_000)

  it('pause and resume show in the status', async () => {
    await infra(['scale', 'pause'], config, {exit: 0})
    expect(JSON.parse((await infra(['scale', 'status', '--json'], config, {exit: 0})).stdout).status.paused).toBeGreaterThan(0)
    expect((await bastion('cat /var/lib/infra/scaler.paused')).stdout).toMatch(/^\d+\n?$/)
    await infra(['scale', 'resume'], config, {exit: 0})
    expect(JSON.parse((await infra(['scale', 'status', '--json'], config, {exit: 0})).stdout).status.paused).toBeNull()
  }, 60_000)
})

describe('scaler', () => {
  it('adds one node, then a second under sustained load, never more than max; scales in with draining and no failed request', async () => {
    // Start from one active node (the manual steps are the scaler's own).
    await infra(['scale', '--to', '1', '--yes'], config, {exit: 0})
    expect(await activeSet()).toEqual(['web1'])
    const stops: (() => Promise<void>)[] = []
    try {
      stops.push(await busy('web1', 2, 240))
      const t0 = Date.now()
      await until('a second active node', 120_000, async () => (await activeSet()).length === 2, 1000)
      const tUp1 = Date.now()
      // The extra node takes traffic.
      const served = new Set<string>()
      for (let i = 0; i < 8; i++) served.add((await request()).servedBy ?? '?')
      measured['sustained load → extra node taking traffic'] =
        `${((tUp1 - t0) / 1000).toFixed(1)} s (cpuPercent 30, sustainFor ${SUSTAIN_S}s, recheckEvery ${RECHECK_S}s, samples every 5 s)`
      expect(served.size).toBe(2)
      const second = (await activeSet()).find((n) => n !== 'web1')!
      stops.push(await busy(second, 2, 200))
      await until('a third active node', 150_000, async () => (await activeSet()).length === 3, 1000)
      measured['second extra node after the first'] = `${((Date.now() - tUp1) / 1000).toFixed(1)} s`
      // Never a fourth: still busy for longer than recheckEvery + sustainFor, the scaler starts nothing more.
      // From the next whole second: the third node's own "activating" line can share the current one.
      const tMax = Math.floor(Date.now() / 1000) + 1
      await sleep((RECHECK_S + SUSTAIN_S + 5) * 1000)
      expect((await activeSet()).length).toBe(3)
      expect(await journal('infra-scaler', tMax)).not.toMatch(/activating/)
    } finally {
      for (const s of stops) await s()
    }
    // Load ends: after recheckEvery, the extra node drains and stops; a client polling sees no error.
    const client = poller()
    const t1 = Date.now()
    let results: {status: number; servedBy?: string}[] = []
    try {
      await until('scale-in to the inventory floor (2 nodes)', 180_000, async () => (await activeSet()).length === 2, 2000)
      await sleep(5000)
    } finally {
      results = await client.stop()
    }
    measured['load ended → extra node out of rotation'] = `${((Date.now() - t1) / 1000).toFixed(1)} s`
    const failed = results.filter((r) => r.status !== 200)
    log(`scale-in: ${results.length} requests through the bastion, ${failed.length} failed`)
    expect(results.length).toBeGreaterThan(20)
    expect(failed).toEqual([])
    const j = await journal('infra-scaler', Math.floor(t1 / 1000) - 5)
    expect(j).toMatch(/draining web3 \(average \d+% over 3 node\(s\) would stay below 10%/)
    expect(j).toMatch(/web3 is out of rotation and stopped/)
    expect((await labExec('web3', 'systemctl is-active nginx', {allowFail: true})).stdout.trim()).not.toBe('active')
    expect(await activeSet()).toEqual(['web1', 'web2'])
    // provision between steps does not change the active set.
    await infra(['provision', '--yes'], config, {exit: 0})
    expect(await activeSet()).toEqual(['web1', 'web2'])
  }, 600_000)
})

describe('secrets and host keys on the bastion (issue 13)', () => {
  it('keeps the webhook URL out of plan --json, provision output and every non-secret file: only in a root 600 file', async () => {
    expect(outputs['plan --json']).toContain('/etc/infra/alert-webhook: secret content')
    for (const [what, text] of Object.entries(outputs)) expect(text, what).not.toContain(WEBHOOK_TOKEN)
    expect((await bastion('stat -c "%a %U %G" /etc/infra/alert-webhook')).stdout.trim()).toBe('600 root root')
    expect((await bastion('cat /etc/infra/alert-webhook')).stdout).toBe(process.env[WEBHOOK_ENV])
    // Nowhere else on the bastion's managed or agent files (grep -l prints the files that hold it).
    const found = await bastion(`grep -rlF ${WEBHOOK_TOKEN} /usr/local/lib/infra /usr/local/sbin /etc/cron.d /var/lib/infra /etc/haproxy /etc/systemd 2>/dev/null; true`)
    expect(found.stdout).toBe('')
    // The variable unset: a configuration error naming it (exit 2), before any connection.
    const unset = await infra(['plan'], config, {env: {[WEBHOOK_ENV]: ''}})
    expect(unset.code).toBe(2)
    expect(unset.stderr).toContain(`alerts.webhookEnv: the environment variable ${WEBHOOK_ENV} is not set`)
  }, 120_000)

  it('sends an alert to the webhook with the URL in no process list and no journal field', async () => {
    const since = Math.floor(Date.now() / 1000)
    // A ps sampler runs while the agent sends: the webhook sink answers after 1.5 s, so curl is seen.
    const r = await bastion(`
      ( end=$(( $(date +%s) + 12 )); while [ "$(date +%s)" -lt "$end" ]; do ps -eo args; echo @@; sleep 0.05; done ) > /run/infra-test-ps.log 2>&1 &
      sampler=$!
      sleep 0.3
      . /usr/local/lib/infra/agents.sh
      AGENT=infra-test ALERT_EMAIL=
      COUNTS_DIR=/run/infra-test-counts
      alert test-secrets web1 "secrets test alert" "nothing" "nothing"
      # A failing delivery too (a closed port): logged without the URL.
      sed 's/:${HTTP_SINK_PORT}/:9/' /etc/infra/alert-webhook > /run/infra-test-hook; chmod 600 /run/infra-test-hook
      ALERT_WEBHOOK_FILE=/run/infra-test-hook alert test-secrets web1 "secrets test failing alert" "nothing" "nothing"
      sleep 0.3; kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
      rm -rf /run/infra-test-hook /run/infra-test-counts
      cat /run/infra-test-ps.log; rm -f /run/infra-test-ps.log`)
    const ps = r.stdout
    // No URL in any process's command line; and the sampler did see the agent's curl (reading its config on stdin).
    expect(ps).not.toContain(WEBHOOK_TOKEN)
    const curls = ps.split('\n').filter((l) => /^curl /.test(l))
    log(`ps samples: ${ps.split('@@').length}, curl lines seen: ${curls.length} (e.g. ${curls[0]})`)
    expect(curls.length).toBeGreaterThan(0)
    for (const c of curls) expect(c).toMatch(/^curl -K - /)
    // It arrived at the sink, on the secret URL.
    const body = await until('the test alert at the sink', 30_000, async () => {
      const t = existsSync(path.join(sinkDir, 'http.out')) ? readFileSync(path.join(sinkDir, 'http.out'), 'utf8') : ''
      return t.split('\n').find((l) => l.includes('"test-secrets"'))
    })
    expect(JSON.parse(body)).toMatchObject({kind: 'test-secrets', node: 'web1', what: 'secrets test alert', bastion: 'bastion'})
    expect(readFileSync(path.join(sinkDir, 'http.out.paths'), 'utf8').split('\n')).toContain(WEBHOOK_PATH)
    // The journal (every field of every entry since, not only messages) never holds it.
    const j = (await bastion(`journalctl --since @${since} --no-pager -o verbose`)).stdout
    expect(j).toContain('webhook sent: secrets test alert')
    expect(j).toMatch(/webhook failed \(curl exit \d+\): secrets test failing alert/)
    expect(j).not.toContain(WEBHOOK_TOKEN)
  }, 120_000)

  it("gives the agents exactly the operator's pins of the web nodes, and they refuse another key", async () => {
    const inv = parse(await readFile(config, 'utf8'))
    const port = inv.ssh?.port ?? 22
    const pins = readFileSync(path.join(path.dirname(original), 'known_hosts'), 'utf8')
    // Read independently of src/ssh: the lab's pins are plain "name,address type key" lines.
    const expected: string[] = []
    for (const n of inv.web.nodes as {name: string; address: string}[]) {
      const names = [n.name, n.address].map((h) => (port === 22 ? h : `[${h}]:${port}`))
      const keys = new Set(
        pins
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length >= 3 && !f[0].startsWith('#') && !f[0].startsWith('@') && f[0].split(',').some((h) => names.includes(h)))
          .map((f) => `${f[1]} ${f[2]}`),
      )
      expect(keys.size, `${n.name} is pinned`).toBeGreaterThan(0)
      // And what is pinned is the node's real key.
      const real = (await labExec(n.name, 'cat /etc/ssh/ssh_host_*_key.pub')).stdout.split('\n').map((l) => l.split(' ').slice(0, 2).join(' '))
      for (const k of keys) expect(real, `${n.name}: ${k}`).toContain(k)
      expected.push(...[...keys].map((k) => `${port === 22 ? n.address : `[${n.address}]:${port}`} ${k}`))
    }
    const file = '/var/lib/infra/agent/known_hosts'
    const text = (await bastion(`cat ${file}`)).stdout
    expect(text.split('\n').filter((l) => l && !l.startsWith('#')).sort()).toEqual(expected.sort())
    expect((await bastion(`stat -c "%a %U" ${file}; stat -c %a /var/lib/infra/agent`)).stdout).toBe('644 root\n700\n')
    // The agents reach every node held to these keys, and add nothing to the file.
    for (const n of inv.web.nodes as {name: string}[]) {
      const r = await bastion(`. /usr/local/lib/infra/agents.sh; agent ${n.name} sample`)
      expect(r.code, `${n.name}: ${r.stderr}`).toBe(0)
      expect(r.stdout).toMatch(/^cpu=\d+ /)
    }
    expect((await bastion(`cat ${file}`)).stdout).toBe(text)
    // Another key for web1 (the bastion's own host key in its place): refused, not re-learned.
    const wrong = (await bastion('cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub')).stdout.trim()
    const web1 = inv.web.nodes.find((n: {name: string}) => n.name === 'web1').address as string
    try {
      await bastion(`cp -p ${file} /run/infra-test-kh && awk -v a=${web1} -v k=${JSON.stringify(wrong)} '$1 == a { if (!done) print a, k; done = 1; next } { print }' /run/infra-test-kh > ${file}`, false)
      const r = await bastion('. /usr/local/lib/infra/agents.sh; agent web1 status')
      expect(r.code).toBe(255)
      expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/)
    } finally {
      await bastion(`cp -p /run/infra-test-kh ${file} && rm -f /run/infra-test-kh`)
    }
    expect((await bastion('. /usr/local/lib/infra/agents.sh; agent web1 sample')).code).toBe(0)
  }, 120_000)
})
