/**
 * A web node: nginx on the private address (a page naming the node, or a proxy to the
 * application), and a firewall that lets only the bastion in. Pure: inventory => files.
 */
import {configOf} from '../inventory/config.js'
import type {HostSpec} from '../inventory/schema.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {agentWebFiles} from './agents.js'
import {MANAGED, nftablesFile, pathsOf, type RenderContext, renderTemplate, webNodeOf} from './common.js'
import {shellWord} from '../host/quote.js'
import {APP_PATHS, type HostPaths, NGINX_LISTEN_FILE, NGINX_UNITS_DIR} from '../host/paths.js'
import {APP_SLOT_PORTS, NODE_EXPORTER_PORT} from '../host/ports.js'

export function renderWebNftables(ctx: RenderContext, host: HostSpec): string {
  const inv = ctx.inventory
  webNodeOf(inv, host)
  return renderTemplate(
    'nftables/web.nft.hbs',
    {
      managed: MANAGED,
      name: host.name,
      bastionAddress: inv.bastion.privateAddress,
      privateNetwork: configOf(inv).privateNetwork,
      webPorts: [...new Set([inv.web.port, NODE_EXPORTER_PORT])].sort((a, b) => a - b),
      sshPort: inv.ssh.port,
    },
    ctx.templateOverridesDir,
  )
}

export function renderNginx(ctx: RenderContext, host: HostSpec): string {
  const inv = ctx.inventory
  const node = webNodeOf(inv, host)
  const p = pathsOf(ctx)
  return renderTemplate(
    'nginx/site.conf.hbs',
    {
      managed: MANAGED,
      name: node.name,
      address: node.address,
      port: inv.web.port,
      // An app (infra deploy) or a service of the operator's own on web.appPort: nginx proxies to it.
      appPort: inv.app ? APP_SLOT_PORTS[0] : (inv.web.appPort ?? null),
      app: inv.app !== undefined,
      upstreamFile: APP_PATHS.upstream,
      proxyTarget: inv.app ? 'http://infra_app' : `http://127.0.0.1:${inv.web.appPort ?? 0}`,
      healthPath: configOf(inv).healthPath,
      units: Object.keys(inv.sites ?? {}).length > 0,
      unitsConf: `${NGINX_UNITS_DIR}/*.conf`,
      upgradeMap: inv.app !== undefined || inv.web.appPort !== undefined || Object.keys(inv.sites ?? {}).length > 0,
      webRoot: p.webRoot,
      logDir: p.nginxLogDir,
    },
    ctx.templateOverridesDir,
  )
}

export function renderIndexPage(ctx: RenderContext, host: HostSpec): string {
  const node = webNodeOf(ctx.inventory, host)
  return renderTemplate('nginx/index.html.hbs', {name: node.name, domain: ctx.inventory.domain}, ctx.templateOverridesDir)
}

/**
 * Validate a staged nginx site in the whole configuration: a copy of the main nginx.conf (kept
 * in its folder, so its relative includes resolve) whose `conf.d/*.conf` include is replaced by
 * the staged file, then `nginx -t` on it. Fails when the main file has no such include.
 */
export function nginxValidateCommand(p: HostPaths): string {
  const confDir = p.nginxSite.slice(0, p.nginxSite.lastIndexOf('/'))
  const main = p.nginxConfig
  const copy = `${main.slice(0, main.lastIndexOf('/'))}/.infra-validate.conf`
  const line = `include ${confDir}/*.conf;`
  const awk =
    '{ t = $0; gsub(/^[ \\t]+|[ \\t]+$/, "", t); if (t == d) { print "include \\"" f "\\";"; m = 1 } else print } END { exit !m }'
  const script = [
    `c=${shellWord(copy)}`,
    'trap \'rm -f "$c"\' EXIT',
    `awk -v f="$1" -v d=${shellWord(line)} ${shellWord(awk)} ${shellWord(main)} > "$c" || { echo ${shellWord(`${main} has no line "${line}"`)} >&2; exit 1; }`,
    'nginx -t -q -c "$c"',
  ].join('\n')
  return `sh -c ${shellWord(script)} sh {}`
}

export function webFiles(ctx: RenderContext, host: HostSpec): DesiredFile[] {
  const p = pathsOf(ctx)
  const files: DesiredFile[] = [
    nftablesFile(ctx, renderWebNftables(ctx, host)),
    {
      path: p.nginxSite,
      content: renderNginx(ctx, host),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate: nginxValidateCommand(p),
      notify: [{service: 'nginx', action: 'reload'}],
    },
  ]
  if (ctx.inventory.web.appPort === undefined && ctx.inventory.app === undefined) {
    files.push({path: `${p.webRoot}/index.html`, content: renderIndexPage(ctx, host), mode: 0o644, owner: 'root', group: 'root'})
  }
  if (Object.keys(ctx.inventory.sites ?? {}).length > 0) {
    // The sites' server blocks (written by deploy) listen where the default server does, and name the node as it does.
    const node = webNodeOf(ctx.inventory, host)
    files.push({path: NGINX_LISTEN_FILE, content: `# ${MANAGED}\n# Included by each site unit's server block (docs/SITES.md).\nlisten ${node.address}:${ctx.inventory.web.port};\nadd_header X-Served-By ${node.name} always;\n`, mode: 0o644, owner: 'root', group: 'root', notify: [{service: 'nginx', action: 'reload'}]})
  }
  // The node agent and the bastion agents' restricted key (src/roles/agents.ts).
  files.push(...agentWebFiles(ctx, host))
  return files
}

export function webServices(ctx: RenderContext, host: HostSpec): DesiredService[] {
  const port = ctx.inventory.web.port
  // After a reload, nginx must really listen on the private address: a reload cannot move a
  // listener from 0.0.0.0 (Debian's default site) to one address, so the apply engine restarts it.
  const verify = `ss -Hltn 'sport = :${port}' | grep -qF '${host.privateAddress}:${port} '`
  return [
    host.standby
      ? // The scaler starts and stops nginx on standby nodes; the first provision leaves it stopped.
        {name: 'nginx', enabled: true, running: 'keep', initial: false, check: 'nginx -t -q', verify}
      : {name: 'nginx', enabled: true, running: true, check: 'nginx -t -q', verify},
  ]
}

export function webAbsent(ctx: RenderContext): string[] {
  // Debian's default site listens on every address, port 80: only our site should answer.
  return [pathsOf(ctx).nginxDefaultSite]
}
