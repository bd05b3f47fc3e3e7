/**
 * Applications on the lab (issue 15, docs/DEPLOY.md): `infra deploy --build` of the sample app
 * (examples/hello, FROM scratch with this machine's static busybox) to 2 active nodes and 1
 * standby, v1 then v2 under continuous HTTPS load with 0 failed requests; the standby scaled up
 * serves v2; rollback under load; a version whose health check fails leaves v1 serving; the deploy
 * lock; secrets that show nowhere; --archive; an unreachable registry. The app inventory is a copy
 * of the lab's (app.yaml beside it, flood limits raised for the load loop); at the end the app is
 * removed from the nodes (containers, Docker and the registry stopped) and the lab's own inventory
 * provisioned again, so the next files see the plain fleet.
 */
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmod, cp, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {labExec, labNetExec, type LoadReport, startLoad} from '../../src/lab/index.js'
import {infra, ROOT} from './helpers.js'

const run = promisify(execFile)
const SECRET_NAME = 'HELLO_TOKEN'
const SECRET_VALUE = `s3cr3t-${randomBytes(8).toString('hex')}`

let original: string
let config: string
let work: string
let domain: string
let address: string
let inv: Record<string, unknown>

/** A copy of examples/hello with a static busybox in it (the build context), answering with `version`'s build. */
async function context(name: string): Promise<string> {
  const dir = path.join(work, name)
  await cp(path.join(ROOT, 'examples/hello'), dir, {recursive: true})
  await cp('/bin/busybox', path.join(dir, 'rootfs/bin/busybox'))
  await chmod(path.join(dir, 'rootfs/bin/busybox'), 0o755)
  return dir
}

async function writeConfig(file: string, app: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  await writeFile(file, stringify({...inv, app: {image: 'hello', port: 8080, secrets: [SECRET_NAME], ...app}, deploy: {timeout: '20s', drain: '10s'}, limits: {requests: 100000, connections: 1000}, ...extra}))
}

const env = {[SECRET_NAME]: SECRET_VALUE}
const deploy = (args: string[], file = config) => infra(['deploy', '--yes', ...args], file, {env, timeoutMs: 300_000})

async function get(): Promise<{body: string; node: string}> {
  const r = await run('curl', ['-sk', '--max-time', '5', '-D', '-', '--resolve', `${domain}:443:${address}`, `https://${domain}/`])
  return {body: r.stdout.split('\r\n\r\n').slice(1).join(''), node: /x-served-by: (\S+)/i.exec(r.stdout)?.[1] ?? ''}
}

/** Versions served by both active nodes (several requests, HAProxy balances them). */
async function served(): Promise<Set<string>> {
  const seen = new Set<string>()
  for (let i = 0; i < 8; i++) seen.add((await get()).body.trim().replace(/ from \S+$/, ''))
  return seen
}

/** What the load loops saw, printed once per run (the figures of docs/DEPLOY.md and the closing notes). */
const measured: Record<string, string> = {}
const report = (what: string, l: LoadReport, ms?: number) =>
  (measured[what] = `${l.total} requests, ${l.failed} failed, versions ${JSON.stringify(l.versions)}${ms ? `, command ${(ms / 1000).toFixed(1)} s` : ''}`)

async function underLoad(fn: () => Promise<void>): Promise<LoadReport> {
  const load = await startLoad({address, domain, workers: 4, maxRequests: 20_000, maxMs: 240_000})
  try {
    await new Promise((r) => setTimeout(r, 1000))
    await fn()
    await new Promise((r) => setTimeout(r, 1500))
  } finally {
    await load.stop()
  }
  return load.done
}

beforeAll(async () => {
  original = inject('labConfig')
  inv = parse(await readFile(original, 'utf8')) as Record<string, unknown>
  domain = inv.domain as string
  address = (inv.bastion as {publicAddress: string}).publicAddress
  config = path.join(path.dirname(original), 'app.yaml')
  work = await mkdtemp(path.join(tmpdir(), 'infra-deploy-'))
  await writeConfig(config, {})
  await infra(['provision', '--yes'], config, {exit: 0, timeoutMs: 300_000})
}, 400_000)

afterAll(async () => {
  process.stderr.write(`[deploy] measurements: ${JSON.stringify(measured)}\n`)
  if (!config) return
  const clean = 'docker ps -aq | xargs -r docker rm -f >/dev/null; systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1; true'
  for (const h of ['web1', 'web2', 'web3']) await labExec(h, clean, {allowFail: true})
  await labExec('bastion', `systemctl disable --now docker-registry.service >/dev/null 2>&1; ${clean}`, {allowFail: true})
  await infra(['provision', '--yes'], original, {timeoutMs: 300_000})
  await rm(work, {recursive: true, force: true})
}, 300_000)

