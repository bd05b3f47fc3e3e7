/**
 * `infra doctor` as a task list: render what every host should have (pure, nothing written), read
 * the facts (one SSH connection and one exec per host, all in parallel, with the internet's view
 * from this machine at the same time), then judge (src/checks/judge.ts).
 */
import {doctorScript, parseDoctorFacts} from '../checks/facts.js'
import {gatherExternal, type ExternalFacts} from '../checks/external.js'
import {type DoctorOptions, type DoctorReport, type Gathered, judge, type Selection, selectionOf, summarize} from '../checks/judge.js'
import {DEFAULT_THRESHOLDS} from '../checks/types.js'
import {configOf} from '../inventory/config.js'
import type {LoadedInventory} from '../inventory/load.js'
import {hostsOf, type HostSpec} from '../inventory/schema.js'
import type {HostDesiredState} from '../plan/types.js'
import {type ProgressMode, runSteps} from '../ui/tasks.js'
import {prepareFleet} from './provision/prepare.js'

export {doctorExitCode, type DoctorOptions, type DoctorReport} from '../checks/judge.js'

interface Run {
  desired: Map<string, HostDesiredState>
  gathered: Map<string, Gathered>
  external?: ExternalFacts
  warnings: string[]
}

async function gather(loaded: LoadedInventory, hosts: HostSpec[], run: Run, opts: DoctorOptions, sel: Selection, update: (h: string, phase: string, d?: string) => void): Promise<void> {
  const {openFleet} = await import('../ssh/fleet.js')
  const inv = loaded.inventory
  const fleet = openFleet(loaded, {onHostKeyNew: (e) => opts.onHostKeyNew?.(e.message)})
  try {
    const externalP = sel.wantExternal ? gatherExternal(inv) : Promise.resolve(undefined)
    const results = await fleet.forEach(
      async (conn) => {
        const h = conn.host
        update(h.name, 'facts')
        const script = doctorScript({
          role: h.role,
          desired: run.desired.get(h.name),
          health: h.role === 'web' ? {address: h.privateAddress, port: inv.web.port, path: configOf(inv).healthPath} : undefined,
          app: inv.app ? {registryAddress: configOf(inv).registryAddress} : undefined,
        })
        const start = Date.now()
        const r = await conn.exec('bash -s', {stdin: script, timeoutMs: 20_000})
        const end = Date.now()
        update(h.name, 'done', 'facts read')
        return {facts: parseDoctorFacts(r.stdout), localTime: (start + end) / 2000, ms: end - start}
      },
      {hosts: hosts.map((h) => h.name), concurrency: Math.max(hosts.length, 1)},
    )
    for (const h of hosts) {
      const r = results.get(h.name)!
      if (!r.ok) update(h.name, 'failed', r.error.message)
      run.gathered.set(h.name, r.ok ? {host: h, ...r.value} : {host: h, localTime: Date.now() / 1000, error: r.error, ms: 0})
    }
    run.external = await externalP
  } finally {
    await fleet.close()
  }
}

export async function doctor(loaded: LoadedInventory, opts: DoctorOptions & {progress?: ProgressMode} = {}): Promise<DoctorReport & {warnings?: string[]}> {
  const t0 = Date.now()
  const inv = loaded.inventory
  const all = hostsOf(inv)
  const sel = selectionOf(all, opts)
  const run: Run = {desired: new Map(), gathered: new Map(), warnings: []}
  await runSteps(
    run,
    [
      {
        title: `Render ${all.length} hosts`,
        run: async (r) => {
          const prepared = await prepareFleet(loaded)
          for (const p of prepared.hosts) r.desired.set(p.spec.name, p.desired)
          r.warnings = prepared.warnings
        },
      },
      {title: 'Read facts', hosts: () => sel.gather.map((h) => h.name), run: (r, update) => gather(loaded, sel.gather, r, opts, sel, update)},
    ],
    opts.progress,
  )
  const thresholds = {...DEFAULT_THRESHOLDS, ...opts.thresholds}
  const checks = judge(sel, {inventory: inv, bastion: all[0], desired: run.desired, gathered: run.gathered, external: run.external, thresholds})
  return {checks, summary: summarize(checks), durationMs: Date.now() - t0, ...(run.warnings.length ? {warnings: run.warnings} : {})}
}
