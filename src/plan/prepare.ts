/**
 * Everything provision computes on this machine before touching a host: TLS material, error-page
 * and template overrides, and the desired state of every host. Any problem here is a ConfigError
 * (exit 2) raised before a single SSH connection is opened.
 */
import {readdir, readFile} from 'node:fs/promises'
import path from 'node:path'

import {hostsOf} from '../inventory/schema.js'
import type {LoadedInventory} from '../inventory/load.js'
import {ConfigError} from '../lib/errors.js'
import type {PreparedHost} from './provision.js'

/** Error pages a user overrides: `errors/<code>.http` (a whole raw HTTP response) beside the inventory. */
export async function readErrorPageOverrides(loaded: LoadedInventory): Promise<Record<number, string>> {
  const dir = path.join(loaded.dir, 'errors')
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return {}
  }
  const out: Record<number, string> = {}
  for (const name of names) {
    const m = /^(\d{3})\.http$/.exec(name)
    if (!m) continue
    out[Number(m[1])] = await readFile(path.join(dir, name), 'utf8')
  }
  return out
}

export async function prepareHosts(loaded: LoadedInventory): Promise<PreparedHost[]> {
  const [{ensureTls, haproxyPem}, {desiredState}, {agentKeyCommand, parseAgentPublicKey}] = await Promise.all([
    import('../tls/ensure.js'),
    import('../roles/render.js'),
    import('../roles/agents.js'),
  ])
  const tls = await ensureTls(loaded)
  const errorPageOverrides = await readErrorPageOverrides(loaded)
  const templateOverridesDir = path.join(loaded.dir, 'templates')
  const tlsPem = haproxyPem(tls)
  // JWT key or HMAC secret for inventory `auth` (src/edge/jwt.ts); {} when auth is off.
  const authMaterial = await (await import('../edge/jwt.js')).readAuthMaterial(loaded)
  const passwordEnv = loaded.inventory.alerts.smtp?.passwordEnv
  const smtpPassword = passwordEnv ? process.env[passwordEnv] : undefined
  const ctx = {inventory: loaded.inventory, tlsPem, errorPageOverrides, templateOverridesDir, authMaterial, ...(smtpPassword ? {smtpPassword} : {})}
  try {
    return hostsOf(loaded.inventory).map((spec) => ({
      spec,
      desired: desiredState(ctx, spec),
      // The agents' key is created on the bastion; web nodes authorize its public key (src/roles/agents.ts).
      ...(spec.role === 'bastion'
        ? {bastionFact: agentKeyCommand}
        : {withBastionFact: (out: string) => desiredState({...ctx, agentPublicKey: parseAgentPublicKey(out)}, spec)}),
    }))
  } catch (error) {
    throw new ConfigError(`rendering the configuration failed: ${(error as Error).message}`, {
      hint: `Check your overrides in ${path.join(loaded.dir, 'templates')} and ${path.join(loaded.dir, 'errors')}.`,
    })
  }
}
