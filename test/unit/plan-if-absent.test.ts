/**
 * `DesiredFile.ifAbsent` (runtime data such as the bastion's ban list): created when missing,
 * never overwritten once there, but its mode and owner are still kept right.
 */
import {describe, expect, it} from 'vitest'

import {sha256} from '../../src/host/hash.js'
import {planHost} from '../../src/plan/diff.js'
import type {FileFact, HostFacts} from '../../src/plan/facts.js'
import type {DesiredFile, HostDesiredState} from '../../src/plan/types.js'

const host = {name: 'bastion', role: 'bastion' as const, address: '203.0.113.10', privateAddress: '10.10.0.1', standby: false}
const seed: DesiredFile = {path: '/etc/haproxy/infra/bans.lst', content: '# seed\n', mode: 0o644, owner: 'root', group: 'root', ifAbsent: true, notify: [{service: 'haproxy', action: 'reload'}]}

function facts(file?: Partial<FileFact>): HostFacts {
  const files = new Map<string, FileFact>()
  files.set(seed.path, {path: seed.path, exists: false, ...file})
  return {
    os: {id: 'debian', versionId: '12', prettyName: ''},
    hostname: 'bastion',
    addresses: [],
    installed: new Set(),
    files,
    services: new Map(),
    present: new Set(),
    time: 0,
    provisioned: true,
    pending: new Map(),
  }
}

const desired = (f: DesiredFile): HostDesiredState => ({host, packages: [], files: [f], services: []})

describe('ifAbsent files', () => {
  it('are created when missing', () => {
    expect(planHost(desired(seed), facts()).files.map((c) => c.kind)).toEqual(['create'])
  })

  it('are left alone when present with other content (no update, no reload)', () => {
    const plan = planHost(desired(seed), facts({exists: true, sha256: sha256('203.0.113.9\n'), mode: 0o644, owner: 'root', group: 'root'}))
    expect(plan.files).toEqual([])
    expect(plan.services).toEqual([])
  })

  it('get their mode and owner fixed', () => {
    const plan = planHost(desired(seed), facts({exists: true, sha256: sha256('x\n'), mode: 0o600, owner: 'root', group: 'root'}))
    expect(plan.files.map((c) => c.kind)).toEqual(['mode'])
  })

  it('differ from a normal file, which is updated', () => {
    const normal = {...seed, ifAbsent: undefined}
    const plan = planHost(desired(normal), facts({exists: true, sha256: sha256('203.0.113.9\n'), mode: 0o644, owner: 'root', group: 'root'}))
    expect(plan.files.map((c) => c.kind)).toEqual(['update'])
  })
})
