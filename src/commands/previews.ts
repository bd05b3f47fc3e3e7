import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import type {PreviewMeta} from '../app/previews.js'

export default class Previews extends BaseCommand {
  static override summary = 'The preview environments: site, branch, URL, release, last deploy.'
  static override description = 'Read from the bastion (each preview\'s preview.json). See docs/SITES.md.'

  static override examples = [
    {description: 'Every site\'s previews.', command: '<%= config.bin %> previews'},
    {description: 'One site\'s, as JSON.', command: '<%= config.bin %> previews shop --json'},
  ]

  static override enableJsonFlag = true

  static override args = {
    site: Args.string({description: 'Only this site\'s previews.', required: false}),
  }

  async run(): Promise<{previews: PreviewMeta[]}> {
    const {args, flags} = await this.parse(Previews)
    const [{loadInventory}, {listPreviews}] = await Promise.all([import('../inventory/load.js'), import('../tasks/previews.js')])
    const previews = await listPreviews(await loadInventory(flags.config), args.site)
    if (!this.jsonEnabled()) {
      const lines = previews.map((p) => `${p.site}  ${p.branch}  ${p.url}  ${p.release ?? '-'}  ${p.deployedAt}`)
      process.stdout.write((lines.length > 0 ? ['SITE  BRANCH  URL  RELEASE  DEPLOYED', ...lines].join('\n') : 'No previews.') + '\n')
    }
    return {previews}
  }
}
