import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import type {DeployResult} from '../tasks/deploy/index.js'

export default class Promote extends BaseCommand {
  static override summary = 'Deploy to one environment of a site exactly the image another one runs (by digest), without building.'
  static override description = `Reads FROM's current release on the bastion and deploys its image, by digest, to TO, with TO's \
own configuration (env values, secrets, nodes) and the same rolling switch as \`infra deploy\` (no failed request). The \
release keeps FROM's version; TO's history records it, so \`infra rollback SITE --env TO\` goes back. Nothing is built. \
See docs/SITES.md.

Exit status: 0 promoted (or already current), 1 a node failed, 2 bad usage (no such site or environment, FROM has no release).`

  static override examples = [
    {description: 'preprod → prod.', command: '<%= config.bin %> promote shop preprod prod --yes'},
    {description: 'dev → preprod, JSON result for CI.', command: '<%= config.bin %> promote shop dev preprod --yes --json'},
  ]

  static override enableJsonFlag = true

  static override args = {
    site: Args.string({description: 'The site.', required: true}),
    from: Args.string({description: 'The environment whose release is promoted.', required: true}),
    to: Args.string({description: 'The environment that gets it.', required: true}),
  }

  static override flags = {
    yes: Flags.boolean({char: 'y', description: 'Promote without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<DeployResult & {from: string}> {
    const {args, flags} = await this.parse(Promote)
    const [{loadInventory}, {runPromote}, {renderDeployResult}, {progressMode}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/deploy/index.js'),
      import('../app/render.js'),
      import('../ui/tasks.js'),
    ])
    const loaded = await loadInventory(flags.config)
    await this.confirmOrYes(flags.yes, {doing: 'promote', question: `Deploy ${args.site} ${args.from}'s release to ${args.to}?`, hint: `Run \`infra promote ${args.site} ${args.from} ${args.to} --yes\`.`})
    const result = await runPromote(loaded, args.site, args.from, args.to, {progress: progressMode(this.jsonEnabled())})
    if (!this.jsonEnabled()) process.stdout.write(`${args.site}: ${args.from} → ${args.to}\n${renderDeployResult(result)}\n`)
    return result
  }
}
