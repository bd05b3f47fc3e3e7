/**
 * The desired state of every host, rendered from the inventory: pure functions from
 * (inventory, TLS PEM, error-page and template overrides) to files, services and packages.
 * src/plan compares it with the host's facts and applies the difference.
 */
import type {HostSpec} from '../inventory/schema.js'
import {hasApps} from '../inventory/units.js'
import type {HostDesiredState} from '../plan/types.js'
import {appBastionFiles, appServices, appWebFiles} from './app.js'
import {bastionFiles, bastionServices, renderBastionNftables} from './bastion.js'
import {commonFiles, commonServices, type RenderContext} from './common.js'
import {metricsFiles, metricsServices} from './metrics.js'
import {packagesFor} from './packages.js'
import {previewBastionAbsent, previewBastionFiles} from './previews.js'
import {renderWebNftables, webAbsent, webFiles, webServices} from './web.js'

export {
  ERROR_PAGES,
  errorPageCodes,
  HAPROXY_VERIFY,
  HSTS,
  MOZILLA_INTERMEDIATE,
  renderBastionNftables,
  renderErrorPage,
  renderHaproxyConfig,
} from './bastion.js'
export {DEFAULT_PATHS, type HostPaths} from '../host/paths.js'
export {type RenderContext, renderSshd, renderTemplate, SSHD_ALGORITHMS, sshdValidateCommand, templatesDir} from './common.js'
export {nginxValidateCommand, renderIndexPage, renderNginx, renderWebNftables} from './web.js'

/** The firewall (nftables ruleset) of a host, by role. */
export function renderNftables(ctx: RenderContext, host: HostSpec): string {
  return host.role === 'bastion' ? renderBastionNftables(ctx, host) : renderWebNftables(ctx, host)
}

/** Everything provision wants on one host. Throws ConfigError for bad overrides or inventory values. */
export function desiredState(ctx: RenderContext, host: HostSpec): HostDesiredState {
  const known = host.role === 'bastion' ? ctx.inventory.bastion.name === host.name : ctx.inventory.web.nodes.some((n) => n.name === host.name)
  if (!known) throw new Error(`host ${host.name} (${host.role}) is not in the inventory`)
  const app = host.role === 'bastion' ? [...appBastionFiles(ctx, host), ...previewBastionFiles(ctx)] : appWebFiles(ctx)
  // Docker's files come before nginx's site, which includes the app's upstream file.
  const roleFiles = host.role === 'bastion' ? bastionFiles(ctx, host) : webFiles(ctx, host)
  const files = [...commonFiles(ctx, host), ...metricsFiles(ctx, host), ...(host.role === 'bastion' ? [...roleFiles, ...app] : [...app, ...roleFiles])]
  const services = [
    ...commonServices(),
    ...metricsServices(host),
    ...appServices(ctx, host),
    ...(host.role === 'bastion' ? bastionServices() : webServices(ctx, host)),
  ]
  const state: HostDesiredState = {host, packages: packagesFor(host.role, hasApps(ctx.inventory)), files, services}
  state.absent = host.role === 'web' ? webAbsent(ctx) : previewBastionAbsent(ctx)
  return state
}

/** Debian packages the template tests need on the machine running them (real validators). */
export const TEMPLATE_TEST_PACKAGES = ['haproxy', 'nftables', 'openssh-server', 'nginx', 'openssl', 'iproute2', 'curl', 'socat'] as const

export function templateTestPackages(): string[] {
  return [...TEMPLATE_TEST_PACKAGES]
}
