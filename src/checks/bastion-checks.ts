/** Host checks of the bastion: HAProxy, its backends, the certificate, the agents. */
import {AGENT_PATHS} from '../host/paths.js'
import {pemPathOf} from './facts.js'
import type {HostCheck} from './types.js'
import {ago, fail, pass, PROVISION, skip, warn} from './verdict.js'

/** In the order doctor reports them. */
export const BASTION_CHECKS: HostCheck[] = [
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
]
