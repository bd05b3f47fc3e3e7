import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'
import type {SiteAddResult} from '../../tasks/sites.js'

export default class SiteAdd extends BaseCommand {
  static override summary = 'Add a site: write it into infra.yaml (comments kept), provision what changed, optionally deploy it.'
  static override description = `Adds sites.NAME to the inventory file (its comments, blank lines and key order are kept; the \
previous file is saved as infra.yaml.bak), checks the result like \`infra validate\` (nothing is written or touched when it is \
invalid: exit 2), then provisions: the bastion gets the site's certificate (SNI), its HAProxy backend and redirects \
(http:// and the aliases → https://DOMAIN) with a graceful reload, so no other site loses a request. With --build or \
--version, the site is deployed too; otherwise deploy it later with \`infra deploy NAME\`. See docs/SITES.md.

Exit status: 0 added, 1 a host failed (infra.yaml is put back), 2 bad usage or inventory.`

  static override examples = [
    {description: 'A site from a build directory.', command: '<%= config.bin %> site add blog --domain blog.example.org --alias www.blog.example.org --image blog --build ./blog --yes'},
    {description: 'Declare it now, deploy later.', command: '<%= config.bin %> site add shop --domain shop.example.com --image shop --port 3000 --yes'},
  ]

  static override enableJsonFlag = true

  static override args = {
    name: Args.string({description: 'The site\'s name: lowercase letters, digits and "-" (e.g. blog).', required: true}),
  }

  static override flags = {
    domain: Flags.string({description: 'The site\'s apex domain.', required: true}),
    alias: Flags.string({description: 'Another name redirected to the domain (repeatable), e.g. www.DOMAIN.', multiple: true}),
    image: Flags.string({description: 'The image, without a tag ("blog": the fleet registry; "ghcr.io/acme/blog": an outside one).', required: true}),
    port: Flags.integer({description: 'The port the app listens on in its container (default 8080).', min: 1, max: 65535}),
    build: Flags.string({description: 'Deploy a build of this directory once the site is provisioned (its version: --version, else its git commit).'}),
    version: Flags.string({char: 'v', description: 'The version to deploy: with --build, its tag; alone, a tag already in the registry.'}),
    yes: Flags.boolean({char: 'y', description: 'Do it without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<SiteAddResult> {
    const {args, flags} = await this.parse(SiteAdd)
    const [{loadInventory}, {addSite}, {progressMode}] = await Promise.all([import('../../inventory/load.js'), import('../../tasks/sites.js'), import('../../ui/tasks.js')])
    const loaded = await loadInventory(flags.config)
    await this.confirmOrYes(flags.yes, {doing: 'add a site', question: `Add ${args.name} (${flags.domain}) to ${loaded.path} and provision it?`, hint: `Run \`infra site add ${args.name} ... --yes\`.`})
    const r = await addSite(loaded, args.name, {domain: flags.domain, aliases: flags.alias, image: flags.image, port: flags.port, build: flags.build, version: flags.version, progress: progressMode(this.jsonEnabled())})
    if (!this.jsonEnabled()) {
      const next = r.deployed ? `serves ${r.deployed.release.id}` : `deploy it: infra deploy ${r.site} --build DIR`
      process.stdout.write(`Added ${r.site} (${r.url}): ${r.provisioned.changes} change(s) on ${r.provisioned.hosts} host(s); ${next}.\n`)
    }
    return r
  }
}
