/**
 * Where things live on a host: the one list of host paths of the tree. Renderers take `HostPaths`
 * (tests point them at temp files to run the real validators); the engine's and the agents' own
 * state lives under STATE_DIR.
 */

/** Where things live on a host. Tests point these at temp paths to run the real validators. */
export interface HostPaths {
  haproxyConfig: string
  /** Folder of the TLS PEM; the file is `<domain>.pem`. */
  haproxyCertDir: string
  /** Folder of the error pages; the files are `<code>.http`. */
  haproxyErrorDir: string
  haproxyStateFile: string
  haproxyAdminSocket: string
  /** HAProxy's chroot; null to run without one (tests running HAProxy as a plain process). */
  haproxyChroot: string | null
  /** systemd drop-in that saves server states before each reload. */
  haproxyDropIn: string
  /** Script the drop-in runs to save server states. */
  haproxySaveState: string
  nftablesConfig: string
  sshdConfig: string
  sshdDropInDir: string
  /** Our drop-in; its name sorts first so its values win (sshd keeps the first value it reads). */
  sshdDropIn: string
  /** Folder of the SSH host keys (ssh_host_ed25519_key, ssh_host_rsa_key). */
  sshHostKeyDir: string
  /** Script that makes sure the host keys sshd offers exist and are strong enough (run before sshd reloads). */
  sshHostKeysScript: string
  nginxConfig: string
  nginxSite: string
  nginxDefaultSite: string
  nginxLogDir: string
  webRoot: string
  aptAutoUpgrades: string
  aptUnattended: string
  sysctl: string
  /** Options of prometheus-node-exporter (its systemd unit reads ARGS from it). */
  nodeExporterDefaults: string
  /** The node exporter's textfile collector folder (the agents write *.prom files there). */
  nodeExporterTextfileDir: string
}

export const DEFAULT_PATHS: HostPaths = {
  haproxyConfig: '/etc/haproxy/haproxy.cfg',
  haproxyCertDir: '/etc/haproxy/certs',
  haproxyErrorDir: '/etc/haproxy/errors/infra',
  haproxyStateFile: '/var/lib/haproxy/server-state',
  haproxyAdminSocket: '/run/haproxy/admin.sock',
  haproxyChroot: '/var/lib/haproxy',
  haproxyDropIn: '/etc/systemd/system/haproxy.service.d/infra.conf',
  haproxySaveState: '/usr/local/sbin/infra-haproxy-save-state',
  nftablesConfig: '/etc/nftables.conf',
  sshdConfig: '/etc/ssh/sshd_config',
  sshdDropInDir: '/etc/ssh/sshd_config.d',
  sshdDropIn: '/etc/ssh/sshd_config.d/00-infra.conf',
  sshHostKeyDir: '/etc/ssh',
  sshHostKeysScript: '/usr/local/sbin/infra-ssh-host-keys',
  nginxConfig: '/etc/nginx/nginx.conf',
  nginxSite: '/etc/nginx/conf.d/infra.conf',
  nginxDefaultSite: '/etc/nginx/sites-enabled/default',
  nginxLogDir: '/var/log/nginx',
  webRoot: '/var/www/infra',
  aptAutoUpgrades: '/etc/apt/apt.conf.d/20auto-upgrades',
  aptUnattended: '/etc/apt/apt.conf.d/52infra-unattended',
  sysctl: '/etc/sysctl.d/60-infra.conf',
  nodeExporterDefaults: '/etc/default/prometheus-node-exporter',
  nodeExporterTextfileDir: '/var/lib/prometheus/node-exporter',
}

/** infra's state on every host (locks, previous versions, markers). */
export const STATE_DIR = '/var/lib/infra'
/** Previous versions of the files each run replaced, one folder per run (the last few runs). */
export const PREV_DIR = `${STATE_DIR}/prev`
/** The host lock one provision holds while it changes the host. */
export const LOCK_FILE = `${STATE_DIR}/lock`
/** Written on a host at the end of its first successful apply. */
export const PROVISIONED_MARKER = `${STATE_DIR}/provisioned`
/** Pending-reload markers (src/plan/script.ts writes and clears them). */
export const PENDING_DIR = `${STATE_DIR}/pending`

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
  /** The alert webhook URL (alerts.webhookEnv): a bearer secret, mode 600, never in a script, a diff or a log. */
  webhookSecret: '/etc/infra/alert-webhook',
  /** The web nodes' host keys the agents accept: the operator's pins, written by provision. */
  knownHosts: '/var/lib/infra/agent/known_hosts',
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

