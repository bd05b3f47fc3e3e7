/**
 * The self-healing and autoscaling agents (docs/AGENTS.md): shell scripts and a cron file on the
 * bastion, a forced-command agent and the bastion's restricted key on every web node.
 * Pure: (inventory, the bastion agents' public key, the alert secrets, the operator's host key
 * pins) => files.
 */
import {configOf} from '../inventory/config.js'
import type {HostSpec, WebNode} from '../inventory/schema.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {findEntries, hostPattern, parseKnownHosts} from '../ssh/known-hosts.js'
import {identityOf} from '../ssh/pins.js'
import {MANAGED, pathsOf, type RenderContext, renderTemplate} from './common.js'
import {edgePaths} from './edge.js'
import {agentBackends} from './sites.js'
import {shellWord} from '../host/quote.js'
import {AGENT_PATHS, APP_PATHS} from '../host/paths.js'


/**
 * What the agents' files need beyond the shared render context, read on this machine by
 * src/plan/prepare.ts (carried on the context object, so bastion.ts passes them through as is).
 */
export interface AgentsRenderInputs {
  /** The alert webhook URL, from the environment variable alerts.webhookEnv. Secret: only in AGENT_PATHS.webhookSecret. */
  alertWebhook?: string
  /** The operator's known_hosts (beside the inventory): the web nodes' pins seed the agents' known_hosts. */
  operatorKnownHosts?: string
}
export type AgentsContext = RenderContext & AgentsRenderInputs

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

/** Whole seconds, at least 1 (the agents' shell counts in seconds). */
function seconds(ms: number): number {
  return Math.max(1, Math.round(ms / 1000))
}

export function renderAgentsLib(ctx: AgentsContext): string {
  const inv = ctx.inventory
  const config = configOf(inv)
  const a = inv.alerts
  const nodes = inv.web.nodes.map((n) => `${n.name} ${n.address} ${n.standby ? 1 : 0}`).join('\n')
  return renderTemplate(
    'agents/lib.sh.hbs',
    {
      managed: MANAGED,
      nodes: shellWord(nodes),
      port: inv.web.port,
      healthPath: shellWord(config.healthPath),
      domain: shellWord(inv.domain.toLowerCase()),
      adminSocket: shellWord(pathsOf(ctx).haproxyAdminSocket),
      // web, then each site's backends (src/roles/sites.ts): hap_set drives a node in all of them.
      backends: shellWord(agentBackends(inv).join(' ')),
      healEvery: seconds(config.ms.healingEvery),
      healAttempts: inv.healing.attempts,
      cpuPercent: Math.round(inv.scaling.cpuPercent),
      sustain: seconds(config.ms.scalingSustainFor),
      recheck: seconds(config.ms.scalingRecheckEvery),
      min: inv.scaling.min,
      max: inv.scaling.max,
      margin: inv.scaling.margin,
      drainTimeout: DRAIN_TIMEOUT_S,
      alertEmail: shellWord(a.email ?? ''),
      // Only where the URL is: the URL itself never goes into a script.
      alertWebhookFile: shellWord(a.webhookEnv ? AGENT_PATHS.webhookSecret : ''),
      smtpUrl: shellWord(a.smtp?.url ?? ''),
      smtpFrom: shellWord(a.smtp?.from ?? `infra@${inv.domain.toLowerCase()}`),
      smtpUser: shellWord(a.smtp?.user ?? ''),
      smtpSecret: AGENT_PATHS.smtpSecret,
      bastionName: shellWord(inv.bastion.name),
      certFile: shellWord(config.tlsPemPath(pathsOf(ctx))),
      bansScript: shellWord(edgePaths(pathsOf(ctx)).bansScript),
      metricsDir: shellWord(pathsOf(ctx).nodeExporterTextfileDir),
      sshPort: inv.ssh.port,
      knownHosts: AGENT_PATHS.knownHosts,
      policyFile: AGENT_PATHS.policy,
    },
    ctx.templateOverridesDir,
  )
}

export function renderPolicy(ctx: RenderContext): string {
  return renderTemplate('agents/policy.awk.hbs', {managed: MANAGED}, ctx.templateOverridesDir)
}

