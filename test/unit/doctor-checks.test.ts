/**
 * The judgement of every doctor check, on fixed facts (no SSH): each check passes on a healthy
 * host and turns warn/fail with a fix on the fault it exists to find.
 */
import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'

import {EXTERNAL_CHECKS, type ExternalFacts, parseHeaders} from '../../src/checks/external.js'
import {type DoctorFacts, doctorScript, parseCert, parseDoctorFacts} from '../../src/checks/facts.js'
import {parseShowStat} from '../../src/host/haproxy.js'
import {HOST_CHECKS, normalizeRuleset, runHostChecks} from '../../src/checks/host-checks.js'
import {renderReport} from '../../src/checks/report.js'
import {CHECK_IDS, doctorExitCode, summarize, validateSelection} from '../../src/checks/judge.js'
import {DEFAULT_THRESHOLDS, type HostCheckContext, type Verdict} from '../../src/checks/types.js'
import {hostsOf} from '../../src/inventory/schema.js'
import {sha256} from '../../src/host/hash.js'
import type {HostDesiredState} from '../../src/plan/types.js'
import {SSHD_ALGORITHMS} from '../../src/roles/common.js'
import {
  BASTION as bastionHost,
  brokenDoctorFacts as broken,
  desiredFile,
  desiredState,
  DOCTOR_NOW as NOW,
  FLEET as inventory,
  healthyDoctorFacts as healthy,
  NFT,
  RULES,
  sshdT,
  WEB1 as web1,
  WEB2 as web2,
} from './fixtures/facts.js'
import {AGENT_PATHS} from '../../src/host/paths.js'

function desired(host = bastionHost, withAgents = true): HostDesiredState {
  const files = [
    desiredFile('/etc/nftables.conf', NFT, {mode: 0o755}),
    ...(host.role === 'bastion' ? [desiredFile('/etc/haproxy/certs/example.test.pem', 'x', {mode: 0o600, secret: true})] : []),
    ...(host.role === 'bastion' && withAgents ? [desiredFile(AGENT_PATHS.cron, '* * * * * root x\n')] : []),
  ]
  return desiredState(host, {files})
}

function judge(id: string, facts: DoctorFacts, over: Partial<HostCheckContext> = {}): Verdict {
  const host = over.host ?? (HOST_CHECKS.find((c) => c.id === id)!.roles.includes('bastion') ? bastionHost : web1)
  const ctx: HostCheckContext = {inventory, host, desired: desired(host), facts, localTime: NOW, thresholds: DEFAULT_THRESHOLDS, ...over}
  return runHostChecks(ctx, new Set([id]))[0].verdict
}

describe('host checks on a healthy host', () => {
  it.each(HOST_CHECKS.filter((c) => c.roles.includes('bastion') && !c.applies).map((c) => c.id))('bastion %s passes', (id) => {
    expect(judge(id, healthy('bastion'), {host: bastionHost})).toMatchObject({status: 'pass', fix: ''})
  })
  it.each(HOST_CHECKS.filter((c) => c.roles.includes('web') && !c.applies).map((c) => c.id))('web %s passes', (id) => {
    expect(judge(id, healthy('web'), {host: web1, bastion: healthy('bastion')})).toMatchObject({status: 'pass', fix: ''})
  })
})

