/**
 * `infra monitoring export DIR`: what a team adds to the Prometheus / Alertmanager / Grafana stack
 * it already runs (docs/MONITORING.md). Renderers are pure, `(inventory) => {path, content}[]`;
 * writeMonitoringExport is the only part that touches the disk.
 *
 * Length: over 350 lines with its comments, kept together because its renderers share the one
 * label and target scheme that the rules and the dashboard read.
 */
import {mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {Document, isMap, isScalar, stringify} from 'yaml'

import {configOf} from '../inventory/config.js'
import {type Inventory, isIPv4} from '../inventory/schema.js'
import {UsageError} from '../lib/errors.js'
import {HAPROXY_STATS_PORT} from '../host/ports.js'
import {fleetDashboard} from './dashboard.js'
import {expandAnnotation, JOB_HAPROXY, JOB_NODE, ruleCases, type RuleCase} from './rules.js'

export interface ExportFile {
  /** Relative to the export folder, with forward slashes. */
  path: string
  content: string
}

export interface ExportOptions {
  /** host:port at which Prometheus reaches the bastion's stats frontend. Default: <bastion.privateAddress>:8404. */
  address?: string
}

export const FILES = {
  scrape: 'prometheus/infra-scrape.yml',
  targets: 'prometheus/targets/infra-nodes.json',
  prometheus: 'prometheus/prometheus.yml',
  rules: 'prometheus/infra-rules.yml',
  ruleTests: 'prometheus/infra-rules.test.yml',
  alertmanager: 'alertmanager/infra-alertmanager.yml',
  dashboard: 'grafana/infra-dashboard.json',
  readme: 'README.md',
} as const

/** The first line of the README: how a later export knows the folder is its own. */
export const EXPORT_MARKER = '<!-- Written by `infra monitoring export`: running it again overwrites the files it wrote. -->'

/** Where the alertmanager example expects the SMTP password; a placeholder, never the password. */
export const SMTP_PASSWORD_FILE = '/etc/alertmanager/secrets/infra-smtp-password'

const YAML_OPTIONS = {lineWidth: 0} as const

/** Checks --address: host:port. */
export function parseScrapeAddress(value: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value)
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535) {
    throw new UsageError(`--address ${value}: not a host:port`, {hint: 'e.g. --address 127.0.0.1:8404 when Prometheus reaches the bastion through `ssh -L 8404:<private address>:8404 <bastion>`.'})
  }
  return value
}

function scrapeAddressOf(inv: Inventory, opts: ExportOptions): string {
  return opts.address ?? configOf(inv).statsAddress
}

function header(lines: string[]): string {
  return lines.map((l) => (l ? `# ${l}` : '#')).join('\n') + '\n'
}

/** The two scrape jobs (shared by the snippet and the example prometheus.yml). */
function scrapeJobs(inv: Inventory, address: string): unknown[] {
  const fleet = inv.domain.toLowerCase()
  return [
    {
      job_name: JOB_HAPROXY,
      metrics_path: '/metrics',
      static_configs: [{targets: [address], labels: {instance: inv.bastion.name, fleet}}],
    },
    {
      job_name: JOB_NODE,
      // Every target is the bastion's stats frontend; __metrics_path__ picks the host (targets file).
      file_sd_configs: [{files: ['targets/infra-nodes.json'], refresh_interval: '5m'}],
    },
  ]
}

/** file_sd target groups: one per host, all at the bastion's address, each with its own path. */
export function nodeTargets(inv: Inventory, opts: ExportOptions = {}): {targets: string[]; labels: Record<string, string>}[] {
  const address = scrapeAddressOf(inv, opts)
  const fleet = inv.domain.toLowerCase()
  return configOf(inv).metricsTargets.map((t) => ({targets: [address], labels: {__metrics_path__: t.path, instance: t.name, role: t.role, fleet}}))
}