describe('infra deploy on the lab', () => {
  it('deploys v1 from --build: both active nodes serve it, the standby has it created but not started', async () => {
    const r = await deploy(['--build', await context('v1'), '--version', 'v1'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Deployed v1 in [\d.]+ s: 2 nodes switched, 1 standby node updated/)
    await expect.poll(served, {timeout: 30_000, interval: 1000}).toEqual(new Set(['hello v1']))
    const standby = await labExec('web3', "docker inspect -f '{{.State.Status}}' app-v1")
    expect(standby.stdout.trim()).toBe('created')
  }, 300_000)

  it('rolls to v2 under continuous HTTPS load with 0 failed requests, then only v2 answers; the standby scaled up serves v2', async () => {
    const dir = await context('v2')
    let out = ''
    let ms = 0
    const load = await underLoad(async () => {
      const r = await deploy(['--build', dir, '--version', 'v2', '--json'])
      expect(r.code, r.stderr).toBe(0)
      out = r.stdout
      ms = r.ms
    })
    report('deploy v1 → v2 (build, 2 nodes + standby)', load, ms)
    expect(load.failed, JSON.stringify(load.errors)).toBe(0)
    expect(load.total).toBeGreaterThan(100)
    expect(Object.keys(load.versions).sort()).toEqual(['v1', 'v2'])
    expect(load.last).toBe('v2')
    const result = JSON.parse(out) as {release: {id: string; digest: string}; nodes: {name: string; result: string}[]}
    expect(result.release.id).toBe('v2')
    expect(result.release.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(result.nodes.map((n) => `${n.name}:${n.result}`).sort()).toEqual(['web1:switched', 'web2:switched', 'web3:created'])
    expect(await served()).toEqual(new Set(['hello v2']))

    // The scaler's own path: web3 starts its (created) current release, then takes traffic.
    await infra(['scale', 'up', '--yes'], config, {exit: 0, timeoutMs: 120_000})
    const nodes = new Map<string, string>()
    for (let i = 0; i < 12; i++) {
      const g = await get()
      nodes.set(g.node, g.body.trim())
    }
    expect(nodes.get('web3')).toBe('hello v2 from web3')
    await infra(['scale', 'down', '--yes'], config, {exit: 0, timeoutMs: 120_000})
  }, 400_000)

  it('rolls back to v1 under load with 0 failed requests, from the containers kept on the nodes', async () => {
    let ms = 0
    const load = await underLoad(async () => {
      const r = await infra(['rollback', '--yes'], config, {timeoutMs: 120_000})
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/Rolled back to v1/)
      expect(r.stderr).not.toMatch(/pull/i)
      ms = r.ms
    })
    report('rollback v2 → v1', load, ms)
    expect(load.failed, JSON.stringify(load.errors)).toBe(0)
    expect(load.last).toBe('v1')
    expect(ms).toBeGreaterThan(0)
    const releases = JSON.parse((await infra(['releases', '--json'], config, {exit: 0})).stdout) as {releases: {id: string; state: string}[]}
    expect(releases.releases.map((x) => `${x.id}:${x.state}`)).toEqual(['v1:current', 'v2:previous'])
  }, 300_000)

  it('a version whose health check fails: exit 1, v1 keeps serving with 0 failed requests, the release is recorded failed, its log lines shown', async () => {
    const broken = path.join(path.dirname(config), 'app-broken.yaml')
    await writeConfig(broken, {env: {APP_BROKEN: 1}}, {deploy: {timeout: '6s', drain: '5s'}})
    let r = {code: 0, stdout: '', stderr: ''}
    const load = await underLoad(async () => {
      r = await deploy(['--version', 'v2'], broken)
    })
    await rm(broken)
    report('failed deploy (health check fails, v1 keeps serving)', load)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/did not answer \/healthz on port 920[12] within 6s/)
    // The container's own lines: busybox httpd answering 404 to the health path.
    expect(r.stderr).toMatch(/\| .*response:404/)
    expect(load.failed, JSON.stringify(load.errors)).toBe(0)
    expect(Object.keys(load.versions)).toEqual(['v1'])
    const releases = JSON.parse((await infra(['releases', '--json'], config, {exit: 0})).stdout) as {releases: {id: string; state: string; error?: string}[]}
    expect(releases.releases[0]).toMatchObject({id: 'v2-2', state: 'failed'})
    expect(releases.releases[1]).toMatchObject({id: 'v1', state: 'current'})
  }, 300_000)

  it('refuses a second deploy while one runs, naming the holder; takes over a stale lock', async () => {
    const dir = await context('v3')
    const first = deploy(['--build', dir, '--version', 'v3'])
    await new Promise((r) => setTimeout(r, 700))
    const second = await deploy(['--version', 'v1'])
    const done = await first
    expect(done.code, done.stderr).toBe(0)
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/another deploy is in progress: deploy v3 by \S+@\S+ pid \d+ since 20\d\d-/)
    // A lock whose holder died an hour ago (deploy.lockStale 30m): taken over, with a warning.
    const stale = JSON.stringify({holder: 'ci@elsewhere pid 1', run: 'dead-run', since: Math.floor(Date.now() / 1000) - 3600, what: 'deploy v0'})
    await labExec('bastion', `printf '%s\\n' '${stale}' > /var/lib/infra/app/deploy.lock`)
    const r = await infra(['rollback', 'v1', '--yes'], config, {timeoutMs: 120_000})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/warning: took over a stale deploy lock of ci@elsewhere pid 1 \(deploy v0/)
    const left = await labExec('bastion', 'test -e /var/lib/infra/app/deploy.lock && echo held || echo free')
    expect(left.stdout.trim()).toBe('free')
  }, 300_000)

  it('keeps the secret out of --json, plan, the journal and ps; the env file is 0600; the container gets it', async () => {
    const dir = await context('v4')
    const r = await deploy(['--build', dir, '--version', 'v4', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout + r.stderr).not.toContain(SECRET_VALUE)
    const plan = await infra(['plan', '--json'], config, {env})
    expect(plan.stdout + plan.stderr).not.toContain(SECRET_VALUE)
    for (const h of ['web1', 'web2']) {
      const mode = await labExec(h, 'stat -c %a /var/lib/infra/app/releases/v4.env')
      expect(mode.stdout.trim()).toBe('600')
      const seen = await labExec(h, `journalctl --no-pager -o cat | grep -c ${SECRET_VALUE}; ps -eo args | grep -v grep | grep -c ${SECRET_VALUE}; true`)
      expect(seen.stdout.trim().split('\n')).toEqual(['0', '0'])
      const inside = await labExec(h, 'docker exec app-v4 /bin/busybox env')
      expect(inside.stdout).toContain(`${SECRET_NAME}=${SECRET_VALUE}`)
    }
    const log = await infra(['logs', 'web1', '--unit', 'app', '-n', '50'], config, {exit: 0})
    expect(log.stdout).toMatch(/hello v4: listening on :8080/)
  }, 300_000)

  it('deploys a docker save archive with --archive', async () => {
    const registry = `${(inv.bastion as {privateAddress: string}).privateAddress}:5000`
    const saved = await labExec('bastion', `docker save ${registry}/hello:v1 | base64 -w0`, {timeoutMs: 60_000})
    const file = path.join(work, 'hello.tar')
    await writeFile(file, Buffer.from(saved.stdout.trim(), 'base64'))
    const r = await deploy(['--archive', file, '--version', 'v5'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Deployed v5/)
    // The archive holds the v1 build: the app says v1, and release v5 is current.
    expect(await served()).toEqual(new Set(['hello v1']))
    const status = await labExec('web1', '/usr/local/sbin/infra-app status')
    expect(status.stdout).toMatch(/^release=v5 state=running health=ok/)
  }, 300_000)

  it('doctor and status know the app; scale up brings a standby that lost its release the current one first', async () => {
    type Check = {id: string; host: string; status: string; value: string}
    const doc = JSON.parse((await infra(['doctor', '--json'], config, {timeoutMs: 120_000})).stdout) as {checks: Check[]}
    const verdict = (id: string, host: string) => doc.checks.find((c) => c.id === id && c.host === host)
    expect(verdict('registry', 'bastion')).toMatchObject({status: 'pass'})
    for (const h of ['web1', 'web2', 'web3']) expect(verdict('app-release', h), h).toMatchObject({status: 'pass', value: 'v5'})
    for (const h of ['web1', 'web2']) expect(verdict('app-container', h), h).toMatchObject({status: 'pass'})
    expect(verdict('app-disk', 'web1')?.status).toMatch(/pass|warn/)

    const status = JSON.parse((await infra(['status', '--json'], config, {exit: 0})).stdout) as {release: {current: string}; nodes: {name: string; app: {release: string; state: string}}[]}
    expect(status.release.current).toBe('v5')
    expect(status.nodes.map((n) => `${n.name}:${n.app.release}:${n.app.state}`)).toEqual(['web1:v5:running', 'web2:v5:running', 'web3:v5:created'])

    // web3 loses every release (a node added after the last deploy looks the same).
    await labExec('web3', 'docker ps -aq | xargs -r docker rm -f >/dev/null; rm -f /var/lib/infra/app/releases/* /var/lib/infra/app/current')
    const red = JSON.parse((await infra(['doctor', '--json', '--host', 'web3', '--check', 'app-release'], config, {timeoutMs: 120_000})).stdout) as {checks: Check[]}
    expect(red.checks.find((c) => c.id === 'app-release')).toMatchObject({status: 'warn', value: 'none'})
    const up = await infra(['scale', 'up', '--yes'], config, {env, timeoutMs: 300_000})
    expect(up.code, up.stderr).toBe(0)
    expect(up.stderr).toMatch(/web3: standby without the current release v5 \(has none\): pulling it/)
    const nodes = new Map<string, string>()
    for (let i = 0; i < 12; i++) {
      const g = await get()
      nodes.set(g.node, g.body.trim())
    }
    expect(nodes.get('web3')).toBe('hello v1 from web3')
    await infra(['scale', 'down', '--yes'], config, {exit: 0, timeoutMs: 120_000})
  }, 400_000)

  it('fails with a clear error and changes nothing when the registry cannot be reached', async () => {
    const unreachable = path.join(path.dirname(config), 'app-unreachable.yaml')
    await writeConfig(unreachable, {image: 'localhost:5999/hello'})
    const r = await deploy(['--version', 'v9'], unreachable)
    await rm(unreachable)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/pulling localhost:5999\/hello:v9 failed on 3 node\(s\); nothing was switched/)
    const releases = JSON.parse((await infra(['releases', '--json'], config, {exit: 0})).stdout) as {releases: {id: string; state: string}[]}
    expect(releases.releases[0]).toMatchObject({id: 'v5', state: 'current'})
    expect(await served()).toEqual(new Set(['hello v1']))
  }, 120_000)
})

