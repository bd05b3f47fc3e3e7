/**
 * Metrics on the hosts (src/roles/metrics.ts, the agents' textfile metrics in
 * src/templates/agents): where each node exporter listens, how the bastion's HAProxy publishes
 * them, and what the agents write for the textfile collector (run for real in sh, checked by
 * promtool when it is installed, as in CI).
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {agentBastionFiles} from '../../src/roles/agents.js'
import {configOf} from '../../src/inventory/config.js'
import {NODE_EXPORTER_SERVICE, renderNodeExporterDefaults} from '../../src/roles/metrics.js'
import {desiredState, renderHaproxyConfig, renderWebNftables} from '../../src/roles/render.js'
import {context, fileAt, hostsByName, inventory, tempDir} from './render-helpers.js'
import {AGENT_PATHS} from '../../src/host/paths.js'

const inv = inventory({
  domain: 'example.com',
  bastion: {name: 'edge', publicAddress: '203.0.113.10', privateAddress: '10.10.0.1'},
  web: {nodes: [{name: 'web1', address: '10.10.0.11'}, {name: 'web2', address: '10.10.0.12'}, {name: 'web3', address: '10.10.0.13', standby: true}]},
})
const hosts = hostsByName(inv)
const ctx = context(inv)
const dir = tempDir('infra-metrics-')
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const argsOf = (text: string) => /^ARGS="([^"]*)"$/m.exec(text)?.[1]?.split(' ') ?? []

describe('node exporter on every host', () => {
  it('listens on the private address of a web node and on loopback on the bastion', () => {
    expect(argsOf(renderNodeExporterDefaults(ctx, hosts.web2))).toContain('--web.listen-address=10.10.0.12:9100')
    expect(argsOf(renderNodeExporterDefaults(ctx, hosts.edge))).toContain('--web.listen-address=127.0.0.1:9100')
    for (const h of Object.values(hosts)) {
      expect(argsOf(renderNodeExporterDefaults(ctx, h))).toContain('--collector.textfile.directory=/var/lib/prometheus/node-exporter')
      // No address of every interface: 0.0.0.0 or an empty host part.
      expect(renderNodeExporterDefaults(ctx, h)).not.toMatch(/listen-address=(0\.0\.0\.0)?:/)
    }
  })

  it('is part of each role: package, options file (restart on change), running service that must listen where it should', () => {
    for (const h of Object.values(hosts)) {
      const d = desiredState(ctx, h)
      expect(d.packages).toContain('prometheus-node-exporter')
      const f = fileAt(d.files, '/etc/default/prometheus-node-exporter')
      expect(f.notify).toEqual([{service: NODE_EXPORTER_SERVICE, action: 'restart'}])
      const svc = d.services.find((s) => s.name === NODE_EXPORTER_SERVICE)
      expect(svc).toMatchObject({enabled: true, running: true})
      expect(svc!.verify).toContain(h.role === 'bastion' ? "'127.0.0.1:9100 '" : `'${h.privateAddress}:9100 '`)
    }
  })

  it('web firewall: port 9100 only from the bastion', () => {
    const nft = renderWebNftables(ctx, hosts.web1)
    const line = nft.split('\n').find((l) => /\b9100\b/.test(l))
    expect(line, nft).toMatch(/ip saddr \$bastion tcp dport \{[^}]*\b9100\b/)
    expect(nft).toMatch(/define bastion = 10\.10\.0\.1\n/)
  })

  it("the bastion's HAProxy publishes every node exporter at /nodes/<host>/metrics on its private address", () => {
    const cfg = renderHaproxyConfig(ctx)
    const stats = cfg.slice(cfg.indexOf('frontend stats'))
    expect(stats).toMatch(/bind 10\.10\.0\.1:8404\n/)
    expect(configOf(inv).metricsTargets.map((t) => t.name)).toEqual(['edge', 'web1', 'web2', 'web3'])
    for (const t of configOf(inv).metricsTargets) {
      expect(stats).toContain(`use_backend metrics_${t.name} if { path /nodes/${t.name}/metrics }`)
      const backend = cfg.slice(cfg.indexOf(`backend metrics_${t.name}\n`)).split('\n\n')[0]
      expect(backend).toContain('http-request set-path /metrics')
      expect(backend).toContain(`server ${t.name} ${t.name === 'edge' ? '127.0.0.1' : inv.web.nodes.find((n) => n.name === t.name)!.address}:9100`)
    }
  })
})

// --- The agents' textfile metrics: the real lib.sh functions, in sh ---------------------------------

function sh(script: string): {code: number; stdout: string; stderr: string} {
  const r = spawnSync('sh', ['-c', script], {encoding: 'utf8', timeout: 20_000})
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
}

describe("the agents' metrics (textfile collector)", () => {
  const lib = path.join(dir, 'agents.sh')
  writeFileSync(lib, fileAt(agentBastionFiles(ctx), AGENT_PATHS.lib).content)
  const prom = path.join(dir, 'prom')
  mkdirSync(prom)
  // The lib's own functions with its folders pointed at the temp dir.
  const run = (body: string) => sh(`. '${lib}'; STATE_DIR='${dir}/state'; COUNTS_DIR='${dir}/state/metrics'; METRICS_DIR='${prom}'; AGENT=healthcheck\n${body}`)

  it('counts actions across runs, every kind listed from 0', () => {
    expect(run('counted healthcheck restart; counted healthcheck restart; counted healthcheck replace').code).toBe(0)
    const r = run('counted healthcheck restart; agent_metrics healthcheck restart replace alert | metrics_write infra_healthcheck')
    expect(r.code, r.stderr).toBe(0)
    const text = readFileSync(path.join(prom, 'infra_healthcheck.prom'), 'utf8')
    expect(text).toContain('infra_agent_actions_total{agent="healthcheck",action="restart"} 3\n')
    expect(text).toContain('infra_agent_actions_total{agent="healthcheck",action="replace"} 1\n')
    expect(text).toContain('infra_agent_actions_total{agent="healthcheck",action="alert"} 0\n')
    const ts = Number(/^infra_agent_last_run_timestamp_seconds\{agent="healthcheck"\} (\d+)$/m.exec(text)?.[1])
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(30)
    // Only the finished file is left in the folder (the collector reads *.prom).
    expect(spawnSync('ls', ['-A', prom], {encoding: 'utf8'}).stdout.trim()).toBe('infra_healthcheck.prom')
  })

  it('writes nothing (and does not fail) when the collector folder is missing', () => {
    const r = sh(`. '${lib}'; METRICS_DIR='${dir}/none'; COUNTS_DIR='${dir}/state/metrics'; agent_metrics scaler scale_up | metrics_write infra_scaler`)
    expect(r.code).toBe(0)
    expect(existsSync(`${dir}/none`)).toBe(false)
  })

  it('is valid Prometheus text (promtool check metrics)', (t) => {
    if (spawnSync('promtool', ['--version']).status !== 0) {
      if (process.env.CI) throw new Error('promtool is missing: .ci/run installs Debian package prometheus')
      t.skip()
    }
    const r = run('agent_metrics healthcheck restart replace alert; metric_head infra_web_nodes gauge "Web nodes by state."; echo \'infra_web_nodes{state="active"} 2\'')
    const check = spawnSync('promtool', ['check', 'metrics'], {input: r.stdout, encoding: 'utf8'})
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0)
    // And it does catch a broken exposition.
    expect(spawnSync('promtool', ['check', 'metrics'], {input: `${r.stdout}infra_x{a="1" 2\n`, encoding: 'utf8'}).status).not.toBe(0)
  })

  it('both agents publish: heartbeat and actions; the healthchecker node states, certificate end and bans; the scaler decisions and pause', () => {
    const files = agentBastionFiles(ctx)
    const hc = fileAt(files, AGENT_PATHS.healthcheck).content
    const sc = fileAt(files, AGENT_PATHS.scaler).content
    for (const m of ['agent_metrics "$AGENT" restart replace alert', 'infra_web_nodes', 'infra_tls_certificate_expiry_timestamp_seconds', 'infra_edge_banned_addresses', 'metrics_write infra_healthcheck']) {
      expect(hc).toContain(m)
    }
    for (const m of ['agent_metrics "$AGENT" scale_up scale_down alert', 'infra_scaler_decisions_total', 'infra_scaler_paused', 'metrics_write infra_scaler']) expect(sc).toContain(m)
    // Each run (cron's loop and `once`) publishes after its pass.
    for (const s of [hc, sc]) {
      expect(s).toContain('tick() { pass; publish; }')
      expect(s).toMatch(/every_loop "\$\w+" "\$HB" tick/)
      expect(s).toContain('once) tick ;;')
    }
  })
})
