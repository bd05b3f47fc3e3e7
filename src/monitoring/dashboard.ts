/**
 * The Grafana dashboard of the fleet, as a typed object (written as JSON by export.ts).
 * Data source: a `datasource` variable of type prometheus, so the same JSON works when imported
 * in the UI and when provisioned from a file. Schema version 39 (Grafana 10.x/11.x).
 */
import type {Inventory} from '../inventory/schema.js'
import {metricNamesOfExpr} from './promql.js'
import {JOB_HAPROXY, JOB_NODE, THRESHOLDS} from './rules.js'

export interface DashboardTarget {
  refId: string
  expr: string
  legendFormat?: string
  datasource: {type: 'prometheus'; uid: string}
  instant?: boolean
  range?: boolean
}

export interface DashboardPanel {
  id: number
  type: 'timeseries' | 'stat' | 'row'
  title: string
  description?: string
  gridPos: {x: number; y: number; w: number; h: number}
  datasource?: {type: 'prometheus'; uid: string}
  targets?: DashboardTarget[]
  fieldConfig?: {defaults: Record<string, unknown>; overrides: unknown[]}
  options?: Record<string, unknown>
  collapsed?: boolean
  panels?: DashboardPanel[]
}

export interface DashboardVariable {
  name: string
  label?: string
  type: 'datasource' | 'query' | 'custom' | 'constant' | 'interval' | 'textbox'
  query: string | {query: string; refId?: string}
  current?: Record<string, unknown>
  hide?: number
  refresh?: number
  datasource?: {type: 'prometheus'; uid: string}
}

export interface Dashboard {
  title: string
  uid: string
  description: string
  tags: string[]
  timezone: string
  schemaVersion: number
  version: number
  editable: boolean
  graphTooltip: number
  refresh: string
  time: {from: string; to: string}
  templating: {list: DashboardVariable[]}
  annotations: {list: unknown[]}
  links: unknown[]
  panels: DashboardPanel[]
}

const DS = {type: 'prometheus' as const, uid: '${datasource}'}

/** A URL-safe uid (at most 40 characters) derived from the domain, so two fleets get two dashboards. */
function dashboardUid(domain: string): string {
  return `infra-${domain.toLowerCase().replaceAll(/[^a-z0-9-]/g, '-')}`.slice(0, 40)
}

type PanelMaker = (
  type: 'timeseries' | 'stat',
  title: string,
  gridPos: DashboardPanel['gridPos'],
  description: string,
  targets: {expr: string; legend: string}[],
  unit: string,
  extra?: Partial<DashboardPanel>,
) => DashboardPanel

/** A panel builder that numbers its panels 1, 2, 3… in the order they are made. */
function panelMaker(): PanelMaker {
  let id = 0
  return (type, title, gridPos, description, targets, unit, extra = {}) => ({
    id: ++id,
    type,
    title,
    description,
    gridPos,
    datasource: DS,
    targets: targets.map((t, i) => ({refId: String.fromCharCode(65 + i), expr: t.expr, legendFormat: t.legend, datasource: DS})),
    fieldConfig: {
      defaults: {
        unit,
        ...(type === 'timeseries' ? {custom: {drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: false}} : {}),
      },
      overrides: [],
    },
    options:
      type === 'stat'
        ? {reduceOptions: {calcs: ['lastNotNull'], fields: '', values: false}, colorMode: 'value', graphMode: 'area', textMode: 'auto', orientation: 'auto'}
        : {legend: {displayMode: 'list', placement: 'bottom', showLegend: true}, tooltip: {mode: 'multi', sort: 'desc'}},
    ...extra,
  })
}

const H = `job="${JOB_HAPROXY}"`
const N = `job="${JOB_NODE}"`

function thresholds(steps: {color: string; value: number | null}[]) {
  return {thresholds: {mode: 'absolute', steps}}
}

