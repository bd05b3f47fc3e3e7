import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import type {DeployResult} from '../tasks/deploy/index.js'

export default class Deploy extends BaseCommand {
  static override summary = 'Deploy a release of the app to every web node, one batch at a time, with no failed request.'
  static override description = `Takes the deploy lock on the bastion, gets the image (built on the bastion from --build DIR, loaded from \
--archive FILE, or the tag --version V already in the registry), pulls it on every web node in parallel (standby nodes too), runs \
app.release once if set, then rolls through the serving nodes deploy.batch at a time: the new container starts beside the old \
one, must answer its health path within deploy.timeout, then nginx on the node switches to it (a graceful reload) and the old \
container is drained (deploy.drain) and stopped, kept for \`infra rollback\`. Standby nodes get the container created, not started. \
The release is recorded on the bastion (\`infra releases\`).

If a new container is not healthy in time, that node keeps the old one, nodes already switched go back (deploy.onFailure: rollback), \
the release is recorded as failed, the container's last lines are printed, and the exit status is 1.

The version defaults to the git commit of --build DIR, else a timestamp. Secrets (app.secrets) come from the environment or \
app.secretsFile and reach the nodes in a 0600 env file; they are never printed. See docs/DEPLOY.md.

Exit status: 0 deployed (or already current), 1 a node or the image failed, 2 bad usage or inventory.`

  static override examples = [
    {description: 'Build the directory on the bastion and deploy it (the version is its git commit).', command: '<%= config.bin %> deploy --build . --yes'},
    {description: 'A named version from a build context.', command: '<%= config.bin %> deploy --build ./app --version v2 --yes'},
    {description: 'A `docker save` archive.', command: '<%= config.bin %> deploy --archive shop.tar --version v3 --yes'},
    {description: 'A tag already in the registry, JSON result for CI.', command: '<%= config.bin %> deploy --version v2 --yes --json'},
    {description: 'A site of `sites:` (docs/SITES.md), to its preprod environment.', command: '<%= config.bin %> deploy shop --env preprod --build . --yes'},
    {description: 'A given tag on the debug environment (untouched by promotions).', command: '<%= config.bin %> deploy shop --env debug --version v1.4.2 --yes'},
  ]

  static override args = {
    site: Args.string({description: 'The site to deploy (a key of `sites:`); without one, the inventory\'s `app`.', required: false}),
  }

  static override enableJsonFlag = true

  static override flags = {
    version: Flags.string({char: 'v', description: 'The release version (the image tag). Default: the git commit of --build DIR, else a timestamp.'}),
    build: Flags.string({description: 'Build this directory (it holds a Dockerfile) with Docker on the bastion; no Docker needed here.', exclusive: ['archive']}),
    archive: Flags.string({description: 'Load this `docker save` archive on the bastion and deploy it.', exclusive: ['build']}),
    env: Flags.string({char: 'e', description: 'The site\'s environment (default: prod).'}),
    yes: Flags.boolean({char: 'y', description: 'Deploy without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<DeployResult> {
    const {args, flags} = await this.parse(Deploy)
    const [{loadInventory}, {runDeploy, DeployFailure}, {renderDeployResult, renderFailedNodes}, {progressMode}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/deploy/index.js'),
      import('../app/render.js'),
      import('../ui/tasks.js'),
    ])
    const loaded = await loadInventory(flags.config)
    const what = flags.build ? `a build of ${flags.build}` : flags.archive ? flags.archive : `version ${flags.version ?? '?'}`
    await this.confirmOrYes(flags.yes, {doing: 'deploy', question: `Deploy ${what} to ${args.site ? `${args.site} (${flags.env ?? 'prod'})` : 'every web node'}?`, hint: 'Run `infra deploy ... --yes`.'})
    try {
      const result = await runDeploy(loaded, {site: args.site, environment: flags.env, version: flags.version, build: flags.build, archive: flags.archive, progress: progressMode(this.jsonEnabled())})
      if (!this.jsonEnabled()) process.stdout.write(renderDeployResult(result) + '\n')
      return result
    } catch (error) {
      if (error instanceof DeployFailure) {
        const failed = error.result.nodes.find((n) => n.result === 'failed')
        process.stderr.write(`Deploy of ${error.result.release.id} failed${failed ? ` on ${failed.name}` : ''}.\n${renderFailedNodes(error.result)}\n`)
        if (error.cause instanceof Error && 'logs' in error.cause) process.stderr.write(`${String((error.cause as {logs: string}).logs)}\n`)
        if (this.jsonEnabled()) {
          // The JSON document carries the error and the result so far (which nodes switched back).
          process.exitCode = error.exitCode
          return {error: {code: error.code, message: error.message, hint: error.hint}, ...error.result} as DeployResult
        }
      }
      throw error
    }
  }
}
