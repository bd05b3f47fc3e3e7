/**
 * The self-healing and autoscaling agents (docs/AGENTS.md): shell scripts and a cron file on the
 * bastion, a forced-command agent and the bastion's restricted key on every web node.
 * Pure: (inventory, the bastion agents' public key) => files.
 */
import {durationMs} from '../inventory/schema.js'
import type {HostSpec} from '../inventory/schema.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {healthPath, tlsPemPath} from './bastion.js'
import {MANAGED, pathsOf, type RenderContext, renderTemplate, shq} from './common.js'
import {edgePaths} from './edge.js'

/** Files and paths of the agents (the `doctor` reads the heartbeats, the cron file and the pause flag). */
export const AGENT_PATHS = {
  stateDir: '/var/lib/infra',
  keyDir: '/var/lib/infra/agent',
  key: '/var/lib/infra/agent/id_ed25519',
  publicKey: '/var/lib/infra/agent/id_ed25519.pub',
  lib: '/usr/local/lib/infra/agents.sh',
  policy: '/usr/local/lib/infra/policy.awk',
  healthcheck: '/usr/local/sbin/infra-healthcheck',
  scaler: '/usr/local/sbin/infra-scaler',
  cron: '/etc/cron.d/infra-agents',
  smtpSecret: '/etc/infra/smtp-password',
  nodesState: '/var/lib/infra/nodes.state',
  healthcheckHeartbeat: '/var/lib/infra/healthcheck.heartbeat',
  scalerHeartbeat: '/var/lib/infra/scaler.heartbeat',
  scalerPaused: '/var/lib/infra/scaler.paused',
  lock: '/run/infra-agents.lock',
  /** On web nodes. */
  nodeAgent: '/usr/local/sbin/infra-node-agent',
  /** On web nodes: sshd's second AuthorizedKeysFile (the operator's ~/.ssh/authorized_keys stays untouched). */
  agentKeysDir: '/etc/ssh/infra_agent_keys',
} as const

/** The web service the node agent controls. */
export const WEB_SERVICE = 'nginx'

/** How long scale-in waits for a draining node's sessions to end. */
export const DRAIN_TIMEOUT_S = 30

/**
 * Run on the bastion before the web nodes are planned (provision's bastion fact): creates the
 * agents' key pair once (it never leaves the bastion) and prints the public key. The dry run
 * only reads it (prints nothing when it does not exist yet).
 */
export function agentKeyCommand(dryRun: boolean): string {
  const {keyDir, key, publicKey} = AGENT_PATHS
  if (dryRun) return `cat ${publicKey} 2>/dev/null || true`
  return [
    `install -d -m 700 ${keyDir}`,
    `[ -s ${key} ] || ssh-keygen -q -t ed25519 -N '' -C infra-agents@bastion -f ${key} </dev/null >/dev/null`,
    `cat ${publicKey}`,
  ].join(' && ')
}

/** A public key line as ssh-keygen writes it (type, base64, optional comment). */
export function parseAgentPublicKey(text: string): string | undefined {
  const line = text.split('\n').map((l) => l.trim()).find((l) => /^ssh-ed25519 [A-Za-z0-9+/=]+( [\w.@-]+)?$/.test(l))
  return line
}

/** The restricted line on web nodes: only the node agent, only from the bastion's private address. */
export function agentAuthorizedKey(ctx: RenderContext, publicKey: string): string {
  const [type, b64] = publicKey.trim().split(/\s+/)
  return `command="${AGENT_PATHS.nodeAgent}",restrict,from="${ctx.inventory.bastion.privateAddress}" ${type} ${b64} infra-agents@${ctx.inventory.bastion.name}`
}

function seconds(d: string): number {
  return Math.max(1, Math.round(durationMs(d) / 1000))
}

