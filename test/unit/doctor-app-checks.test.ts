/**
 * doctor with an app (src/checks/app-checks.ts): the registry answers and asks for credentials,
 * each node has the current release, its container is running, healthy and not restarting in a
 * loop, Docker has room for images. Fixed facts, no SSH; the fact lines are parsed as the script
 * prints them, and the script itself is run through `bash -n`.
 */
import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'

import {type DoctorFacts, doctorScript, parseDoctorFacts} from '../../src/checks/facts.js'
import {checksFor, runHostChecks} from '../../src/checks/host-checks.js'
import {DEFAULT_THRESHOLDS, type HostCheckContext, type Verdict} from '../../src/checks/types.js'
import {inventorySchema} from '../../src/inventory/schema.js'
import {BASTION, DOCTOR_NOW, desiredState, FLEET, healthyDoctorFacts, WEB1, WEB2} from './fixtures/facts.js'

const APP_FLEET = inventorySchema.parse({...FLEET, app: {image: 'shop'}})
const b64 = (s: string) => Buffer.from(s).toString('base64')
const history = (current: string) => JSON.stringify({releases: [{id: current, state: 'current'}, {id: 'v1', state: 'previous'}]})

function bastionFacts(over: (f: DoctorFacts) => void = () => {}): DoctorFacts {
  const f = healthyDoctorFacts('bastion')
  f.services.set('docker-registry', 'active')
  f.app = {current: 'v2', registryCode: 401}
  over(f)
  return f
}

function webFacts(over: (f: DoctorFacts) => void = () => {}): DoctorFacts {
  const f = healthyDoctorFacts('web')
  f.app = {status: {release: 'v2', state: 'running', health: 'ok', restarts: 0, exit: 0}, dockerDisk: {usedPercent: 40, availKb: 8 * 1024 * 1024}}
  over(f)
  return f
}

function judge(id: string, facts: DoctorFacts, over: Partial<HostCheckContext> = {}): Verdict {
  const host = over.host ?? (id === 'registry' ? BASTION : WEB1)
  const ctx: HostCheckContext = {inventory: APP_FLEET, host, desired: desiredState(host), facts, localTime: DOCTOR_NOW, thresholds: DEFAULT_THRESHOLDS, bastion: bastionFacts(), ...over}
  return runHostChecks(ctx, new Set([id]))[0].verdict
}

describe('app checks', () => {
  it('are run only for an inventory with an app', () => {
    const ids = (inventory: typeof FLEET, host = WEB1) => checksFor({inventory, host}).map((c) => c.id)
    expect(ids(FLEET)).not.toContain('app-release')
    expect(ids(APP_FLEET)).toEqual(expect.arrayContaining(['app-release', 'app-container', 'app-disk']))
    expect(ids(APP_FLEET, BASTION)).toContain('registry')
    expect(ids(FLEET, BASTION)).not.toContain('registry')
  })

  it.each(['registry', 'app-release', 'app-container', 'app-disk'])('%s passes on a healthy fleet', (id) => {
    expect(judge(id, id === 'registry' ? bastionFacts() : webFacts())).toMatchObject({status: 'pass', fix: ''})
  })

  it.each<[string, string, DoctorFacts, Partial<HostCheckContext>, 'warn' | 'fail', RegExp]>([
    ['registry down', 'registry', bastionFacts((f) => f.services.set('docker-registry', 'failed')), {}, 'fail', /does not answer/],
    ['registry without auth', 'registry', bastionFacts((f) => (f.app!.registryCode = 200)), {}, 'fail', /without credentials/],
    ['an active node on an older release', 'app-release', webFacts((f) => (f.app!.status!.release = 'v1')), {}, 'fail', /serves v1, but the current release is v2/],
    ['a standby on an older release', 'app-release', webFacts((f) => (f.app!.status!.release = 'v1')), {host: WEB2}, 'warn', /standby: has v1, not the current v2/],
    ['infra-app missing', 'app-release', webFacts((f) => (f.app = {})), {}, 'fail', /infra-app is missing/],
    ['nothing deployed yet', 'app-release', webFacts((f) => (f.app!.status!.release = null)), {bastion: bastionFacts((f) => (f.app!.current = null))}, 'warn', /no release has been deployed yet/],
    ['a container restarting in a loop', 'app-container', webFacts((f) => Object.assign(f.app!.status!, {restarts: 7, exit: 137})), {}, 'fail', /restarting in a loop \(7 restarts, last exit code 137\)/],
    ['a stopped container on a serving node', 'app-container', webFacts((f) => Object.assign(f.app!.status!, {state: 'exited', health: 'failed', exit: 1})), {}, 'fail', /the container is exited \(exit code 1\)/],
    ['an unhealthy container', 'app-container', webFacts((f) => (f.app!.status!.health = 'failed')), {}, 'fail', /does not answer its health path/],
    ['Docker\'s disk nearly full', 'app-disk', webFacts((f) => (f.app!.dockerDisk = {usedPercent: 85, availKb: 1024 * 1024})), {}, 'warn', /little room/],
    ['Docker\'s disk full', 'app-disk', webFacts((f) => (f.app!.dockerDisk = {usedPercent: 95, availKb: 1024})), {}, 'fail', /may not fit/],
  ])('%s: %s is %s', (_what, id, facts, over, status, message) => {
    const v = judge(id, facts, over)
    expect(v.status).toBe(status)
    expect(v.message).toMatch(message)
    expect(v.fix).not.toBe('')
  })

  it('a standby whose created container waits passes', () => {
    const f = webFacts((x) => Object.assign(x.app!.status!, {state: 'created', health: 'failed'}))
    expect(judge('app-container', f, {host: WEB2})).toMatchObject({status: 'pass', message: /standby/})
  })
})

describe('app facts', () => {
  it('parse the lines the script prints', () => {
    const out = [
      '@@appstatus\trelease=v2-2 state=running health=ok restarts=1 exit=0',
      '@@dockerdisk\t63\t1048576',
      '@@registry\t401',
      `@@releases\t${b64(history('v2-2'))}`,
    ].join('\n')
    expect(parseDoctorFacts(out).app).toEqual({
      status: {release: 'v2-2', state: 'running', health: 'ok', restarts: 1, exit: 0},
      dockerDisk: {usedPercent: 63, availKb: 1_048_576},
      registryCode: 401,
      current: 'v2-2',
    })
  })

  it('an empty history means no current release; a broken one leaves it unknown', () => {
    expect(parseDoctorFacts('@@releases\t\n').app?.current).toBeNull()
    expect(parseDoctorFacts(`@@releases\t${b64('{not json')}\n`).app?.current).toBeUndefined()
  })

  it.each(['bastion', 'web'] as const)('the %s script with an app is valid bash and asks for the app facts', (role) => {
    const script = doctorScript({role, desired: {files: []}, health: {address: '10.42.0.11', port: 80, path: '/healthz'}, app: {registryAddress: '10.42.0.1:5000'}})
    execFileSync('bash', ['-n'], {input: script})
    expect(script).toContain(role === 'bastion' ? '@@registry' : '@@appstatus')
    expect(doctorScript({role, desired: {files: []}})).not.toMatch(/@@registry|@@appstatus/)
  })
})
