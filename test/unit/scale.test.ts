/** `infra scale`: the command lines it runs on the bastion, the min/max check, the status table. */
import {describe, expect, it} from 'vitest'

import {checkTarget, renderStatus, scalerCommand, type ScaleStatus} from '../../src/roles/scaler.js'
import type {LoadedInventory} from '../../src/inventory/load.js'
import {inventory} from './render-helpers.js'

const loaded: LoadedInventory = {
  path: '/fleet/infra.yaml',
  dir: '/fleet',
  knownHostsPath: '/fleet/known_hosts',
  inventory: inventory({
    domain: 'example.com',
    bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
    web: {nodes: [{name: 'web1', address: '10.10.0.11'}, {name: 'web2', address: '10.10.0.12', standby: true}, {name: 'web3', address: '10.10.0.13', standby: true}]},
    scaling: {min: 1, max: 2},
  }),
}

describe('infra scale', () => {
  it('runs the scaler verbs on the bastion', () => {
    expect(scalerCommand({verb: 'status'}, true)).toBe('/usr/local/sbin/infra-scaler status --json')
    expect(scalerCommand({verb: 'status'})).toBe('/usr/local/sbin/infra-scaler status')
    expect(scalerCommand({verb: 'up'})).toBe('/usr/local/sbin/infra-scaler up')
    expect(scalerCommand({verb: 'down'})).toBe('/usr/local/sbin/infra-scaler down')
    expect(scalerCommand({verb: 'to', count: 2})).toBe('/usr/local/sbin/infra-scaler to 2')
    expect(scalerCommand({verb: 'pause'})).toBe('/usr/local/sbin/infra-scaler pause')
    expect(scalerCommand({verb: 'resume'})).toBe('/usr/local/sbin/infra-scaler resume')
  })

  it('refuses a count beyond scaling.min/max before touching a host (exit 2)', () => {
    expect(() => checkTarget(loaded, 1)).not.toThrow()
    expect(() => checkTarget(loaded, 2)).not.toThrow()
    for (const n of [0, 3]) {
      try {
        checkTarget(loaded, n)
        expect.unreachable()
      } catch (error) {
        expect((error as {exitCode: number}).exitCode).toBe(2)
        expect((error as Error).message).toBe(`--to ${n}: the number of active web nodes must stay within scaling.min..scaling.max (1..2) of /fleet/infra.yaml`)
      }
    }
  })

  it('renders the status as a table with the last decisions', () => {
    const s: ScaleStatus = {
      paused: null,
      min: 1,
      max: 2,
      cpuPercent: 80,
      heartbeat: 1_800_000_000,
      nodes: [
        {name: 'web1', state: 'active', haproxy: 'UP', cpu: 91, sessions: 4, standbyInInventory: false},
        {name: 'web2', state: 'failed', haproxy: 'MAINT', cpu: null, sessions: 0, standbyInInventory: true},
      ],
      decisions: [{time: 1_800_000_000, decision: 'up', reason: 'average 91% >= 80% for 300s over 1 node(s)'}],
    }
    const text = renderStatus(s)
    expect(text).toContain('scaler: running')
    expect(text).toMatch(/^web1\s+active\s+UP\s+91%\s+4$/m)
    expect(text).toMatch(/^web2\s+failed\s+MAINT\s+-\s+0$/m)
    expect(text).toContain('2027-01-15T08:00:00.000Z up: average 91% >= 80% for 300s over 1 node(s)')
    expect(renderStatus({...s, paused: 1_800_000_000})).toMatch(/^scaler: PAUSED since 2027-01-15T08:00:00\.000Z/)
  })
})
