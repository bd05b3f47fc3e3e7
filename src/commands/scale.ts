import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import type {ScaleAction} from '../roles/scaler.js'
import type {ScaleResult} from '../tasks/scale.js'

export default class Scale extends BaseCommand {
  static override summary = 'Show or change the active web nodes; pause or resume the automatic scaler.'
  static override description = `Runs the scaler's own steps on the bastion (\`infra-scaler\`, installed by \`infra provision\`), \
so a manual change is done exactly as the scaler does it: \`up\` starts a standby node's web service, waits until its health \
check passes, then puts it in rotation; \`down\` drains a node (no new sessions; waits until its sessions end, 30 s at most), \
parks it (maintenance) and stops its web service. A number beyond scaling.min/scaling.max is refused (exit 2).

With an app, \`up\` and \`--to\` first give every standby node the current release if it lacks it (files copied from \
a node that has them, image pulled, container created; docs/DEPLOY.md), so a started node never serves an old release.

\`pause\` stops the automatic scaler (e.g. during maintenance) until \`resume\`; the healthchecker keeps running. \
See docs/AGENTS.md.

Changes need --yes when there is no terminal (CI).

Exit status: 0 done, 1 the bastion could not be reached or a step failed, 2 beyond min/max or bad usage.`

  static override examples = [
    {description: 'Each web node with its state, CPU and sessions, and the last decisions.', command: '<%= config.bin %> scale status'},
    {description: 'The same as JSON.', command: '<%= config.bin %> scale status --json'},
    {description: 'One more node in rotation.', command: '<%= config.bin %> scale up --yes'},
    {description: 'Exactly two active nodes.', command: '<%= config.bin %> scale --to 2 --yes'},
    {description: 'Suspend the automatic scaler during maintenance.', command: '<%= config.bin %> scale pause'},
  ]

  static override enableJsonFlag = true

  static override args = {
    action: Args.string({description: 'status (default), up, down, pause or resume.', options: ['status', 'up', 'down', 'pause', 'resume'], required: false}),
  }

  static override flags = {
    to: Flags.integer({description: 'Bring the number of active web nodes to N (within scaling.min..max).', min: 0}),
    yes: Flags.boolean({char: 'y', description: 'Change without asking for confirmation.', default: false, env: 'INFRA_YES'}),
  }

  async run(): Promise<ScaleResult> {
    const {args, flags} = await this.parse(Scale)
    if (flags.to !== undefined && args.action && args.action !== 'status') {
      throw new UsageError(`--to and ${args.action} cannot be used together`, {hint: 'Use `infra scale --to N` or `infra scale up|down`.'})
    }
    const action: ScaleAction =
      flags.to === undefined ? ({verb: (args.action ?? 'status') as Exclude<ScaleAction['verb'], 'to'>}) : {verb: 'to', count: flags.to}
    const {loadInventory} = await import('../inventory/load.js')
    const [{runScale}, {checkTarget}] = await Promise.all([import('../tasks/scale.js'), import('../roles/scaler.js')])
    const loaded = await loadInventory(flags.config)
    if (action.verb === 'to') checkTarget(loaded, action.count)
    if (['up', 'down', 'to'].includes(action.verb)) {
      const what = action.verb === 'to' ? `bring the active web nodes to ${action.count}` : `scale ${action.verb} by one node`
      await this.confirmOrYes(flags.yes, {doing: what, question: `${what[0].toUpperCase()}${what.slice(1)}?`, hint: `Run \`infra scale ${action.verb === 'to' ? `--to ${action.count}` : action.verb} --yes\`.`})
    }
    const result = await runScale(loaded, action, {json: this.jsonEnabled(), log: (line) => process.stderr.write(line + '\n')})
    if (!this.jsonEnabled() && result.output) process.stdout.write(result.output + '\n')
    return result
  }
}
