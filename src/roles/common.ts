/**
 * What every host gets (sshd hardening, unattended security upgrades, kernel network settings),
 * plus what the role renderers share: the render context, the paths on a host, and the template
 * engine. Everything here is pure except template loading, which reads `.hbs` files once.
 */
import type {FleetPki} from '../tls/fleet.js'
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import Handlebars from 'handlebars'

import type {HostSpec, Inventory} from '../inventory/schema.js'
import {ConfigError} from '../lib/errors.js'
import {shellWord} from '../host/quote.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {DEFAULT_PATHS, type HostPaths} from '../host/paths.js'

export interface RenderContext {
  inventory: Inventory
  /** Error pages from `errors/<code>.http` beside the inventory, already read by the caller. */
  errorPageOverrides?: Record<number, string>
  /** PEM (certificate chain + private key) for HAProxy, already read by the caller. Secret. */
  tlsPem: string
  /** Folder whose files replace built-in templates of the same relative path (e.g. `templates/` beside the inventory). */
  templateOverridesDir?: string
  /** Paths on the host; tests override them to run the real validators on temp files. */
  paths?: Partial<HostPaths>
  /** JWT key material for inventory `auth` (src/edge/jwt.ts), already read by the caller. The secret is secret. */
  authMaterial?: {key?: string; secret?: string}
  /** The bastion agents' public key (read from the bastion by provision); web nodes authorize it, restricted (src/roles/agents.ts). */
  agentPublicKey?: string
  /** The fleet PKI of an inventory with `app` (src/tls/fleet.ts), already read by the caller. Secret. */
  fleet?: Pick<FleetPki, 'caCertPem' | 'certPem' | 'keyPem' | 'htpasswd' | 'dockerAuth'>
  /** SMTP password for alert e-mails (from the environment variable alerts.smtp.passwordEnv). Secret. */
  smtpPassword?: string
  /** Each site's PEM (certificate + private key) for HAProxy, by site name (`tls/<site domain>.crt|.key`), already read by the caller. Secret. */
  siteCerts?: Record<string, string>
  /** Each site's error pages, by site name and status code (the files `sites.<name>.errorPages` names), already read by the caller. */
  siteErrorPages?: Record<string, Record<number, string>>
  /** Basic auth of the sites' protected units (`protect.usersEnv`), by site name, already read by the caller: digests only, never a password. */
  siteAuth?: Record<string, SiteAuthDigests>
}

/**
 * A site's basic-auth digests: for each protected environment, and for its previews when they are
 * protected, the SHA-256 (lower-case hex) of every allowed `Basic <base64(user:password)>` header.
 */
export interface SiteAuthDigests {
  environments: Record<string, readonly string[]>
  previews?: readonly string[]
}

export function pathsOf(ctx: RenderContext): HostPaths {
  return {...DEFAULT_PATHS, ...ctx.paths}
}

/** The first line of every rendered file: who manages it. */
export const MANAGED = 'Managed by infra (infra provision): local changes are overwritten.'

// ---------------------------------------------------------------------------------------------
// Templates

/** The package root: the nearest folder above this module holding package.json (works from src/ and dist/). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = up
  }
}

let builtinDir: string | undefined
/** The folder of the built-in templates (`src/templates` in the package). */
export function templatesDir(): string {
  builtinDir ??= path.join(packageRoot(), 'src', 'templates')
  return builtinDir
}

const hbs = Handlebars.create()
hbs.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ', ') : ''))
hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b)

type Compiled = (data: object) => string
const compiled = new Map<string, Compiled>()

/**
 * Render a template by its path relative to the templates folder (e.g. `haproxy/haproxy.cfg.hbs`).
 * A file of the same relative path in `overridesDir` replaces the built-in one. Templates whose
 * name ends in `.html.hbs` escape HTML; the others (configuration files) do not. Every variable a
 * template names must be given (strict mode), so a typo fails at render time, not on a host.
 */
export function renderTemplate(name: string, data: object, overridesDir?: string): string {
  const override = overridesDir ? path.join(overridesDir, name) : undefined
  const file = override && existsSync(override) ? override : path.join(templatesDir(), name)
  let fn = compiled.get(file)
  if (!fn) {
    let source: string
    try {
      source = readFileSync(file, 'utf8')
    } catch (error) {
      throw new Error(`cannot read template ${file}: ${(error as Error).message}`)
    }
    const template = hbs.compile(source, {strict: true, noEscape: !name.endsWith('.html.hbs')})
    fn = (d) => {
      try {
        return template(d)
      } catch (error) {
        const where = file === override ? `template override ${file}` : `template ${name}`
        throw new ConfigError(`${where}: ${(error as Error).message}`, {
          hint: file === override ? `Fix or remove ${file}; docs/TEMPLATES.md lists the variables each template gets.` : undefined,
        })
      }
    }
    compiled.set(file, fn)
  }
  return fn(data)
}

