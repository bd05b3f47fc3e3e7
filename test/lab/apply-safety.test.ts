/**
 * The apply step when things go wrong on a real host (docs/SECURITY.md, "Lockout safety"):
 * a late failure after a firewall change, a confirmation that comes after the rollback, two
 * provisions of one host at once, and an apply cut between installing files and reloading.
 * Faults are injected on the bastion itself (a systemd drop-in that makes HAProxy's reload fail
 * or hang, killed processes) and always removed afterwards; the lab's own inventory is provisioned
 * again at the end. Variants of the inventory live beside it (same key and known_hosts).
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {promisify} from 'node:util'

import {afterAll, afterEach, beforeAll, describe, expect, inject, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {labExec} from '../../src/lab/index.js'
import type {HostPlan} from '../../src/plan/diff.js'
import {applyScript, confirmScript} from '../../src/plan/script.js'
import {parseApplyOutput} from '../../src/plan/apply-report.js'
import {BIN, infra, infraEnv} from './helpers.js'

const execFileP = promisify(execFile)
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the lab's inventory as a YAML document, edited key by key by each test
type Doc = Record<string, any>

const DROPIN = '/etc/systemd/system/haproxy.service.d/zz-test-fault.conf'

let original: string
let variant: string
let inv: Doc
let bastion: string
let PUBLIC: string
let DOMAIN: string

/** `infra provision` as a child process the test can kill. */
function provisionChild(config: string): {child: ChildProcess; done: Promise<{code: number | null; stderr: string}>} {
  const child = spawn('node', [BIN, 'provision', '--yes', '--host', bastion, '--config', config], {
    env: infraEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return {child, done: new Promise((resolve) => child.on('exit', (code) => resolve({code, stderr})))}
}

/** A shell command on the bastion, run inside the host (not over SSH: it works when SSH does not). */
async function onBastion(cmd: string, timeoutMs = 30_000): Promise<{code: number; stdout: string}> {
  const r = await labExec(bastion, cmd, {allowFail: true, timeoutMs})
  return {code: r.code, stdout: r.stdout}
}

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now()
  while (Date.now() - t0 < ms) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

/** Writes the inventory variant: the lab's own, edited. */
async function writeVariant(edit: (doc: Doc) => void): Promise<void> {
  const doc = structuredClone(inv)
  edit(doc)
  await writeFile(variant, stringify(doc))
}

/** A systemd drop-in for HAProxy on the bastion (the fault), or none. */
async function haproxyFault(service: string | undefined): Promise<void> {
  const cmd = service
    ? `mkdir -p ${path.posix.dirname(DROPIN)} && printf '[Service]\\n${service}\\n' > ${DROPIN} && systemctl daemon-reload`
    : `rm -f ${DROPIN} && systemctl daemon-reload`
  expect((await onBastion(cmd)).code).toBe(0)
}

/** Status and location of an HTTPS request for a host name, from this machine. */
async function httpsFor(name: string): Promise<{status: number; location?: string}> {
  const r = await execFileP('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '--max-time', '5', '--resolve', `${name}:443:${PUBLIC}`, `https://${name}/`]).catch(
    (e: {stdout?: string}) => ({stdout: e.stdout ?? '0'}),
  )
  const [status, location] = r.stdout.trim().split(' ')
  return {status: Number(status), ...(location ? {location} : {})}
}

beforeAll(async () => {
  original = inject('labConfig')
  variant = path.join(path.dirname(original), 'apply-safety.yaml')
  inv = parse(await readFile(original, 'utf8'))
  bastion = inv.bastion.name ?? 'bastion'
  PUBLIC = inv.bastion.publicAddress
  DOMAIN = inv.domain
  const p = await infra(['provision', '--yes'], original)
  if (p.code !== 0) throw new Error(`provision failed:\n${p.stderr}`)
})

afterEach(async () => {
  // Whatever a test did: no fault left, the live firewall is the file's, the lab's inventory applies.
  await onBastion(`rm -f ${DROPIN}; systemctl daemon-reload; pkill -f 'sleep 6[0-9]' ; nft -f /etc/nftables.conf`)
})

afterAll(async () => {
  const p = await infra(['provision', '--yes'], original)
  expect(p.code, p.stderr).toBe(0)
})

describe('lockout safety when an apply fails late', () => {
  it('a tightened SSH allow-list followed by a failing HAProxy reload leaves the operator able to connect', async () => {
    // The allow-list excludes this machine (the operator), and the HAProxy change makes a reload
    // that fails after the new firewall is live; undo must put the old ruleset back in effect.
    await writeVariant((d) => {
      d.bastion.adminAllow = ['198.51.100.99']
      d.web = {...d.web, timeout: '31s'}
    })
    await haproxyFault('ExecReload=/bin/false')
    const r = await infra(['provision', '--yes', '--host', bastion, '--json'], variant)
    expect(r.code).toBe(1)
    const host = JSON.parse(r.stdout).hosts[0]
    expect(host.error).toMatch(/reload haproxy failed; previous files restored/)
    expect(host.error).toMatch(/previous firewall\/sshd settings are back in effect/)
    // The live ruleset is the previous one, and a NEW connection from the operator gets in.
    expect((await onBastion('nft list ruleset')).stdout).not.toContain('198.51.100.99')
    await haproxyFault(undefined)
    const ok = await infra(['exec', bastion, '--', 'echo still-in'], original)
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain('still-in')
    // And nothing of the run stays armed or staged.
    expect((await onBastion("systemctl list-units --type=timer --state=active --plain --no-legend 'infra-rollback-*'")).stdout.trim()).toBe('')
    expect((await onBastion('ls -A /var/lib/infra/stage')).stdout.trim()).toBe('')
  })
})

describe('the confirmation of a guarded change', () => {
  /** A harmless guarded change on the bastion: its nftables.conf with one comment more. */
  async function guardedPlan(): Promise<{plan: HostPlan; current: string}> {
    const current = (await onBastion('cat /etc/nftables.conf')).stdout
    const plan: HostPlan = {
      host: bastion,
      packages: [],
      files: [
        {
          kind: 'update',
          before: {path: '/etc/nftables.conf', exists: true},
          file: {path: '/etc/nftables.conf', content: `${current}# confirm test\n`, mode: 0o755, owner: 'root', group: 'root', validate: 'nft -c -f {}', notify: [{service: 'nftables', action: 'reload'}], guarded: true},
        },
      ],
      remove: [],
      services: [{name: 'nftables', actions: ['reload'], reason: 'test'}],
    }
    return {plan, current}
  }

  it('a confirmation that comes after the rollback ran is refused, and the host keeps the previous rules', async () => {
    const {plan, current} = await guardedPlan()
    const run = `20261202T000000-late${process.pid}`
    const applied = parseApplyOutput((await labExec(bastion, ['bash', '-s'], {input: applyScript(plan, {runId: run, guardSeconds: 10, holder: 'test@lab pid 1'})})).stdout)
    expect(applied.ok).toBe(true)
    expect(applied.armed?.seconds).toBe(10)
    await until('the rollback to run', 25_000, async () => (await onBastion(`cat /var/lib/infra/rollback-${run}.done`)).stdout.includes('reverted'))
    const confirm = await onBastion(confirmScript(run))
    expect(confirm.code).not.toBe(0)
    expect(confirm.stdout).not.toContain('confirmed')
    expect((await onBastion('cat /etc/nftables.conf')).stdout).toBe(current)
    expect((await onBastion('cat /var/lib/infra/lock 2>/dev/null')).stdout).toBe('')
  })

  it('a confirmation while the rollback is already running is refused, and the change is reverted', async () => {
    const {plan, current} = await guardedPlan()
    const run = `20261202T000000-race${process.pid}`
    // The rollback service starts when the timer elapses but waits 5 s before its script: the
    // timer is then elapsed yet still loaded (active/running), the window a late confirmation hit.
    const dropin = `/etc/systemd/system/infra-rollback-${run}.service.d`
    await onBastion(`mkdir -p ${dropin} && printf '[Service]\\nExecStartPre=/bin/sleep 5\\n' > ${dropin}/slow.conf && systemctl daemon-reload`)
    try {
      const applied = parseApplyOutput((await labExec(bastion, ['bash', '-s'], {input: applyScript(plan, {runId: run, guardSeconds: 10, holder: 'test@lab pid 1'})})).stdout)
      expect(applied.ok).toBe(true)
      await until('the rollback service to start', 25_000, async () => (await onBastion(`systemctl is-active infra-rollback-${run}.service`)).stdout.trim() === 'activating')
      const confirm = await onBastion(confirmScript(run))
      expect(confirm.stdout).not.toContain('confirmed')
      await until('the rollback to finish', 25_000, async () => (await onBastion(`cat /var/lib/infra/rollback-${run}.done`)).stdout.includes('reverted'))
      expect((await onBastion('cat /etc/nftables.conf')).stdout).toBe(current)
    } finally {
      await onBastion(`rm -rf ${dropin}`)
    }
  })

  it('a confirmation in time cancels the rollback: the change stays after the timeout', async () => {
    const {plan, current} = await guardedPlan()
    const run = `20261202T000000-ontime${process.pid}`
    const applied = parseApplyOutput((await labExec(bastion, ['bash', '-s'], {input: applyScript(plan, {runId: run, guardSeconds: 10, holder: 'test@lab pid 1'})})).stdout)
    expect(applied.ok).toBe(true)
    // The lock is kept for the confirmation window, then released by the confirmation.
    expect((await onBastion('cat /var/lib/infra/lock')).stdout).toMatch(new RegExp(`^${run} \\d+ test@lab pid 1`))
    const confirm = await onBastion(confirmScript(run))
    expect(confirm.stdout.trim()).toBe('confirmed')
    expect((await onBastion('cat /var/lib/infra/lock 2>/dev/null')).stdout).toBe('')
    await new Promise((r) => setTimeout(r, 12_000))
    expect((await onBastion(`ls /var/lib/infra/rollback-${run}.done /var/lib/infra/rollback-${run}.started 2>/dev/null`)).stdout).toBe('')
    expect((await onBastion('cat /etc/nftables.conf')).stdout).toBe(`${current}# confirm test\n`)
  })
})

describe('one provision per host at a time', () => {
  it('a second provision while the first applies fails at once and names who holds the host; the first completes', async () => {
    await writeVariant((d) => {
      d.web = {...d.web, timeout: '32s'}
    })
    // HAProxy's reload takes 8 s longer: the first run is in its apply for that long.
    await haproxyFault('ExecReload=/bin/sleep 8')
    const first = provisionChild(variant)
    let exited = false
    void first.done.then(() => (exited = true))
    await until('the first run to take the lock', 30_000, async () => {
      if (exited) throw new Error(`the first provision ended before it took the lock:\n${(await first.done).stderr}`)
      return (await onBastion('cat /var/lib/infra/lock 2>/dev/null')).stdout.trim() !== ''
    })
    const second = await infra(['provision', '--yes', '--host', bastion], variant)
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(new RegExp(`${bastion} is being provisioned by \\S+@\\S+ pid ${first.child.pid} \\(run \\S+\\): nothing was changed`))
    const done = await first.done
    expect(done.code, done.stderr).toBe(0)
  })
})

describe('an apply cut between installing files and reloading', () => {
  it('the next run reloads HAProxy although every file already matches, and cleans what the dead run left', async () => {
    const alias = `late.${DOMAIN}`
    await writeVariant((d) => {
      d.aliases = [...(d.aliases ?? []), alias]
    })
    expect(await httpsFor(alias)).toMatchObject({status: 200})
    // The reload hangs: the run is killed while it waits (its process here, its shell on the host).
    await haproxyFault('ExecReload=\nExecReload=/bin/sleep 61')
    const cut = provisionChild(variant)
    await until('the new haproxy.cfg to be installed and its reload to start', 60_000, async () => {
      const r = await onBastion(`grep -c ${alias} /etc/haproxy/haproxy.cfg; pgrep -f 'sleep 61'`)
      return /^[1-9]\d*\n\d+/.test(r.stdout)
    })
    cut.child.kill('SIGKILL')
    await cut.done
    await onBastion("pkill -KILL -f '^bash -s'; pkill -f 'sleep 61'")
    await haproxyFault(undefined)
    // The file is there, but HAProxy still runs the old configuration: the alias is not redirected.
    expect((await onBastion(`grep -c ${alias} /etc/haproxy/haproxy.cfg`)).stdout.trim()).not.toBe('0')
    expect(await httpsFor(alias)).toMatchObject({status: 200})
    expect((await onBastion('ls /var/lib/infra/pending')).stdout).toContain('haproxy')

    const next = await infra(['provision', '--yes', '--host', bastion, '--json'], variant)
    expect(next.code, next.stderr).toBe(0)
    const host = JSON.parse(next.stdout).hosts[0]
    expect(host.changes).toContain('reload haproxy (an earlier run installed its files but was interrupted before this)')
    expect(await httpsFor(alias)).toMatchObject({status: 301, location: `https://${DOMAIN}/`})
    // No marker, no stage, no lock left; no copy of a secret (the certificate's key) under prev/.
    expect((await onBastion('ls -A /var/lib/infra/pending /var/lib/infra/stage; cat /var/lib/infra/lock 2>/dev/null')).stdout.replace(/^\/.*:$/gm, '').trim()).toBe('')
    expect((await onBastion("grep -rl 'PRIVATE KEY' /var/lib/infra/prev /var/lib/infra/stage 2>/dev/null")).stdout.trim()).toBe('')
    // A third run has nothing left to do.
    const again = await infra(['provision', '--yes', '--host', bastion], variant)
    expect(again.stderr).toMatch(/0 changes/)
  })
})
