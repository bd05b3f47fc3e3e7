import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'

export default class PreviewRm extends BaseCommand {
  static override summary = 'Remove the preview of a branch: its containers, nginx server block and history.'
  static override description = `Removes the unit of the branch's preview on each of the site's nodes (containers, images, \
nginx's server block with a graceful reload, state) and its folder on the bastion. A branch without a preview is not an error \
(CI may run it twice). See docs/SITES.md.

Exit status: 0 removed (or none), 1 a node failed, 2 bad usage.`

  static override examples = [{description: 'From CI, when the branch is deleted.', command: '<%= config.bin %> preview rm shop --branch "$BRANCH" --json'}]

  static override enableJsonFlag = true

  static override args = {
    site: Args.string({description: 'The site.', required: true}),
  }

  static override flags = {
    branch: Flags.string({char: 'b', description: 'The git branch whose preview goes.', required: true}),
  }

  async run(): Promise<{site: string; branch: string; removed: string | null}> {
    const {args, flags} = await this.parse(PreviewRm)
    const [{loadInventory}, {previewRemove}] = await Promise.all([import('../../inventory/load.js'), import('../../tasks/previews.js')])
    const r = await previewRemove(await loadInventory(flags.config), args.site, flags.branch)
    if (!this.jsonEnabled()) process.stdout.write(r.removed ? `Removed the preview of ${r.branch} (${r.removed}).\n` : `${r.site} has no preview of ${r.branch}.\n`)
    return r
  }
}
