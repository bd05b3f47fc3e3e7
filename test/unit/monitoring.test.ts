/**
 * `infra monitoring export`: the exported files pass the real promtool (check config, check rules,
 * test rules) and amtool; every metric a rule or the dashboard reads is one the fleet exports
 * (test/unit/fixtures/fleet-metric-names.txt, from real scrapes of HAProxy 2.6 and node exporter
 * 1.5); no secret is written; the command refuses a bad DIR with exit 2.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'

import MonitoringExport from '../../src/commands/monitoring/export.js'
import type {InventoryInput} from '../../src/inventory/schema.js'
import {dashboardMetricNames, type Dashboard, fleetDashboard} from '../../src/monitoring/dashboard.js'
import {EXPORT_MARKER, FILES, renderMonitoringFiles, SMTP_PASSWORD_FILE, type ExportFile} from '../../src/monitoring/export.js'
import {metricNamesOfExpr} from '../../src/monitoring/promql.js'
import {expandAnnotation, ruleCases} from '../../src/monitoring/rules.js'
import {runCommand} from './command-helpers.js'
import {inventory} from './render-helpers.js'

const tmp = mkdtempSync(path.join(tmpdir(), 'infra-monitoring-'))
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
const HAS_PROMTOOL = has('promtool')
const HAS_AMTOOL = has('amtool')
if (!HAS_PROMTOOL) process.stderr.write('monitoring.test.ts: promtool not found (Debian package prometheus): the promtool checks are SKIPPED\n')
if (!HAS_AMTOOL) process.stderr.write('monitoring.test.ts: amtool not found (Debian package prometheus-alertmanager): the amtool check is SKIPPED\n')

const SECRET = 'hunter2-smtp-pa55word'

const BASE: InventoryInput = {
  domain: 'example.com',
  bastion: {publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
  web: {nodes: [{name: 'web1', address: '10.10.0.11'}]},
}

const INVENTORIES: Record<string, InventoryInput> = {
  'one node, no alerts settings': BASE,
  'standby nodes, e-mail with SMTP login, files TLS': {
    ...BASE,
    domain: 'Shop.Example.org',
    bastion: {name: 'edge', publicAddress: '198.51.100.20', privateAddress: '10.20.0.1', privateNetwork: '10.20.0.0/16'},
    web: {
      appPort: 3000,
      healthCheck: {path: '/status/health'},
      nodes: [
        {name: 'app1', address: '10.20.0.21'},
        {name: 'app2', address: '10.20.0.22', standby: true},
        {name: 'app3', address: '10.20.0.23', standby: true},
      ],
    },
    scaling: {cpuPercent: 70, sustainFor: '10m', max: 3},
    healing: {every: '5m'},
    tls: {mode: 'files', cert: 'tls/site.crt', key: 'tls/site.key'},
    alerts: {
      email: 'ops@example.org',
      webhookEnv: 'INFRA_TEST_WEBHOOK',
      smtp: {url: 'smtps://mail.example.org', from: 'fleet@example.org', user: 'alerts', passwordEnv: 'INFRA_TEST_SMTP_PASSWORD'},
    },
  },
  'e-mail through a relay without login': {...BASE, alerts: {email: 'ops@example.com', smtp: {url: 'smtp://relay.example.com:587'}}},
}

/** Metric families of real scrapes plus the agents' own (one per line, # comments). */
const KNOWN_METRICS = new Set(
  readFileSync(path.join(import.meta.dirname, 'fixtures/fleet-metric-names.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#')),
)

function writeAll(dir: string, files: ExportFile[]): void {
  for (const f of files) {
    const p = path.join(dir, f.path)
    mkdirSync(path.dirname(p), {recursive: true})
    writeFileSync(p, f.content)
  }
}

function run(cmd: string, args: string[], cwd: string): {code: number | null; out: string} {
  const r = spawnSync(cmd, args, {cwd, encoding: 'utf8'})
  return {code: r.status, out: `${r.stdout}${r.stderr}`}
}

const fileOf = (files: ExportFile[], p: string) => files.find((f) => f.path === p)!.content

