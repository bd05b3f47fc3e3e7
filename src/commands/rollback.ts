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
  ]

  static override enableJsonFlag = true

  static override args = {
    release: Args.string({description: 'The release (ID or version) to go back to; default: the previous one.', required: false}),
  }

  static override flags = {
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
    if (!flags.yes) {
      const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY && !process.env.CI)
      if (!interactive) throw new UsageError('--yes is required to roll back without a terminal', {hint: 'Run `infra rollback --yes`.'})
      const {confirm} = await import('@inquirer/prompts')
      if (!(await confirm({message: `Roll back to ${args.release ?? 'the previous release'}?`, default: false}))) throw new UsageError('cancelled; nothing was changed')
    }
    const result = await runRollback(loaded, {to: args.release, progress: progressMode(this.jsonEnabled())})
    if (!this.jsonEnabled()) process.stdout.write(renderDeployResult(result) + '\n')
    return result
  }
}
