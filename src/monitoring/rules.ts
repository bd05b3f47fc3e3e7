/**
 * The fleet's Prometheus alert rules, each with the promtool unit tests that show it firing on a
 * broken history and staying quiet on a healthy one. Every description says what to do, naming
 * the infra command that helps. Pure: inventory => rules + tests (rendered to YAML by export.ts).
 *
 * Length: over 350 lines because it is a data table (one entry per rule, with its tests).
 */
import {configOf} from '../inventory/config.js'
import type {Inventory} from '../inventory/schema.js'
import {RENEW_WITHIN_DAYS} from '../tls/ensure.js'

export type Severity = 'critical' | 'warning' | 'info'

export interface AlertRule {
  alert: string
  expr: string
  for?: string
  labels: {severity: Severity; fleet: string}
  annotations: {summary: string; description: string}
}

/** One input series of a promtool test: `metric{labels}` and promtool's expanding notation. */
export interface TestSeries {
  series: string
  values: string
}

/** A rule with a history in which it fires and one in which it stays quiet. */
export interface RuleCase {
  rule: AlertRule
  fires: {
    series: TestSeries[]
    /** When to look (promtool duration), and the alerts expected then: their labels before the rule's own, and $value. */
    at: string
    alerts: {labels: Record<string, string>; value: number}[]
  }
  healthy: {series: TestSeries[]; at: string}
}

/** Fixed thresholds of the rules (issue 7), documented in docs/MONITORING.md. */
export const THRESHOLDS = {
  cpuPercent: 80,
  cpuFor: '15m',
  errorPercent: 5,
  certDays: 14,
  /** Heartbeats: the agents run every minute; at least this many seconds without a run is stale. */
  heartbeatStaleMinSeconds: 300,
  /** New automatic bans within 10 minutes. */
  newBansIn10m: 10,
  /** Requests refused by HAProxy per second, over 10 minutes. */
  deniedPerSecond: 10,
  scalerPausedFor: '6h',
} as const

export const JOB_HAPROXY = 'infra-haproxy'
export const JOB_NODE = 'infra-node'

function seriesOf(metric: string, labels: Record<string, string>): string {
  return `${metric}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`
}

/** Seconds after which an agent heartbeat is stale: 5 minutes, or three healing intervals when longer. */
export function heartbeatStaleSeconds(inv: Inventory): number {
  return Math.max(THRESHOLDS.heartbeatStaleMinSeconds, 3 * Math.round(configOf(inv).ms.healingEvery / 1000))
}

