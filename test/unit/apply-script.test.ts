/**
 * The apply script run for real by bash on this machine, in a temporary state folder and on files
 * under a temporary root (no services, no guarded files: those need systemd and run in the lab,
 * test/lab/apply-safety.test.ts). What a host keeps after a run: the stage, backups, secrets, the lock.
 */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {confirmTimeoutSeconds} from '../../src/tasks/provision/render.js'
import {EXIT} from '../../src/lib/errors.js'
import {PENDING_REASON, planHost} from '../../src/plan/diff.js'
import {factScript, parseFacts} from '../../src/plan/facts.js'
import {holderIsGone, lockedMessage} from '../../src/tasks/provision/lock.js'
import {applyScript, confirmScript, KEEP_RUNS, LOCKED_EXIT} from '../../src/plan/script.js'
import {parseApplyOutput} from '../../src/plan/apply-report.js'
import type {DesiredFile, HostDesiredState} from '../../src/plan/types.js'
import {desiredFile, factsOnThisMachine, WEB1 as host} from './fixtures/facts.js'
import {positionsIn} from './render-helpers.js'

let root: string
let sd: string
let n = 0

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'infra-apply-'))
  sd = path.join(root, 'state')
})
afterEach(() => rmSync(root, {recursive: true, force: true}))

function file(rel: string, content: string, extra: Partial<DesiredFile> = {}): DesiredFile {
  return desiredFile(path.join(root, 'etc', rel), content, extra)
}

/** A fresh run id in the shape provision makes them (sortable time, random suffix). */
function runId(): string {
  n++
  return `20261202T0000${String(n).padStart(2, '0')}-a${n}`
}

/** Facts read for real by the fact script, the plan, then the apply script run by bash. */
function apply(files: DesiredFile[], opts: {run?: string; holder?: string; services?: HostDesiredState['services']; takeOver?: string} = {}) {
  const desired: HostDesiredState = {host, packages: [], files, services: opts.services ?? []}
  const plan = planHost(desired, factsOnThisMachine(desired).facts)
  const run = opts.run ?? runId()
  const script = applyScript(plan, {runId: run, guardSeconds: 30, stateDir: sd, holder: opts.holder ?? 'tester@here pid 1', ...(opts.takeOver ? {takeOver: opts.takeOver} : {})})
  const r = spawnSync('bash', ['-s'], {input: script, encoding: 'utf8'})
  return {run, code: r.status, report: parseApplyOutput(r.stdout), stdout: r.stdout, stderr: r.stderr}
}

