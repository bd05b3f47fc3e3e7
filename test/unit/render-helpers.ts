/**
 * Shared by the render tests: example inventories, a real self-signed PEM, temp folders, and a
 * way to run a DesiredFile's own `validate` command the way the apply engine does.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {expect} from 'vitest'

import {type Inventory, type InventoryInput, inventorySchema, hostsOf, type HostSpec} from '../../src/inventory/schema.js'
import type {HostPaths, RenderContext} from '../../src/roles/render.js'
import type {DesiredFile} from '../../src/plan/types.js'
import {createFleetCa, createRegistryCert, htpasswdLine} from '../../src/tls/fleet.js'

export const DOMAIN = 'example.com'

const base = (extra: Partial<InventoryInput> & {web?: InventoryInput['web']} = {}): InventoryInput => ({
  domain: DOMAIN,
  bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
  web: {nodes: [{name: 'web1', address: '10.10.0.11'}]},
  ...extra,
})

/** A bastion named edge and three web nodes, web3 standby (the agents and status tests). */
export const EDGE_FLEET = {
  domain: DOMAIN,
  bastion: {name: 'edge', publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
  web: {
    nodes: [
      {name: 'web1', address: '10.10.0.11'},
      {name: 'web2', address: '10.10.0.12'},
      {name: 'web3', address: '10.10.0.13', standby: true},
    ],
  },
} satisfies InventoryInput

/** The inventories every render test runs over, by name. */
export const INVENTORIES: Record<string, InventoryInput> = {
  'one active, two standby, aliases': base({
    aliases: ['www.example.com', 'WWW2.Example.com'],
    web: {
      nodes: [
        {name: 'web1', address: '10.10.0.11'},
        {name: 'web2', address: '10.10.0.12', standby: true},
        {name: 'web3', address: '10.10.0.13', standby: true},
      ],
    },
  }),
  'three active, no aliases': base({
    web: {
      nodes: [
        {name: 'web1', address: '10.10.0.11'},
        {name: 'web2', address: '10.10.0.12'},
        {name: 'web3', address: '10.10.0.13'},
      ],
    },
  }),
  'app port, custom health check and web port': base({
    aliases: ['www.example.com'],
    web: {
      port: 8080,
      appPort: 3000,
      healthCheck: {path: '/status/health', interval: '5s', fall: 5, rise: 4},
      nodes: [
        {name: 'app1', address: '10.20.0.21'},
        {name: 'app2', address: '10.20.0.22', standby: true},
      ],
    },
    bastion: {publicAddress: '198.51.100.20', privateAddress: '10.20.0.1', privateNetwork: '10.20.0.0/16'},
  }),
  'admin allowlist and ssh port': base({
    ssh: {port: 2222},
    bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1', adminAllow: ['198.51.100.7', '192.0.2.0/24']},
  }),
}

export function inventory(input: InventoryInput): Inventory {
  return inventorySchema.parse(input)
}

export function hostsByName(inv: Inventory): Record<string, HostSpec> {
  return Object.fromEntries(hostsOf(inv).map((h) => [h.name, h]))
}

export function tempDir(prefix = 'infra-render-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix))
}

let pem: string | undefined
/** A real self-signed certificate + key (RSA 2048) for the domain and its www alias. */
export function testPem(): string {
  if (pem) return pem
  const dir = tempDir('infra-pem-')
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
        '-subj', `/CN=${DOMAIN}`, '-addext', `subjectAltName=DNS:${DOMAIN},DNS:www.${DOMAIN}`,
        '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      ],
      {stdio: 'pipe'},
    )
    pem = readFileSync(path.join(dir, 'cert.pem'), 'utf8') + readFileSync(path.join(dir, 'key.pem'), 'utf8')
    return pem
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

let pki: RenderContext['fleet'] | undefined
/** A real fleet CA and registry certificate (src/tls/fleet.ts), made once, for inventories with an app. */
export function testFleetPki(): NonNullable<RenderContext['fleet']> {
  if (pki) return pki
  const ca = createFleetCa()
  const cert = createRegistryCert(ca, '10.10.0.1')
  const password = 'test-registry-password-0123456789'
  pki = {caCertPem: ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem, htpasswd: htpasswdLine(password), dockerAuth: Buffer.from(`infra:${password}`).toString('base64')}
  return pki
}

export function context(inv: Inventory, extra: Partial<RenderContext> = {}): RenderContext {
  return {inventory: inv, tlsPem: testPem(), ...(inv.app ? {fleet: testFleetPki()} : {}), ...extra}
}

/** Write files whose path is inside `dir` (the ones the paths overrides moved there). */
export function writeInside(dir: string, files: DesiredFile[]): void {
  for (const f of files) {
    if (!f.path.startsWith(dir + '/')) continue
    mkdirSync(path.dirname(f.path), {recursive: true})
    writeFileSync(f.path, f.content, {mode: f.mode})
  }
}

export interface RunResult {
  code: number
  output: string
}

/**
 * Run a file's `validate` command like the apply engine: the content staged in a file of its
 * own, `{}` replaced by its double-quoted path, the command run by sh. `wrap` runs it inside
 * something (e.g. `ip netns exec NAME`).
 */
export function runValidate(file: DesiredFile, stageDir: string, content = file.content, wrap: string[] = []): RunResult {
  if (!file.validate) throw new Error(`${file.path} has no validate command`)
  mkdirSync(stageDir, {recursive: true})
  const staged = path.join(stageDir, `${path.basename(file.path)}.staged`)
  writeFileSync(staged, content, {mode: file.mode})
  const cmd = file.validate.replaceAll('{}', `"${staged}"`)
  return run([...wrap, 'sh', '-c', cmd])
}

export function run(argv: string[], input?: string): RunResult {
  const r = spawnSync(argv[0], argv.slice(1), {encoding: 'utf8', input, timeout: 30_000})
  if (r.error) throw r.error
  return {code: r.status ?? -1, output: `${r.stdout ?? ''}${r.stderr ?? ''}`}
}

/** Fail with the tool's name and how to install it, rather than skipping silently. */
export function requireTool(bin: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`${bin} is not installed: apt-get install -y ${pkg} (see templateTestPackages())`)
}

export function fileAt(files: DesiredFile[], p: string): DesiredFile {
  const f = files.find((x) => x.path === p)
  if (!f) throw new Error(`no desired file ${p}; have: ${files.map((x) => x.path).join(', ')}`)
  return f
}

/** Poll `fn` every 100 ms until it returns a value (not undefined); fail with `what` after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (error) {
      last = error
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`)
}

/** Paths under `dir` for everything HAProxy reads besides its config (for `haproxy -c` on this machine). */
export function haproxyPaths(dir: string): Partial<HostPaths> {
  mkdirSync(dir, {recursive: true})
  return {
    haproxyCertDir: `${dir}/certs`,
    haproxyErrorDir: `${dir}/errors`,
    haproxyStateFile: `${dir}/server-state`,
    haproxyAdminSocket: `${dir}/admin.sock`,
    haproxyConfig: `${dir}/haproxy.cfg`,
    haproxySaveState: `${dir}/save-state`,
  }
}

/** Where each string first appears in `text`, for ordering assertions; a string that is not there fails the test. */
export function positionsIn(text: string): (s: string) => number {
  return (s: string) => {
    const i = text.indexOf(s)
    expect(i, s).toBeGreaterThan(-1)
    return i
  }
}
