/**
 * Checks of the application (an inventory with `app`, docs/DEPLOY.md): each web node runs the
 * current release and its container is healthy and not restarting in a loop; Docker's disk; the
 * fleet registry on the bastion answers. Pure: facts from `infra-app status` on each node and the
 * release history on the bastion (src/checks/facts.ts).
 */
import type {DoctorFacts} from './facts.js'
import type {HostCheck, HostCheckContext} from './types.js'
import {fail, pass, skip, warn} from './verdict.js'

/** More restarts than this since the container was started: a restart loop. */
export const RESTART_LOOP = 3

/** Does HAProxy send this node traffic (not MAINT), or, without the bastion's view, is it active in the inventory? */
function serving(ctx: HostCheckContext): boolean {
  const row = ctx.bastion?.stat?.find((r) => r.backend === 'web' && r.server === ctx.host.name)
  return row ? !row.status.startsWith('MAINT') : !ctx.host.standby
}

const hasApp = (ctx: Pick<HostCheckContext, 'inventory'>) => ctx.inventory.app !== undefined

function currentOf(bastion: DoctorFacts | undefined): string | null | undefined {
  if (!bastion?.app) return undefined
  return bastion.app.current
}

export const APP_CHECKS: HostCheck[] = [
  {
    id: 'registry',
    roles: ['bastion'],
    summary: 'the fleet registry answers on the private address (TLS from the fleet CA)',
    applies: hasApp,
    run: ({facts}) => {
      const svc = facts.services.get('docker-registry') ?? 'unknown'
      const code = facts.app?.registryCode ?? 0
      const v = `docker-registry ${svc}, /v2/ ${code || 'no answer'}`
      // 401: up and asking for credentials (every request is authenticated); 200 would mean no auth.
      if (svc === 'active' && code === 401) return pass(v, 'answers, and asks for credentials')
      if (svc === 'active' && code === 200) return fail(v, 'the registry answers without credentials', '`infra provision` restores its htpasswd authentication')
      return fail(v, 'the fleet registry does not answer: deploys cannot push and nodes cannot pull', '`infra exec bastion -- journalctl -u docker-registry -n 50`; `infra provision` restores it')
    },
  },
  {
    id: 'app-release',
    roles: ['web'],
    summary: 'the node has the current release (running on a serving node, created on a standby)',
    applies: hasApp,
    run: (ctx) => {
      const a = ctx.facts.app
      if (!a?.status) return fail('no infra-app', 'infra-app is missing on the node', '`infra provision` (it installs Docker and infra-app)')
      const current = currentOf(ctx.bastion)
      if (current === undefined) return skip('skipped: the release history on the bastion could not be read')
      if (current === null) return warn(a.status.release ?? 'none', 'no release has been deployed yet: the nodes serve nothing of yours', '`infra deploy --build DIR` (docs/DEPLOY.md)')
      const mine = a.status.release
      if (mine === current) return pass(mine, serving(ctx) ? 'runs the current release' : 'standby: has the current release')
      if (serving(ctx)) {
        return fail(mine ?? 'none', `serves ${mine ?? 'no release'}, but the current release is ${current}`, `\`infra rollback ${current}\` switches it back in place (or \`infra deploy --version <v>\` again)`)
      }
      return warn(mine ?? 'none', `standby: has ${mine ?? 'no release'}, not the current ${current}; if the scaler starts it, it would serve the wrong release`, '`infra scale up` brings it the current release first; or deploy again')
    },
  },
  {
    id: 'app-container',
    roles: ['web'],
    summary: "the current release's container is running, healthy and not restarting in a loop",
    applies: hasApp,
    run: (ctx) => {
      const s = ctx.facts.app?.status
      if (!s) return skip('skipped: no infra-app (see app-release)')
      if (!s.release) return skip('skipped: no release on this node')
      const v = `${s.release} ${s.state}, health ${s.health}, ${s.restarts} restarts`
      if (!serving(ctx) && s.state !== 'running') return pass(v, 'standby: the container waits, created, until the node is started')
      const logs = `\`infra logs ${ctx.host.name} --unit app -n 50\``
      if (s.restarts > RESTART_LOOP) return fail(v, `the container is restarting in a loop (${s.restarts} restarts, last exit code ${s.exit})`, `${logs}; fix the app and deploy, or \`infra rollback\``)
      if (s.state !== 'running') return fail(v, `the container is ${s.state} (exit code ${s.exit})`, `${logs}; \`infra exec ${ctx.host.name} -- infra-app up\` starts it again`)
      if (s.health !== 'ok') return fail(v, `the container does not answer its health path`, `${logs}; \`infra rollback\` if a deploy caused it`)
      return pass(v, 'running and healthy')
    },
  },
  {
    id: 'app-disk',
    roles: ['web'],
    summary: "room for images where Docker keeps them (/var/lib/docker)",
    applies: hasApp,
    run: ({facts, thresholds}) => {
      const d = facts.app?.dockerDisk
      if (!d) return skip('skipped: Docker\'s data directory could not be read')
      const v = `${d.usedPercent}% used, ${Math.round(d.availKb / 1024)} MiB free`
      const fix = '`infra exec NODE -- docker system df`; lower app.keep, or grow the disk'
      if (d.usedPercent >= thresholds.diskFailPercent) return fail(v, 'the next pull may not fit: a deploy would fail on this node', fix)
      if (d.usedPercent >= thresholds.diskWarnPercent) return warn(v, 'little room left for the next release\'s image', fix)
      return pass(v, 'room for the next image')
    },
  },
]
