/**
 * What `infra deploy` checks on this machine before it touches a host: the version as an image
 * tag, app.registry's credentials from the environment. Each problem is exit 2 with the key or
 * flag and the fix, and no connection is opened (the inventory's hosts are documentation
 * addresses that nothing would answer).
 */
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import Deploy from '../../src/commands/deploy.js'
import {loadInventory} from '../../src/inventory/load.js'
import {readRegistryLogin} from '../../src/tasks/deploy/inputs.js'
import {runCommand} from './command-helpers.js'

const dir = mkdtempSync(path.join(tmpdir(), 'infra-deploy-inputs-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

function inventoryFile(name: string, app: string): string {
  const file = path.join(dir, name)
  writeFileSync(
    file,
    `domain: example.com
bastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}
web:
  nodes: [{name: web1, address: 10.10.0.11}]
app:
${app}`,
  )
  chmodSync(file, 0o600)
  return file
}

describe('infra deploy: local checks (exit 2, nothing touched)', () => {
  const fleet = inventoryFile('fleet.yaml', '  image: shop\n')

  it.each(['feature/x', 'v2:latest', '.hidden', 'x'.repeat(129), 'v 2'])('refuses --version %j, which cannot be an image tag', async (version) => {
    const r = await runCommand(Deploy, [`--version=${version}`, '--yes', '-c', fleet])
    expect(r.code).toBe(2)
    expect(r.err).toContain('cannot be an image tag')
    expect(r.err).toMatch(/letters, digits, _ \. -/)
  })

  it('refuses --build and --archive together, and nothing to deploy', async () => {
    const both = await runCommand(Deploy, ['--build', dir, '--archive', 'x.tar', '--yes', '-c', fleet])
    expect(both.code).toBe(2)
    expect(both.err).toMatch(/--build.*cannot also be provided when using --archive|--build and --archive cannot be used together/)
    const none = await runCommand(Deploy, ['--yes', '-c', fleet])
    expect(none.code).toBe(2)
    expect(none.err).toContain('nothing to deploy')
  })
})

describe('app.registry credentials', () => {
  const outside = inventoryFile('outside.yaml', '  image: ghcr.io/acme/shop\n  registry: {usernameEnv: REG_USER, passwordEnv: REG_TOKEN}\n')

  it('come from the environment, with the registry host of app.image', async () => {
    const loaded = await loadInventory(outside)
    expect(readRegistryLogin(loaded, {REG_USER: 'ci-bot', REG_TOKEN: 'tok-123'})).toEqual({registry: 'ghcr.io', user: 'ci-bot', password: 'tok-123'})
    expect(readRegistryLogin(await loadInventory(inventoryFile('plain.yaml', '  image: shop\n')), {})).toBeUndefined()
  })

  it('missing ones stop the deploy before any host (exit 2), naming the variables, never a value', async () => {
    const loaded = await loadInventory(outside)
    expect(() => readRegistryLogin(loaded, {REG_USER: 'ci-bot'})).toThrow(/app\.registry: REG_TOKEN is not set in the environment/)
    const prev = {u: process.env.REG_USER, t: process.env.REG_TOKEN}
    delete process.env.REG_USER
    delete process.env.REG_TOKEN
    try {
      const r = await runCommand(Deploy, ['--version', 'v1', '--yes', '-c', outside])
      expect(r.code).toBe(2)
      expect(r.err).toContain('REG_USER and REG_TOKEN are not set in the environment')
    } finally {
      if (prev.u !== undefined) process.env.REG_USER = prev.u
      if (prev.t !== undefined) process.env.REG_TOKEN = prev.t
    }
  })
})