describe('release commands, volumes and the firewall', () => {
  it('runs app.release once, before any switch, in a one-off container that shares the volumes; named volumes survive releases', async () => {
    const withRelease = path.join(path.dirname(config), 'app-release.yaml')
    // A tag of this attempt, so that a retry reads only its own lines from the (surviving) volume.
    const tag = randomBytes(3).toString('hex')
    const step = (run: string) =>
      writeConfig(withRelease, {secrets: [], env: {RUN_ID: `${run}-${tag}`}, volumes: ['data:/data'], release: ['/bin/busybox', 'sh', '-c', 'echo "migrated $RUN_ID" >> /data/migrations']})
    try {
      for (const run of ['first', 'second']) {
        await step(run)
        const r = await infra(['deploy', '--version', 'v1', '--yes', '--json'], withRelease, {timeoutMs: 300_000})
        expect(r.code, r.stderr).toBe(0)
        const id = (JSON.parse(r.stdout) as {release: {id: string}}).release.id
        // The release command ran on the first serving node; there the new release's container sees the same volume.
        const lines: string[] = []
        for (const h of ['web1', 'web2', 'web3']) {
          const seen = await labExec(h, `docker exec app-${id} /bin/busybox cat /data/migrations 2>/dev/null`, {allowFail: true})
          if (seen.code === 0 && seen.stdout.trim()) lines.push(...seen.stdout.trim().split('\n').filter((l) => l.endsWith(`-${tag}`)))
        }
        expect(lines).toEqual(run === 'first' ? [`migrated first-${tag}`] : [`migrated first-${tag}`, `migrated second-${tag}`])
      }
      // A failing release command: nothing is switched, the release is recorded failed, exit 1.
      await writeConfig(withRelease, {secrets: [], env: {RUN_ID: 'third'}, volumes: ['data:/data'], release: ['/bin/busybox', 'false']})
      const before = (JSON.parse((await infra(['releases', '--json'], config, {exit: 0})).stdout) as {releases: {id: string; state: string}[]}).releases.find((x) => x.state === 'current')!.id
      const bad = await infra(['deploy', '--version', 'v1', '--yes'], withRelease, {timeoutMs: 300_000})
      expect(bad.code).toBe(1)
      expect(bad.stderr).toMatch(/the release command \(\/bin\/busybox false\) failed on web\d with exit 1; nothing was switched/)
      const after = JSON.parse((await infra(['releases', '--json'], config, {exit: 0})).stdout) as {releases: {id: string; state: string}[]}
      expect(after.releases[0].state).toBe('failed')
      expect(after.releases.find((x) => x.state === 'current')!.id).toBe(before)
      expect(await served()).toEqual(new Set(['hello v1']))
    } finally {
      await rm(withRelease, {force: true})
    }
  }, 600_000)

  it('containers listen on the node\'s loopback only: unreachable from the bastion and the internet side; a firewall reload leaves the app serving', async () => {
    const web1 = '10.42.0.11'
    const listening = await labExec('web1', "ss -Hltn | awk '{print $4}' | grep -E ':920[12]$'")
    const addrs = listening.stdout.trim().split('\n')
    expect(addrs.length).toBeGreaterThan(0)
    for (const a of addrs) expect(a).toMatch(/^127\.0\.0\.1:920[12]$/)
    for (const port of [9201, 9202]) {
      const fromBastion = await labNetExec('bastion', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', `http://${web1}:${port}/`], {allowFail: true})
      expect(fromBastion.stdout, `bastion → web1:${port}`).toBe('000')
      const fromInternet = await labNetExec('internet', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', `http://${web1}:${port}/`], {allowFail: true})
      expect(fromInternet.stdout, `internet → web1:${port}`).toBe('000')
    }
    // Reloading our firewall (which starts with flush ruleset) does not cut the app: Docker has no rules of its own here.
    for (const h of ['web1', 'web2']) await labExec(h, 'systemctl reload nftables || nft -f /etc/nftables.conf')
    const seen = await served()
    expect(seen.size).toBe(1)
    expect([...seen][0]).toMatch(/^hello v\d+$/)
    // doctor with the app: nothing red (the firewall equals the file, no extra port, the app's checks pass).
    const doc = JSON.parse((await infra(['doctor', '--json'], config, {timeoutMs: 120_000})).stdout) as {checks: {id: string; host: string; status: string; message: string}[]}
    expect(doc.checks.filter((c) => c.status === 'fail').map((c) => `${c.host} ${c.id}: ${c.message}`)).toEqual([])
  }, 300_000)
})

describe('an image in an outside registry (the fleet registry addressed by host, as a registry of your own would be)', () => {
  it('logs each node in with app.registry credentials from the environment; wrong ones stop the deploy before any switch', async () => {
    const priv = (inv.bastion as {privateAddress: string}).privateAddress
    const outside = path.join(path.dirname(config), 'app-outside.yaml')
    // A configuration of its own (ATTEMPT) so that a retry is a new release, not "already current".
    await writeConfig(outside, {image: `${priv}:5000/hello`, secrets: [], env: {ATTEMPT: randomBytes(4).toString('hex')}, registry: {usernameEnv: 'REG_USER', passwordEnv: 'REG_TOKEN'}})
    const token = (await readFile(path.join(path.dirname(config), 'fleet/registry.password'), 'utf8')).trim()
    try {
      const wrong = await infra(['deploy', '--version', 'v1', '--yes'], outside, {env: {REG_USER: 'infra', REG_TOKEN: 'not-the-token'}, timeoutMs: 300_000})
      expect(wrong.code).toBe(1)
      expect(wrong.stderr).toMatch(/docker login to 10\.\d+\.\d+\.\d+:5000 as infra failed/)
      expect(wrong.stderr + wrong.stdout).not.toContain('not-the-token')
      expect(await served()).toEqual(new Set(['hello v1']))

      const r = await infra(['deploy', '--version', 'v1', '--yes', '--json'], outside, {env: {REG_USER: 'infra', REG_TOKEN: token}, timeoutMs: 300_000})
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout + r.stderr).not.toContain(token)
      const result = JSON.parse(r.stdout) as {release: {image: string}}
      expect(result.release.image).toBe(`${priv}:5000/hello:v1`)
      // The login is the node's own DOCKER_CONFIG (0700), not root's config.json that provision manages.
      const login = await labExec('web1', `stat -c %a /var/lib/infra/app/registry-login; grep -c ${priv}:5000 /var/lib/infra/app/registry-login/config.json`)
      expect(login.stdout.trim().split('\n')).toEqual(['700', '1'])
      // The token comes on stdin and is compared by awk from the environment: this check's own arguments do not hold it.
      const ps = await labExec('web1', `export T="$(cat)"; ps -eo args | awk 'index($0, ENVIRON["T"]) { n++ } END { print n + 0 }'`, {input: token})
      expect(ps.stdout.trim()).toBe('0')
    } finally {
      await rm(outside, {force: true})
    }
  }, 400_000)
})
