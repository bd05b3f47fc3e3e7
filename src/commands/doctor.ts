import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {EXIT} from '../lib/errors.js'

export default class Doctor extends BaseCommand {
  static override summary = 'Check the fleet: what is wrong, and how to fix it.'
  static override description = `Reads every host over one SSH connection each (web nodes through the bastion), in \
parallel, and looks at the fleet from this machine as the internet sees it. Each check prints ✔ / ⚠ / ✖ with what it \
measured, and every ⚠ or ✖ one line saying how to fix it. A host that cannot be reached has its checks skipped.

Checks: reachable, os, time, sshd, firewall, disk, memory, load, unattended-upgrades; on the bastion haproxy, \
haproxy-config, backends, tls-expiry, tls-san, agents, scaler-paused; on web nodes no-public-address, web-service, \
web-health; from this machine (host "internet") http-redirect, alias-redirect, tls-versions, hsts, edge-health, \
private-unreachable. docs/DOCTOR.md describes each one, its thresholds and its fix.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed (or warned, with --strict), 2 for a bad \
flag or inventory.`

  static override examples = [
    {description: 'Check the whole fleet.', command: '<%= config.bin %> doctor'},
    {description: 'Only the bastion, only its certificate.', command: '<%= config.bin %> doctor --host bastion --check tls-expiry --check tls-san'},
    {description: 'CI: warnings fail too, JSON out.', command: '<%= config.bin %> doctor --strict --json'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    host: Flags.string({description: 'Only this host (repeatable); "internet" for the checks made from this machine.', multiple: true}),
    check: Flags.string({description: 'Only this check id (repeatable).', multiple: true}),
    strict: Flags.boolean({description: 'Warnings fail too (exit 1).', default: false}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Doctor)
    const [{loadInventory}, {doctor, doctorExitCode}, {progressMode}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/doctor.js'),
      import('../ui/tasks.js'),
    ])
    const loaded = await loadInventory(flags.config)
    // --host and --check are checked by the task before any connection (exit 2).
    const report = await doctor(loaded, {hosts: flags.host, checks: flags.check, onHostKeyNew: (m) => this.info(m), progress: progressMode(this.jsonEnabled())})
    for (const w of report.warnings ?? []) this.info(`⚠ ${w}`)
    const code = doctorExitCode(report, flags.strict)
    if (code !== 0) process.exitCode = EXIT.FAILURE
    if (!this.jsonEnabled()) {
      const {renderReport} = await import('../checks/report.js')
      const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR
      process.stdout.write(renderReport(report, {color, strict: flags.strict}))
    }
    return {
      checks: report.checks.map(({id, host, status, value, message, fix}) => ({id, host, status, value, message, fix})),
      summary: report.summary,
    }
  }
}