// ---------------------------------------------------------------------------------------------
// Addresses

/** The web node of the inventory behind a host spec (by name). */
export function webNodeOf(inv: Inventory, host: HostSpec) {
  const node = inv.web.nodes.find((n) => n.name === host.name)
  if (!node) throw new Error(`host ${host.name} is not a web node of this inventory`)
  return node
}

// ---------------------------------------------------------------------------------------------
// sshd

/**
 * Algorithms for OpenSSH 9.2 (Debian 12), strongest first, with 0 failures in `ssh-audit` (the
 * lab test runs it). Every list keeps at least one algorithm that infra's own client (ssh2)
 * speaks. Host keys: Ed25519, and RSA (at least SSH_RSA_MIN_BITS bits, SHA-2 signatures only)
 * for older clients; no ECDSA (NIST P-256, which ssh-audit fails). infra pins Ed25519 (ssh2 asks
 * for it first), and pins a host's Ed25519 key over a connection an older ECDSA or RSA pin verified
 * (src/ssh/fleet.ts), so dropping ECDSA never trips "host key changed".
 */
export const SSHD_ALGORITHMS = {
  kex: [
    'sntrup761x25519-sha512@openssh.com',
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group-exchange-sha256',
  ],
  ciphers: [
    'chacha20-poly1305@openssh.com',
    'aes256-gcm@openssh.com',
    'aes128-gcm@openssh.com',
    'aes256-ctr',
    'aes192-ctr',
    'aes128-ctr',
  ],
  macs: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'umac-128-etm@openssh.com'],
  hostKeys: [
    'ssh-ed25519',
    'ssh-ed25519-cert-v01@openssh.com',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'rsa-sha2-512-cert-v01@openssh.com',
    'rsa-sha2-256-cert-v01@openssh.com',
  ],
}

/** The host key files sshd loads (HostKey), by type, in the host key folder. */
export const SSH_HOST_KEY_TYPES = ['ed25519', 'rsa'] as const

/** An RSA host key shorter than this is replaced (infra-ssh-host-keys) before sshd reloads. */
export const SSH_RSA_MIN_BITS = 3072

/**
 * PermitRootLogin: the operator logs in as ssh.user. As root: by key only (prohibit-password).
 * As another user, root never logs in on the bastion (no); on web nodes only the bastion agents'
 * key may, and only with its forced command (forced-commands-only; /etc/ssh/infra_agent_keys/root).
 */
export function permitRootLogin(inv: Inventory, host: HostSpec): 'prohibit-password' | 'no' | 'forced-commands-only' {
  if (inv.ssh.user === 'root') return 'prohibit-password'
  return host.role === 'bastion' ? 'no' : 'forced-commands-only'
}

export function renderSshd(ctx: RenderContext, host: HostSpec): string {
  const p = pathsOf(ctx)
  return renderTemplate(
    'ssh/sshd-infra.conf.hbs',
    {
      managed: MANAGED,
      role: host.role,
      permitRootLogin: permitRootLogin(ctx.inventory, host),
      user: ctx.inventory.ssh.user,
      hostKeyFiles: SSH_HOST_KEY_TYPES.map((t) => `${p.sshHostKeyDir}/ssh_host_${t}_key`),
      rsaMinBits: SSH_RSA_MIN_BITS,
      hostKeysScript: p.sshHostKeysScript,
      // The operator reaches web nodes through the bastion (ProxyJump = TCP forwarding on the bastion).
      allowTcpForwarding: host.role === 'bastion',
      // Web nodes also read the bastion agents' restricted key from a file of their own (src/roles/agents.ts).
      agentKeysFile: host.role === 'web' ? '/etc/ssh/infra_agent_keys/%u' : false,
      kex: SSHD_ALGORITHMS.kex.join(','),
      ciphers: SSHD_ALGORITHMS.ciphers.join(','),
      macs: SSHD_ALGORITHMS.macs.join(','),
      hostKeyAlgorithms: SSHD_ALGORITHMS.hostKeys.join(','),
    },
    ctx.templateOverridesDir,
  )
}