function renderScrape(inv: Inventory, address: string): string {
  return (
    header([
      `Prometheus scrape jobs for the infra fleet ${inv.domain.toLowerCase()} (infra monitoring export).`,
      'Add both jobs under scrape_configs: in your prometheus.yml and copy targets/ beside that file',
      '(file_sd paths are relative to the configuration file). Prometheus must reach',
      `${address}: a host on the fleet's private network, or an ssh tunnel (see README.md).`,
      `${JOB_HAPROXY}: HAProxy's own metrics. ${JOB_NODE}: every host's node exporter, published by the`,
      'bastion at /nodes/<host>/metrics; labels instance=<host>, role=web|bastion, fleet=<domain>.',
    ]) + stringify({scrape_configs: scrapeJobs(inv, address)}, YAML_OPTIONS)
  )
}

function renderPrometheusExample(inv: Inventory, address: string): string {
  return (
    header([
      `A complete example configuration for the infra fleet ${inv.domain.toLowerCase()}: the two scrape jobs,`,
      'the alert rules, and an Alertmanager on this machine. Check it with:',
      '  promtool check config prometheus.yml && promtool test rules infra-rules.test.yml',
    ]) +
    stringify(
      {
        global: {scrape_interval: '15s', evaluation_interval: '15s'},
        alerting: {alertmanagers: [{static_configs: [{targets: ['127.0.0.1:9093']}]}]},
        rule_files: ['infra-rules.yml'],
        scrape_configs: scrapeJobs(inv, address),
      },
      YAML_OPTIONS,
    )
  )
}

function renderRules(inv: Inventory, cases: RuleCase[]): string {
  return (
    header([
      `Alert rules for the infra fleet ${inv.domain.toLowerCase()} (infra monitoring export; docs/MONITORING.md).`,
      'Every description ends with what to do. Tested by infra-rules.test.yml: promtool test rules infra-rules.test.yml',
    ]) + stringify({groups: [{name: 'infra', rules: cases.map((c) => c.rule)}]}, YAML_OPTIONS)
  )
}

function renderRuleTests(cases: RuleCase[]): string {
  const tests = cases.flatMap((c) => {
    const expected = c.fires.alerts.map((a) => ({
      exp_labels: {...a.labels, ...c.rule.labels},
      exp_annotations: {
        summary: expandAnnotation(c.rule.annotations.summary, a.labels, a.value),
        description: expandAnnotation(c.rule.annotations.description, a.labels, a.value),
      },
    }))
    return [
      {
        name: `${c.rule.alert} fires`,
        interval: '1m',
        input_series: c.fires.series,
        alert_rule_test: [{eval_time: c.fires.at, alertname: c.rule.alert, exp_alerts: expected}],
      },
      {
        name: `${c.rule.alert} stays quiet on a healthy fleet`,
        interval: '1m',
        input_series: c.healthy.series,
        alert_rule_test: [{eval_time: c.healthy.at, alertname: c.rule.alert, exp_alerts: []}],
      },
    ]
  })
  return (
    header([
      'Unit tests of infra-rules.yml: each rule fires on a broken history and stays quiet on a healthy one.',
      'Run: promtool test rules infra-rules.test.yml',
    ]) + stringify({rule_files: ['infra-rules.yml'], evaluation_interval: '1m', tests}, YAML_OPTIONS)
  )
}

/** smtp[s]://host[:port] => host:port (curl's default ports, as the agents use it). */
function smarthostOf(url: string): {smarthost: string; implicitTls: boolean} {
  const m = /^(smtps?):\/\/([^/:]+)(?::(\d+))?\/?$/.exec(url)
  if (!m) return {smarthost: url, implicitTls: false}
  const tls = m[1] === 'smtps'
  return {smarthost: `${m[2]}:${m[3] ?? (tls ? '465' : '25')}`, implicitTls: tls}
}

