import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'
import type {PreviewDeployResult} from '../../tasks/previews.js'

export default class PreviewDeploy extends BaseCommand {
  static override summary = 'Create or update the preview of a branch at https://<branch-slug>.<previews domain>; prints its URL.'
  static override description = `Deploys the site's app (its prod configuration) as a preview environment of its own: containers, \
nginx server block and release history per branch, on the site's nodes, behind the site's wildcard certificate. The slug is the \
branch in lower case with every other character run turned into "-", at most 40 characters (a longer or colliding one ends \
with a hash of the branch), so the same branch always lands on the same URL. At most previews.max previews at once \
(previews.onLimit: refuse, or evict the least recently deployed); a preview not deployed for previews.ttl is removed by a \
timer on the bastion. Made for CI: the URL alone is printed on stdout (with --json, the whole result). See docs/SITES.md.

Exit status: 0 deployed, 1 a node failed, 2 bad usage (no previews for the site, the limit reached with onLimit: refuse).`

  static override examples = [
    {description: 'From CI, on a push to a branch.', command: '<%= config.bin %> preview deploy shop --branch "$GITHUB_REF_NAME" --build . --yes --json'},
    {description: 'A tag already in the registry.', command: '<%= config.bin %> preview deploy shop --branch feature/login --version 3f2a9c1 --yes'},
  ]

  static override enableJsonFlag = true

  static override args = {
    site: Args.string({description: 'The site (it must declare previews).', required: true}),
  }

  static override flags = {
    branch: Flags.string({char: 'b', description: 'The git branch the preview is for.', required: true}),
    build: Flags.string({description: 'Build this directory on the bastion and deploy it.'}),
    version: Flags.string({char: 'v', description: 'Deploy this version (a tag already in the registry); with --build, its tag.'}),
    yes: Flags.boolean({char: 'y', description: 'Deploy without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<PreviewDeployResult> {
    const {args, flags} = await this.parse(PreviewDeploy)
    const [{loadInventory}, {previewDeploy}, {progressMode}] = await Promise.all([import('../../inventory/load.js'), import('../../tasks/previews.js'), import('../../ui/tasks.js')])
    const loaded = await loadInventory(flags.config)
    await this.confirmOrYes(flags.yes, {doing: 'deploy a preview', question: `Deploy a preview of ${flags.branch} for ${args.site}?`, hint: 'Add --yes.'})
    const r = await previewDeploy(loaded, args.site, flags.branch, {build: flags.build, version: flags.version, progress: progressMode(this.jsonEnabled())})
    if (!this.jsonEnabled()) {
      if (r.evicted) process.stderr.write(`Evicted the preview of ${r.evicted} (previews.max).\n`)
      process.stderr.write(`Preview of ${r.branch}: release ${r.deploy.release.id}.\n`)
      process.stdout.write(`${r.url}\n`)
    }
    return r
  }
}
