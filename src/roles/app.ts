/**
 * The application's runtime (an inventory with `app`; docs/DEPLOY.md): Docker on the web nodes
 * and the bastion (the remote builder), the fleet registry on the bastion, and `infra-app` on the
 * web nodes, the script deploy, rollback and the agents run. Pure: inventory + fleet PKI => files.
 *
 * Why Docker runs without its own iptables rules: our nftables files start with `flush ruleset`
 * and drop forwarded traffic, which would wipe and block Docker's rules on every firewall reload.
 * Containers are published on loopback only (`-p 127.0.0.1:SLOT:PORT`, Docker's userland proxy)
 * and reached by nginx, so no rule is needed, and no container port is reachable from outside.
 */
import {configOf} from '../inventory/config.js'
import type {HostSpec} from '../inventory/schema.js'
import {APP_PATHS, NGINX_UNITS_DIR, UNITS_DIR} from '../host/paths.js'
import {APP_SLOT_PORTS, UNIT_SLOT_RANGE} from '../host/ports.js'
import {hasApps} from '../inventory/units.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {ConfigError} from '../lib/errors.js'
import {MANAGED, type RenderContext, renderTemplate} from './common.js'

/** Does this host run Docker (every host of an inventory with an app)? */
export function runsApp(ctx: RenderContext): boolean {
  return hasApps(ctx.inventory)
}

function pki(ctx: RenderContext): NonNullable<RenderContext['fleet']> {
  if (!ctx.fleet) {
    throw new ConfigError('the inventory has an app, but the fleet PKI (registry CA, certificate, password) was not prepared', {
      hint: 'Run `infra provision`: it creates fleet/ beside the inventory.',
    })
  }
  return ctx.fleet
}

const file = (path: string, content: string, mode = 0o644, extra: Partial<DesiredFile> = {}): DesiredFile => ({path, content, mode, owner: 'root', group: 'root', ...extra})

/** Docker's daemon settings, its trust of the fleet CA and its credentials for the fleet registry. */
function dockerFiles(ctx: RenderContext): DesiredFile[] {
  const fleet = pki(ctx)
  const registry = configOf(ctx.inventory).registryAddress
  const auth = JSON.stringify({auths: {[registry]: {auth: fleet.dockerAuth}}}, null, 2) + '\n'
  return [
    file(APP_PATHS.dockerDaemon, renderTemplate('docker/daemon.json.hbs', {}, ctx.templateOverridesDir), 0o644, {notify: [{service: 'docker', action: 'restart'}]}),
    file(`${APP_PATHS.dockerCertsDir}/${registry}/ca.crt`, fleet.caCertPem),
    file(APP_PATHS.dockerAuth, auth, 0o600, {secret: true}),
  ]
}

export function appWebFiles(ctx: RenderContext): DesiredFile[] {
  if (!runsApp(ctx)) return []
  const inv = ctx.inventory
  const t = ctx.templateOverridesDir
  const script = renderTemplate(
    'app/infra-app.sh.hbs',
    {
      managed: MANAGED,
      stateDir: APP_PATHS.stateDir,
      upstream: APP_PATHS.upstream,
      slotA: APP_SLOT_PORTS[0],
      slotB: APP_SLOT_PORTS[1],
      containerPort: inv.app?.port ?? 8080,
      unitsDir: UNITS_DIR,
      nginxUnitsDir: NGINX_UNITS_DIR,
      unitSlotFirst: UNIT_SLOT_RANGE[0],
      unitSlotLast: UNIT_SLOT_RANGE[1],
      timeoutSeconds: Math.ceil(configOf(inv).ms.deployTimeout / 1000),
      intervalSeconds: Math.max(1, Math.round(configOf(inv).ms.appHealthInterval / 1000)),
    },
    t,
  )
  return [
    ...dockerFiles(ctx),
    file(APP_PATHS.script, script, 0o755, {validate: 'bash -n {}'}),
    // Deploy owns it after the first release: provision only seeds it (nginx needs a server to start).
    file(APP_PATHS.upstream, renderTemplate('nginx/app-upstream.conf.hbs', {slot: APP_SLOT_PORTS[0]}, t), 0o644, {ifAbsent: true}),
  ]
}

export function appBastionFiles(ctx: RenderContext, host: HostSpec): DesiredFile[] {
  if (!runsApp(ctx)) return []
  const fleet = pki(ctx)
  const inv = ctx.inventory
  const restart = [{service: 'docker-registry', action: 'restart' as const}]
  const config = renderTemplate(
    'registry/config.yml.hbs',
    {
      managed: MANAGED,
      dataDir: APP_PATHS.registryData,
      address: `${host.privateAddress}:${inv.registry.port}`,
      certPath: APP_PATHS.registryCert,
      keyPath: APP_PATHS.registryKey,
      htpasswdPath: APP_PATHS.registryHtpasswd,
    },
    ctx.templateOverridesDir,
  )
  return [
    ...dockerFiles(ctx),
    // The registry runs as its own user (docker-registry): it reads its key and password file through its group.
    file(APP_PATHS.registryCert, fleet.certPem, 0o644, {notify: restart}),
    file(APP_PATHS.registryKey, fleet.keyPem, 0o640, {group: 'docker-registry', secret: true, notify: restart}),
    file(APP_PATHS.registryHtpasswd, fleet.htpasswd + '\n', 0o640, {group: 'docker-registry', secret: true, notify: restart}),
    file(APP_PATHS.registryConfig, config, 0o644, {notify: restart}),
  ]
}

/** After a (re)start: the registry answers on its private address (401 without credentials is an answer). */
export function registryVerify(address: string): string {
  return `[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert ${APP_PATHS.dockerCertsDir}/${address}/ca.crt https://${address}/v2/)" = 401 ]`
}

export function appServices(ctx: RenderContext, host: HostSpec): DesiredService[] {
  if (!runsApp(ctx)) return []
  const services: DesiredService[] = [{name: 'docker', enabled: true, running: true, verify: 'docker info >/dev/null'}]
  if (host.role === 'bastion') {
    services.push({name: 'docker-registry', enabled: true, running: true, verify: registryVerify(configOf(ctx.inventory).registryAddress)})
  }
  return services
}