function renderAlertmanager(inv: Inventory): string {
  const fleet = inv.domain.toLowerCase()
  const a = inv.alerts
  const smtp = a.smtp ? smarthostOf(a.smtp.url) : undefined
  const email: Record<string, unknown> = {
    to: a.email ?? `ops@${fleet}`,
    from: a.smtp?.from ?? `infra@${fleet}`,
    smarthost: smtp?.smarthost ?? 'localhost:25',
    send_resolved: true,
  }
  if (a.smtp?.user) {
    email.auth_username = a.smtp.user
    email.auth_password_file = SMTP_PASSWORD_FILE
  }
  const doc = new Document({
    route: {
      receiver: 'default',
      routes: [
        {
          matchers: [`fleet="${fleet}"`],
          receiver: 'infra-email',
          group_by: ['alertname', 'instance'],
          group_wait: '30s',
          group_interval: '5m',
          repeat_interval: '4h',
          routes: [{matchers: ['severity="critical"'], receiver: 'infra-email', repeat_interval: '1h'}],
        },
      ],
    },
    receivers: [{name: 'default'}, {name: 'infra-email', email_configs: [email]}],
    inhibit_rules: [
      {
        source_matchers: ['alertname="InfraHaproxyExporterDown"'],
        target_matchers: ['alertname=~"InfraNodeDown|InfraAgentHeartbeatMissing|InfraAgentHeartbeatStale"'],
        equal: ['fleet'],
      },
      {
        source_matchers: ['alertname="InfraNodeDown"', `instance="${inv.bastion.name}"`],
        target_matchers: ['alertname=~"InfraAgentHeartbeatMissing|InfraAgentHeartbeatStale"'],
        equal: ['fleet'],
      },
    ],
  })
  const comment = (keyPath: (string | number)[], key: string, text: string) => {
    const map = doc.getIn(keyPath, true)
    if (!isMap(map)) throw new Error(`no mapping at ${keyPath.join('.')}`)
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key)
    if (!pair || !isScalar(pair.key)) throw new Error(`no key ${key} at ${keyPath.join('.')}`)
    pair.key.commentBefore = text
  }
  comment([], 'route', ' Merge: copy the route under routes: of your own route, and both receivers (or only infra-email) into receivers:.')
  comment(['route'], 'receiver', ' Your existing default receiver (this example has none: alerts of other systems go nowhere).')
  const email0 = ['receivers', 1, 'email_configs', 0]
  if (!a.email) comment(email0, 'to', ' alerts.email is not set in the inventory: put the address that gets the alerts here.')
  if (!smtp) comment(email0, 'smarthost', ' alerts.smtp is not set in the inventory: put your mail relay (host:port) here.')
  else if (smtp.implicitTls) comment(email0, 'smarthost', ' smtps:// in the inventory: Alertmanager uses TLS from the start on port 465, STARTTLS on other ports.')
  else comment(email0, 'smarthost', ' Alertmanager requires STARTTLS by default (require_tls: true); set require_tls: false for a relay without it.')
  if (a.smtp?.user) {
    comment(
      email0,
      'auth_password_file',
      ` A placeholder: the SMTP password is never written here. Put it in this file (readable by Alertmanager only)${a.smtp.passwordEnv ? `, the same password infra provision reads from $${a.smtp.passwordEnv}` : ''}.`,
    )
  }
  comment([], 'inhibit_rules', ' When the bastion cannot be scraped, its hosts and agents look down too: report the cause only.')
  return (
    header([
      `Alertmanager example for the infra fleet ${fleet} (infra monitoring export): alerts with fleet="${fleet}" by e-mail.`,
      'Check it with: amtool check-config infra-alertmanager.yml',
    ]) + doc.toString(YAML_OPTIONS)
  )
}