describe('metricNamesOfExpr', () => {
  const table: [string, string[]][] = [
    ['up', ['up']],
    ['up{job="infra-node"} == 0', ['up']],
    ['100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{job="infra-node",mode="idle"}[5m]))) > 80', ['node_cpu_seconds_total']],
    ['sum without (cpu, mode) (rate(a_total[5m])) / on (instance) group_left (role) b', ['a_total', 'b']],
    ['sum(rate(x_total[$__rate_interval])) by (code)', ['x_total']],
    ['rate(x_total{instance=~"${node}"}[$__interval])', ['x_total']],
    ['{__name__="infra_web_nodes", state="active"}', ['infra_web_nodes']],
    ['absent(m1{agent="healthcheck"}) or absent(m1{agent="scaler"})', ['m1']],
    ['time() - infra_agent_last_run_timestamp_seconds > 300', ['infra_agent_last_run_timestamp_seconds']],
    ['topk(3, a) unless count_values("version", b)', ['a', 'b']],
    ['label_replace(up, "host", "$1", "instance", "(.*):.*")', ['up']],
    ['max_over_time(a[1h:5m]) offset 1d > bool 0.5e3', ['a']],
    ['histogram_quantile(0.99, sum by (le) (rate(req_seconds_bucket[5m])))', ['req_seconds_bucket']],
    ['a @ start() + b @ 1609746000 - Inf * NaN', ['a', 'b']],
    ['sum(a) and on() vector(1) or ignoring(x) c', ['a', 'c']],
    ['node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes', ['node_memory_MemAvailable_bytes', 'node_memory_MemTotal_bytes']],
    ['sum by (state) (infra_web_nodes) # a comment naming not_a_metric', ['infra_web_nodes']],
    ['rate(ns:requests:rate5m[5m])', ['ns:requests:rate5m']],
    ['vector(1) + time() + 5', []],
  ]
  it.each(table)('%s', (expr, names) => {
    expect(metricNamesOfExpr(expr)).toEqual(names)
  })
})

describe('dashboardMetricNames', () => {
  it('reads targets of panels inside rows and query variables', () => {
    const ds = {type: 'prometheus' as const, uid: 'x'}
    const names = dashboardMetricNames({
      panels: [
        {id: 1, type: 'row', title: 'r', gridPos: {x: 0, y: 0, w: 24, h: 1}, panels: [{id: 2, type: 'stat', title: 's', gridPos: {x: 0, y: 1, w: 6, h: 4}, targets: [{refId: 'A', expr: 'sum(a)', datasource: ds}]}]},
        {id: 3, type: 'timeseries', title: 't', gridPos: {x: 0, y: 5, w: 6, h: 4}, targets: [{refId: 'A', expr: 'rate(b_total[5m])', datasource: ds}]},
      ],
      templating: {
        list: [
          {name: 'datasource', type: 'datasource', query: 'prometheus'},
          {name: 'node', type: 'query', query: {query: 'label_values(up{job="infra-node"}, instance)'}},
          {name: 'job', type: 'query', query: 'label_values(job)'},
          {name: 'q', type: 'query', query: 'query_result(topk(3, c))'},
        ],
      },
    })
    expect(names).toEqual(['a', 'b_total', 'c', 'up'])
  })
})