/** The top row: four stat panels (web nodes, requests/s, certificate, bans). */
function statPanels(panel: PanelMaker, fleet: string): DashboardPanel[] {
  return [
    panel(
      'stat',
      'Active web nodes',
      {x: 0, y: 0, w: 6, h: 5},
      'Web nodes by state as the agents see them (infra_web_nodes), and servers UP in HAProxy\'s backend web.',
      [
        {expr: 'sum by (state) (infra_web_nodes)', legend: '{{state}}'},
        {expr: `sum(haproxy_server_status{${H},proxy="web",state="UP"})`, legend: 'UP in HAProxy'},
      ],
      'none',
    ),
    panel(
      'stat',
      'Requests/s now',
      {x: 6, y: 0, w: 6, h: 5},
      'HTTP requests per second received by the bastion (all frontends but stats).',
      [{expr: `sum(rate(haproxy_frontend_http_requests_total{${H},proxy!="stats"}[$__rate_interval]))`, legend: 'requests/s'}],
      'reqps',
    ),
    panel(
      'stat',
      'Certificate',
      {x: 12, y: 0, w: 6, h: 5},
      `Days until the certificate of ${fleet} expires (alert below ${THRESHOLDS.certDays}).`,
      [{expr: '(infra_tls_certificate_expiry_timestamp_seconds - time()) / 86400', legend: '{{domain}}'}],
      'd',
      {
        fieldConfig: {
          defaults: {
            unit: 'd',
            decimals: 0,
            ...thresholds([
              {color: 'red', value: null},
              {color: 'orange', value: THRESHOLDS.certDays},
              {color: 'green', value: 30},
            ]),
          },
          overrides: [],
        },
      },
    ),
    panel(
      'stat',
      'Banned addresses',
      {x: 18, y: 0, w: 6, h: 5},
      'Addresses banned at the bastion: auto (flood limits) and list (infra ban).',
      [{expr: 'sum by (source) (infra_edge_banned_addresses)', legend: '{{source}}'}],
      'none',
    ),
  ]
}

/** The traffic panels from HAProxy: requests/s, errors, latency. */
function trafficPanels(panel: PanelMaker): DashboardPanel[] {
  return [
    panel(
      'timeseries',
      'Requests/s',
      {x: 0, y: 5, w: 12, h: 8},
      'Requests per second at the bastion, and per web node (responses of each server of backend web).',
      [
        {expr: `sum(rate(haproxy_frontend_http_requests_total{${H},proxy!="stats"}[$__rate_interval]))`, legend: 'bastion'},
        {expr: `sum by (server) (rate(haproxy_server_http_responses_total{${H},proxy="web"}[$__rate_interval]))`, legend: '{{server}}'},
      ],
      'reqps',
    ),
    panel(
      'timeseries',
      'Errors (4xx / 5xx)',
      {x: 12, y: 5, w: 12, h: 8},
      'Error responses per second sent by the bastion (by class), of which 5xx from the web nodes, and requests HAProxy refused (limits, bans, CORS, JWT).',
      [
        {expr: `sum by (code) (rate(haproxy_frontend_http_responses_total{${H},proxy!="stats",code=~"4xx|5xx"}[$__rate_interval]))`, legend: '{{code}} (all)'},
        {expr: `sum(rate(haproxy_backend_http_responses_total{${H},proxy="web",code="5xx"}[$__rate_interval]))`, legend: '5xx from web nodes'},
        {expr: `sum(rate(haproxy_frontend_requests_denied_total{${H}}[$__rate_interval]))`, legend: 'refused by HAProxy'},
      ],
      'reqps',
    ),
    panel(
      'timeseries',
      'Latency',
      {x: 0, y: 13, w: 12, h: 8},
      'Average over the last 1024 requests, from HAProxy: response time (until the first response byte from a node) and total time (the whole request), backend web and per node.',
      [
        {expr: `haproxy_backend_response_time_average_seconds{${H},proxy="web"}`, legend: 'response (web)'},
        {expr: `haproxy_backend_total_time_average_seconds{${H},proxy="web"}`, legend: 'total (web)'},
        {expr: `haproxy_server_response_time_average_seconds{${H},proxy="web"}`, legend: 'response {{server}}'},
      ],
      's',
    ),
  ]
}

