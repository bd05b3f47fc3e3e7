import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {EXIT} from '../lib/errors.js'

export default class Plan extends BaseCommand {
  static override summary = 'Show what `provision` would change on every host (same as `provision --dry-run`).'
  static override description = 'Gathers facts from each host in one SSH round trip and prints, per host, the unified diff of every file and the package and service changes. Nothing on a host is changed. Secrets (the TLS key) are never shown.'
  static override examples = ['<%= config.bin %> plan', '<%= config.bin %> plan --host bastion', '<%= config.bin %> plan --json']
  static override enableJsonFlag = true
  static override flags = {
    host: Flags.string({description: 'Limit to this host (repeatable).', multiple: true}),
  }

  async run() {
    const {flags} = await this.parse(Plan)
    const [{loadInventory}, {provision}, {printResult}, {progressMode}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/provision/index.js'),
      import('../tasks/provision/render.js'),
      import('../ui/tasks.js'),
    ])
    const loaded = await loadInventory(flags.config)
    const json = this.jsonEnabled()
    const result = await provision(loaded, {dryRun: true, only: flags.host, progress: progressMode(json)})
    if (!json) printResult(result)
    if (result.failed.length > 0) process.exitCode = EXIT.FAILURE
    return result
  }
}