describe.each(Object.entries(INVENTORIES))('monitoring export: %s', (name, input) => {
  process.env.INFRA_TEST_SMTP_PASSWORD = SECRET
  const inv = inventory(input)
  const files = renderMonitoringFiles(inv)
  const dir = path.join(tmp, name.replaceAll(/\W+/g, '-'))
  writeAll(dir, files)
  const rules = parseYaml(fileOf(files, FILES.rules)) as {groups: {name: string; rules: {alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string>}[]}[]}
  const allRules = rules.groups.flatMap((g) => g.rules)
  const dashboard = JSON.parse(fileOf(files, FILES.dashboard)) as Dashboard

  it('writes the files of the issue, README first line is the export marker', () => {
    expect(files.map((f) => f.path)).toEqual([
      'prometheus/infra-scrape.yml',
      'prometheus/targets/infra-nodes.json',
      'prometheus/prometheus.yml',
      'prometheus/infra-rules.yml',
      'prometheus/infra-rules.test.yml',
      'alertmanager/infra-alertmanager.yml',
      'grafana/infra-dashboard.json',
      'README.md',
    ])
    expect(fileOf(files, FILES.readme).split('\n')[0]).toBe(EXPORT_MARKER)
  })

  it.skipIf(!HAS_PROMTOOL)('promtool check config passes on the example prometheus.yml (rules and file_sd targets included)', () => {
    const r = run('promtool', ['check', 'config', 'prometheus.yml'], path.join(dir, 'prometheus'))
    expect(r.out).toContain('SUCCESS: prometheus.yml is valid prometheus config file syntax')
    expect(r.code, r.out).toBe(0)
  })

  it.skipIf(!HAS_PROMTOOL)('promtool check rules passes', () => {
    const r = run('promtool', ['check', 'rules', 'infra-rules.yml'], path.join(dir, 'prometheus'))
    expect(r.out).toContain(`SUCCESS: ${allRules.length} rules found`)
    expect(r.code, r.out).toBe(0)
  })

  it.skipIf(!HAS_PROMTOOL)('promtool test rules passes: every rule fires on a broken history and stays quiet on a healthy one', () => {
    const r = run('promtool', ['test', 'rules', 'infra-rules.test.yml'], path.join(dir, 'prometheus'))
    expect(r.out).toContain('SUCCESS')
    expect(r.code, r.out).toBe(0)
  })

  it.skipIf(!HAS_PROMTOOL)('promtool test rules fails when a rule is broken (the tests really test)', () => {
    const broken = path.join(tmp, `${path.basename(dir)}-broken`)
    writeAll(broken, files)
    const rulesPath = path.join(broken, FILES.rules)
    writeFileSync(rulesPath, readFileSync(rulesPath, 'utf8').replace('== 0', '== 2').replace('< 14', '< 7'))
    const r = run('promtool', ['test', 'rules', 'infra-rules.test.yml'], path.join(broken, 'prometheus'))
    expect(r.code).not.toBe(0)
    expect(r.out).toContain('InfraNodeDown fires')
    expect(r.out).toContain('InfraCertificateExpiresSoon fires')
  })

  it.skipIf(!HAS_AMTOOL)('amtool check-config passes on the Alertmanager example', () => {
    const r = run('amtool', ['check-config', FILES.alertmanager], dir)
    expect(r.out).toContain('SUCCESS')
    expect(r.code, r.out).toBe(0)
  })

  it('has the rules of the issue, each with a severity, a summary and a description that says what to do with infra', () => {
    const byName = Object.fromEntries(allRules.map((r) => [r.alert, r]))
    expect(byName.InfraNodeDown.expr).toBe('up{job="infra-node"} == 0')
    expect(byName.InfraBackendNoHealthyServer.expr).toContain('haproxy_backend_active_servers{job="infra-haproxy",proxy="web"} == 0')
    expect(byName.InfraNodeHighCpu.expr).toContain('node_cpu_seconds_total')
    expect(byName.InfraNodeHighCpu.expr).toMatch(/> 80$/)
    expect(byName.InfraNodeHighCpu.for).toBe('15m')
    expect(byName.InfraHigh5xxRate.expr).toContain('code="5xx"')
    expect(byName.InfraCertificateExpiresSoon.expr).toContain('infra_tls_certificate_expiry_timestamp_seconds')
    expect(byName.InfraCertificateExpiresSoon.expr).toMatch(/< 14$/)
    expect(byName.InfraAgentHeartbeatStale.expr).toContain('infra_agent_last_run_timestamp_seconds')
    expect(byName.InfraAgentHeartbeatMissing.expr).toContain('absent(')
    expect(byName.InfraBanSpike.expr).toContain('infra_edge_banned_addresses')
    expect(byName.InfraDeniedRequestsHigh.expr).toContain('haproxy_frontend_requests_denied_total')
    for (const r of allRules) {
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels.severity)
      expect(r.labels.fleet).toBe(inv.domain.toLowerCase())
      expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10)
      expect(r.annotations.description, r.alert).toMatch(/What to do: .*`infra (doctor|logs|provision|status|bans|scale|ban|unban)\b/)
    }
    expect(new Set(allRules.map((r) => r.alert)).size).toBe(allRules.length)
  })

  it('puts inventory facts in the descriptions', () => {
    const byName = Object.fromEntries(allRules.map((r) => [r.alert, r]))
    expect(byName.InfraNodeHighCpu.annotations.description).toContain(`${inv.scaling.cpuPercent}% CPU for ${inv.scaling.sustainFor}`)
    expect(byName.InfraHaproxyExporterDown.annotations.description).toContain(`\`infra logs ${inv.bastion.name} --unit haproxy`)
    expect(byName.InfraCertificateExpiresSoon.annotations.description).toContain(inv.tls.mode === 'files' ? 'tls.cert (tls/site.crt)' : 'self-signed')
  })

  it('tests every rule both ways in infra-rules.test.yml', () => {
    const tests = parseYaml(fileOf(files, FILES.ruleTests)) as {rule_files: string[]; tests: {name: string; alert_rule_test: {alertname: string; exp_alerts: unknown[]}[]}[]}
    expect(tests.rule_files).toEqual(['infra-rules.yml'])
    for (const r of allRules) {
      const mine = tests.tests.filter((t) => t.alert_rule_test.some((a) => a.alertname === r.alert))
      expect(mine.map((t) => t.alert_rule_test[0].exp_alerts.length > 0), r.alert).toEqual([true, false])
    }
  })

  it('scrape snippet: job infra-haproxy at the bastion, infra-node from targets/infra-nodes.json', () => {
    const scrape = parseYaml(fileOf(files, FILES.scrape)) as {scrape_configs: Record<string, unknown>[]}
    const address = `${inv.bastion.privateAddress}:8404`
    expect(scrape.scrape_configs).toEqual([
      {job_name: 'infra-haproxy', metrics_path: '/metrics', static_configs: [{targets: [address], labels: {instance: inv.bastion.name, fleet: inv.domain.toLowerCase()}}]},
      {job_name: 'infra-node', file_sd_configs: [{files: ['targets/infra-nodes.json'], refresh_interval: '5m'}]},
    ])
    const example = parseYaml(fileOf(files, FILES.prometheus)) as {scrape_configs: unknown[]; rule_files: string[]; alerting: unknown}
    expect(example.scrape_configs).toEqual(scrape.scrape_configs)
    expect(example.rule_files).toEqual(['infra-rules.yml'])
    expect(example.alerting).toEqual({alertmanagers: [{static_configs: [{targets: ['127.0.0.1:9093']}]}]})
    const targets = JSON.parse(fileOf(files, FILES.targets))
    expect(targets).toEqual([
      {targets: [address], labels: {__metrics_path__: `/nodes/${inv.bastion.name}/metrics`, instance: inv.bastion.name, role: 'bastion', fleet: inv.domain.toLowerCase()}},
      ...inv.web.nodes.map((n) => ({targets: [address], labels: {__metrics_path__: `/nodes/${n.name}/metrics`, instance: n.name, role: 'web', fleet: inv.domain.toLowerCase()}})),
    ])
  })

  it('alertmanager: a route for this fleet to an e-mail receiver built from inventory.alerts, the password only as a file path', () => {
    const text = fileOf(files, FILES.alertmanager)
    const am = parseYaml(text) as {route: {routes: {matchers: string[]; receiver: string}[]}; receivers: {name: string; email_configs?: Record<string, unknown>[]}[]}
    expect(am.route.routes[0]).toMatchObject({matchers: [`fleet="${inv.domain.toLowerCase()}"`], receiver: 'infra-email'})
    const email = am.receivers.find((r) => r.name === 'infra-email')!.email_configs![0]
    expect(email.to).toBe(inv.alerts.email ?? `ops@${inv.domain.toLowerCase()}`)
    expect(email.from).toBe(inv.alerts.smtp?.from ?? `infra@${inv.domain.toLowerCase()}`)
    if (inv.alerts.smtp?.url === 'smtps://mail.example.org') expect(email.smarthost).toBe('mail.example.org:465')
    if (inv.alerts.smtp?.url === 'smtp://relay.example.com:587') expect(email.smarthost).toBe('relay.example.com:587')
    expect(email.auth_password).toBeUndefined()
    if (inv.alerts.smtp?.user) {
      expect(email).toMatchObject({auth_username: inv.alerts.smtp.user, auth_password_file: SMTP_PASSWORD_FILE})
      expect(text).toMatch(/# A placeholder: the SMTP password is never written here\..*\n\s*auth_password_file:/)
    } else {
      expect(email.auth_password_file).toBeUndefined()
    }
  })

  it('never writes a secret', () => {
    for (const f of files) expect(f.content, f.path).not.toContain(SECRET)
  })

  it('every metric of every rule and dashboard query is one the fleet exports', () => {
    const used = [...new Set([...allRules.flatMap((r) => metricNamesOfExpr(r.expr)), ...dashboardMetricNames(dashboard)])].sort()
    expect(used.length).toBeGreaterThan(10)
    expect(used.filter((m) => !KNOWN_METRICS.has(m))).toEqual([])
  })

  it('dashboard: schema 39, a Prometheus data source variable, the panels of the issue, each query naming a metric', () => {
    expect(dashboard.schemaVersion).toBe(39)
    expect(dashboard.templating.list[0]).toMatchObject({name: 'datasource', type: 'datasource', query: 'prometheus'})
    const titles = dashboard.panels.map((p) => p.title)
    for (const t of ['Requests/s', 'Errors (4xx / 5xx)', 'Latency', 'Active web nodes', 'CPU per node', 'Scaler and healer actions']) expect(titles).toContain(t)
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length)
    for (const p of dashboard.panels) {
      expect(p.datasource).toEqual({type: 'prometheus', uid: '${datasource}'})
      expect(p.targets!.length, p.title).toBeGreaterThan(0)
      for (const t of p.targets!) {
        expect(t.datasource.uid).toBe('${datasource}')
        expect(metricNamesOfExpr(t.expr).length, `${p.title}: ${t.expr}`).toBeGreaterThan(0)
      }
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24)
    }
    const exprs = dashboard.panels.flatMap((p) => p.targets!.map((t) => t.expr)).join('\n')
    for (const m of ['haproxy_backend_response_time_average_seconds', 'haproxy_backend_total_time_average_seconds', 'infra_web_nodes', 'haproxy_server_status', 'infra_agent_actions_total', 'infra_scaler_decisions_total']) {
      expect(exprs).toContain(m)
    }
  })
})

