import {BaseCommand} from '../lib/base-command.js'
import type {ReleaseHistory} from '../app/release.js'

export default class Releases extends BaseCommand {
  static override summary = 'The app\'s releases, newest first: version, state, when, by whom, image digest, commit.'
  static override description = `Read from the bastion (/var/lib/infra/app/releases.json), shared by everyone who deploys. \
States: current (serving), previous (what \`infra rollback\` goes back to), old, failed (with why).`

  static override examples = [
    {description: 'The table.', command: '<%= config.bin %> releases'},
    {description: 'As JSON.', command: '<%= config.bin %> releases --json'},
  ]

  static override enableJsonFlag = true

  async run(): Promise<ReleaseHistory> {
    const {flags} = await this.parse(Releases)
    const [{loadInventory}, {listReleases}, {renderHistory}] = await Promise.all([import('../inventory/load.js'), import('../tasks/deploy/index.js'), import('../app/release.js')])
    const history = await listReleases(await loadInventory(flags.config))
    if (!this.jsonEnabled()) process.stdout.write(renderHistory(history) + '\n')
    return history
  }
}
