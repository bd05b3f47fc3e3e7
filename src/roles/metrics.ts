/**
 * Metrics on every host: Debian's prometheus-node-exporter on the private address of a web node
 * (the firewall lets only the bastion in) and on loopback on the bastion, whose textfile
 * collector publishes the agents' own metrics. HAProxy's stats frontend on the bastion's private
 * address re-publishes each node exporter at /nodes/<host>/metrics (src/templates/haproxy), so one
 * Prometheus target (the bastion's private address) covers the fleet. Pure: inventory => files.
 */
import type {HostSpec} from '../inventory/schema.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {HAPROXY_STATS_PORT, MANAGED, NODE_EXPORTER_PORT, pathsOf, type RenderContext, renderTemplate} from './common.js'

/** Collectors that only report hardware or services the hosts do not have (noise in every scrape). */
const DISABLED_COLLECTORS = ['infiniband', 'nfs', 'nfsd', 'xfs', 'zfs', 'btrfs', 'fibrechannel', 'tapestats', 'powersupplyclass'] as const

export const NODE_EXPORTER_SERVICE = 'prometheus-node-exporter'

/** Where a host's node exporter listens: the private address (web) or loopback (bastion). */
export function nodeExporterListen(host: HostSpec): string {
  return `${host.role === 'bastion' ? '127.0.0.1' : host.privateAddress}:${NODE_EXPORTER_PORT}`
}

/** The path at which the bastion's HAProxy publishes a host's node exporter. */
export function nodeMetricsPath(name: string): string {
  return `/nodes/${name}/metrics`
}

/** Every node exporter the bastion publishes: name, role and the address HAProxy connects to. */
export function metricsTargets(ctx: RenderContext): {name: string; role: 'bastion' | 'web'; address: string; path: string}[] {
  const inv = ctx.inventory
  return [
    {name: inv.bastion.name, role: 'bastion' as const, address: `127.0.0.1:${NODE_EXPORTER_PORT}`, path: nodeMetricsPath(inv.bastion.name)},
    ...inv.web.nodes.map((n) => ({name: n.name, role: 'web' as const, address: `${n.address}:${NODE_EXPORTER_PORT}`, path: nodeMetricsPath(n.name)})),
  ]
}

export function renderNodeExporterDefaults(ctx: RenderContext, host: HostSpec): string {
  return renderTemplate(
    'metrics/node-exporter.default.hbs',
    {
      managed: MANAGED,
      name: host.name,
      onBastion: host.role === 'bastion',
      listen: nodeExporterListen(host),
      statsAddress: `${ctx.inventory.bastion.privateAddress}:${HAPROXY_STATS_PORT}`,
      textfileDir: pathsOf(ctx).nodeExporterTextfileDir,
      disabled: DISABLED_COLLECTORS,
    },
    ctx.templateOverridesDir,
  )
}

export function metricsFiles(ctx: RenderContext, host: HostSpec): DesiredFile[] {
  const p = pathsOf(ctx)
  return [
    {
      path: p.nodeExporterDefaults,
      content: renderNodeExporterDefaults(ctx, host),
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate: 'sh -n {}',
      notify: [{service: NODE_EXPORTER_SERVICE, action: 'restart'}],
    },
  ]
}

export function metricsServices(host: HostSpec): DesiredService[] {
  const listen = nodeExporterListen(host)
  // After a restart the exporter must listen on exactly its address (not every address).
  return [{name: NODE_EXPORTER_SERVICE, enabled: true, running: true, verify: `ss -Hltn 'sport = :${NODE_EXPORTER_PORT}' | grep -qF '${listen} '`}]
}
