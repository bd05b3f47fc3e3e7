/**
 * Metrics on every host: Debian's prometheus-node-exporter on the private address of a web node
 * (the firewall lets only the bastion in) and on loopback on the bastion, whose textfile
 * collector publishes the agents' own metrics. HAProxy's stats frontend on the bastion's private
 * address re-publishes each node exporter at /nodes/<host>/metrics (src/templates/haproxy), so one
 * Prometheus target (the bastion's private address) covers the fleet. Pure: inventory => files.
 */
import {configOf} from '../inventory/config.js'
import type {HostSpec} from '../inventory/schema.js'
import type {DesiredFile, DesiredService} from '../plan/types.js'
import {NODE_EXPORTER_PORT} from '../host/ports.js'
import {MANAGED, pathsOf, type RenderContext, renderTemplate} from './common.js'

/** Collectors that only report hardware or services the hosts do not have (noise in every scrape). */
const DISABLED_COLLECTORS = ['infiniband', 'nfs', 'nfsd', 'xfs', 'zfs', 'btrfs', 'fibrechannel', 'tapestats', 'powersupplyclass'] as const

export const NODE_EXPORTER_SERVICE = 'prometheus-node-exporter'

/** Where a host's node exporter listens: the private address (web) or loopback (bastion). */
export function nodeExporterListen(host: HostSpec): string {
  return `${host.role === 'bastion' ? '127.0.0.1' : host.privateAddress}:${NODE_EXPORTER_PORT}`
}

export function renderNodeExporterDefaults(ctx: RenderContext, host: HostSpec): string {
  return renderTemplate(
    'metrics/node-exporter.default.hbs',
    {
      managed: MANAGED,
      name: host.name,
      onBastion: host.role === 'bastion',
      listen: nodeExporterListen(host),
      statsAddress: configOf(ctx.inventory).statsAddress,
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
