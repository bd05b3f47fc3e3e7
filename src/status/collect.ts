/**
 * `infra status`: the fleet's live state from ONE exec on the bastion. The script samples HAProxy's
 * runtime API (`show stat`), every host's node exporter (web nodes over the private network, the
 * bastion's on loopback), a live probe of each web node's health path, the scaler's own status and
 * the certificate's end. Rates (requests/s, CPU) are deltas between two samples: two in one exec
 * for a single status, or the previous frame's sample with --watch. Pure builders and parsers
 * here; src/status/run.ts runs them; src/commands/status.ts renders.
 */
import {configOf} from '../inventory/config.js'
import type {Inventory} from '../inventory/schema.js'
import {parseStatCsv, runtimeCommand} from '../host/haproxy.js'
import type {ScaleStatus} from '../roles/scaler.js'
import {shellWord} from '../host/quote.js'
import {factLines, unb64} from '../host/facts.js'
import {AGENT_PATHS, APP_PATHS} from '../host/paths.js'
import {type AppStatus, currentFromFact, parseAppStatus, releasesFactLine} from '../app/release.js'

/** The node exporter families status reads (the rest of a scrape is dropped on the bastion). */
const FAMILIES = ['node_cpu_seconds_total', 'node_memory_MemTotal_bytes', 'node_memory_MemAvailable_bytes', 'node_load1', 'node_boot_time_seconds']

interface Target {
  name: string
  role: 'bastion' | 'web'
  exporter: string
  /** Health probe URL (web nodes). */
  probe?: string
}

function targets(inv: Inventory): Target[] {
  const {healthPath, metricsTargets} = configOf(inv)
  const address = new Map(inv.web.nodes.map((n) => [n.name, n.address]))
  return metricsTargets.map((t) => ({
    name: t.name,
    role: t.role,
    exporter: t.address,
    probe: t.role === 'web' ? `http://${address.get(t.name)}:${inv.web.port}${healthPath}` : undefined,
  }))
}

/**
 * The bash script run on the bastion (pure). `samples` is 1 or 2; with 2 the first sample (stat
 * and CPU counters only) is taken `gapMs` before the second, full one.
 */