/** Every file under a folder, relative to it. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort()
}

describe('the apply script on a real file system', () => {
  it('keeps the previous version of each file under prev/RUN, one folder per run', () => {
    const a = apply([file('site.conf', 'one\n')])
    expect(a.report.ok).toBe(true)
    const b = apply([file('site.conf', 'two\n')])
    const c = apply([file('site.conf', 'three\n')])
    expect(readFileSync(path.join(root, 'etc/site.conf'), 'utf8')).toBe('three\n')
    // The first run created the file (nothing to keep); each later run kept what it replaced.
    expect(readFileSync(path.join(sd, 'prev', b.run, root, 'etc/site.conf'), 'utf8')).toBe('one\n')
    expect(readFileSync(path.join(sd, 'prev', c.run, root, 'etc/site.conf'), 'utf8')).toBe('two\n')
  })

  it(`keeps the backups of the last ${KEEP_RUNS} runs only, and drops the flat prev/ layout of older versions`, () => {
    mkdirSync(path.join(sd, 'prev/etc'), {recursive: true})
    writeFileSync(path.join(sd, 'prev/etc/old.conf'), 'from an older infra\n')
    const runs = Array.from({length: KEEP_RUNS + 2}, (_, i) => apply([file('site.conf', `v${i}\n`)]).run)
    expect(readdirSync(path.join(sd, 'prev')).sort()).toEqual(runs.slice(-KEEP_RUNS))
  })

  it('never keeps an old secret: staged copies and backups of secret files are gone after the run', () => {
    const key = file('certs/site.pem', 'OLD-PRIVATE-KEY\n', {secret: true, mode: 0o600})
    apply([key, file('site.conf', 'a\n')])
    // What an older infra left behind in the flat layout: the key it replaced.
    mkdirSync(path.dirname(path.join(sd, 'prev', key.path)), {recursive: true})
    writeFileSync(path.join(sd, 'prev', key.path), 'OLDER-PRIVATE-KEY\n')
    const r = apply([{...key, content: 'NEW-PRIVATE-KEY\n'}, file('site.conf', 'b\n')])
    expect(r.report.ok).toBe(true)
    expect(readFileSync(key.path, 'utf8')).toBe('NEW-PRIVATE-KEY\n')
    const kept = tree(path.join(sd, 'prev'))
    expect(kept).toEqual([path.join(r.run, root, 'etc/site.conf').replace(/^\//, '')])
    const everything = tree(sd).map((p) => readFileSync(path.join(sd, p), 'utf8')).join('\n')
    expect(everything).not.toMatch(/PRIVATE-KEY/)
    expect(existsSync(path.join(sd, 'stage', r.run))).toBe(false)
  })

  it('a failed validation restores the previous files, removes the stage and shreds the staged secret', () => {
    const key = file('certs/site.pem', 'KEY-1\n', {secret: true, mode: 0o600})
    const conf = file('app.conf', 'ok\n', {validate: 'grep -q ok {}'})
    apply([key, conf])
    const r = apply([{...key, content: 'KEY-2\n'}, {...conf, content: 'bad\n'}])
    expect(r.code).toBe(3)
    expect(r.report.invalid).toEqual([conf.path])
    expect(r.report.undone).toBe(true)
    // The key was installed before the validation failed; the undo put the old one back.
    expect(readFileSync(key.path, 'utf8')).toBe('KEY-1\n')
    expect(readFileSync(conf.path, 'utf8')).toBe('ok\n')
    expect(readdirSync(path.join(sd, 'stage'))).toEqual([])
    const everything = tree(sd).map((p) => readFileSync(path.join(sd, p), 'utf8')).join('\n')
    expect(everything).not.toMatch(/KEY-/)
  })

  it('releases the lock when it ends, whether it succeeded or failed', () => {
    apply([file('a.conf', 'x\n')])
    expect(existsSync(path.join(sd, 'lock'))).toBe(false)
    apply([file('b.conf', 'bad\n', {validate: 'false'})])
    expect(existsSync(path.join(sd, 'lock'))).toBe(false)
  })
})

describe('the host lock', () => {
  it('a second run while the first applies fails at once, naming who holds the host', async () => {
    // The first run's validator takes 3 s: the second starts meanwhile.
    const slow = file('slow.conf', 'x\n', {validate: 'sleep 3'})
    const desired: HostDesiredState = {host, packages: [], files: [slow], services: []}
    const plan = planHost(desired, factsOnThisMachine(desired).facts)
    const first = runId()
    const child = spawn('bash', ['-s'], {stdio: ['pipe', 'pipe', 'inherit']})
    let firstOut = ''
    child.stdout.on('data', (d: Buffer) => (firstOut += d.toString()))
    const done = new Promise<number | null>((resolve) => child.on('exit', resolve))
    child.stdin.end(applyScript(plan, {runId: first, guardSeconds: 30, stateDir: sd, holder: 'alice@laptop pid 4242'}))
    for (let i = 0; i < 100 && !existsSync(path.join(sd, 'lock')); i++) await new Promise((r) => setTimeout(r, 20))

    const second = apply([file('other.conf', 'y\n')], {holder: 'bob@ci pid 7'})
    expect(second.code).toBe(LOCKED_EXIT)
    expect(second.report.locked).toMatchObject({holder: 'alice@laptop pid 4242', run: first})
    expect(second.report.ok).toBe(false)
    // Nothing of the second run was installed, and the first run's lock was left alone.
    expect(existsSync(path.join(root, 'etc/other.conf'))).toBe(false)
    expect(readFileSync(path.join(sd, 'lock'), 'utf8')).toMatch(new RegExp(`^${first} \\d+ alice@laptop pid 4242\\n$`))
    expect(lockedMessage('web1', second.report.locked!)).toMatch(
      /^web1 is being provisioned by alice@laptop pid 4242 \(run \S+\): nothing was changed\. Run again when it has finished; if that run died, its lock expires at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, or remove it: infra exec web1 -- rm \/var\/lib\/infra\/lock$/,
    )

    expect(await done).toBe(0)
    expect(parseApplyOutput(firstOut).ok).toBe(true)
    // Once the first has finished, the host is free again.
    expect(apply([file('other.conf', 'y\n')]).report.ok).toBe(true)
  })

  it('a lock whose run died is taken over once it has expired', () => {
    mkdirSync(sd, {recursive: true})
    writeFileSync(path.join(sd, 'lock'), `20260101T000000-dead ${Math.floor(Date.now() / 1000) - 5} carol@gone pid 1\n`)
    expect(apply([file('a.conf', 'x\n')]).report.ok).toBe(true)
    writeFileSync(path.join(sd, 'lock'), `20260101T000000-live ${Math.floor(Date.now() / 1000) + 600} carol@here pid 1\n`)
    expect(apply([file('a.conf', 'y\n')]).report.locked).toMatchObject({holder: 'carol@here pid 1', run: '20260101T000000-live'})
  })
})

describe('what a run that died left behind', () => {
  it("the next run shreds a dead run's stage, with its staged secrets and the secret backups it listed", () => {
    const dead = path.join(sd, 'stage', '20261201T000000-dead')
    mkdirSync(dead, {recursive: true})
    writeFileSync(path.join(dead, '0'), 'STAGED-PRIVATE-KEY\n')
    const backup = path.join(sd, 'prev', '20261201T000000-dead', 'etc/key.pem')
    mkdirSync(path.dirname(backup), {recursive: true})
    writeFileSync(backup, 'BACKED-UP-PRIVATE-KEY\n')
    writeFileSync(path.join(dead, 'secret'), `${path.join(dead, '0')}\n${backup}\n`)
    const r = apply([file('a.conf', 'x\n')])
    expect(r.report.ok).toBe(true)
    expect(readdirSync(path.join(sd, 'stage'))).toEqual([])
    expect(existsSync(backup)).toBe(false)
  })

  it('takes over the lock of a run provision says is gone, and only that one', () => {
    mkdirSync(sd, {recursive: true})
    const until = Math.floor(Date.now() / 1000) + 600
    writeFileSync(path.join(sd, 'lock'), `20261201T000000-gone ${until} me@here pid 99999999\n`)
    expect(apply([file('a.conf', 'x\n')], {takeOver: '20261201T000000-other'}).report.locked).toMatchObject({run: '20261201T000000-gone'})
    const r = apply([file('a.conf', 'x\n')], {takeOver: '20261201T000000-gone'})
    expect(r.report.ok).toBe(true)
    expect(existsSync(path.join(sd, 'lock'))).toBe(false)
  })

  it('a holder is gone only when it was a process of this machine that no longer runs', () => {
    const alive = (pid: number) => pid === 10
    expect(holderIsGone('root@ci-1 pid 11', 'ci-1', alive)).toBe(true)
    expect(holderIsGone('root@ci-1 pid 10', 'ci-1', alive)).toBe(false)
    expect(holderIsGone('root@laptop pid 11', 'ci-1', alive)).toBe(false)
    expect(holderIsGone('something else', 'ci-1', alive)).toBe(false)
  })
})

describe('pending reloads', () => {
  const svc = {name: 'web', enabled: true, running: true as const}
  it('the script writes the marker before it installs any file, and clears it only after the service action', () => {
    const conf = file('web.conf', 'v2\n', {notify: [{service: 'web', action: 'reload'}]})
    const desired: HostDesiredState = {host, packages: [], files: [conf], services: [svc]}
    const facts = parseFacts('@@svc\tweb\tenabled\tactive\n')
    const script = applyScript(planHost(desired, facts), {runId: 'r1', guardSeconds: 30, services: [svc]})
    const at = positionsIn(script)
    expect(at(`echo reload > "$PENDING"/'web'`)).toBeLessThan(at(`put 0 '${conf.path}'`))
    expect(at(`say "@@done	service	web	$act"`)).toBeLessThan(at(`rm -f "$PENDING"/'web'`))
  })

  it('a marker left by an interrupted run makes the next plan reload the service, though every file matches', () => {
    const desired: HostDesiredState = {host, packages: [], files: [], services: [svc]}
    const facts = parseFacts('@@svc\tweb\tenabled\tactive\n@@pending\tweb\treload\n@@pending\tnftables\treload\n')
    const plan = planHost(desired, facts)
    expect(plan.services).toEqual([
      {name: 'web', actions: ['reload'], reason: PENDING_REASON},
      {name: 'nftables', actions: ['reload'], reason: PENDING_REASON},
    ])
    expect(planHost(desired, parseFacts('@@svc\tweb\tenabled\tactive\n')).services).toEqual([])
  })

  it('the fact script reports the markers it finds', () => {
    const script = factScript({packages: [], files: [], services: []})
    expect(script).toContain(`for p in /var/lib/infra/pending/*; do [ -f "$p" ] && printf '@@pending\\t%s\\t%s\\n'`)
  })
})

describe('the confirmation of a guarded change', () => {
  it('--confirm-timeout takes 10s to 30m; anything else is a usage error (exit 2) before any host is contacted', () => {
    expect(confirmTimeoutSeconds('10s')).toBe(10)
    expect(confirmTimeoutSeconds('30m')).toBe(1800)
    for (const [value, why] of [
      ['0s', /not a duration/],
      ['9s', /too short: at least 10s/],
      ['31m', /too long: at most 30m/],
      ['1h', /not a duration/],
      ['ten', /not a duration/],
    ] as const) {
      let error: unknown
      try {
        confirmTimeoutSeconds(value)
      } catch (e) {
        error = e
      }
      expect(error, value).toMatchObject({message: expect.stringMatching(why), exitCode: EXIT.USAGE})
    }
  })

  it('confirms only while the rollback has not started and its timer is pending, under the rollback lock', () => {
    const c = confirmScript('20261202T000000-abc')
    const at = positionsIn(c)
    expect(at('flock -w 10 9')).toBeLessThan(at('rollback-20261202T000000-abc.started'))
    expect(at('rollback-20261202T000000-abc.started')).toBeLessThan(at('systemctl stop infra-rollback-20261202T000000-abc.timer'))
    expect(at('SubState --value infra-rollback-20261202T000000-abc.timer 2>/dev/null)" = waiting ]')).toBeLessThan(at('systemctl stop'))
    expect(c.trim().endsWith('echo confirmed')).toBe(true)
    expect(() => confirmScript('x; rm -rf /')).toThrow(/not a run id/)
  })
})

describe('daemonReload', () => {
  /** The apply script for one changed file and a service it restarts (not run: it needs systemd). */
  function scriptFor(extra: Partial<DesiredFile>): string {
    const unit = file('drop-in.conf', '[Service]\nLimitNOFILE=4096\n', {notify: [{service: 'haproxy', action: 'restart'}], ...extra})
    const desired: HostDesiredState = {host, packages: [], files: [unit], services: [{name: 'haproxy', enabled: true, running: true}]}
    const plan = planHost(desired, factsOnThisMachine(desired).facts)
    return applyScript(plan, {runId: runId(), guardSeconds: 30, stateDir: sd, holder: 'tester@here pid 1'})
  }

  it('reloads systemd after a file marked daemonReload changes, before its service is restarted', () => {
    const script = scriptFor({daemonReload: true})
    const reload = script.indexOf('systemctl daemon-reload')
    expect(reload).toBeGreaterThan(-1)
    expect(script.indexOf('restart', reload)).toBeGreaterThan(reload)
  })

  it('does not reload systemd for a plain file outside /etc/systemd', () => {
    expect(scriptFor({})).not.toContain('systemctl daemon-reload')
  })
})
