import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import type {ReleaseHistory} from '../app/release.js'

export default class Releases extends BaseCommand {
  static override summary = 'The app\'s releases, newest first: version, state, when, by whom, image digest, commit.'
  static override description = `Read from the bastion (/var/lib/infra/app/releases.json), shared by everyone who deploys. \
States: current (serving), previous (what \`infra rollback\` goes back to), old, failed (with why).`

  static override examples = [
    {description: 'The table.', command: '<%= config.bin %> releases'},
    {description: 'As JSON.', command: '<%= config.bin %> releases --json'},
    {description: 'A site\'s environment (docs/SITES.md).', command: '<%= config.bin %> releases shop --env preprod'},
  ]

  static override args = {
    site: Args.string({description: 'A site (a key of `sites:`); default: the single app.', required: false}),
  }

  static override flags = {
    env: Flags.string({char: 'e', description: 'The site\'s environment (default: prod).'}),
  }

  static override enableJsonFlag = true

  async run(): Promise<ReleaseHistory> {
    const {args, flags} = await this.parse(Releases)
    const [{loadInventory}, {listReleases}, {renderHistory}] = await Promise.all([import('../inventory/load.js'), import('../tasks/deploy/index.js'), import('../app/release.js')])
    const history = await listReleases(await loadInventory(flags.config), {site: args.site, environment: flags.env})
    if (!this.jsonEnabled()) process.stdout.write(renderHistory(history) + '\n')
    return history
  }
}