export function renderAgentsLib(ctx: RenderContext): string {
  const inv = ctx.inventory
  const a = inv.alerts
  const nodes = inv.web.nodes.map((n) => `${n.name} ${n.address} ${n.standby ? 1 : 0}`).join('\n')
  return renderTemplate(
    'agents/lib.sh.hbs',
    {
      managed: MANAGED,
      nodes: shq(nodes),
      port: inv.web.port,
      healthPath: shq(healthPath(ctx)),
      domain: shq(inv.domain.toLowerCase()),
      adminSocket: shq(pathsOf(ctx).haproxyAdminSocket),
      healEvery: seconds(inv.healing.every),
      healAttempts: inv.healing.attempts,
      cpuPercent: Math.round(inv.scaling.cpuPercent),
      sustain: seconds(inv.scaling.sustainFor),
      recheck: seconds(inv.scaling.recheckEvery),
      min: inv.scaling.min,
      max: inv.scaling.max,
      margin: inv.scaling.margin,
      drainTimeout: DRAIN_TIMEOUT_S,
      alertEmail: shq(a.email ?? ''),
      alertWebhook: shq(a.webhook ?? ''),
      smtpUrl: shq(a.smtp?.url ?? ''),
      smtpFrom: shq(a.smtp?.from ?? `infra@${inv.domain.toLowerCase()}`),
      smtpUser: shq(a.smtp?.user ?? ''),
      smtpSecret: AGENT_PATHS.smtpSecret,
      bastionName: shq(inv.bastion.name),
      certFile: shq(tlsPemPath(ctx, pathsOf(ctx))),
      bansScript: shq(edgePaths(pathsOf(ctx)).bansScript),
      metricsDir: shq(pathsOf(ctx).nodeExporterTextfileDir),
      sshPort: inv.ssh.port,
      policyFile: AGENT_PATHS.policy,
    },
    ctx.templateOverridesDir,
  )
}

export function renderPolicy(ctx: RenderContext): string {
  return renderTemplate('agents/policy.awk.hbs', {managed: MANAGED}, ctx.templateOverridesDir)
}

export function renderNodeAgent(ctx: RenderContext): string {
  return renderTemplate('agents/node-agent.sh.hbs', {managed: MANAGED, service: WEB_SERVICE, agentKeysFile: `${AGENT_PATHS.agentKeysDir}/root`}, ctx.templateOverridesDir)
}

/** Files the agents need on the bastion (scripts, policy, cron). State files are the agents' own. */
export function agentBastionFiles(ctx: RenderContext): DesiredFile[] {
  const t = ctx.templateOverridesDir
  const P = AGENT_PATHS
  const script = (path: string, content: string): DesiredFile => ({path, content, mode: 0o755, owner: 'root', group: 'root', validate: 'sh -n {}'})
  const files: DesiredFile[] = [
    {path: P.lib, content: renderAgentsLib(ctx), mode: 0o644, owner: 'root', group: 'root', validate: 'sh -n {}'},
    {path: P.policy, content: renderPolicy(ctx), mode: 0o644, owner: 'root', group: 'root', validate: "awk -f {} /dev/null"},
    script(P.healthcheck, renderTemplate('agents/healthcheck.sh.hbs', {managed: MANAGED, libFile: P.lib}, t)),
    script(P.scaler, renderTemplate('agents/scaler.sh.hbs', {managed: MANAGED, libFile: P.lib, policyFile: P.policy}, t)),
    {
      path: P.cron,
      content: renderTemplate('agents/cron.hbs', {managed: MANAGED, healthcheck: P.healthcheck, scaler: P.scaler}, t),
      mode: 0o644,
      owner: 'root',
      group: 'root',
    },
  ]
  if (ctx.smtpPassword) {
    files.push({path: P.smtpSecret, content: ctx.smtpPassword, mode: 0o600, owner: 'root', group: 'root', secret: true})
  }
  return files
}

export function agentBastionServices(): DesiredService[] {
  return [{name: 'cron', enabled: true, running: true}]
}

/**
 * On a web node: the node agent, and (once the bastion's public key is known) the restricted key
 * in sshd's second AuthorizedKeysFile. Without a key (a dry run before the first provision) the
 * key file is left alone.
 */
export function agentWebFiles(ctx: RenderContext, _host: HostSpec): DesiredFile[] {
  const files: DesiredFile[] = [
    {path: AGENT_PATHS.nodeAgent, content: renderNodeAgent(ctx), mode: 0o755, owner: 'root', group: 'root', validate: 'sh -n {}'},
  ]
  if (ctx.agentPublicKey) {
    files.push({
      path: `${AGENT_PATHS.agentKeysDir}/root`,
      content: `# ${MANAGED}\n# The bastion agents' key: only ${AGENT_PATHS.nodeAgent}, only from the bastion.\n${agentAuthorizedKey(ctx, ctx.agentPublicKey)}\n`,
      mode: 0o644,
      owner: 'root',
      group: 'root',
    })
  }
  return files
}