function renderReadme(inv: Inventory, address: string): string {
  const fleet = inv.domain.toLowerCase()
  const priv = inv.bastion.privateAddress
  const viaTunnel = !address.startsWith(`${priv}:`)
  const a = inv.alerts
  return `${EXPORT_MARKER}
# Monitoring for the infra fleet ${fleet}

Written by \`infra monitoring export\` from the inventory. Run it again after changing the inventory
(hosts, alerts, limits): it rewrites these files. Reference: docs/MONITORING.md in infra.

| file | what it is |
|---|---|
| \`${FILES.scrape}\` | two scrape jobs: \`${JOB_HAPROXY}\` (HAProxy's own metrics) and \`${JOB_NODE}\` (every host's node exporter, through the bastion) |
| \`${FILES.targets}\` | the hosts for \`${JOB_NODE}\` (file-based service discovery) |
| \`${FILES.prometheus}\` | a complete example configuration using both, the rules and a local Alertmanager |
| \`${FILES.rules}\` | alert rules; every description says what to do |
| \`${FILES.ruleTests}\` | unit tests of the rules (\`promtool test rules\`) |
| \`${FILES.alertmanager}\` | an Alertmanager route and e-mail receiver for this fleet's alerts |
| \`${FILES.dashboard}\` | a Grafana dashboard: requests, errors, latency, active nodes, CPU, scaler actions |

## Reaching the fleet

Every target is one address: the bastion's HAProxy stats frontend, \`${address}\`. It publishes
HAProxy's metrics at \`/metrics\` and each host's node exporter at \`/nodes/<host>/metrics\`; it
listens on the bastion's private address (${priv}) only, so Prometheus must run on a host of the
private network (${configOf(inv).privateNetwork}), or reach it through a tunnel, e.g. on the Prometheus host:

    ssh -N -L 8404:${priv}:${HAPROXY_STATS_PORT} ${inv.ssh.user}@${inv.bastion.publicAddress}

and then export with \`infra monitoring export DIR --address 127.0.0.1:8404\` so the targets point at
the tunnel${viaTunnel ? ` (this export did: targets use ${address})` : ''}. The bastion's firewall accepts port ${HAPROXY_STATS_PORT}
from the private network only (a tunnel through the bastion's sshd counts as the bastion itself).

Check by hand: \`curl -s http://${address}/metrics | head\` and
\`curl -s http://${address}/nodes/${inv.web.nodes[0].name}/metrics | head\`.

## Prometheus

1. Copy \`prometheus/infra-rules.yml\` and \`prometheus/targets/\` beside your \`prometheus.yml\`
   (e.g. \`/etc/prometheus/\`).
2. Add the two jobs of \`prometheus/infra-scrape.yml\` under your \`scrape_configs:\`, and
   \`infra-rules.yml\` under \`rule_files:\`. Job names must be unique in one Prometheus: for a
   second fleet, rename the jobs (and the \`job=\` selectors of the rules and the dashboard).
3. Check and reload:

       promtool check config /etc/prometheus/prometheus.yml
       promtool test rules prometheus/infra-rules.test.yml
       systemctl reload prometheus    # or: kill -HUP $(pidof prometheus)

Or start from \`prometheus/prometheus.yml\`, a complete configuration
(\`prometheus --config.file=prometheus/prometheus.yml\`).

\`${JOB_NODE}\` re-reads \`targets/infra-nodes.json\` on change: after adding a web node to the
inventory, export again and copy that file.

## Alertmanager

Merge \`alertmanager/infra-alertmanager.yml\` into your configuration: its route (under your
route's \`routes:\`), the \`infra-email\` receiver and the inhibit rules. Every alert of these rules
carries \`fleet="${fleet}"\` and \`severity\` (critical, warning, info).
${
  a.smtp?.user
    ? `The SMTP password is not in the file: write it to \`${SMTP_PASSWORD_FILE}\` (or change
\`auth_password_file\`), readable by the Alertmanager user only.
`
    : ''
}${a.email ? '' : `The inventory has no \`alerts.email\`: the receiver's \`to:\` is a placeholder to replace.\n`}${a.smtp ? '' : `The inventory has no \`alerts.smtp\`: the receiver's \`smarthost:\` is a placeholder to replace.\n`}
    amtool check-config alertmanager/infra-alertmanager.yml