export function statusScript(inv: Inventory, opts: {samples: 1 | 2; gapMs?: number}): string {
  const t = targets(inv)
  const grep = `grep -E ${shellWord(`^(${FAMILIES.join('|')})[ {]`)}`
  const sample = (full: boolean) => {
    const jobs = t.map((x) => `( curl -sf -m 2 ${shellWord(`http://${x.exporter}/metrics`)} | ${grep} > "$d/n.${x.name}"; echo $? > "$d/r.${x.name}" ) &`)
    if (full) {
      for (const x of t) {
        if (x.probe) jobs.push(`( curl -s -o /dev/null -w '%{http_code}' -m 2 -H ${shellWord(`Host: ${inv.domain.toLowerCase()}`)} ${shellWord(x.probe)} > "$d/p.${x.name}" 2>/dev/null ) &`)
      }
    }
    return [
      `printf '@@sample\\t%s\\n' "$(date +%s%3N)"`,
      ...jobs,
      `s=$(${runtimeCommand('show stat')} 2>&1) || s=''`,
      'wait',
      `printf '@@stat\\t%s\\n' "$(printf '%s' "$s" | base64 -w0)"`,
      ...t.map((x) => `printf '@@node\\t%s\\t%s\\t%s\\n' ${shellWord(x.name)} "$(cat "$d/r.${x.name}" 2>/dev/null || echo 1)" "$(base64 -w0 < "$d/n.${x.name}" 2>/dev/null)"`),
      ...(full ? t.filter((x) => x.probe).map((x) => `printf '@@probe\\t%s\\t%s\\n' ${shellWord(x.name)} "$(cat "$d/p.${x.name}" 2>/dev/null)"`) : []),
    ]
  }
  const lines = ['set -o pipefail', 'd=$(mktemp -d) || exit 1', `trap 'rm -rf "$d"' EXIT`]
  if (opts.samples === 2) lines.push(...sample(false), `sleep ${((opts.gapMs ?? 1000) / 1000).toFixed(3)}`)
  lines.push(...sample(true))
  lines.push(
    `if [ -x ${shellWord(AGENT_PATHS.scaler)} ]; then printf '@@scaler\\t%s\\n' "$(${shellWord(AGENT_PATHS.scaler)} status --json 2>/dev/null | base64 -w0)"; fi`,
    `printf '@@cert\\t%s\\n' "$(openssl x509 -noout -enddate -in ${shellWord(configOf(inv).tlsPemPath())} 2>/dev/null | sed 's/^notAfter=//')"`,
    ...(inv.app ? appLines(inv) : []),
    'true',
  )
  return lines.join('\n') + '\n'
}

/**
 * With an app: the current release (the history on the bastion) and each node's container, asked
 * of the node agent through the agents' restricted key (its read-only `app` verb), in parallel.
 */
function appLines(inv: Inventory): string[] {
  const nodes = inv.web.nodes.map((n) => n.name)
  return [
    releasesFactLine(APP_PATHS.releases),
    `if [ -r ${AGENT_PATHS.lib} ]; then`,
    ...nodes.map((n) => `  ( . ${AGENT_PATHS.lib} && agent ${shellWord(n)} app > "$d/a.${n}" 2>/dev/null ) &`),
    '  wait',
    ...nodes.map((n) => `  printf '@@app\\t%s\\t%s\\n' ${shellWord(n)} "$(head -n 1 "$d/a.${n}" 2>/dev/null)"`),
    'fi',
  ]
}

// --- Parsing --------------------------------------------------------------------------------------

export interface NodeSample {
  /** The exporter answered. */
  up: boolean
  /** Sum of CPU seconds over every CPU and mode, and the idle (+iowait) part. */
  cpuTotal: number | null
  cpuIdle: number | null
  memTotal: number | null
  memAvailable: number | null
  load1: number | null
}

export interface Sample {
  /** Bastion clock, epoch ms. */
  time: number
  stat: Record<string, string>[]
  nodes: Map<string, NodeSample>
  probes: Map<string, string>
}

export interface RawStatus {
  samples: Sample[]
  scaler: ScaleStatus | null
  /** The certificate's notAfter as openssl prints it, or null. */
  certNotAfter: string | null
  /** With an app: the current release (null: none yet; undefined: unknown) and each node's container (null: no answer). */
  app?: {current?: string | null; nodes: Map<string, AppStatus | null>}
}


/** A few families of a Prometheus text exposition → the numbers status needs. */
export function parseNodeMetrics(text: string): Omit<NodeSample, 'up'> {
  let cpuTotal = 0
  let cpuIdle = 0
  let sawCpu = false
  let memTotal: number | null = null
  let memAvailable: number | null = null
  let load1: number | null = null
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const value = Number(m[3])
    if (!Number.isFinite(value)) continue
    switch (m[1]) {
      case 'node_cpu_seconds_total': {
        sawCpu = true
        cpuTotal += value
        const mode = /mode="([^"]*)"/.exec(m[2] ?? '')?.[1]
        if (mode === 'idle' || mode === 'iowait') cpuIdle += value
        break
      }
      case 'node_memory_MemTotal_bytes':
        memTotal = value
        break
      case 'node_memory_MemAvailable_bytes':
        memAvailable = value
        break
      case 'node_load1':
        load1 = value
        break
    }
  }
  return {cpuTotal: sawCpu ? cpuTotal : null, cpuIdle: sawCpu ? cpuIdle : null, memTotal, memAvailable, load1}
}

/** The script's `@@` lines → samples, scaler status, certificate end. */
export function parseStatusOutput(stdout: string): RawStatus {
  const samples: Sample[] = []
  let scaler: ScaleStatus | null = null
  let certNotAfter: string | null = null
  let app: RawStatus['app']
  for (const {tag, fields} of factLines(stdout)) {
    const cur = samples.at(-1)
    switch (tag) {
      case '@@sample':
        samples.push({time: Number(fields[0]), stat: [], nodes: new Map(), probes: new Map()})
        break
      case '@@stat':
        if (cur) cur.stat = parseStatCsv(unb64(fields[0]))
        break
      case '@@node':
        if (cur) cur.nodes.set(fields[0], {up: fields[1] === '0', ...parseNodeMetrics(unb64(fields[2]))})
        break
      case '@@probe':
        if (cur) cur.probes.set(fields[0], fields[1] ?? '')
        break
      case '@@scaler': {
        const text = unb64(fields[0]).trim()
        if (text) {
          try {
            scaler = JSON.parse(text) as ScaleStatus
          } catch {
            scaler = null
          }
        }
        break
      }
      case '@@cert':
        certNotAfter = fields[0]?.trim() || null
        break
      case '@@releases':
        app ??= {nodes: new Map()}
        app.current = currentFromFact(fields[0])
        break
      case '@@app':
        app ??= {nodes: new Map()}
        app.nodes.set(fields[0], fields[1]?.includes('release=') ? parseAppStatus(fields[1]) : null)
        break
    }
  }
  return {samples, scaler, certNotAfter, ...(app ? {app} : {})}
}
