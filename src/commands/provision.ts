import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {EXIT, UsageError} from '../lib/errors.js'

export default class Provision extends BaseCommand {
  static override summary = 'Bring every host to the state the inventory describes (bastion first, then web nodes).'
  static override description = `For each host: gather facts in one SSH round trip, compute the desired state (packages, files, services, firewall), apply only the differences, verify.
New configurations are validated on the host (haproxy -c, nft -c, sshd -t, nginx -t) before they replace the live ones; the previous version of every file is kept under /var/lib/infra/prev. Firewall and sshd changes are reverted automatically unless a new SSH connection confirms them.
Without a terminal (CI), pass --yes.`

  static override examples = [
    {description: 'See what would change, touching nothing', command: '<%= config.bin %> provision --dry-run'},
    {description: 'Apply without a prompt (CI)', command: '<%= config.bin %> provision --yes'},
    {description: 'Only one host, JSON summary', command: '<%= config.bin %> provision --host web2 --yes --json'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    'dry-run': Flags.boolean({description: 'Print the plan (a unified diff per file, package and service changes) and change nothing.', default: false}),
    yes: Flags.boolean({char: 'y', description: 'Apply without asking for confirmation.', default: false, env: 'INFRA_YES'}),
    host: Flags.string({description: 'Limit the run to this host (repeatable).', multiple: true}),
    'confirm-timeout': Flags.string({
      description: 'How long before a firewall/sshd change reverts by itself unless a new SSH connection confirms it: from 10s to 30m.',
      default: '30s',
    }),
  }

  async run() {
    const {flags} = await this.parse(Provision)
    const [{loadInventory}, {provision}, {confirmTimeoutSeconds, printResult}, {progressMode}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/provision/index.js'),
      import('../tasks/provision/render.js'),
      import('../ui/tasks.js'),
    ])
    const guardSeconds = confirmTimeoutSeconds(flags['confirm-timeout'])
    const ask = !flags['dry-run'] && !flags.yes
    if (ask && !interactive()) {
      throw new UsageError('provision changes hosts and there is no terminal to confirm it', {hint: 'Pass --yes to apply (see the changes first with `infra plan`).'})
    }
    const loaded = await loadInventory(flags.config)
    const json = this.jsonEnabled()
    const result = await provision(loaded, {
      dryRun: flags['dry-run'],
      only: flags.host,
      guardSeconds,
      progress: progressMode(json),
      // Interactive apply without --yes: show the plan, then ask (Terraform's way).
      confirm: ask
        ? async (planned) => {
            printResult(planned)
            const {confirm} = await import('@inquirer/prompts')
            const hosts = planned.hosts.filter((h) => h.changeCount > 0).length
            return confirm({message: `Apply ${planned.totalChanges} change(s) to ${hosts} host(s)?`, default: false})
          }
        : undefined,
    })
    if (!json) {
      if (result.declined) process.stderr.write('Nothing applied.\n')
      else printResult(result)
    }
    if (result.failed.length > 0) process.exitCode = EXIT.FAILURE
    return result
  }
}

function interactive(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY && !process.env.CI)
}