${
  a.email || a.webhookEnv
    ? `(The agents on the bastion also send their own alerts to ${[a.email ? 'alerts.email' : '', a.webhookEnv ? 'the webhook of alerts.webhookEnv' : ''].filter(Boolean).join(' and ')};
these rules also cover what they cannot see, such as the bastion itself.)
`
    : ''
}
## Grafana

Dashboards → New → Import → upload \`grafana/infra-dashboard.json\`, and pick your Prometheus data
source for the \`Prometheus\` variable. Or provision it from a file (a dashboards provider pointing at
the folder); the data source variable defaults to your default Prometheus data source.
`
}

/** Everything `infra monitoring export` writes, in a stable order. */
export function renderMonitoringFiles(inv: Inventory, opts: ExportOptions = {}): ExportFile[] {
  const address = scrapeAddressOf(inv, opts)
  const cases = ruleCases(inv, address)
  return [
    {path: FILES.scrape, content: renderScrape(inv, address)},
    {path: FILES.targets, content: JSON.stringify(nodeTargets(inv, opts), null, 2) + '\n'},
    {path: FILES.prometheus, content: renderPrometheusExample(inv, address)},
    {path: FILES.rules, content: renderRules(inv, cases)},
    {path: FILES.ruleTests, content: renderRuleTests(cases)},
    {path: FILES.alertmanager, content: renderAlertmanager(inv)},
    {path: FILES.dashboard, content: JSON.stringify(fleetDashboard(inv), null, 2) + '\n'},
    {path: FILES.readme, content: renderReadme(inv, address)},
  ]
}

/** What the user should know about the export (placeholders to replace). */
export function exportNotes(inv: Inventory, opts: ExportOptions = {}): string[] {
  const notes: string[] = []
  if (!inv.alerts.email) notes.push(`alerts.email is not set: replace the placeholder "to:" in ${FILES.alertmanager}.`)
  if (!inv.alerts.smtp) notes.push(`alerts.smtp is not set: replace the placeholder "smarthost:" in ${FILES.alertmanager}.`)
  if (inv.alerts.smtp?.user) notes.push(`The SMTP password is not exported: put it in ${SMTP_PASSWORD_FILE} on the Alertmanager host.`)
  const host = scrapeAddressOf(inv, opts).replace(/:\d+$/, '')
  if (isIPv4(host) && host === inv.bastion.privateAddress) {
    notes.push(`Prometheus must reach ${host}:${HAPROXY_STATS_PORT} on the private network (or use --address with an ssh tunnel, see README.md).`)
  }
  return notes
}

/**
 * Refuses a DIR that is not a folder (exit 2), and a non-empty folder that an earlier export did
 * not write unless `force`. Creates nothing.
 */
export async function checkExportDir(dir: string, force: boolean): Promise<void> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw new UsageError(`${dir}: ${error.message}`)
  })
  if (!info) return
  if (!info.isDirectory()) throw new UsageError(`${dir} is not a folder`, {hint: 'Give the folder to write the monitoring files into (it is created when missing).'})
  const entries = await readdir(dir)
  if (entries.length === 0 || force) return
  const readme = await readFile(path.join(dir, FILES.readme), 'utf8').catch(() => '')
  if (readme.split('\n', 1)[0] === EXPORT_MARKER) return
  throw new UsageError(`${dir} is not empty and was not written by infra monitoring export`, {
    hint: 'Choose an empty or new folder, or pass --force to write into it anyway (files with the same names are overwritten).',
  })
}

/** Writes the files under `dir` (created when missing); returns the absolute folder and the relative paths written. */
export async function writeMonitoringExport(dir: string, files: ExportFile[], opts: {force?: boolean} = {}): Promise<{dir: string; files: string[]}> {
  await checkExportDir(dir, opts.force ?? false)
  const abs = path.resolve(dir)
  for (const f of files) {
    const target = path.join(abs, ...f.path.split('/'))
    await mkdir(path.dirname(target), {recursive: true})
    await writeFile(target, f.content)
  }
  return {dir: abs, files: files.map((f) => f.path)}
}
