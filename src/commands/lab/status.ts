import {BaseCommand} from '../../lib/base-command.js'

export default class LabStatus extends BaseCommand {
  static override summary = 'Show the local lab\'s hosts and whether each one runs.'
  static override description = `Lists the hosts of the lab on this machine: name, role, public and private address, \
and whether its container runs. With --json: {"config": PATH|null, "hosts": [{"name", "role", "publicAddress"?, \
"privateAddress", "standby", "running"}]}.

Exit status: 0 (also when no lab is running: config is then null).`

  static override examples = [
    {description: 'A table of the lab\'s hosts.', command: '<%= config.bin %> lab status'},
    {description: 'For scripts.', command: '<%= config.bin %> lab status --json'},
  ]

  static override enableJsonFlag = true

  async run(): Promise<unknown> {
    await this.parse(LabStatus)
    const {labStatus} = await import('../../lab/index.js')
    const s = await labStatus()
    if (!this.jsonEnabled()) {
      if (!s.config) {
        this.log('No lab is running. Start one with `sudo infra lab up`.')
        return s
      }
      const rows = [['NAME', 'ROLE', 'PUBLIC', 'PRIVATE', 'STATE'], ...s.hosts.map((h) => [h.name, h.role + (h.standby ? ' (standby)' : ''), h.publicAddress ?? '-', h.privateAddress, h.running ? 'running' : 'stopped'])]
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
      this.log(`Lab inventory: ${s.config}`)
      for (const r of rows) this.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd())
    }
    return s
  }
}
