import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {EXIT} from '../lib/errors.js'
import {UNIT_NAMES} from '../logs/query.js'

export default class Logs extends BaseCommand {
  static override summary = "Read hosts' journals: HAProxy, nginx, the agents (web nodes through the bastion)."
  static override description = `Runs journalctl on each host TARGET names, over SSH (web nodes through the bastion), and \
prints its entries as they arrive: \`TIME HOST UNIT[PID]: MESSAGE\`, time in this machine's time zone.

TARGET is a host name, \`all\`, \`web\`, \`bastion\`, or several separated by commas. With several hosts, the host \
column is padded (and coloured on a terminal, unless NO_COLOR is set); without --follow their entries are merged by \
time, with --follow they are printed as they come.

--unit haproxy (bastion), nginx (web nodes), infra-scaler, infra-healthcheck, infra-bans (bastion) and \
infra-node-agent (web nodes) may be repeated. Naming a unit that does not run on the one host asked for is an error; \
with several hosts, a host that runs none of the units is left out.

Without --since or --lines: the last 100 entries, or the last 10 before following. --since takes 30s, 10m, 1h, 2d \
(measured by each host's clock) or a date and time (2026-11-22 10:00, 2026-11-22T10:00:00, this machine's time zone \
unless it ends in Z or +01:00). --grep keeps the entries whose message contains TEXT, ignoring case. --json prints \
one JSON object per line (NDJSON): {time, host, unit, pid, priority, message}, time in UTC with microseconds. \
docs/LOGS.md has the details.

Exit status: 0 when every host was read (also after Ctrl-C with --follow), 1 when a host could not be read (the \
others are still shown), 2 for a bad flag, target or inventory (nothing is connected).`

  static override examples = [
    {description: "A web node's requests of the last 10 minutes.", command: '<%= config.bin %> logs web1 --unit nginx --since 10m'},
    {description: 'Follow HAProxy and nginx everywhere.', command: '<%= config.bin %> logs all --unit haproxy --unit nginx --follow'},
    {description: 'What the agents did today.', command: "<%= config.bin %> logs bastion --unit infra-healthcheck --unit infra-scaler --since '2026-11-22 00:00'"},
    {description: 'Entries that mention a path, as NDJSON for jq.', command: '<%= config.bin %> logs all --since 1h --grep /api/ --json | jq -r .message'},
  ]

  static override args = {
    target: Args.string({description: 'Host name, all, web, bastion, or a comma-separated list.', required: true}),
  }

  static override flags = {
    unit: Flags.string({char: 'u', description: 'Only this unit (repeatable).', multiple: true, options: UNIT_NAMES}),
    since: Flags.string({description: 'Entries since: 30s, 10m, 1h, 2d, or a date and time (2026-11-22 10:00).'}),
    lines: Flags.integer({char: 'n', description: 'At most the last N entries (per host). Default: 100, or 10 with --follow; all with --since.', min: 0}),
    follow: Flags.boolean({char: 'f', description: 'Keep printing new entries until Ctrl-C.', default: false}),
    grep: Flags.string({char: 'g', description: 'Only entries whose message contains TEXT (fixed string, any case).'}),
    json: Flags.boolean({description: 'One JSON object per line (NDJSON): {time, host, unit, pid, priority, message}.', default: false}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Logs)
    const [{parseSince, planHosts}, {loadInventory}, {resolveTarget}] = await Promise.all([
      import('../logs/query.js'),
      import('../inventory/load.js'),
      import('../ssh/targets.js'),
    ])
    // Everything is checked before a host is contacted.
    const since = flags.since === undefined ? undefined : parseSince(flags.since)
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const hosts = resolveTarget(loaded.inventory, args.target)
    const {plans, skipped} = planHosts(hosts, (flags.unit ?? []) as typeof UNIT_NAMES)
    if (skipped.length > 0) this.info(`Leaving out ${skipped.map((h) => h.name).join(', ')}: no ${[...new Set(flags.unit)].join(' or ')} there.`)

    const [{readLogs}, {formatEntry, jsonLine}, {errorPrinter}, {onInterrupt}] = await Promise.all([
      import('../tasks/logs.js'),
      import('../logs/entry.js'),
      import('../ui/stream.js'),
      import('../ui/interrupt.js'),
    ])
    const several = hosts.length > 1
    const width = Math.max(...plans.map((p) => p.host.name.length))
    const index = new Map(plans.map((p, i) => [p.host.name, i]))
    const color = !flags.json && Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && several

    // Ctrl-C (or a closed pipe, `| head`) stops the stream; the connections are closed, exit 0.
    const interrupt = onInterrupt()
    const printError = errorPrinter()
    try {
      const {failed} = await readLogs(loaded, {
        query: {units: [], since, lines: flags.lines, follow: flags.follow, grep: flags.grep},
        plans,
        order: flags.follow || plans.length === 1 ? 'arrival' : 'time',
        signal: interrupt.signal,
        onHostKeyNew: (e) => this.info(e.message),
        onEntry: (e) => {
          if (interrupt.signal.aborted) return
          process.stdout.write(
            flags.json ? jsonLine(e) : formatEntry(e, {hostWidth: several ? width : 0, color, hostIndex: index.get(e.host)}),
          )
        },
        onHostError: (_host, error) => printError('', 'Error: ', error),
      })
      if (failed.length > 0) {
        if (several) this.info(`Could not read ${failed.length} of ${plans.length} hosts: ${failed.join(', ')}`)
        process.exitCode = EXIT.FAILURE
      }
    } finally {
      interrupt.dispose()
    }
  }
}
