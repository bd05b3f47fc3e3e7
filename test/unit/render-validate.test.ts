/**
 * Every rendered configuration passes the real validator of the tool that reads it (haproxy -c,
 * nft -c, sshd -t, nginx -t, apt-config), run through the file's own `validate` command as the
 * apply engine runs it. A broken variant of each file must fail the same command.
 */
import {copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {desiredState} from '../../src/roles/render.js'
import {type Namespace, throwawayNamespace} from './edge-harness.js'
import {
  context,
  fileAt,
  haproxyPaths,
  hostsByName,
  INVENTORIES,
  inventory,
  requireTool,
  run,
  runValidate,
  tempDir,
  writeInside,
} from './render-helpers.js'

let root: string
let space: Namespace | undefined
/** Runs a command inside the throwaway namespace. */
let wrap: string[]

beforeAll(() => {
  requireTool('haproxy', 'haproxy')
  requireTool('nft', 'nftables')
  requireTool('sshd', 'openssh-server')
  requireTool('nginx', 'nginx')
  requireTool('openssl', 'openssl')
  root = tempDir('infra-validate-')
  // nft -c needs no namespace, but a throwaway one guarantees that nothing here can touch the
  // machine's own ruleset.
  space = throwawayNamespace('v')
  wrap = ['ip', 'netns', 'exec', space.ns]
})

/** nginx -t binds the listen addresses: give the namespace the node's address. */
function addAddress(address: string): void {
  const r = space!.inNs(['ip', 'addr', 'replace', `${address}/32`, 'dev', 'lo'])
  if (r.code !== 0) throw new Error(`ip addr replace ${address}: ${r.output}`)
}

afterAll(() => {
  space?.stop()
  if (root) rmSync(root, {recursive: true, force: true})
})

let n = 0
function caseDir(): string {
  const d = path.join(root, `case${++n}`)
  mkdirSync(d, {recursive: true})
  return d
}


describe.each(Object.entries(INVENTORIES))('real validators: %s', (_name, input) => {
  const inv = inventory(input)
  const hosts = hostsByName(inv)

  it('haproxy -c accepts the bastion config with its certificate and error pages', () => {
    const dir = caseDir()
    const overrides = {404: '<!doctype html><h1>Not here</h1>\n'}
    const ctx = context(inv, {paths: haproxyPaths(dir), errorPageOverrides: overrides})
    const state = desiredState(ctx, hosts[inv.bastion.name])
    writeInside(dir, state.files)
    const cfg = fileAt(state.files, `${dir}/haproxy.cfg`)
    expect(cfg.validate).toBe('haproxy -c -f {}')
    const ok = runValidate(cfg, `${dir}/stage`)
    expect(ok.code, ok.output).toBe(0)
    // No warning but the expected one: no saved server states before the first reload.
    const warnings = ok.output.split('\n').filter((l) => /ALERT|WARNING/.test(l) && !/server state file/.test(l))
    expect(warnings).toEqual([])
    // The same check rejects a config that references a missing error page.
    rmSync(`${dir}/errors/503.http`)
    const bad = runValidate(cfg, `${dir}/stage`)
    expect(bad.code).not.toBe(0)
    expect(bad.output).toMatch(/503\.http/)
  })

  it('the save-state script parses (sh -n) and the systemd drop-in keeps validation before the USR2', () => {
    const dir = caseDir()
    const ctx = context(inv, {paths: haproxyPaths(dir)})
    const state = desiredState(ctx, hosts[inv.bastion.name])
    const script = fileAt(state.files, `${dir}/save-state`)
    const r = runValidate(script, `${dir}/stage`)
    expect(r.code, r.output).toBe(0)
    expect(runValidate(script, `${dir}/stage`, script.content + '\nif then fi\n').code).not.toBe(0)
  })

  for (const role of ['bastion', 'web'] as const) {
    it(`nft -c accepts the ${role} ruleset (and rejects a broken one)`, () => {
      const dir = caseDir()
      const host = role === 'bastion' ? hosts[inv.bastion.name] : hosts[inv.web.nodes[0].name]
      const ctx = context(inv, {paths: {nftablesConfig: `${dir}/nftables.conf`}})
      const file = fileAt(desiredState(ctx, host).files, `${dir}/nftables.conf`)
      expect(file.validate).toBe('nft -c -f {}')
      const ok = runValidate(file, `${dir}/stage`, file.content, wrap)
      expect(ok.code, ok.output).toBe(0)
      const bad = runValidate(file, `${dir}/stage`, file.content.replace('policy drop;', 'policy dorp;'), wrap)
      expect(bad.code).not.toBe(0)
    })
  }

  for (const role of ['bastion', 'web'] as const) {
    it(`sshd -t accepts the ${role} drop-in inside Debian's sshd_config, and sshd -T shows it wins`, () => {
      const dir = caseDir()
      const host = role === 'bastion' ? hosts[inv.bastion.name] : hosts[inv.web.nodes[0].name]
      const paths = {sshdConfig: `${dir}/sshd_config`, sshdDropInDir: `${dir}/sshd_config.d`, sshdDropIn: `${dir}/sshd_config.d/00-infra.conf`}
      // Debian's main file, its Include pointed at our folder, host keys in the temp folder.
      mkdirSync(paths.sshdDropInDir)
      run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/host_ed25519`])
      const debian = readFileSync('/etc/ssh/sshd_config', 'utf8').replace('Include /etc/ssh/sshd_config.d/*.conf', `Include ${paths.sshdDropInDir}/*.conf`)
      writeFileSync(paths.sshdConfig, `${debian}\nHostKey ${dir}/host_ed25519\n`)
      // Another admin's drop-in is still part of the validated whole.
      writeFileSync(`${paths.sshdDropInDir}/50-other.conf`, 'PrintLastLog no\n')
      const file = fileAt(desiredState(context(inv, {paths}), host).files, paths.sshdDropIn)
      const ok = runValidate(file, `${dir}/stage`)
      expect(ok.code, ok.output).toBe(0)

      // A stale live copy of our drop-in is left out of the check: the staged one is what counts.
      writeFileSync(paths.sshdDropIn, 'PasswordAuthentication yes\n')
      const bad = runValidate(file, `${dir}/stage`, file.content + 'MaxAuthTries lots\n')
      expect(bad.code).not.toBe(0)
      expect(bad.output).toMatch(/MaxAuthTries|lots/i)
      // Another broken drop-in also fails the check (the whole configuration is validated).
      writeFileSync(`${paths.sshdDropInDir}/50-other.conf`, 'NoSuchOption yes\n')
      expect(runValidate(file, `${dir}/stage`).code).not.toBe(0)

      // Effective settings once installed: our values win over Debian's (X11Forwarding yes).
      writeFileSync(`${paths.sshdDropInDir}/50-other.conf`, 'PasswordAuthentication yes\n')
      writeFileSync(paths.sshdDropIn, file.content)
      const t = run(['/usr/sbin/sshd', '-T', '-f', paths.sshdConfig])
      expect(t.code, t.output).toBe(0)
      expect(t.output).toMatch(/^passwordauthentication no$/m)
      expect(t.output).toMatch(/^kbdinteractiveauthentication no$/m)
      expect(t.output).toMatch(/^permitrootlogin without-password$/m)
      expect(t.output).toMatch(/^x11forwarding no$/m)
      expect(t.output).toMatch(/^maxauthtries 3$/m)
      expect(t.output).toMatch(new RegExp(`^allowtcpforwarding ${role === 'bastion' ? 'yes' : 'no'}$`, 'm'))
      expect(t.output).toMatch(/^kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,/m)
      expect(t.output).not.toMatch(/^ciphers .*cbc/m)
    })
  }

  for (const node of inv.web.nodes.slice(0, 2)) {
    it(`nginx -t accepts the site of ${node.name} inside Debian's nginx.conf (and rejects a broken one)`, () => {
      const dir = caseDir()
      const paths = {
        nginxConfig: `${dir}/nginx/nginx.conf`,
        nginxSite: `${dir}/nginx/conf.d/infra.conf`,
        nginxLogDir: `${dir}/log`,
        webRoot: `${dir}/www`,
      }
      mkdirSync(`${dir}/nginx/conf.d`, {recursive: true})
      mkdirSync(`${dir}/log`)
      copyFileSync('/etc/nginx/mime.types', `${dir}/nginx/mime.types`)
      const debian = readFileSync('/etc/nginx/nginx.conf', 'utf8')
        .replace('include /etc/nginx/conf.d/*.conf;', `include ${dir}/nginx/conf.d/*.conf;`)
        .replace('include /etc/nginx/mime.types;', 'include mime.types;')
        .replace(/^\s*include \/etc\/nginx\/sites-enabled\/\*;$/m, '')
        .replaceAll('/var/log/nginx', `${dir}/log`)
        .replace('pid /run/nginx.pid;', `pid ${dir}/nginx.pid;`)
      expect(debian).toContain(`include ${dir}/nginx/conf.d/*.conf;`)
      writeFileSync(paths.nginxConfig, debian)
      const state = desiredState(context(inv, {paths}), hostsByName(inv)[node.name])
      const site = fileAt(state.files, paths.nginxSite)
      addAddress(node.address)
      const ok = runValidate(site, `${dir}/stage`, site.content, wrap)
      expect(ok.code, ok.output).toBe(0)
      expect(state.services.find((s) => s.name === 'nginx')?.check).toBe('nginx -t -q')
      const bad = runValidate(site, `${dir}/stage`, site.content.replace('server_tokens off;', 'server_tokens maybe;'), wrap)
      expect(bad.code).not.toBe(0)
      expect(bad.output).toMatch(/invalid value "maybe" in .*infra.conf.staged/)
      // A main file without the conf.d include cannot validate the site: say so.
      writeFileSync(paths.nginxConfig, debian.replace(`include ${dir}/nginx/conf.d/*.conf;`, ''))
      const noInclude = runValidate(site, `${dir}/stage`, site.content, wrap)
      expect(noInclude.code).not.toBe(0)
      expect(noInclude.output).toContain('has no line')
    })
  }

  it('apt-config reads the unattended-upgrades files: security origins only, no reboot', () => {
    const dir = caseDir()
    const paths = {aptAutoUpgrades: `${dir}/20auto-upgrades`, aptUnattended: `${dir}/52infra-unattended`}
    const files = desiredState(context(inv, {paths}), hostsByName(inv)[inv.web.nodes[0].name]).files
    for (const p of Object.values(paths)) {
      const r = runValidate(fileAt(files, p), `${dir}/stage`)
      expect(r.code, r.output).toBe(0)
    }
    writeInside(dir, files)
    const dump = run(['apt-config', '-c', paths.aptAutoUpgrades, '-c', paths.aptUnattended, 'dump'])
    expect(dump.code, dump.output).toBe(0)
    expect(dump.output).toContain('APT::Periodic::Update-Package-Lists "1";')
    expect(dump.output).toContain('APT::Periodic::Unattended-Upgrade "1";')
    expect(dump.output).toContain('Unattended-Upgrade::Automatic-Reboot "false";')
    const origins = dump.output.split('\n').filter((l) => l.startsWith('Unattended-Upgrade::Origins-Pattern:: '))
    expect(origins.length).toBe(2)
    for (const o of origins) expect(o).toContain('label=Debian-Security')
  })
})

describe('sshd: who may log in as root, and which host keys are offered (real sshd -t / -T)', () => {
  /** A temp sshd setup: Debian's main file with its Include pointed at our folder, host keys made by ssh-keygen -A (as a Debian host or the lab gets them). */
  function sshdCase(user: string, role: 'bastion' | 'web', rsaBits?: number) {
    const dir = caseDir()
    const inv = inventory({...INVENTORIES['three active, no aliases'], ssh: {user}})
    const h = hostsByName(inv)
    const host = role === 'bastion' ? h[inv.bastion.name] : h[inv.web.nodes[0].name]
    const keyDir = `${dir}/etc/ssh`
    mkdirSync(keyDir, {recursive: true})
    const keygen = run(['ssh-keygen', '-A', '-f', dir])
    if (keygen.code !== 0) throw new Error(keygen.output)
    if (rsaBits) {
      rmSync(`${keyDir}/ssh_host_rsa_key`)
      rmSync(`${keyDir}/ssh_host_rsa_key.pub`)
      run(['ssh-keygen', '-q', '-t', 'rsa', '-b', String(rsaBits), '-N', '', '-f', `${keyDir}/ssh_host_rsa_key`])
    }
    const paths = {
      sshdConfig: `${dir}/sshd_config`,
      sshdDropInDir: `${dir}/sshd_config.d`,
      sshdDropIn: `${dir}/sshd_config.d/00-infra.conf`,
      sshHostKeyDir: keyDir,
      sshHostKeysScript: `${dir}/infra-ssh-host-keys`,
    }
    mkdirSync(paths.sshdDropInDir)
    const debian = readFileSync('/etc/ssh/sshd_config', 'utf8').replace('Include /etc/ssh/sshd_config.d/*.conf', `Include ${paths.sshdDropInDir}/*.conf`)
    writeFileSync(paths.sshdConfig, debian)
    const state = desiredState(context(inv, {paths}), host)
    return {dir, keyDir, paths, state, drop: fileAt(state.files, paths.sshdDropIn), script: fileAt(state.files, paths.sshHostKeysScript)}
  }

  function effective(c: ReturnType<typeof sshdCase>): string {
    const ok = runValidate(c.drop, `${c.dir}/stage`)
    expect(ok.code, ok.output).toBe(0)
    writeFileSync(c.paths.sshdDropIn, c.drop.content)
    const t = run(['/usr/sbin/sshd', '-T', '-f', c.paths.sshdConfig])
    expect(t.code, t.output).toBe(0)
    return t.output
  }

  it('ssh.user root: root logs in by key only, on every host', () => {
    for (const role of ['bastion', 'web'] as const) {
      expect(effective(sshdCase('root', role))).toMatch(/^permitrootlogin without-password$/m) // sshd -T's name for prohibit-password
    }
  })

  it('ssh.user deploy: root never logs in on the bastion, and on web nodes only with a forced command (the agents key)', () => {
    const bastion = sshdCase('deploy', 'bastion')
    expect(bastion.drop.content).toContain('PermitRootLogin no\n')
    expect(effective(bastion)).toMatch(/^permitrootlogin no$/m)
    const web = sshdCase('deploy', 'web')
    expect(web.drop.content).toContain('PermitRootLogin forced-commands-only\n')
    const t = effective(web)
    expect(t).toMatch(/^permitrootlogin forced-commands-only$/m)
    // The agents' key file is still read on web nodes (it carries the forced command).
    expect(t).toMatch(/^authorizedkeysfile .ssh\/authorized_keys \/etc\/ssh\/infra_agent_keys\/%u$/m)
  })

  it('host keys: the Ed25519 and RSA files only, Ed25519 and rsa-sha2 algorithms only, even where an ECDSA key exists', () => {
    for (const role of ['bastion', 'web'] as const) {
      const c = sshdCase('root', role)
      const t = effective(c)
      const keys = t.split('\n').filter((l) => l.startsWith('hostkey '))
      expect(keys).toEqual([`hostkey ${c.keyDir}/ssh_host_ed25519_key`, `hostkey ${c.keyDir}/ssh_host_rsa_key`])
      const algos = t.match(/^hostkeyalgorithms (.*)$/m)![1].split(',')
      expect(algos).toEqual(['ssh-ed25519', 'ssh-ed25519-cert-v01@openssh.com', 'rsa-sha2-512', 'rsa-sha2-256', 'rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com'])
      // ssh-keygen -A made an ECDSA key too: it stays on disk, not loaded (user keys are another list).
      expect(readFileSync(`${c.keyDir}/ssh_host_ecdsa_key.pub`, 'utf8')).toMatch(/^ecdsa-sha2-nistp256 /)
    }
  })

  it('infra-ssh-host-keys (the ssh check before a reload) replaces a 2048-bit RSA key, keeps the Ed25519 key, and then changes nothing', () => {
    const c = sshdCase('root', 'web', 2048)
    expect(runValidate(c.script, `${c.dir}/stage`).code).toBe(0) // sh -n
    expect(run(['shellcheck', '-s', 'sh', '-'], c.script.content).output).toBe('')
    expect(c.script).toMatchObject({mode: 0o755, notify: [{service: 'ssh', action: 'reload'}]})
    expect(c.state.services.find((s) => s.name === 'ssh')?.check).toBe('/usr/local/sbin/infra-ssh-host-keys && /usr/sbin/sshd -t')
    writeFileSync(c.paths.sshHostKeysScript, c.script.content, {mode: 0o755})
    const fp = (f: string) => run(['ssh-keygen', '-lf', `${c.keyDir}/${f}.pub`]).output.split(' ').slice(0, 2).join(' ')
    const ed = fp('ssh_host_ed25519_key')
    const ecdsa = fp('ssh_host_ecdsa_key')
    expect(fp('ssh_host_rsa_key')).toMatch(/^2048 /)

    const first = run(['sh', c.paths.sshHostKeysScript])
    expect(first.code, first.output).toBe(0)
    expect(first.output).toBe(`replaced the 2048-bit RSA host key ${c.keyDir}/ssh_host_rsa_key with a new 3072-bit one\n`)
    expect(fp('ssh_host_rsa_key')).toMatch(/^3072 SHA256:/)
    expect(fp('ssh_host_ed25519_key')).toBe(ed)
    expect(fp('ssh_host_ecdsa_key')).toBe(ecdsa)
    expect(run(['stat', '-c', '%a', `${c.keyDir}/ssh_host_rsa_key`, `${c.keyDir}/ssh_host_rsa_key.pub`]).output).toBe('600\n644\n')
    // The new pair matches, and sshd loads it.
    expect(run(['ssh-keygen', '-y', '-f', `${c.keyDir}/ssh_host_rsa_key`]).output.split(' ')[1]).toBe(readFileSync(`${c.keyDir}/ssh_host_rsa_key.pub`, 'utf8').split(' ')[1])
    expect(effective(c)).toMatch(/^hostkey .*ssh_host_rsa_key$/m)
    expect(run(['ls', '-A', c.keyDir]).output).not.toContain('.infra-host-key')

    const again = run(['sh', c.paths.sshHostKeysScript])
    expect(again).toEqual({code: 0, output: ''})
    // A missing key is created.
    rmSync(`${c.keyDir}/ssh_host_ed25519_key`)
    rmSync(`${c.keyDir}/ssh_host_ed25519_key.pub`)
    expect(run(['sh', c.paths.sshHostKeysScript]).output).toBe(`created the Ed25519 host key ${c.keyDir}/ssh_host_ed25519_key\n`)
    expect(fp('ssh_host_ed25519_key')).toMatch(/^256 SHA256:/)
  })
})