describe('host checks find their fault', () => {
  const cases: [string, 'bastion' | 'web', (f: DoctorFacts) => void, 'warn' | 'fail', RegExp][] = [
    ['os', 'web', (f) => (f.os = {id: 'ubuntu', versionId: '22.04', prettyName: 'Ubuntu 22.04'}), 'fail', /Debian 12/],
    ['time', 'web', (f) => (f.time = NOW + 10), 'warn', /timedatectl/],
    ['time', 'web', (f) => (f.time = NOW - 120), 'fail', /timedatectl/],
    ['sshd', 'web', (f) => (f.sshd = sshdT({passwordauthentication: 'yes'})), 'fail', /sshd_config/],
    ['sshd', 'web', (f) => (f.sshd = sshdT({permitrootlogin: 'yes'})), 'fail', /sshd_config/],
    ['sshd', 'web', (f) => (f.sshd = sshdT({ciphers: 'aes128-cbc,' + SSHD_ALGORITHMS.ciphers.join(',')})), 'fail', /sshd_config/],
    ['sshd', 'web', (f) => ((f.sshd = new Map()), (f.sshdError = 'bad line 3')), 'fail', /sshd -t/],
    ['firewall', 'web', (f) => f.services.set('nftables', 'inactive'), 'fail', /infra provision/],
    ['firewall', 'web', (f) => ((f.nftFile = 'table inet filter { chain x { } }\n'), (f.nftFileSha = sha256(f.nftFile))), 'fail', /infra provision/],
    ['firewall', 'web', (f) => (f.nftLive = RULES.replace('\t}\n}', '\t\ttcp dport 8080 accept\n\t}\n}')), 'fail', /infra exec web1 -- systemctl reload nftables/],
    ['disk', 'web', (f) => (f.diskUsedPercent = 85), 'warn', /free space/],
    ['disk', 'web', (f) => (f.diskUsedPercent = 95), 'fail', /free space/],
    ['memory', 'web', (f) => (f.memAvailableKb = 50_000), 'warn', /memory/],
    ['memory', 'web', (f) => (f.memAvailableKb = 10_000), 'fail', /memory/],
    ['load', 'web', (f) => (f.load1 = 5), 'warn', /top/],
    ['load', 'web', (f) => (f.load1 = 13), 'fail', /top/],
    ['unattended-upgrades', 'web', (f) => (f.unattendedPeriodic = '0'), 'fail', /infra provision/],
    ['unattended-upgrades', 'web', (f) => (f.unattendedInstalled = false), 'fail', /infra provision/],
    ['haproxy', 'bastion', (f) => f.services.set('haproxy', 'inactive'), 'fail', /systemctl start haproxy/],
    ['haproxy-config', 'bastion', (f) => (f.haproxyCheck = {code: 1, output: '[ALERT] parsing error'}), 'fail', /infra provision/],
    ['backends', 'bastion', (f) => (f.stat = [{backend: 'web', server: 'web1', status: 'DOWN'}, {backend: 'web', server: 'web2', status: 'MAINT'}]), 'fail', /web1/],
    ['backends', 'bastion', (f) => (f.stat = [{backend: 'web', server: 'web1', status: 'UP'}]), 'fail', /infra provision/],
    ['backends', 'bastion', (f) => ((f.stat = undefined), (f.statError = 'No such file')), 'fail', /infra provision/],
    ['tls-expiry', 'bastion', (f) => (f.cert = {...f.cert!, notAfter: new Date((NOW + 20 * 86_400) * 1000).toUTCString()}), 'warn', /renew/],
    ['tls-expiry', 'bastion', (f) => (f.cert = {...f.cert!, notAfter: new Date((NOW + 3 * 86_400) * 1000).toUTCString()}), 'fail', /renew/],
    ['tls-san', 'bastion', (f) => (f.cert = {...f.cert!, san: ['example.test']}), 'fail', /tls/],
    ['agents', 'bastion', (f) => f.paths.set(AGENT_PATHS.cron, {exists: false, executable: false}), 'fail', /infra provision/],
    ['agents', 'bastion', (f) => f.paths.set(AGENT_PATHS.scaler, {exists: true, executable: false, mtime: NOW, content: '#'}), 'fail', /infra provision/],
    ['agents', 'bastion', (f) => f.paths.set(AGENT_PATHS.scalerHeartbeat, {exists: true, executable: false, content: String(NOW - 600)}), 'warn', /cron/],
    ['agents', 'bastion', (f) => f.paths.set(AGENT_PATHS.scalerHeartbeat, {exists: true, executable: false, content: String(NOW - 3600)}), 'fail', /cron/],
    ['agents', 'bastion', (f) => f.paths.set(AGENT_PATHS.healthcheckHeartbeat, {exists: false, executable: false}), 'fail', /cron/],
    ['scaler-paused', 'bastion', (f) => f.paths.set(AGENT_PATHS.scalerPaused, {exists: true, executable: false, content: String(NOW - 7200)}), 'warn', /infra scale resume/],
    ['no-public-address', 'web', (f) => f.addresses.push({iface: 'eth0', address: '198.51.100.77', prefix: 32}), 'fail', /ip addr del 198.51.100.77\/32 dev eth0/],
    ['web-service', 'web', (f) => f.services.set('nginx', 'inactive'), 'fail', /systemctl start nginx/],
    ['web-health', 'web', (f) => (f.healthCode = 502), 'fail', /curl/],
  ]
  it.each(cases)('%s (%s) → %s', (id, role, change, status, fix) => {
    const v = judge(id, broken(role, change), {host: role === 'bastion' ? bastionHost : web1, bastion: healthy('bastion')})
    expect(v.status).toBe(status)
    expect(v.fix).toMatch(fix)
    expect(v.value).not.toBe('')
  })

  it('shows firewall drift as a diff naming the extra rule', () => {
    const v = judge('firewall', broken('web', (f) => (f.nftLive = RULES.replace('\t}\n}', '\t\ttcp dport 8080 accept\n\t}\n}'))), {host: web1})
    expect(v.detail).toMatch(/^\+\s+tcp dport 8080 accept$/m)
  })

  it('a standby node in MAINT may have nginx stopped; its health check is skipped', () => {
    const f = broken('web', (x) => x.services.set('nginx', 'inactive'))
    expect(judge('web-service', f, {host: web2, bastion: healthy('bastion')}).status).toBe('pass')
    expect(judge('web-health', f, {host: web2, bastion: healthy('bastion')}).status).toBe('skip')
  })

  it('a missing heartbeat just after the agents were installed is not a failure', () => {
    const f = broken('bastion', (x) => {
      x.paths.set(AGENT_PATHS.cron, {exists: true, executable: false, mtime: NOW - 30, content: '#'})
      x.paths.set(AGENT_PATHS.scalerHeartbeat, {exists: false, executable: false})
    })
    expect(judge('agents', f)).toMatchObject({status: 'pass'})
  })

  it('a wildcard SAN covers one label only', () => {
    const withSan = (san: string[]) => broken('bastion', (f) => (f.cert = {...f.cert!, san}))
    expect(judge('tls-san', withSan(['example.test', '*.example.test'])).status).toBe('pass')
    expect(judge('tls-san', withSan(['*.example.test'])).value).toBe('*.example.test')
    expect(judge('tls-san', withSan(['*.example.test'])).message).toContain('example.test')
    expect(judge('tls-san', withSan(['example.test', '*.test'])).status).toBe('fail')
  })

  it('backends are skipped, not failed, when HAProxy is down (one root cause, one ✖)', () => {
    expect(judge('backends', broken('bastion', (f) => f.services.set('haproxy', 'failed'))).status).toBe('skip')
  })
})

