/**
 * The judgement of each host check: pure functions of (facts, inventory, desired state).
 * Unit-tested with fixed facts; no SSH needed.
 */
import {createTwoFilesPatch} from 'diff'

import {configOf} from '../inventory/config.js'
import {inCidrText, isNonPublicIPv4} from '../host/ipv4.js'
import {sha256} from '../host/hash.js'
import {SSHD_ALGORITHMS} from '../roles/common.js'
import {pemPathOf} from './facts.js'
import type {HostCheck, HostCheckContext, Verdict} from './types.js'
import {AGENT_PATHS, DEFAULT_PATHS} from '../host/paths.js'

const PROVISION = 'run `infra provision` to restore'
const pass = (value: string, message: string): Verdict => ({status: 'pass', value, message, fix: ''})
const warn = (value: string, message: string, fix: string): Verdict => ({status: 'warn', value, message, fix})
const fail = (value: string, message: string, fix: string, detail?: string): Verdict => ({status: 'fail', value, message, fix, ...(detail ? {detail} : {})})
const skip = (message: string): Verdict => ({status: 'skip', value: '-', message, fix: ''})

function ago(sec: number): string {
  if (sec < 120) return `${Math.round(sec)}s`
  if (sec < 7200) return `${Math.round(sec / 60)}m`
  if (sec < 172_800) return `${Math.round(sec / 3600)}h`
  return `${Math.round(sec / 86_400)}d`
}

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

