import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import type {DeployResult} from '../tasks/deploy/index.js'

export default class Rollback extends BaseCommand {
  static override summary = 'Go back to the previous release (or a named one), with the same rolling switch as deploy.'
  static override description = `Switches every serving node, deploy.batch at a time, to a release whose container and image are \
still on the nodes (the last app.keep releases): no pull, no build. The release's own configuration (env and secrets as they \
were) comes back with it. Standby nodes get its container created. Takes the deploy lock like a deploy.

Exit status: 0 rolled back, 1 a node failed (it keeps what it ran), 2 no such release or bad usage.`

  static override examples = [
    {description: 'Back to the previous release.', command: '<%= config.bin %> rollback --yes'},
    {description: 'To a given release of `infra releases`.', command: '<%= config.bin %> rollback v1 --yes'},
    {description: 'A site\'s production (docs/SITES.md).', command: '<%= config.bin %> rollback shop --yes'},
    {description: 'A site\'s environment, to a given release.', command: '<%= config.bin %> rollback shop v3 --env preprod --yes'},
  ]

  static override enableJsonFlag = true

  static override args = {
    target: Args.string({description: 'A site (a key of `sites:`), or, for the single app, the release.', required: false}),
    release: Args.string({description: 'The release (ID or version) to go back to; default: the previous one.', required: false}),
  }

  static override flags = {
    env: Flags.string({char: 'e', description: 'The site\'s environment (default: prod).'}),
    yes: Flags.boolean({char: 'y', description: 'Roll back without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<DeployResult> {
    const {args, flags} = await this.parse(Rollback)
    const [{loadInventory}, {runRollback}, {renderDeployResult}, {progressMode}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/deploy/index.js'),
      import('../app/render.js'),
      import('../ui/tasks.js'),
    ])
    const loaded = await loadInventory(flags.config)
    // `infra rollback SITE [RELEASE]`, or `infra rollback [RELEASE]` for the single app.
    const isSite = args.target !== undefined && Object.hasOwn(loaded.inventory.sites ?? {}, args.target)
    const site = isSite ? args.target : undefined
    const release = isSite ? args.release : (args.target ?? args.release)
    if (!isSite && args.release !== undefined) throw new UsageError(`there is no site ${JSON.stringify(args.target)}`, {hint: 'See `infra sites`.'})
    await this.confirmOrYes(flags.yes, {doing: 'roll back', question: `Roll back ${site ?? 'the app'} to ${release ?? 'the previous release'}?`, hint: 'Run `infra rollback --yes`.'})
    const result = await runRollback(loaded, {to: release, site, environment: flags.env, progress: progressMode(this.jsonEnabled())})
    if (!this.jsonEnabled()) process.stdout.write(renderDeployResult(result) + '\n')
    return result
  }
}