describe('rule templates', () => {
  it('expand as Prometheus does for the forms the rules use, and refuse others', () => {
    expect(expandAnnotation('{{ $labels.instance }} at {{ $value | printf "%.1f" }}%', {instance: 'web1'}, 9.0909)).toBe('web1 at 9.1%')
    expect(() => expandAnnotation('{{ $value | humanize }}', {}, 1)).toThrow(/not supported/)
  })

  it('the heartbeat threshold follows healing.every (at least 5 minutes)', () => {
    const stale = (every: string) => ruleCases(inventory({...BASE, healing: {every}}), '10.10.0.1:8404').find((c) => c.rule.alert === 'InfraAgentHeartbeatStale')!.rule.expr
    expect(stale('1m')).toMatch(/> 300$/)
    expect(stale('10m')).toMatch(/> 1800$/)
  })
})

describe('infra monitoring export (command)', () => {
  const fleetDir = path.join(tmp, 'fleet')
  const config = path.join(fleetDir, 'infra.yaml')
  mkdirSync(fleetDir, {recursive: true})
  writeFileSync(
    config,
    [
      'domain: example.com',
      'bastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}',
      'web:',
      '  nodes:',
      '    - {name: web1, address: 10.10.0.11}',
      '    - {name: web2, address: 10.10.0.12, standby: true}',
      'alerts:',
      '  email: ops@example.com',
      '  smtp: {url: "smtp://mail.example.com:587", user: alerts, passwordEnv: INFRA_TEST_SMTP_PASSWORD}',
      '',
    ].join('\n'),
  )

  const runCmd = (argv: string[]) => runCommand(MonitoringExport, argv)

  it('writes the files into a new folder and lists them; --json gives {dir, files}', async () => {
    const out = path.join(tmp, 'cmd-out', 'monitoring')
    const r = await runCmd([out, '-c', config])
    expect(r.code).toBe(0)
    expect(r.out.trim().split('\n')).toEqual(Object.values(FILES).map((f) => path.join(out, f)))
    expect(r.err).toContain(`The SMTP password is not exported: put it in ${SMTP_PASSWORD_FILE}`)
    expect(readFileSync(path.join(out, 'README.md'), 'utf8')).toContain('ssh -N -L 8404:10.10.0.1:8404 root@203.0.113.10')
    // Again into the same folder: it is ours, no --force needed.
    const again = await runCmd([out, '-c', config, '--json'])
    expect(again.code).toBe(0)
    const json = JSON.parse(again.out)
    expect(json.dir).toBe(out)
    expect(json.files).toContain('prometheus/infra-rules.yml')
    expect(json.files).toHaveLength(8)
  })

  it('--address points every target at a tunnel', async () => {
    const out = path.join(tmp, 'cmd-tunnel')
    const r = await runCmd([out, '-c', config, '--address', '127.0.0.1:8404', '--json'])
    expect(r.code).toBe(0)
    expect(readFileSync(path.join(out, FILES.scrape), 'utf8')).toContain('- 127.0.0.1:8404')
    expect(JSON.parse(readFileSync(path.join(out, FILES.targets), 'utf8'))[1].targets).toEqual(['127.0.0.1:8404'])
    const bad = await runCmd([path.join(tmp, 'cmd-bad-address'), '-c', config, '--address', 'nope'])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('--address nope: not a host:port')
  })

  it('refuses a DIR that is a file (exit 2)', async () => {
    const file = path.join(tmp, 'a-file')
    writeFileSync(file, 'x\n')
    const r = await runCmd([file, '-c', config])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`Error: ${file} is not a folder`)
    const json = await runCmd([file, '-c', config, '--json'])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.out).error.code).toBe('EUSAGE')
  })

  it('refuses a non-empty folder it did not write unless --force (exit 2)', async () => {
    const other = path.join(tmp, 'other')
    mkdirSync(other, {recursive: true})
    writeFileSync(path.join(other, 'README.md'), '# someone else\n')
    const r = await runCmd([other, '-c', config])
    expect(r.code).toBe(2)
    expect(r.err).toContain('is not empty and was not written by infra monitoring export')
    expect(r.err).toContain('--force')
    expect(readFileSync(path.join(other, 'README.md'), 'utf8')).toBe('# someone else\n')
    const forced = await runCmd([other, '-c', config, '--force', '--json'])
    expect(forced.code).toBe(0)
    expect(readFileSync(path.join(other, 'README.md'), 'utf8').split('\n')[0]).toBe(EXPORT_MARKER)
  })

  it('a bad inventory is exit 2', async () => {
    const r = await runCmd([path.join(tmp, 'cmd-noinv'), '-c', path.join(tmp, 'missing.yaml')])
    expect(r.code).toBe(2)
  })

  it('never writes the SMTP password it could read from the environment', async () => {
    process.env.INFRA_TEST_SMTP_PASSWORD = SECRET
    const out = path.join(tmp, 'cmd-secret')
    const r = await runCmd([out, '-c', config, '--json'])
    expect(r.code).toBe(0)
    expect(r.out).not.toContain(SECRET)
    for (const f of JSON.parse(r.out).files as string[]) expect(readFileSync(path.join(out, f), 'utf8'), f).not.toContain(SECRET)
  })
})

// Keep the renderers pure: the dashboard comes from the inventory alone.
describe('fleetDashboard', () => {
  it('is the same object for the same inventory', () => {
    expect(fleetDashboard(inventory(BASE))).toEqual(fleetDashboard(inventory(BASE)))
  })
})