describe('facts', () => {
  it('the script is valid bash for both roles', () => {
    for (const role of ['bastion', 'web'] as const) {
      const script = doctorScript({role, desired: desired(role === 'bastion' ? bastionHost : web1), health: {address: '10.42.0.11', port: 80, path: '/healthz'}})
      execFileSync('bash', ['-n'], {input: script})
    }
  })

  it('running the bastion script on this machine (Debian 12) yields parseable facts', () => {
    const out = execFileSync('bash', ['-s'], {input: doctorScript({role: 'bastion', desired: {files: []}}), encoding: 'utf8', timeout: 15_000})
    const f = parseDoctorFacts(out)
    expect(f.os).toMatchObject({id: 'debian', versionId: '12'})
    expect(Math.abs(f.time - Date.now() / 1000)).toBeLessThan(5)
    expect(f.sshd.get('passwordauthentication')).toMatch(/^(yes|no)$/)
    expect(f.memTotalKb).toBeGreaterThan(0)
    expect(f.cpus).toBeGreaterThan(0)
    expect(f.paths.get(AGENT_PATHS.cron)).toBeDefined()
  })

  it('parses show stat CSV, keeping servers only', () => {
    const csv = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\nweb,FRONTEND,,,0,0,0,0,0,0,0,0,0,,,,,OPEN\nweb,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP\nweb,web2,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT\nweb,BACKEND,0,0,0,0,0,0,0,0,0,0,,0,0,0,0,UP\n'
    expect(parseShowStat(csv)).toEqual([
      {backend: 'web', server: 'web1', status: 'UP'},
      {backend: 'web', server: 'web2', status: 'MAINT'},
    ])
    // with the check_status column (HAProxy 2.6 prints it), the last check's result comes along
    expect(parseShowStat('# pxname,svname,status,check_status\nweb,web1,DOWN,L7STS\n')).toEqual([{backend: 'web', server: 'web1', status: 'DOWN', check: 'L7STS'}])
  })

  it('parses openssl x509 end date and DNS names', () => {
    const c = parseCert('notAfter=Nov 22 03:00:00 2027 GMT\nX509v3 Subject Alternative Name: \n    DNS:example.test, DNS:www.example.test, IP Address:1.2.3.4\n')
    expect(c).toEqual({notAfter: 'Nov 22 03:00:00 2027 GMT', san: ['example.test', 'www.example.test']})
  })

  it('normalizes away elements of dynamic sets only', () => {
    const rs = (el: string) => `table inet filter {\n\tset rate {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n${el}\t}\n\tset admins {\n\t\ttype ipv4_addr\n\t\telements = { 1.2.3.4 }\n\t}\n}\n`
    expect(normalizeRuleset(rs('\t\telements = { 198.51.100.1 limit rate over 60/minute burst 30 packets }\n'))).toBe(normalizeRuleset(rs('')))
    expect(normalizeRuleset(rs(''))).toContain('elements = { 1.2.3.4 }')
    expect(normalizeRuleset(rs('').replace('1.2.3.4', '5.6.7.8'))).not.toBe(normalizeRuleset(rs('')))
  })
})

