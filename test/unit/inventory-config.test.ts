/**
 * The configuration object (src/inventory/config.ts): the facts derived from an inventory, once
 * per inventory value, frozen; and the loaded inventory itself deep-frozen.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

import {configOf, nodeMetricsPath} from '../../src/inventory/config.js'
import {loadInventory} from '../../src/inventory/load.js'
import {inventorySchema, type InventoryInput} from '../../src/inventory/schema.js'
import {DEFAULT_PATHS} from '../../src/host/paths.js'

const BASE: InventoryInput = {
  domain: 'Example.COM',
  bastion: {name: 'edge', publicAddress: '203.0.113.10', privateAddress: '10.10.0.1', adminAllow: ['198.51.100.7', '192.0.2.0/24', '198.51.100.7']},
  web: {timeout: '45s', healthCheck: {path: '/status/health', interval: '5s'}, nodes: [{name: 'web1', address: '10.10.0.11'}, {name: 'web2', address: '10.10.0.12', standby: true}]},
  scaling: {sustainFor: '2m', recheckEvery: '1h'},
  healing: {every: '30s'},
  limits: {window: '20s', banFor: '2h'},
  cors: {maxAge: '1m'},
  ssh: {connectTimeout: '15s'},
}

describe('configOf', () => {
  const inv = inventorySchema.parse(BASE)

  it('has every duration of the inventory in milliseconds', () => {
    expect(configOf(inv).ms).toEqual({
      sshConnectTimeout: 15_000,
      webTimeout: 45_000,
      healthInterval: 5000,
      scalingSustainFor: 120_000,
      scalingRecheckEvery: 3_600_000,
      healingEvery: 30_000,
      limitsWindow: 20_000,
      limitsBanFor: 7_200_000,
      corsMaxAge: 60_000,
      appHealthInterval: 1000,
      deployTimeout: 60_000,
      deployDrain: 30_000,
      deployLockStale: 1_800_000,
    })
  })

  it('answers the derived questions: health path, TLS PEM, private network, stats address, metrics targets, admin allow-lists', () => {
    const c = configOf(inv)
    expect(c.healthPath).toBe('/status/health')
    expect(c.tlsPemFile).toBe('example.com.pem')
    expect(c.tlsPemPath()).toBe(`${DEFAULT_PATHS.haproxyCertDir}/example.com.pem`)
    expect(c.tlsPemPath({haproxyCertDir: '/tmp/x/certs'})).toBe('/tmp/x/certs/example.com.pem')
    expect(c.privateNetwork).toBe('10.10.0.0/24')
    expect(c.statsAddress).toBe('10.10.0.1:8404')
    expect(c.metricsTargets).toEqual([
      {name: 'edge', role: 'bastion', address: '127.0.0.1:9100', path: nodeMetricsPath('edge')},
      {name: 'web1', role: 'web', address: '10.10.0.11:9100', path: '/nodes/web1/metrics'},
      {name: 'web2', role: 'web', address: '10.10.0.12:9100', path: '/nodes/web2/metrics'},
    ])
    expect(c.adminAllow).toEqual({v4: ['198.51.100.7', '192.0.2.0/24'], v6: []})
  })

  it('clears the host bits of a private network given by hand', () => {
    const byHand = {...inv, bastion: {...inv.bastion, privateNetwork: '10.20.3.4/16'}}
    expect(configOf(byHand).privateNetwork).toBe('10.20.0.0/16')
  })

  it('is computed once per inventory value, and frozen', () => {
    const c = configOf(inv)
    expect(configOf(inv)).toBe(c)
    expect(configOf({...inv})).not.toBe(c)
    for (const x of [c, c.ms, c.metricsTargets, c.metricsTargets[0], c.adminAllow, c.adminAllow.v4]) expect(Object.isFrozen(x)).toBe(true)
  })

  it('refuses an inventory made by hand that breaks a schema rule, naming the key', () => {
    const bad = {...inv, web: {...inv.web, healthCheck: {...inv.web.healthCheck, path: 'healthz'}}}
    expect(() => configOf(bad)).toThrow(/^web\.healthCheck\.path: "healthz" is not a plain URL path/)
  })
})

describe('loadInventory', () => {
  let dir: string | undefined
  afterAll(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('returns the inventory deep-frozen', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'infra-config-'))
    const file = path.join(dir, 'infra.yaml')
    await writeFile(file, 'domain: example.com\nbastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}\nweb:\n  nodes: [{name: web1, address: 10.10.0.11}]\n')
    const {inventory} = await loadInventory(file, {checkFiles: false})
    for (const x of [inventory, inventory.bastion, inventory.web, inventory.web.nodes, inventory.web.nodes[0], inventory.web.healthCheck, inventory.aliases, inventory.cors.methods]) {
      expect(Object.isFrozen(x)).toBe(true)
    }
    expect(() => {
      ;(inventory.web.nodes as unknown[]).push({name: 'web2', address: '10.10.0.12'})
    }).toThrow(TypeError)
    expect(configOf(inventory).privateNetwork).toBe('10.10.0.0/24')
  })
})
