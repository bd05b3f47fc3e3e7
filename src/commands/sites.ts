import {BaseCommand} from '../lib/base-command.js'
import type {SiteRow} from '../app/sites.js'

export default class Sites extends BaseCommand {
  static override summary = 'The sites of the fleet: each environment\'s URL, current release and health.'
  static override description = `One round trip to the bastion: each site unit's release history (releases.json) and HAProxy's \
server states of its backend. Health: ok (every node in rotation is UP), degraded (some are not), down (none), unknown (no \
backend yet: run \`infra provision\`). See docs/SITES.md.

Exit status: 0, 1 when the bastion cannot be reached, 2 for a bad inventory.`

  static override examples = [
    {description: 'The table.', command: '<%= config.bin %> sites'},
    {description: 'As JSON, e.g. for a dashboard.', command: '<%= config.bin %> sites --json'},
  ]

  static override enableJsonFlag = true

  async run(): Promise<{sites: SiteRow[]}> {
    const {flags} = await this.parse(Sites)
    const [{loadInventory}, {listSites}, {renderSites}] = await Promise.all([import('../inventory/load.js'), import('../tasks/sites.js'), import('../app/sites.js')])
    const rows = await listSites(await loadInventory(flags.config))
    if (!this.jsonEnabled()) process.stdout.write(renderSites(rows) + '\n')
    return {sites: rows}
  }
}