describe('external checks', () => {
  const good: ExternalFacts = {
    httpRoot: {status: 301, headers: {location: 'https://example.test/'}},
    httpsRoot: {status: 200, headers: {'strict-transport-security': 'max-age=63072000; includeSubDomains'}},
    aliases: [{name: 'www.example.test', answer: {status: 301, headers: {location: 'https://example.test/'}}}],
    health: {status: 200, headers: {'x-served-by': 'web1'}},
    tls: {tls1: false, tls1_1: false, tls1_2: true},
    private: [{node: 'web1', address: '10.42.0.11', route: 'no route', viaBastion: false, open: []}],
  }
  const run = (id: string, f: ExternalFacts) => EXTERNAL_CHECKS.find((c) => c.id === id)!.run(f, inventory)

  it.each(EXTERNAL_CHECKS.map((c) => c.id))('%s passes on a healthy edge', (id) => {
    expect(run(id, good).status).toBe('pass')
  })

  it.each([
    ['http-redirect', {...good, httpRoot: {status: 200, headers: {}}}],
    ['alias-redirect', {...good, aliases: [{name: 'www.example.test', answer: {status: 200, headers: {}}}]}],
    ['tls-versions', {...good, tls: {tls1: false, tls1_1: true, tls1_2: true}}],
    ['tls-versions', {...good, tls: {tls1: false, tls1_1: false, tls1_2: false}}],
    ['hsts', {...good, httpsRoot: {status: 200, headers: {}}}],
    ['edge-health', {...good, health: {status: 503, headers: {}}}],
    ['private-unreachable', {...good, private: [{node: 'web1', address: '10.42.0.11', route: 'via', viaBastion: true, open: [22]}]}],
  ] as [string, ExternalFacts][])('%s fails with a fix', (id, f) => {
    const v = run(id, f)
    expect(v.status).toBe('fail')
    expect(v.fix).toMatch(/infra provision|backends/)
  })

  it('parses curl -D headers', () => {
    expect(parseHeaders('HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.test/\r\ncontent-length: 0\r\n\r\n')).toEqual({
      status: 301,
      headers: {location: 'https://example.test/', 'content-length': '0'},
    })
  })
})

describe('selection, exit code and report', () => {
  it('unknown check ids and hosts are usage errors listing the valid ones', () => {
    const hosts = hostsOf(inventory)
    expect(() => validateSelection(hosts, {checks: ['nope']})).toThrow(/--check nope/)
    try {
      validateSelection(hosts, {checks: ['nope']})
    } catch (error) {
      expect((error as {exitCode: number; hint: string}).exitCode).toBe(2)
      expect((error as {hint: string}).hint).toContain(CHECK_IDS.join(', '))
    }
    expect(() => validateSelection(hosts, {hosts: ['web9']})).toThrow(/web9/)
    expect(() => validateSelection(hosts, {hosts: ['web1', 'internet'], checks: ['sshd', 'hsts']})).not.toThrow()
  })

  it('exit code: 1 on a failure, warnings fail only with --strict', () => {
    const row = (status: 'pass' | 'warn' | 'fail') => ({id: 'x', host: 'h', status, value: '', message: '', fix: ''})
    expect(doctorExitCode({summary: summarize([row('pass'), row('warn')])})).toBe(0)
    expect(doctorExitCode({summary: summarize([row('pass'), row('warn')])}, true)).toBe(1)
    expect(doctorExitCode({summary: summarize([row('fail')])})).toBe(0 + 1)
  })

  it('renders marks, values, one fix line per ⚠/✖ and a summary', () => {
    const text = renderReport({
      checks: [
        {id: 'sshd', host: 'web1', status: 'fail', value: 'passwordauthentication yes', message: 'bad', fix: 'remove it'},
        {id: 'disk', host: 'web1', status: 'warn', value: '85% used', message: 'full', fix: 'free space'},
        {id: 'os', host: 'web1', status: 'pass', value: 'Debian 12', message: 'ok', fix: ''},
      ],
      summary: {pass: 1, warn: 1, fail: 1, skip: 0},
      durationMs: 1234,
    })
    expect(text).toMatch(/^web1$/m)
    expect(text).toMatch(/✖ sshd\s+passwordauthentication yes — bad\n\s+→ remove it/)
    expect(text).toMatch(/⚠ disk\s+85% used — full\n\s+→ free space/)
    expect(text).toMatch(/✔ os\s+Debian 12\n/)
    expect(text).toMatch(/unhealthy: 1 passed, 1 warning, 1 failed, 0 skipped in 1\.2 s/)
  })
})
