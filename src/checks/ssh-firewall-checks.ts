/** Host checks of the remote access and the firewall, on every host: sshd hardening, nftables. */
import {createTwoFilesPatch} from 'diff'

import {sha256} from '../host/hash.js'
import {DEFAULT_PATHS} from '../host/paths.js'
import {SSHD_ALGORITHMS} from '../roles/common.js'
import type {HostCheck} from './types.js'
import {fail, pass, PROVISION} from './verdict.js'

/** Remove what changes at run time from `nft -s list ruleset`: elements of dynamic sets (meters). */
export function normalizeRuleset(text: string): string {
  const braces = (l: string) => (l.match(/\{/g) ?? []).length - (l.match(/\}/g) ?? []).length
  const out: string[] = []
  let set: string[] | undefined
  let depth = 0
  const flush = (lines: string[]) => {
    const dynamic = lines.some((l) => /^\s*flags .*\bdynamic\b/.test(l))
    let skipping = 0
    for (const l of lines) {
      if (skipping > 0) {
        skipping += braces(l)
        continue
      }
      if (dynamic && /^\s*elements = \{/.test(l)) {
        skipping = braces(l)
        continue
      }
      out.push(l)
    }
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '')
    if (line.trim() === '') continue
    if (!set && /^\s*set \S+ \{$/.test(line)) {
      set = [line]
      depth = 1
      continue
    }
    if (set) {
      set.push(line)
      depth += braces(line)
      if (depth <= 0) {
        flush(set)
        set = undefined
      }
      continue
    }
    out.push(line)
  }
  if (set) flush(set)
  return out.join('\n') + '\n'
}

export const sshdCheck: HostCheck = {
  id: 'sshd',
  roles: ['bastion', 'web'],
  summary: 'sshd effective config (sshd -T): keys only, root by key only, modern algorithms',
  run: ({facts}) => {
    if (facts.sshdError || facts.sshd.size === 0) {
      return fail('sshd -T failed', facts.sshdError ?? 'sshd -T printed nothing', 'fix the configuration `sshd -t` reports, then `infra provision`')
    }
    const s = facts.sshd
    const bad: string[] = []
    if (s.get('passwordauthentication') !== 'no') bad.push(`passwordauthentication ${s.get('passwordauthentication')}`)
    if (s.get('kbdinteractiveauthentication') === 'yes') bad.push('kbdinteractiveauthentication yes')
    if (s.get('permitemptypasswords') === 'yes') bad.push('permitemptypasswords yes')
    const root = s.get('permitrootlogin')
    // forced-commands-only: web nodes when ssh.user is not root (only the agents' key, with its forced command).
    if (root !== 'without-password' && root !== 'prohibit-password' && root !== 'no' && root !== 'forced-commands-only') bad.push(`permitrootlogin ${root}`)
    if (s.get('pubkeyauthentication') === 'no') bad.push('pubkeyauthentication no')
    const lists: [string, string[]][] = [
      ['kexalgorithms', SSHD_ALGORITHMS.kex],
      ['ciphers', SSHD_ALGORITHMS.ciphers],
      ['macs', SSHD_ALGORITHMS.macs],
      ['hostkeyalgorithms', SSHD_ALGORITHMS.hostKeys],
    ]
    for (const [key, allowed] of lists) {
      const extra = (s.get(key) ?? '').split(',').filter((a) => a && !allowed.includes(a))
      if (extra.length > 0) bad.push(`${key} allows ${extra.join(',')}`)
    }
    if (bad.length > 0) {
      return fail(
        bad.join('; '),
        'sshd accepts more than keys with modern algorithms',
        'remove the setting from /etc/ssh/sshd_config or the drop-in in /etc/ssh/sshd_config.d/ that sorts before 00-infra.conf, then run `infra provision`',
      )
    }
    return pass('keys only, root by key, modern algorithms', 'sshd hardened')
  },
}

export const firewallCheck: HostCheck = {
  id: 'firewall',
  roles: ['bastion', 'web'],
  summary: 'nftables active; /etc/nftables.conf equal to what provision renders; live ruleset loaded from it',
  run: ({facts, desired, host}) => {
    const want = desired.files.find((f) => f.path.endsWith('nftables.conf'))
    const active = facts.services.get('nftables')
    if (active !== 'active') return fail(`nftables ${active ?? 'unknown'}`, 'the firewall service is not active', PROVISION + ' (or `systemctl enable --now nftables`)')
    if (want && facts.nftFileSha !== sha256(want.content)) {
      const diff = facts.nftFile === undefined ? undefined : createTwoFilesPatch(`host${want.path}`, `desired${want.path}`, facts.nftFile, want.content, '', '', {context: 2})
      return fail(facts.nftFile === undefined ? 'file missing' : 'file drift', `${want.path} differs from what provision renders`, PROVISION, diff)
    }
    if (facts.nftFromFile === undefined) return fail('unverifiable', `could not load ${DEFAULT_PATHS.nftablesConfig} in a scratch namespace: ${facts.nftFromFileError ?? 'no output'}`, PROVISION)
    const live = normalizeRuleset(facts.nftLive ?? '')
    const file = normalizeRuleset(facts.nftFromFile)
    if (live !== file) {
      const diff = createTwoFilesPatch('file (nft -f /etc/nftables.conf)', 'live (nft list ruleset)', file, live, '', '', {context: 2})
      const added = diff.split('\n').filter((l) => /^\+\s/.test(l)).length
      const removed = diff.split('\n').filter((l) => /^-\s/.test(l)).length
      // provision compares files, not the live ruleset: reloading the service restores it.
      return fail(
        `live drift (+${added} -${removed} lines)`,
        `the live ruleset differs from ${want?.path ?? DEFAULT_PATHS.nftablesConfig}`,
        `reload it from the file: \`infra exec ${host.name} -- systemctl reload nftables\``,
        diff,
      )
    }
    return pass('active, as rendered', 'firewall equal to the desired state')
  },
}