export function renderNodeAgent(ctx: RenderContext): string {
  return renderTemplate(
    'agents/node-agent.sh.hbs',
    {managed: MANAGED, service: WEB_SERVICE, agentKeysFile: `${AGENT_PATHS.agentKeysDir}/root`, app: ctx.inventory.app !== undefined, appScript: APP_PATHS.script, units: Object.keys(ctx.inventory.sites ?? {}).length > 0, unitsScript: APP_PATHS.script},
    ctx.templateOverridesDir,
  )
}

/** Each web node with its keys pinned in the operator's known_hosts (`@revoked` keys left out; none: not pinned yet). */
export function webNodePins(ctx: AgentsContext): {node: WebNode; keys: string[]}[] {
  const port = ctx.inventory.ssh.port
  const pins = parseKnownHosts(ctx.operatorKnownHosts ?? '')
  const revoked = new Set(pins.entries.filter((e) => e.marker === '@revoked').map((e) => e.key))
  return ctx.inventory.web.nodes.map((node) => ({
    node,
    keys: [...new Set(findEntries(pins, identityOf(node, port)).filter((e) => !revoked.has(e.key)).map((e) => `${e.keyType} ${e.key}`))],
  }))
}

/**
 * The agents' known_hosts on the bastion: each web node's host keys as the operator pinned them in
 * the known_hosts beside the inventory (under the node's name or address; @revoked keys left out),
 * written for the address and port the agents connect to. The agents hold a node listed here to
 * these keys (StrictHostKeyChecking yes). A node not pinned yet gets a comment line instead: on a
 * first provision the bastion is rendered before provision first connects to the web nodes (and
 * pins them), so the agents accept such a node's key once (accept-new) until the next provision
 * writes the operator's pin here, replacing whatever the agents added.
 */
export function renderAgentKnownHosts(ctx: AgentsContext): string {
  const port = ctx.inventory.ssh.port
  const lines = [`# ${MANAGED}`, "# The web nodes' host keys as pinned in the operator's known_hosts; the agents accept no other key for them."]
  for (const {node, keys} of webNodePins(ctx)) {
    if (keys.length === 0) lines.push(`# ${node.name} ${node.address}: not pinned yet (the agents accept its key once; the next infra provision writes the pinned one)`)
    for (const key of keys) lines.push(`${hostPattern(node.address, port)} ${key}`)
  }
  return lines.join('\n') + '\n'
}

/** Files the agents need on the bastion (scripts, policy, cron, known_hosts, alert secrets). State files are the agents' own. */
export function agentBastionFiles(ctx: AgentsContext): DesiredFile[] {
  const t = ctx.templateOverridesDir
  const P = AGENT_PATHS
  const script = (path: string, content: string): DesiredFile => ({path, content, mode: 0o755, owner: 'root', group: 'root', validate: 'sh -n {}'})
  const files: DesiredFile[] = [
    {path: P.lib, content: renderAgentsLib(ctx), mode: 0o644, owner: 'root', group: 'root', validate: 'sh -n {}'},
    {path: P.policy, content: renderPolicy(ctx), mode: 0o644, owner: 'root', group: 'root', validate: "awk -f {} /dev/null"},
    script(P.healthcheck, renderTemplate('agents/healthcheck.sh.hbs', {managed: MANAGED, libFile: P.lib, app: ctx.inventory.app !== undefined}, t)),
    script(P.scaler, renderTemplate('agents/scaler.sh.hbs', {managed: MANAGED, libFile: P.lib, policyFile: P.policy}, t)),
    {
      path: P.cron,
      content: renderTemplate('agents/cron.hbs', {managed: MANAGED, healthcheck: P.healthcheck, scaler: P.scaler}, t),
      mode: 0o644,
      owner: 'root',
      group: 'root',
    },
  ]
  // Public keys only; in the agents' 700 folder (a first apply creates it 755, the key command then makes it 700).
  files.push({path: P.knownHosts, content: renderAgentKnownHosts(ctx), mode: 0o644, owner: 'root', group: 'root'})
  if (ctx.smtpPassword) {
    files.push({path: P.smtpSecret, content: ctx.smtpPassword, mode: 0o600, owner: 'root', group: 'root', secret: true})
  }
  if (ctx.alertWebhook && ctx.inventory.alerts.webhookEnv) {
    files.push({path: P.webhookSecret, content: ctx.alertWebhook, mode: 0o600, owner: 'root', group: 'root', secret: true})
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
