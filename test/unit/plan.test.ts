import {execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {sha256} from '../../src/host/hash.js'
import {planHost} from '../../src/plan/diff.js'
import {factScript, parseFacts} from '../../src/plan/facts.js'
import {preflight} from '../../src/plan/preflight.js'
import {describePlan, renderPlanDiff} from '../../src/plan/render.js'
import {applyScript} from '../../src/plan/script.js'
import {parseApplyOutput} from '../../src/plan/apply-report.js'
import type {HostDesiredState} from '../../src/plan/types.js'
import {desiredFile as file, desiredState, factsOnThisMachine, factsOutput, fileFactLines, statFactLines, WEB1 as web} from './fixtures/facts.js'
import {positionsIn} from './render-helpers.js'

function desired(extra: Partial<HostDesiredState> = {}): HostDesiredState {
  return desiredState(web, {packages: ['nginx'], ...extra})
}

describe('facts', () => {
  it('gathers everything in one script that bash accepts', () => {
    const script = factScript({
      packages: ['nginx', 'nftables'],
      files: [file('/etc/a.conf', 'x'), file('/etc/key.pem', 'k', {secret: true})],
      services: [{name: 'nginx', enabled: true, running: true}],
      absent: ['/etc/nginx/sites-enabled/default'],
    })
    expect(script).toContain("dpkg-query -W -f='@@pkg\\t${Package}\\t${db:Status-Status}\\n' 'nginx' 'nftables'")
    expect(script).toContain(`c '/etc/a.conf' ${sha256('x')}`)
    // secret files are compared by hash; their content never travels back
    expect(script).toContain("F=('/etc/a.conf' '/etc/key.pem')")
    expect(script).not.toContain("c '/etc/key.pem'")
    expect(script).toContain("systemctl show --property=LoadState,UnitFileState,ActiveState -- 'nginx'")
    execFileSync('bash', ['-n'], {input: script})
  })

  it('runs for real and parses what this machine reports', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'infra-facts-'))
    const p = path.join(dir, 'a.conf')
    writeFileSync(p, 'hello\n', {mode: 0o640})
    chmodSync(p, 0o640)
    const {facts} = factsOnThisMachine({packages: ['bash', 'no-such-package-xyz'], files: [file(p, ''), file('/nonexistent/file', '')], services: []})
    expect(facts.os.id).toBe('debian')
    expect(facts.installed.has('bash')).toBe(true)
    expect(facts.installed.has('no-such-package-xyz')).toBe(false)
    // what makes re-runs idempotent: hash, mode and owner read back match what was written
    expect(facts.files.get(p)).toMatchObject({exists: true, content: 'hello\n', sha256: sha256('hello\n'), mode: 0o640, owner: 'root', group: 'root'})
    expect(facts.files.get('/nonexistent/file')?.exists).toBe(false)
    expect(facts.time).toBeGreaterThan(1_600_000_000)
    rmSync(dir, {recursive: true, force: true})
  })

  it('sends content back only for a file that differs from the desired one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'infra-facts-'))
    const same = path.join(dir, 'same.conf')
    const changed = path.join(dir, 'changed.conf')
    const secret = path.join(dir, 'key.pem')
    writeFileSync(same, 'same\n')
    writeFileSync(changed, 'old\n')
    writeFileSync(secret, 'old key\n')
    const {out, facts} = factsOnThisMachine({packages: [], files: [file(same, 'same\n'), file(changed, 'new\n'), file(secret, 'new key\n', {secret: true})], services: []})
    expect(facts.files.get(same)).toMatchObject({exists: true, sha256: sha256('same\n')})
    expect(facts.files.get(same)?.content).toBeUndefined()
    expect(facts.files.get(changed)).toMatchObject({exists: true, sha256: sha256('old\n'), content: 'old\n'})
    expect(facts.files.get(secret)).toMatchObject({exists: true, sha256: sha256('old key\n')})
    expect(out).not.toContain(Buffer.from('old key\n').toString('base64'))
    rmSync(dir, {recursive: true, force: true})
  })

  it("reads every service with one systemctl call, in order, unknown units as not-found", () => {
    // systemctl's real output format (a blank line between units), from a stand-in on PATH:
    // this machine's systemd is not PID 1; the lab tests run the real one.
    const dir = mkdtempSync(path.join(tmpdir(), 'infra-facts-'))
    writeFileSync(
      path.join(dir, 'systemctl'),
      '#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nprintf "LoadState=loaded\\nUnitFileState=enabled\\nActiveState=active\\n\\nLoadState=not-found\\nUnitFileState=\\nActiveState=inactive\\n\\nLoadState=masked\\nUnitFileState=masked\\nActiveState=inactive\\n\\nActiveState=failed\\nLoadState=loaded\\nUnitFileState=disabled\\n"\n',
      {mode: 0o755},
    )
    const {facts} = factsOnThisMachine(
      {packages: [], files: [], services: ['nginx', 'nosuch', 'haproxy', 'cron.timer'].map((name) => ({name, enabled: true, running: true}))},
      {...process.env, PATH: `${dir}:${process.env.PATH}`},
    )
    expect(readFileSync(path.join(dir, 'args'), 'utf8').trim()).toBe('show --property=LoadState,UnitFileState,ActiveState -- nginx nosuch haproxy cron.timer')
    expect([...facts.services.values()]).toEqual([
      {name: 'nginx', enabled: 'enabled', active: 'active'},
      {name: 'nosuch', enabled: 'not-found', active: 'inactive'},
      {name: 'haproxy', enabled: 'masked', active: 'inactive'},
      {name: 'cron.timer', enabled: 'disabled', active: 'failed'},
    ])
    rmSync(dir, {recursive: true, force: true})
  })

  it('parses addresses, services and present paths', () => {
    const facts = parseFacts(
      factsOutput(['@@addr\teth0\t10.42.0.11/24', '@@svc\tnginx\tenabled\tactive', '@@svc\thaproxy\t\t', '@@present\t/etc/x', '@@pkg\tnginx\tinstalled', '@@pkg\tcurl\tconfig-files']),
    )
    expect(facts.addresses).toEqual([{iface: 'eth0', address: '10.42.0.11', prefix: 24}])
    expect(facts.services.get('nginx')).toEqual({name: 'nginx', enabled: 'enabled', active: 'active'})
    expect(facts.services.get('haproxy')?.enabled).toBe('not-found')
    expect([...facts.installed]).toEqual(['nginx'])
    expect(facts.present.has('/etc/x')).toBe(true)
  })
})