/** The application's files (an inventory with `app`; docs/DEPLOY.md). */
export const APP_PATHS = {
  /** On web nodes: the script that runs the app's containers (deploy, rollback, the agents call it). */
  script: '/usr/local/sbin/infra-app',
  /** On web nodes: per-release env files and image references, the current release. */
  stateDir: '/var/lib/infra/app',
  /** On web nodes: nginx's upstream, rewritten by `infra-app switch` (seeded by provision). */
  upstream: '/etc/nginx/infra-app-upstream.conf',
  dockerDaemon: '/etc/docker/daemon.json',
  /** Docker trusts a registry's CA from certs.d/<host:port>/ca.crt. */
  dockerCertsDir: '/etc/docker/certs.d',
  /** Docker's credentials for the fleet registry (root's). */
  dockerAuth: '/root/.docker/config.json',
  /** On web nodes: Docker's login to an outside registry (app.registry), a DOCKER_CONFIG of its own (0700). */
  registryLogin: '/var/lib/infra/app/registry-login',
  /** On the bastion: the registry (Debian's docker-registry). */
  registryConfig: '/etc/docker/registry/config.yml',
  registryCert: '/etc/docker/registry/tls.crt',
  registryKey: '/etc/docker/registry/tls.key',
  registryHtpasswd: '/etc/docker/registry/htpasswd',
  registryData: '/var/lib/docker-registry',
  /** On the bastion: the release history everyone who deploys shares, and the deploy lock. */
  releases: '/var/lib/infra/app/releases.json',
  deployLock: '/var/lib/infra/app/deploy.lock',
  /** On the bastion: build contexts and archives in transit. */
  buildDir: '/var/lib/infra/app/build',
} as const

/** Where the sites' deploy units live (docs/SITES.md): one folder per unit on nodes and the bastion. */
export const UNITS_DIR = '/var/lib/infra/apps'
/** On web nodes: each unit's nginx server block (`KEY.conf`) and upstream (`KEY.upstream`), included by the node's site. */
export const NGINX_UNITS_DIR = '/etc/nginx/infra-apps'
/** On web nodes: the `listen` line the units' server blocks include (the node's private address, web.port). */
export const NGINX_LISTEN_FILE = '/etc/nginx/infra-listen.conf'

/**
 * The files of one deploy unit: the single app of an inventory with `app` (key undefined: the
 * historical APP_PATHS layout), or a site, one of its environments, or a preview (key
 * "shop", "shop--preprod", "shop--p-feature-x").
 */
export interface UnitPaths {
  /** The unit's key (undefined for the single app). */
  readonly key: string | undefined
  /** `infra-app` with the unit selected: `/usr/local/sbin/infra-app` or `... -u KEY`. */
  readonly script: string
  /** On web nodes: the unit's state (releases/, current). */
  readonly stateDir: string
  readonly releasesDir: string
  /** On web nodes: nginx's upstream for the unit. */
  readonly upstream: string
  /** On web nodes: the unit's nginx server block (undefined for the single app: the node's default server). */
  readonly nginxConf: string | undefined
  /** On the bastion: the release history and the deploy lock. */
  readonly history: string
  readonly deployLock: string
  /** Container names: PREFIX-ID (and PREFIX-release-ID for the release command). */
  readonly containerPrefix: string
}

export function unitPaths(key?: string): UnitPaths {
  if (key === undefined) {
    return Object.freeze({
      key,
      script: APP_PATHS.script,
      stateDir: APP_PATHS.stateDir,
      releasesDir: `${APP_PATHS.stateDir}/releases`,
      upstream: APP_PATHS.upstream,
      nginxConf: undefined,
      history: APP_PATHS.releases,
      deployLock: APP_PATHS.deployLock,
      containerPrefix: 'app',
    })
  }
  if (!/^[a-z][a-z0-9-]{0,120}$/.test(key)) throw new Error(`not a unit key: ${key}`)
  const dir = `${UNITS_DIR}/${key}`
  return Object.freeze({
    key,
    script: `${APP_PATHS.script} -u ${key}`,
    stateDir: dir,
    releasesDir: `${dir}/releases`,
    upstream: `${NGINX_UNITS_DIR}/${key}.upstream`,
    nginxConf: `${NGINX_UNITS_DIR}/${key}.conf`,
    history: `${dir}/releases.json`,
    deployLock: `${dir}/deploy.lock`,
    containerPrefix: key,
  })
}
