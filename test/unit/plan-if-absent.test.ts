/**
 * `DesiredFile.ifAbsent` (runtime data such as the bastion's ban list): created when missing,
 * never overwritten once there, but its mode and owner are still kept right.
 */
import {describe, expect, it} from 'vitest'

import {sha256} from '../../src/host/hash.js'
import {planHost} from '../../src/plan/diff.js'
import type {FileFact, HostFacts} from '../../src/plan/facts.js'
import type {DesiredFile, HostDesiredState} from '../../src/plan/types.js'
import {BASTION, desiredFile, desiredState, fileFacts, hostFacts} from './fixtures/facts.js'

const seed = desiredFile('/etc/haproxy/infra/bans.lst', '# seed\n', {ifAbsent: true, notify: [{service: 'haproxy', action: 'reload'}]})

function facts(file?: Partial<FileFact>): HostFacts {
  return hostFacts({hostname: 'bastion', files: fileFacts({path: seed.path, exists: false, ...file})})
}

const desired = (f: DesiredFile): HostDesiredState => desiredState(BASTION, {files: [f]})

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
