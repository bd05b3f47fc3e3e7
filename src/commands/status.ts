import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import type {FleetStatus} from '../status/model.js'

export default class Status extends BaseCommand {
  static override summary = 'Show the fleet live: each web node, the bastion, the scaler.'
  static override description = `One SSH connection to the bastion and one command on it per refresh: HAProxy's runtime \
API (state, health check, sessions, requests), every host's node exporter (CPU, memory; web nodes over the private \
network) and a live probe of each web node's health path. No server of ours, nothing to install beyond \`infra provision\`.

Per web node: its state (active, standby, draining, failed: in rotation but failing its health check or parked after \
failing, down: the host does not answer at all), health (HAProxy's status and last check, and the probe's HTTP status), \
requests per second, current sessions, CPU and memory. Then the bastion's totals and the certificate's days to expiry, \
the scaler's last decision, and what needs a look, each with the command to run next.

Requests per second and CPU are measured over one second between two samples (between two refreshes with --watch).

Exit status: 0 (whatever the fleet's state), 1 the bastion could not be reached, 2 a bad flag or inventory.`

  static override examples = [
    {description: 'The fleet now.', command: '<%= config.bin %> status'},
    {description: 'Refresh every 2 seconds in place (Ctrl-C to stop).', command: '<%= config.bin %> status --watch'},
    {description: 'Once, for scripts: nodes[], bastion, scaler, problems[].', command: "<%= config.bin %> status --json | jq '.nodes[] | {name, state}'"},
  ]

  static override enableJsonFlag = true

  static override flags = {
    watch: Flags.boolean({char: 'w', description: 'Refresh in place until Ctrl-C (on a terminal; frames one after another otherwise).', default: false}),
    interval: Flags.integer({description: 'Seconds between refreshes with --watch.', default: 2, min: 1, max: 3600}),
  }

  async run(): Promise<FleetStatus | undefined> {
    const {flags} = await this.parse(Status)
    if (flags.watch && this.jsonEnabled()) {
      throw new UsageError('--watch and --json cannot be used together', {hint: 'Use `infra status --json` once (e.g. in a loop of your own), or `infra status --watch` on a terminal.'})
    }
    const [{loadInventory}, {openStatus}, {renderStatus}, {onInterrupt}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/status.js'),
      import('../status/render.js'),
      import('../ui/interrupt.js'),
    ])
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const session = await openStatus(loaded)
    const tty = Boolean(process.stdout.isTTY)
    const color = tty && !process.env.NO_COLOR
    try {
      if (!flags.watch) {
        const status = await session.next()
        if (!this.jsonEnabled()) process.stdout.write(`${renderStatus(status, {color})}\n`)
        return status
      }
      const interrupt = onInterrupt({graceMs: 5000})
      try {
        while (!interrupt.signal.aborted) {
          const started = Date.now()
          const status = await session.next()
          if (interrupt.signal.aborted) break
          const frame = `${renderStatus(status, {color})}\n\n(every ${flags.interval}s; Ctrl-C to stop)\n`
          // On a terminal: cursor home, clear the screen, draw. Otherwise frames one after another.
          process.stdout.write(tty ? `\u001B[H\u001B[2J${frame}` : `${frame}\n`)
          await interrupt.sleep(Math.max(0, flags.interval * 1000 - (Date.now() - started)))
        }
      } finally {
        interrupt.dispose()
      }
      return undefined
    } finally {
      await session.close()
    }
  }
}
