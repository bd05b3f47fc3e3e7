import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'
import type {SiteRemoveResult} from '../../tasks/sites.js'

export default class SiteRm extends BaseCommand {
  static override summary = 'Remove a site: HAProxy stops routing it (graceful reload), then its containers, files and history go.'
  static override description = `Removes sites.NAME from the inventory file (comments kept; the previous file is saved as \
infra.yaml.bak) and provisions: HAProxy no longer routes the site's names (requests in flight finish on the old worker; \
no other site loses a request). Then, on its nodes, every unit of the site (prod, environments, previews) is removed: \
containers, images, nginx's server block (graceful reload), state; and its release history on the bastion. Volumes are kept. \
See docs/SITES.md.

Exit status: 0 removed, 1 a host failed, 2 no such site or bad usage.`

  static override examples = [{description: 'Remove the blog.', command: '<%= config.bin %> site rm blog --yes'}]

  static override enableJsonFlag = true

  static override args = {
    name: Args.string({description: 'The site to remove.', required: true}),
  }

  static override flags = {
    yes: Flags.boolean({char: 'y', description: 'Remove without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<SiteRemoveResult> {
    const {args, flags} = await this.parse(SiteRm)
    const [{loadInventory}, {removeSite}, {requireSite}, {progressMode}] = await Promise.all([
      import('../../inventory/load.js'),
      import('../../tasks/sites.js'),
      import('../../tasks/deploy/target.js'),
      import('../../ui/tasks.js'),
    ])
    const loaded = await loadInventory(flags.config)
    requireSite(loaded, args.name)
    await this.confirmOrYes(flags.yes, {doing: 'remove a site', question: `Remove ${args.name} and its containers from the fleet?`, hint: `Run \`infra site rm ${args.name} --yes\`.`})
    const r = await removeSite(loaded, args.name, {progress: progressMode(this.jsonEnabled())})
    if (!this.jsonEnabled()) process.stdout.write(`Removed ${r.site} (${r.units.join(', ')}) from ${r.nodes.join(', ') || 'no node'}.\n`)
    return r
  }
}