describe('planHost', () => {
  const conf = file('/etc/nginx/conf.d/infra.conf', 'server {}\n', {notify: [{service: 'nginx', action: 'reload'}]})
  const cases: {name: string; desired: HostDesiredState & {absent?: string[]}; facts: string[]; expected: string[]}[] = [
    {
      name: 'nothing to do when everything matches',
      desired: desired({files: [conf], services: [{name: 'nginx', enabled: true, running: true}]}),
      facts: ['@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, conf.content), '@@svc\tnginx\tenabled\tactive'],
      expected: [],
    },
    {
      name: 'a missing package is installed',
      desired: desired(),
      facts: [],
      expected: ['install package nginx'],
    },
    {
      name: 'a changed file is updated and its service reloaded',
      desired: desired({files: [conf], services: [{name: 'nginx', enabled: true, running: true}]}),
      facts: ['@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, 'old\n'), '@@svc\tnginx\tenabled\tactive'],
      expected: ['update /etc/nginx/conf.d/infra.conf', 'reload nginx (configuration changed)'],
    },
    {
      name: 'a missing file is created',
      desired: desired({files: [conf]}),
      facts: ['@@pkg\tnginx\tinstalled', `@@nofile\t${conf.path}`],
      expected: ['create /etc/nginx/conf.d/infra.conf', 'reload nginx (configuration changed)'],
    },
    {
      name: 'only the mode differs',
      desired: desired({files: [conf]}),
      facts: ['@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, conf.content, '600')],
      expected: ['fix owner/mode of /etc/nginx/conf.d/infra.conf'],
    },
    {
      name: 'a stopped service that must run is started (restarted when its files changed)',
      desired: desired({files: [conf], services: [{name: 'nginx', enabled: true, running: true}]}),
      facts: ['@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, 'old'), '@@svc\tnginx\tenabled\tinactive'],
      expected: ['update /etc/nginx/conf.d/infra.conf', 'restart nginx (is inactive)'],
    },
    {
      name: 'a standby node keeps its stopped web service even when its config changes',
      desired: desired({files: [conf], services: [{name: 'nginx', enabled: true, running: 'keep'}]}),
      facts: ['@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, 'old'), '@@svc\tnginx\tenabled\tinactive'],
      expected: ['update /etc/nginx/conf.d/infra.conf'],
    },
    {
      name: 'on a host never provisioned, a standby web service takes its initial state (stopped)',
      desired: desired({files: [conf], services: [{name: 'nginx', enabled: true, running: 'keep', initial: false}]}),
      facts: ['@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, conf.content), '@@svc\tnginx\tenabled\tactive'],
      expected: ['stop nginx (is running)'],
    },
    {
      name: 'once provisioned, the scaler owns a standby web service: a running one is left running',
      desired: desired({files: [conf], services: [{name: 'nginx', enabled: true, running: 'keep', initial: false}]}),
      facts: ['@provisioned'.replace('@', '@@'), '@@pkg\tnginx\tinstalled', ...fileFactLines(conf.path, conf.content), '@@svc\tnginx\tenabled\tactive'],
      expected: [],
    },
    {
      name: 'a service that must be off is stopped and disabled',
      desired: desired({packages: [], services: [{name: 'nginx', enabled: false, running: false}]}),
      facts: ['@@svc\tnginx\tenabled\tactive'],
      expected: ['disable + stop nginx (is enabled, is running)'],
    },
    {
      name: 'a service that must be off and is not installed needs nothing',
      desired: desired({packages: [], services: [{name: 'nginx', enabled: false, running: false}]}),
      facts: ['@@svc\tnginx\t\t'],
      expected: [],
    },
    {
      name: 'a path that must be absent is removed',
      desired: {...desired({packages: []}), absent: ['/etc/nginx/sites-enabled/default']},
      facts: ['@@present\t/etc/nginx/sites-enabled/default'],
      expected: ['remove /etc/nginx/sites-enabled/default'],
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(describePlan(planHost(c.desired, parseFacts(factsOutput(c.facts))))).toEqual(c.expected)
    })
  }
})

describe('renderPlanDiff', () => {
  it('shows a unified diff of a changed file and hides secrets', () => {
    const plan = planHost(
      desired({packages: [], files: [file('/etc/a.conf', 'one\ntwo\n'), file('/etc/k.pem', 'PRIVATE KEY', {secret: true})]}),
      parseFacts(factsOutput([...fileFactLines('/etc/a.conf', 'one\n'), ...statFactLines('/etc/k.pem', 'deadbeef', '600')])),
    )
    const text = renderPlanDiff(plan)
    expect(text).toContain('--- a/etc/a.conf')
    expect(text).toContain('+++ b/etc/a.conf')
    expect(text).toContain('+two')
    expect(text).toContain('/etc/k.pem: secret content changed (not shown)')
    expect(text).not.toContain('PRIVATE KEY')
  })
})

describe('preflight', () => {
  it('refuses a web node with a public address, naming address and interface', () => {
    const facts = parseFacts(factsOutput(['@@addr\teth0\t10.42.0.11/24', '@@addr\teth1\t198.51.100.7/24']))
    expect(preflight(web, facts)).toEqual([
      'web1 has the public address 198.51.100.7 on eth1; web nodes must only be on the private network (remove it: ip addr del 198.51.100.7/24 dev eth1)',
    ])
    expect(preflight(web, parseFacts(factsOutput(['@@addr\teth0\t10.42.0.11/24'])))).toEqual([])
  })
})

describe('applyScript', () => {
  const haproxy = file('/etc/haproxy/haproxy.cfg', 'global\n', {validate: 'haproxy -c -f {}', notify: [{service: 'haproxy', action: 'reload'}]})
  const pem = file('/etc/haproxy/certs/x.pem', 'SECRET', {secret: true, mode: 0o600})
  const nft = file('/etc/nftables.conf', 'flush ruleset\n', {validate: 'nft -c -f {}', notify: [{service: 'nftables', action: 'reload'}]})
  const plan = planHost(
    {host: web, packages: ['haproxy'], files: [haproxy, pem, nft], services: [{name: 'haproxy', enabled: true, running: true, verify: 'true'}]},
    parseFacts(factsOutput(['@@svc\thaproxy\tenabled\tactive', ...statFactLines('/etc/nftables.conf', 'abc', '755')])),
  )
  const script = applyScript(plan, {runId: 'r1', guardSeconds: 20, services: [{name: 'haproxy', enabled: true, running: true, verify: 'true'}]})

  it('is valid bash', () => {
    execFileSync('bash', ['-n'], {input: script})
  })

  it('installs plain files, then validates, then installs validated files, then arms the guard before the firewall', () => {
    const at = positionsIn(script)
    expect(at('apt-get install')).toBeLessThan(at("put 1 '/etc/haproxy/certs/x.pem'"))
    expect(at("put 1 '/etc/haproxy/certs/x.pem'")).toBeLessThan(at('haproxy -c -f "$STAGE/0"'))
    expect(at('haproxy -c -f "$STAGE/0"')).toBeLessThan(at("put 0 '/etc/haproxy/haproxy.cfg'"))
    expect(at('nft -c -f "$STAGE/2"')).toBeLessThan(at("put 0 '/etc/haproxy/haproxy.cfg'"))
    // The guarded file is backed up before the timer is armed, and installed after it.
    expect(at("backup '/etc/nftables.conf'")).toBeLessThan(at('systemd-run --quiet --unit=infra-rollback-r1 --on-active=20s --timer-property=AccuracySec=100ms'))
    expect(at('systemd-run --quiet --unit=infra-rollback-r1 --on-active=20s --timer-property=AccuracySec=100ms')).toBeLessThan(at("place 2 '/etc/nftables.conf'"))
    expect(at("place 2 '/etc/nftables.conf'")).toBeLessThan(at('systemctl reload-or-restart'))
  })

  it('refuses a confirm timeout under 10 s (or over 30 min) when a guarded file changes', () => {
    expect(() => applyScript(plan, {runId: 'r1', guardSeconds: 0})).toThrow(/from 10 s to 30 min/)
    expect(() => applyScript(plan, {runId: 'r1', guardSeconds: 9})).toThrow(/from 10 s to 30 min/)
    expect(() => applyScript(plan, {runId: 'r1', guardSeconds: 1801})).toThrow(/from 10 s to 30 min/)
    expect(() => applyScript(plan, {runId: 'r1', guardSeconds: 10})).not.toThrow()
  })

  it('after a failure, puts the previous firewall and sshd settings back in effect before it cancels the rollback timer', () => {
    const undo = script.split('\n').find((l) => l.startsWith('undo() {'))!
    expect(undo.indexOf('reapply')).toBeGreaterThan(-1)
    expect(undo.indexOf('reapply')).toBeLessThan(undo.indexOf('systemctl stop infra-rollback-r1.timer'))
    const reapply = script.split('\n').find((l) => l.startsWith('reapply() {'))!
    expect(reapply).toContain('nft -f /etc/nftables.conf')
  })

  it('never carries a secret in clear text', () => {
    expect(script).not.toContain('SECRET')
    expect(script).toContain(Buffer.from('SECRET').toString('base64'))
  })

  it('parses the report lines', () => {
    const r = parseApplyOutput('@@step\tfiles\n@@done\tfile\t/etc/a\n@@invalid\t/etc/haproxy/haproxy.cfg\n@@out\t[ALERT] bad\n@@undone\n')
    expect(r).toMatchObject({ok: false, done: ['file /etc/a'], invalid: ['/etc/haproxy/haproxy.cfg'], output: ['[ALERT] bad'], undone: true})
  })
})