/** The script that creates missing host keys and replaces an RSA key shorter than SSH_RSA_MIN_BITS (run by the ssh service's check). */
export function renderSshHostKeys(ctx: RenderContext): string {
  const p = pathsOf(ctx)
  return renderTemplate(
    'ssh/host-keys.sh.hbs',
    {managed: MANAGED, keyDir: shellWord(p.sshHostKeyDir), rsaMinBits: SSH_RSA_MIN_BITS, dropIn: p.sshdDropIn},
    ctx.templateOverridesDir,
  )
}


/**
 * Validate a staged sshd drop-in as part of the whole configuration: build a temporary main
 * config that includes the staged file first, then every other drop-in except the live copy of
 * ours, then the main file without its drop-in Include line, and run `sshd -t -f` on it.
 * `{}` (the staged path) is passed as $1, so it may contain anything.
 */
export function sshdValidateCommand(p: HostPaths): string {
  const script = [
    'd=$(mktemp -d) || exit 1',
    'trap \'rm -rf "$d"\' EXIT',
    '{',
    '  printf "Include %s\\n" "$1"',
    `  for f in ${shellWord(p.sshdDropInDir)}/*.conf; do`,
    `    if [ -e "$f" ] && [ "$f" != ${shellWord(p.sshdDropIn)} ]; then printf "Include %s\\n" "$f"; fi`,
    '  done',
    `  grep -v -E ${shellWord(`^[[:space:]]*Include[[:space:]]+${p.sshdDropInDir}/`)} ${shellWord(p.sshdConfig)}`,
    '} > "$d/sshd_config"',
    '/usr/sbin/sshd -t -f "$d/sshd_config"',
  ].join('\n')
  return `sh -c ${shellWord(script)} sh {}`
}

// ---------------------------------------------------------------------------------------------
// Files and services every host gets

export function commonFiles(ctx: RenderContext, host: HostSpec): DesiredFile[] {
  const p = pathsOf(ctx)
  const t = ctx.templateOverridesDir
  return [
    {
      path: p.sshdDropIn,
      content: renderSshd(ctx, host),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate: sshdValidateCommand(p),
      notify: [{service: 'ssh', action: 'reload'}],
      guarded: true,
    },
    {
      path: p.sshHostKeysScript,
      content: renderSshHostKeys(ctx),
      mode: 0o755,
      owner: 'root',
      group: 'root',
      validate: 'sh -n {}',
      // Run (as the ssh service's check) before sshd reloads: a new version of it runs at once.
      notify: [{service: 'ssh', action: 'reload'}],
    },
    {
      path: p.aptAutoUpgrades,
      content: renderTemplate('apt/20auto-upgrades.hbs', {managed: MANAGED}, t),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate: 'apt-config -c {} dump >/dev/null',
    },
    {
      path: p.aptUnattended,
      content: renderTemplate('apt/52infra-unattended.hbs', {managed: MANAGED}, t),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate: 'apt-config -c {} dump >/dev/null',
    },
    {
      path: p.sysctl,
      content: renderTemplate('sysctl/60-infra.conf.hbs', {managed: MANAGED, forward: host.role === 'bastion'}, t),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      notify: [{service: 'systemd-sysctl', action: 'restart'}],
    },
  ]
}

export function commonServices(): DesiredService[] {
  return [
    // Before sshd reloads: create missing host keys, replace an RSA key shorter than 3072 bits
    // (the Ed25519 key infra pins is never replaced), then check the whole configuration.
    {name: 'ssh', enabled: true, running: true, check: `${DEFAULT_PATHS.sshHostKeysScript} && /usr/sbin/sshd -t`},
    // A oneshot that loads /etc/nftables.conf at boot; reloading it re-reads the file.
    {name: 'nftables', enabled: true, running: true},
    {name: 'unattended-upgrades', enabled: true, running: true},
  ]
}

/** /etc/nftables.conf: validated with `nft -c`, applied by reloading nftables, guarded (auto-rollback unless confirmed). */
export function nftablesFile(ctx: RenderContext, content: string): DesiredFile {
  return {
    path: pathsOf(ctx).nftablesConfig,
    content,
    mode: 0o755,
    owner: 'root',
    group: 'root',
    validate: 'nft -c -f {}',
    notify: [{service: 'nftables', action: 'reload'}],
    guarded: true,
  }
}