export const HOST_CHECKS: HostCheck[] = [
  {
    id: 'os',
    roles: ['bastion', 'web'],
    summary: 'Debian 12 (bookworm)',
    run: ({facts}) => {
      const v = facts.os.prettyName || `${facts.os.id} ${facts.os.versionId}`
      return facts.os.id === 'debian' && facts.os.versionId === '12'
        ? pass(v, 'supported operating system')
        : fail(v || 'unknown', 'infra supports Debian 12 only', 'reinstall the host with Debian 12 (bookworm)')
    },
  },
  {
    id: 'time',
    roles: ['bastion', 'web'],
    summary: 'clock skew against this machine',
    run: ({facts, localTime, thresholds: t}) => {
      if (!facts.time) return fail('unknown', 'could not read the host clock', 'check `date` on the host')
      const skew = Math.abs(facts.time - localTime)
      const v = `${skew.toFixed(0)}s skew`
      const fix = 'enable time sync on the host: `timedatectl set-ntp true` (systemd-timesyncd), and on this machine'
      if (skew >= t.skewFailSec) return fail(v, `clock differs from this machine by ${skew.toFixed(0)} s (fail at ${t.skewFailSec} s)`, fix)
      if (skew >= t.skewWarnSec) return warn(v, `clock differs from this machine by ${skew.toFixed(0)} s (warn at ${t.skewWarnSec} s)`, fix)
      return pass(v, `clock in sync (under ${t.skewWarnSec} s)`)
    },
  },
  {
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
  },
  {
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
  },
  {
    id: 'disk',
    roles: ['bastion', 'web'],
    summary: 'root file system use',
    run: ({facts, thresholds: t}) => {
      const u = facts.diskUsedPercent
      if (u === undefined || Number.isNaN(u)) return fail('unknown', 'could not read disk use (df -P /)', 'check `df -h /` on the host')
      const fix = 'free space on / (`du -xh / | sort -h | tail`, `apt-get clean`, `journalctl --vacuum-size=200M`)'
      if (u >= t.diskFailPercent) return fail(`${u}% used`, `/ is ${u}% full (fail at ${t.diskFailPercent}%)`, fix)
      if (u >= t.diskWarnPercent) return warn(`${u}% used`, `/ is ${u}% full (warn at ${t.diskWarnPercent}%)`, fix)
      return pass(`${u}% used`, `under ${t.diskWarnPercent}%`)
    },
  },
  {
    id: 'memory',
    roles: ['bastion', 'web'],
    summary: 'available memory',
    run: ({facts, thresholds: t}) => {
      if (!facts.memTotalKb || facts.memAvailableKb === undefined) return fail('unknown', 'could not read /proc/meminfo', 'check `free -m` on the host')
      const p = Math.round((facts.memAvailableKb / facts.memTotalKb) * 100)
      const v = `${p}% available (${Math.round(facts.memAvailableKb / 1024)} MiB)`
      const fix = 'find the process using memory (`ps aux --sort=-rss | head`) or give the host more memory'
      if (p < t.memFailAvailPercent) return fail(v, `under ${t.memFailAvailPercent}% of memory available`, fix)
      if (p < t.memWarnAvailPercent) return warn(v, `under ${t.memWarnAvailPercent}% of memory available`, fix)
      return pass(v, `over ${t.memWarnAvailPercent}% available`)
    },
  },
  {
    id: 'load',
    roles: ['bastion', 'web'],
    summary: '1-minute load average per CPU',
    run: ({facts, thresholds: t}) => {
      if (facts.load1 === undefined || Number.isNaN(facts.load1)) return fail('unknown', 'could not read /proc/loadavg', 'check `uptime` on the host')
      const per = facts.load1 / (facts.cpus || 1)
      const v = `${facts.load1.toFixed(2)} on ${facts.cpus} CPU`
      const fix = 'find what keeps the host busy (`top`); for web nodes, see scaling.cpuPercent in infra.yaml'
      if (per >= t.loadFailPerCpu) return fail(v, `load over ${t.loadFailPerCpu} per CPU`, fix)
      if (per >= t.loadWarnPerCpu) return warn(v, `load over ${t.loadWarnPerCpu} per CPU`, fix)
      return pass(v, `under ${t.loadWarnPerCpu} per CPU`)
    },
  },
  {
    id: 'unattended-upgrades',
    roles: ['bastion', 'web'],
    summary: 'unattended-upgrades installed and enabled',
    run: ({facts}) => {
      if (!facts.unattendedInstalled) return fail('not installed', 'security updates are not installed automatically', PROVISION)
      if (facts.unattendedPeriodic !== '1') {
        return fail(`APT::Periodic::Unattended-Upgrade "${facts.unattendedPeriodic ?? ''}"`, 'unattended-upgrades is disabled', PROVISION + ' (/etc/apt/apt.conf.d/20auto-upgrades)')
      }
      return pass('enabled', 'security updates install automatically')
    },
  },
  // ---- bastion ----
  {
    id: 'haproxy',
    roles: ['bastion'],
    summary: 'HAProxy running',
    run: ({facts}) => {
      const a = facts.services.get('haproxy') ?? 'unknown'
      return a === 'active' ? pass('active', 'HAProxy is running') : fail(a, 'HAProxy is not running', '`infra provision` (starts it), or `infra exec bastion -- systemctl start haproxy`; see `journalctl -u haproxy`')
    },
  },
  {
    id: 'haproxy-config',
    roles: ['bastion'],
    summary: 'haproxy -c -f /etc/haproxy/haproxy.cfg',
    run: ({facts}) => {
      if (!facts.haproxyCheck) return fail('not checked', 'haproxy -c did not run', PROVISION)
      if (facts.haproxyCheck.code === 0) return pass('valid', 'configuration is valid')
      const first = facts.haproxyCheck.output.split('\n').find((l) => /ALERT|error/i.test(l)) ?? facts.haproxyCheck.output.split('\n')[0]
      return fail('invalid', `haproxy -c: ${first?.trim() ?? ''}`, PROVISION, facts.haproxyCheck.output)
    },
  },
  {
    id: 'backends',
    roles: ['bastion'],
    summary: "each web node's state in HAProxy (runtime API show stat)",
    run: ({facts, inventory}) => {
      if (facts.services.get('haproxy') !== 'active') return skip('skipped: HAProxy is not running')
      if (!facts.stat) return fail('no answer', `runtime API: ${facts.statError ?? 'no output'}`, PROVISION)
      const rows = facts.stat.filter((r) => r.backend === 'web')
      const states = inventory.web.nodes.map((n) => ({n, row: rows.find((r) => r.server === n.name)}))
      const value = states.map(({n, row}) => `${n.name} ${row?.status ?? 'missing'}`).join(', ')
      const missing = states.filter((s) => !s.row).map((s) => s.n.name)
      if (missing.length > 0) return fail(value, `not in HAProxy's backend: ${missing.join(', ')}`, PROVISION)
      const down = states.filter((s) => /^DOWN|^NOLB/.test(s.row!.status)).map((s) => s.n.name)
      if (down.length > 0) {
        return fail(value, `down in HAProxy: ${down.join(', ')}`, `check the node: \`infra doctor --host ${down[0]}\`, \`infra exec ${down[0]} -- systemctl status nginx\``)
      }
      if (!states.some((s) => /^UP/.test(s.row!.status))) return fail(value, 'no web node is serving', PROVISION)
      return pass(value, 'every active node is UP')
    },
  },
  {
    id: 'tls-expiry',
    roles: ['bastion'],
    summary: 'days until the HTTPS certificate expires',
    run: ({facts, desired, localTime, thresholds: t}) => {
      const pem = pemPathOf(desired) ?? 'the HAProxy PEM'
      if (!facts.cert || facts.cert.error || !facts.cert.notAfter) return fail('unreadable', `cannot read ${pem}: ${facts.cert?.error ?? 'missing'}`, PROVISION)
      const end = Date.parse(facts.cert.notAfter) / 1000
      const days = Math.floor((end - localTime) / 86_400)
      const v = `${days} days (until ${new Date(end * 1000).toISOString().slice(0, 10)})`
      const fix = 'renew it: tls.mode self-signed → `infra provision` (renews under 30 days); tls.mode files → replace tls.cert/tls.key in infra.yaml, then `infra provision`'
      if (days < t.certFailDays) return fail(v, `certificate expires in under ${t.certFailDays} days`, fix)
      if (days < t.certWarnDays) return warn(v, `certificate expires in under ${t.certWarnDays} days`, fix)
      return pass(v, `more than ${t.certWarnDays} days left`)
    },
  },
  {
    id: 'tls-san',
    roles: ['bastion'],
    summary: 'the certificate names the domain and every alias',
    run: ({facts, inventory}) => {
      if (!facts.cert || facts.cert.error) return skip('skipped: certificate unreadable (see tls-expiry)')
      const names = [inventory.domain, ...inventory.aliases].map((n) => n.toLowerCase())
      const covered = (n: string) => facts.cert!.san.some((s) => s === n || (s.startsWith('*.') && n.endsWith(s.slice(1)) && !n.slice(0, -s.length + 1).includes('.')))
      const missing = names.filter((n) => !covered(n))
      const v = facts.cert.san.join(', ') || 'no DNS names'
      if (missing.length > 0) {
        return fail(v, `subjectAltName does not cover ${missing.join(', ')}`, 'tls.mode files: get a certificate for the domain and aliases (tls.cert in infra.yaml); self-signed: delete the cert in tls/ beside infra.yaml, then `infra provision`')
      }
      return pass(v, 'covers the domain and aliases')
    },
  },
  {
    id: 'agents',
    roles: ['bastion'],
    summary: 'healthcheck and scaler installed (scripts + cron) and heartbeats fresh',
    run: ({facts, desired, localTime, thresholds: t}) => {
      const get = (p: string) => facts.paths.get(p) ?? {exists: false, executable: false}
      const inDesired = desired.files.some((f) => f.path === AGENT_PATHS.cron)
      const missing = [AGENT_PATHS.cron, AGENT_PATHS.healthcheck, AGENT_PATHS.scaler].filter((p) => !get(p).exists)
      const notExec = [AGENT_PATHS.healthcheck, AGENT_PATHS.scaler].filter((p) => get(p).exists && !get(p).executable)
      const fix = inDesired ? 'run `infra provision` to install the agents' : 'this version of infra does not install the agents yet; run `infra provision` with a version that does'
      if (missing.length > 0) return fail(`missing ${missing.join(', ')}`, 'agents not installed', fix)
      if (notExec.length > 0) return fail(`not executable: ${notExec.join(', ')}`, 'agents not runnable', fix)
      const cronAge = localTime - (get(AGENT_PATHS.cron).mtime ?? 0)
      const parts: string[] = []
      let worst: 'pass' | 'warn' | 'fail' = 'pass'
      for (const [name, p] of [
        ['healthcheck', AGENT_PATHS.healthcheckHeartbeat],
        ['scaler', AGENT_PATHS.scalerHeartbeat],
      ] as const) {
        const hb = get(p)
        const at = Number(hb.content)
        if (!hb.exists || !Number.isFinite(at) || at <= 0) {
          if (cronAge <= t.heartbeatGraceSec) parts.push(`${name} first run pending`)
          else {
            parts.push(`${name} never ran`)
            worst = 'fail'
          }
          continue
        }
        const age = localTime - at
        parts.push(`${name} ${ago(Math.max(0, age))} ago`)
        if (age > t.heartbeatFailSec) worst = 'fail'
        else if (age > t.heartbeatWarnSec && worst === 'pass') worst = 'warn'
      }
      const v = parts.join(', ')
      const hbFix = 'check cron and the agent: `infra exec bastion -- systemctl status cron`, `infra exec bastion -- /usr/local/sbin/infra-healthcheck`'
      if (worst === 'fail') return fail(v, `heartbeat older than ${ago(t.heartbeatFailSec)} or missing`, hbFix)
      if (worst === 'warn') return warn(v, `heartbeat older than ${ago(t.heartbeatWarnSec)}`, hbFix)
      return pass(v, 'agents installed and running')
    },
  },
  {
    id: 'scaler-paused',
    roles: ['bastion'],
    summary: 'the scaler is not paused for long',
    run: ({facts, localTime, thresholds: t}) => {
      const p = facts.paths.get(AGENT_PATHS.scalerPaused)
      if (!p?.exists) return pass('not paused', 'the scaler is running')
      const since = Number(p.content) || p.mtime || localTime
      const age = Math.max(0, localTime - since)
      const v = `paused for ${ago(age)}`
      if (age > t.pausedWarnSec) return warn(v, `the scaler has been paused for over ${ago(t.pausedWarnSec)}`, 'resume it: `infra scale resume` (or remove ' + AGENT_PATHS.scalerPaused + ' on the bastion)')
      return pass(v, `paused for under ${ago(t.pausedWarnSec)}`)
    },
  },
  // ---- web nodes ----
  {
    id: 'no-public-address',
    roles: ['web'],
    summary: 'a web node has only private addresses',
    run: ({facts}) => {
      const pub = facts.addresses.filter((a) => !isNonPublicIPv4(a.address) && !inCidrText(a.address, '127.0.0.0/8') && !inCidrText(a.address, '169.254.0.0/16'))
      if (pub.length > 0) {
        const v = pub.map((a) => `${a.address}/${a.prefix} on ${a.iface}`).join(', ')
        return fail(v, 'a web node must not have a public address: it bypasses the bastion', `remove it: \`infra exec <node> -- ip addr del ${pub[0].address}/${pub[0].prefix} dev ${pub[0].iface}\` and from the host's network configuration`)
      }
      return pass(facts.addresses.map((a) => a.address).join(', ') || 'none', 'private addresses only')
    },
  },
  {
    id: 'web-service',
    roles: ['web'],
    summary: "nginx state matches the role HAProxy gives the node",
    run: ({facts, host, bastion}) => {
      const nginx = facts.services.get('nginx') ?? 'unknown'
      const row = bastion?.stat?.find((r) => r.backend === 'web' && r.server === host.name)
      const role = row ? (row.status.startsWith('MAINT') ? 'maint' : 'active') : host.standby ? 'maint' : 'active'
      const how = row ? `HAProxy: ${row.status}` : `inventory: ${host.standby ? 'standby' : 'active'}`
      const v = `nginx ${nginx}, ${how}`
      if (role === 'active' && nginx !== 'active') {
        return fail(v, 'HAProxy sends traffic to this node but nginx is not running', `\`infra exec ${host.name} -- systemctl start nginx\` (or \`infra provision\`); see \`journalctl -u nginx\``)
      }
      return pass(v, role === 'maint' ? 'standby node (nginx may be stopped)' : 'serving')
    },
  },
  {
    id: 'web-health',
    roles: ['web'],
    summary: 'the health path answers 200 on the node',
    run: ({facts, inventory, host}) => {
      const nginx = facts.services.get('nginx')
      const url = `http://${host.privateAddress}:${inventory.web.port}${configOf(inventory).healthPath}`
      if (nginx !== 'active') return skip(`skipped: nginx ${nginx ?? 'unknown'} (see web-service)`)
      if (facts.healthCode === 200) return pass('200', `${url} answers`)
      return fail(String(facts.healthCode || 'no answer'), `${url} does not answer 200`, `\`infra exec ${host.name} -- curl -si ${url}\`; \`infra provision\` restores the nginx site`)
    },
  },
]

export const HOST_CHECK_IDS = HOST_CHECKS.map((c) => c.id)

export function runHostChecks(ctx: HostCheckContext, only?: Set<string>): {id: string; verdict: Verdict}[] {
  return HOST_CHECKS.filter((c) => c.roles.includes(ctx.host.role) && (!only || only.has(c.id))).map((c) => {
    try {
      return {id: c.id, verdict: c.run(ctx)}
    } catch (error) {
      return {id: c.id, verdict: fail('error', `check crashed: ${(error as Error).message}`, 'report this as a bug in infra')}
    }
  })
}

export type {HostCheckContext}