/** The node panels (CPU, memory) and the agents' actions. */
function nodePanels(panel: PanelMaker, inv: Inventory): DashboardPanel[] {
  return [
    panel(
      'timeseries',
      'CPU per node',
      {x: 12, y: 13, w: 12, h: 8},
      `CPU use per host (100% minus idle). The scaler's threshold is ${inv.scaling.cpuPercent}% for ${inv.scaling.sustainFor}; the alert fires at ${THRESHOLDS.cpuPercent}% for ${THRESHOLDS.cpuFor}.`,
      [{expr: `100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{${N},mode="idle"}[$__rate_interval])))`, legend: '{{instance}}'}],
      'percent',
      {
        fieldConfig: {
          defaults: {
            unit: 'percent',
            min: 0,
            max: 100,
            custom: {drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: false, thresholdsStyle: {mode: 'line'}},
            ...thresholds([
              {color: 'green', value: null},
              {color: 'red', value: inv.scaling.cpuPercent},
            ]),
          },
          overrides: [],
        },
      },
    ),
    panel(
      'timeseries',
      'Memory used per node',
      {x: 0, y: 21, w: 12, h: 8},
      'Memory in use per host (total minus available).',
      [{expr: `100 * (1 - node_memory_MemAvailable_bytes{${N}} / node_memory_MemTotal_bytes{${N}})`, legend: '{{instance}}'}],
      'percent',
    ),
    panel(
      'timeseries',
      'Scaler and healer actions',
      {x: 12, y: 21, w: 12, h: 8},
      'Actions of the agents (scale_up, scale_down, restart, replace, alert) and the scaler\'s decisions, per 15 minutes; the dotted line is the number of active nodes.',
      [
        {expr: 'sum by (agent, action) (increase(infra_agent_actions_total[15m]))', legend: '{{agent}} {{action}}'},
        {expr: 'sum by (decision) (increase(infra_scaler_decisions_total[15m]))', legend: 'decision {{decision}}'},
        {expr: 'sum(infra_web_nodes{state="active"})', legend: 'active nodes'},
        {expr: 'max(infra_scaler_paused)', legend: 'scaler paused'},
      ],
      'none',
    ),
  ]
}

export function fleetDashboard(inv: Inventory): Dashboard {
  const fleet = inv.domain.toLowerCase()
  const panel = panelMaker()
  const panels = [...statPanels(panel, fleet), ...trafficPanels(panel), ...nodePanels(panel, inv)]
  return {
    title: `infra fleet: ${fleet}`,
    uid: dashboardUid(fleet),
    description: `The web fleet behind the bastion ${inv.bastion.name} (written by infra monitoring export; see docs/MONITORING.md).`,
    tags: ['infra', fleet],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    time: {from: 'now-6h', to: 'now'},
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Prometheus',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
        },
      ],
    },
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: {type: 'grafana', uid: '-- Grafana --'},
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [],
    panels,
  }
}

/** Every PromQL expression of a dashboard: panel targets (rows included) and query variables. */
export function dashboardExprs(dashboard: {panels?: DashboardPanel[]; templating?: {list?: DashboardVariable[]}}): string[] {
  const exprs: string[] = []
  const walk = (panels: DashboardPanel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) exprs.push(t.expr)
      walk(p.panels)
    }
  }
  walk(dashboard.panels)
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : v.query.query
    // Grafana's label_values(expr, label) / query_result(expr): only expr is PromQL.
    const lv = /^\s*label_values\s*\(\s*(.*?)\s*(?:,\s*[A-Za-z_]\w*\s*)?\)\s*$/s.exec(q)
    if (lv) {
      if (!/^[A-Za-z_]\w*$/.test(lv[1]) || q.includes(',')) exprs.push(lv[1])
      continue
    }
    const qr = /^\s*query_result\s*\(\s*(.*)\)\s*$/s.exec(q)
    exprs.push(qr ? qr[1] : q)
  }
  return exprs
}

/** The metric names a dashboard's queries read, sorted and without duplicates. */
export function dashboardMetricNames(dashboard: {panels?: DashboardPanel[]; templating?: {list?: DashboardVariable[]}}): string[] {
  return [...new Set(dashboardExprs(dashboard).flatMap(metricNamesOfExpr))].sort()
}