// eslint-disable-next-line max-lines-per-function -- a data table: one entry per alert rule (the rule, a series that fires it, a healthy series), read top to bottom
export function ruleCases(inv: Inventory, scrapeAddress: string): RuleCase[] {
  const fleet = inv.domain.toLowerCase()
  const bastion = inv.bastion.name
  const web1 = inv.web.nodes[0].name
  const T = THRESHOLDS
  const labels = (severity: Severity) => ({severity, fleet})
  // What a scrape gives each series: the job's target labels (export.ts) plus the metric's own.
  const onNode = (instance: string, role: 'web' | 'bastion', more: Record<string, string> = {}) => ({job: JOB_NODE, instance, role, fleet, ...more})
  const onBastion = (more: Record<string, string> = {}) => onNode(bastion, 'bastion', more)
  const onHaproxy = (more: Record<string, string> = {}) => ({job: JOB_HAPROXY, instance: bastion, fleet, ...more})
  const stale = heartbeatStaleSeconds(inv)
  const scaling = inv.scaling
  const limits = inv.limits
  const tlsTodo =
    inv.tls.mode === 'self-signed'
      ? `This fleet uses a self-signed certificate, which \`infra provision\` renews when it has fewer than ${RENEW_WITHIN_DAYS} days left: run \`infra provision\` (it has not run for a while).`
      : `Get a renewed certificate, put it (with its chain) and its key where tls.cert (${inv.tls.cert}) and tls.key point in the inventory, and run \`infra provision\`; \`infra doctor\` then checks the certificate the bastion serves.`

  return [
    {
      rule: {
        alert: 'InfraNodeDown',
        expr: `up{job="${JOB_NODE}"} == 0`,
        for: '2m',
        labels: labels('critical'),
        annotations: {
          summary: '{{ $labels.instance }} is down: no metrics for 2 minutes',
          description:
            `Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.role }}) through the bastion (http://${scrapeAddress}/nodes/{{ $labels.instance }}/metrics). ` +
            'What to do: `infra doctor` shows which check fails on which host; `infra logs {{ $labels.instance }} --since 15m` shows its journal. ' +
            'A web node that stays down is restarted, then replaced by a standby node, by the healthchecker (`infra status` shows the node states). ' +
            'Once the host is back, `infra provision` puts it in its desired state again.',
        },
      },
      fires: {series: [{series: seriesOf('up', onNode(web1, 'web')), values: '1 1 0x10'}], at: '5m', alerts: [{labels: onNode(web1, 'web'), value: 0}]},
      healthy: {series: [{series: seriesOf('up', onNode(web1, 'web')), values: '1x10'}], at: '5m'},
    },
    {
      rule: {
        alert: 'InfraHaproxyExporterDown',
        expr: `up{job="${JOB_HAPROXY}"} == 0`,
        for: '2m',
        labels: labels('critical'),
        annotations: {
          summary: `HAProxy on ${bastion} does not answer Prometheus: the fleet may be down`,
          description:
            `Prometheus cannot scrape http://${scrapeAddress}/metrics: HAProxy or the bastion is down (then https://${fleet}/ is down too), ` +
            'or Prometheus lost its way to the private network (an ssh tunnel that ended?). ' +
            `What to do: open https://${fleet}/ from outside; \`infra status\` and \`infra doctor\` check the fleet; ` +
            `\`infra logs ${bastion} --unit haproxy --since 15m\` shows why HAProxy stopped; \`infra provision\` restores its configuration.`,
        },
      },
      fires: {series: [{series: seriesOf('up', onHaproxy()), values: '1 1 0x10'}], at: '5m', alerts: [{labels: onHaproxy(), value: 0}]},
      healthy: {series: [{series: seriesOf('up', onHaproxy()), values: '1x10'}], at: '5m'},
    },
    {
      rule: {
        alert: 'InfraBackendNoHealthyServer',
        expr: `haproxy_backend_active_servers{job="${JOB_HAPROXY}",proxy="web"} == 0`,
        for: '1m',
        labels: labels('critical'),
        annotations: {
          summary: `No healthy web node: https://${fleet}/ answers 503`,
          description:
            `HAProxy's backend web has no server up: the health check (GET ${configOf(inv).healthPath} on port ${inv.web.port}) fails on every active node, or every node is in maintenance. ` +
            'What to do: `infra status` shows each node\'s state; `infra logs <node> --unit nginx --since 15m` shows why an active node fails its checks; ' +
            '`infra scale up --yes` puts a standby node in rotation; `infra doctor` checks every host; `infra provision` repairs nginx\'s configuration.',
        },
      },
      fires: {
        series: [{series: seriesOf('haproxy_backend_active_servers', onHaproxy({proxy: 'web'})), values: '1 1 0x10'}],
        at: '5m',
        alerts: [{labels: onHaproxy({proxy: 'web'}), value: 0}],
      },
      healthy: {series: [{series: seriesOf('haproxy_backend_active_servers', onHaproxy({proxy: 'web'})), values: '1x10'}], at: '5m'},
    },
    {
      rule: {
        alert: 'InfraWebNodeFailed',
        expr: 'infra_web_nodes{state="failed"} > 0',
        for: '5m',
        labels: labels('warning'),
        annotations: {
          summary: '{{ $value | printf "%.0f" }} web node(s) failed and were not replaced',
          description:
            `The healthchecker gave up on a web node after ${inv.healing.attempts} restarts and had no standby node to replace it with. ` +
            'What to do: `infra status` names the node; `infra logs <node> --unit nginx --since 1h` and `infra doctor` show why it fails; ' +
            'repair the host, or add a web node to the inventory, and run `infra provision`.',
        },
      },
      fires: {
        series: [{series: seriesOf('infra_web_nodes', onBastion({state: 'failed'})), values: '0 0 1x20'}],
        at: '10m',
        alerts: [{labels: onBastion({state: 'failed'}), value: 1}],
      },
      healthy: {series: [{series: seriesOf('infra_web_nodes', onBastion({state: 'failed'})), values: '0x20'}], at: '10m'},
    },
    {
      rule: {
        alert: 'InfraNodeHighCpu',
        expr: `100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{job="${JOB_NODE}",mode="idle"}[5m]))) > ${T.cpuPercent}`,
        for: T.cpuFor,
        labels: labels('warning'),
        annotations: {
          summary: `CPU of {{ $labels.instance }} at {{ $value | printf "%.0f" }}% for ${T.cpuFor}`,
          description:
            `The scaler starts a standby node when the active web nodes average more than ${scaling.cpuPercent}% CPU for ${scaling.sustainFor}; ` +
            `a node this busy for ${T.cpuFor} means it could not (${scaling.max} active nodes is the most allowed, no standby node left, or the scaler is paused), or the node is the bastion. ` +
            'What to do: `infra status` shows the active nodes and the scaler\'s last decision; `infra scale resume` if it was paused; ' +
            'raise scaling.max or add web nodes to the inventory and run `infra provision`; on the bastion, `infra bans` shows whether a flood is being refused.',
        },
      },
      fires: {
        series: [{series: seriesOf('node_cpu_seconds_total', onNode(web1, 'web', {cpu: '0', mode: 'idle'})), values: '0+6x40'}],
        at: '30m',
        alerts: [{labels: {instance: web1}, value: 90}],
      },
      healthy: {series: [{series: seriesOf('node_cpu_seconds_total', onNode(web1, 'web', {cpu: '0', mode: 'idle'})), values: '0+54x40'}], at: '30m'},
    },
    {
      rule: {
        alert: 'InfraHigh5xxRate',
        expr:
          `100 * sum(rate(haproxy_backend_http_responses_total{job="${JOB_HAPROXY}",proxy="web",code="5xx"}[5m])) ` +
          `/ sum(rate(haproxy_backend_http_responses_total{job="${JOB_HAPROXY}",proxy="web"}[5m])) > ${T.errorPercent}`,
        for: '5m',
        labels: labels('warning'),
        annotations: {
          summary: '{{ $value | printf "%.1f" }}% of the web nodes\' responses are server errors (5xx)',
          description:
            `More than ${T.errorPercent}% of the responses of backend web were 5xx for 5 minutes. ` +
            'What to do: `infra logs all --unit nginx --since 15m --grep " 50"` shows the failing requests; ' +
            `when nginx is fine the application behind it is failing${inv.web.appPort ? ` (port ${inv.web.appPort} on each node)` : ''}; ` +
            `\`infra logs ${bastion} --unit haproxy --since 15m\` shows the 502/503/504 HAProxy answered itself; \`infra status\` shows node health.`,
        },
      },
      fires: {
        series: [
          {series: seriesOf('haproxy_backend_http_responses_total', onHaproxy({proxy: 'web', code: '5xx'})), values: '0+60x30'},
          {series: seriesOf('haproxy_backend_http_responses_total', onHaproxy({proxy: 'web', code: '2xx'})), values: '0+600x30'},
        ],
        at: '20m',
        alerts: [{labels: {}, value: (100 * 60) / 660}],
      },
      healthy: {
        series: [
          {series: seriesOf('haproxy_backend_http_responses_total', onHaproxy({proxy: 'web', code: '5xx'})), values: '0x30'},
          {series: seriesOf('haproxy_backend_http_responses_total', onHaproxy({proxy: 'web', code: '2xx'})), values: '0+600x30'},
        ],
        at: '20m',
      },
    },
    {
      rule: {
        alert: 'InfraCertificateExpiresSoon',
        expr: `(infra_tls_certificate_expiry_timestamp_seconds - time()) / 86400 < ${T.certDays}`,
        for: '10m',
        labels: labels('warning'),
        annotations: {
          summary: 'The certificate for {{ $labels.domain }} expires in {{ $value | printf "%.1f" }} days',
          description: `The certificate HAProxy serves expires in less than ${T.certDays} days (negative: it has expired). What to do: ${tlsTodo}`,
        },
      },
      fires: {
        series: [{series: seriesOf('infra_tls_certificate_expiry_timestamp_seconds', onBastion({domain: fleet})), values: '864000x30'}],
        at: '20m',
        alerts: [{labels: onBastion({domain: fleet}), value: (864000 - 1200) / 86400}],
      },
      healthy: {series: [{series: seriesOf('infra_tls_certificate_expiry_timestamp_seconds', onBastion({domain: fleet})), values: '2592000x30'}], at: '20m'},
    },
    (() => {
      // The heartbeat stops at 300 s; looked at when it has been stale for another 5 minutes.
      const stopsAt = 300
      const at = stopsAt + stale + 300
      const samples = Math.ceil(at / 60) + 5
      return {
        rule: {
          alert: 'InfraAgentHeartbeatStale',
          expr: `time() - infra_agent_last_run_timestamp_seconds > ${stale}`,
          for: '1m',
          labels: labels('critical'),
          annotations: {
            summary: `The {{ $labels.agent }} agent on ${bastion} has not run for {{ $value | printf "%.0f" }} s`,
            description:
              `The agents run every minute from cron on the bastion; while they do not, failed nodes are not healed and the fleet does not scale. ` +
              `What to do: \`infra doctor\` checks the agents; \`infra logs ${bastion} --unit infra-{{ $labels.agent }} --since 1h\` shows their last runs; ` +
              '`infra provision` reinstalls their scripts and cron file.',
          },
        },
        fires: {
          series: [{series: seriesOf('infra_agent_last_run_timestamp_seconds', onBastion({agent: 'scaler'})), values: `0+60x5 ${stopsAt}x${samples}`}],
          at: `${at}s`,
          alerts: [{labels: onBastion({agent: 'scaler'}), value: at - stopsAt}],
        },
        healthy: {
          series: [{series: seriesOf('infra_agent_last_run_timestamp_seconds', onBastion({agent: 'scaler'})), values: `0+60x${samples}`}],
          at: `${at}s`,
        },
      } satisfies RuleCase
    })(),
    {
      rule: {
        alert: 'InfraAgentHeartbeatMissing',
        expr: 'absent(infra_agent_last_run_timestamp_seconds{agent="healthcheck"}) or absent(infra_agent_last_run_timestamp_seconds{agent="scaler"})',
        for: '10m',
        labels: labels('warning'),
        annotations: {
          summary: `No heartbeat at all from the {{ $labels.agent }} agent on ${bastion}`,
          description:
            'The bastion\'s node exporter publishes no infra_agent_last_run_timestamp_seconds for this agent: it has not run since it was installed, ' +
            'its metrics file is missing, or the bastion is not scraped (see InfraNodeDown). ' +
            `What to do: \`infra doctor\` checks the agents and the node exporter; \`infra logs ${bastion} --unit infra-{{ $labels.agent }} --since 1h\`; ` +
            '`infra provision` reinstalls the agents.',
        },
      },
      fires: {
        series: [{series: seriesOf('infra_agent_last_run_timestamp_seconds', onBastion({agent: 'healthcheck'})), values: '0+60x20'}],
        at: '15m',
        alerts: [{labels: {agent: 'scaler'}, value: 1}],
      },
      healthy: {
        series: [
          {series: seriesOf('infra_agent_last_run_timestamp_seconds', onBastion({agent: 'healthcheck'})), values: '0+60x20'},
          {series: seriesOf('infra_agent_last_run_timestamp_seconds', onBastion({agent: 'scaler'})), values: '0+60x20'},
        ],
        at: '15m',
      },
    },
    {
      rule: {
        alert: 'InfraBanSpike',
        expr: `delta(infra_edge_banned_addresses{source="auto"}[10m]) > ${T.newBansIn10m}`,
        labels: labels('warning'),
        annotations: {
          summary: '{{ $value | printf "%.0f" }} more addresses banned automatically within 10 minutes',
          description:
            `The flood limits (${limits.requests} requests per ${limits.window} per address; banned for ${limits.banFor} after ${limits.banAfter} refused) ` +
            'are banning many addresses: an attack, or many clients behind one shared address that is not in limits.allow. ' +
            'What to do: `infra bans` lists the bans and why; `infra ban <network> --for 1h` blocks a whole network; ' +
            '`infra unban <address>` lifts a ban; add legitimate addresses (offices, monitoring) to limits.allow and run `infra provision`.',
        },
      },
      fires: {
        series: [{series: seriesOf('infra_edge_banned_addresses', onBastion({source: 'auto'})), values: '0+5x30'}],
        at: '20m',
        alerts: [{labels: onBastion({source: 'auto'}), value: 50}],
      },
      healthy: {series: [{series: seriesOf('infra_edge_banned_addresses', onBastion({source: 'auto'})), values: '3x30'}], at: '20m'},
    },
    {
      rule: {
        alert: 'InfraDeniedRequestsHigh',
        expr: `sum(rate(haproxy_frontend_requests_denied_total{job="${JOB_HAPROXY}"}[5m])) > ${T.deniedPerSecond}`,
        for: '10m',
        labels: labels('warning'),
        annotations: {
          summary: 'HAProxy refuses {{ $value | printf "%.1f" }} requests per second',
          description:
            'Requests refused at the bastion (flood limits 429, bans 403, CORS, JWT) stayed high for 10 minutes. ' +
            `What to do: \`infra bans\` shows who is banned; \`infra logs ${bastion} --unit haproxy --since 15m --grep edge=\` shows which rule refused what ` +
            '(edge=rate-limit, conn-limit, ban-list, auto-ban, cors-origin, jwt-...); `infra ban <network>` blocks a persistent source; ' +
            'if real users are refused, raise limits.requests or extend limits.allow and run `infra provision`.',
        },
      },
      fires: {
        series: [{series: seriesOf('haproxy_frontend_requests_denied_total', onHaproxy({proxy: 'https'})), values: '0+1200x30'}],
        at: '20m',
        alerts: [{labels: {}, value: 20}],
      },
      healthy: {series: [{series: seriesOf('haproxy_frontend_requests_denied_total', onHaproxy({proxy: 'https'})), values: '0+6x30'}], at: '20m'},
    },
    {
      rule: {
        alert: 'InfraScalerPaused',
        expr: 'infra_scaler_paused == 1',
        for: T.scalerPausedFor,
        labels: labels('info'),
        annotations: {
          summary: `The scaler on ${bastion} has been paused for more than ${T.scalerPausedFor}`,
          description:
            '`infra scale pause` stopped automatic scaling and nobody resumed it (the healthchecker still runs). ' +
            'What to do: `infra scale status` shows the state; `infra scale resume` once the maintenance is over.',
        },
      },
      fires: {series: [{series: seriesOf('infra_scaler_paused', onBastion()), values: '1x500'}], at: '7h', alerts: [{labels: onBastion(), value: 1}]},
      healthy: {series: [{series: seriesOf('infra_scaler_paused', onBastion()), values: '0x500'}], at: '7h'},
    },
  ]
}

/**
 * An annotation as Prometheus expands it, for the templates the rules use:
 * `{{ $labels.NAME }}` and `{{ $value | printf "%.Nf" }}`.
 */
export function expandAnnotation(text: string, labels: Record<string, string>, value: number): string {
  return text.replaceAll(/\{\{\s*(.*?)\s*\}\}/g, (whole, inner: string) => {
    const label = /^\$labels\.(\w+)$/.exec(inner)
    if (label) return labels[label[1]] ?? ''
    const fixed = /^\$value \| printf "%\.(\d)f"$/.exec(inner)
    if (fixed) return value.toFixed(Number(fixed[1]))
    throw new Error(`annotation template not supported by the test generator: ${whole}`)
  })
}
