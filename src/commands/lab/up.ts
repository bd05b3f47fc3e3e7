import {Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'

export default class LabUp extends BaseCommand {
  static override summary = 'Start a local fleet of real Debian 12 hosts and write its inventory.'
  static override description = `Boots a bastion and web nodes on this machine as real systemd hosts (systemd-nspawn on \
network namespaces), wired like production: only the bastion has a "public" address (198.51.100.10, reachable from this \
machine), web nodes sit on a private network (10.42.0.0/24) behind it, and this machine has no route to that network.

The first run builds a Debian 12 base image with debootstrap (about a minute, from this machine's apt mirror) and caches \
it under /var/cache/infra-lab; later runs boot in seconds. It writes a ready inventory at --config (default ./infra.yaml) \
with an operator SSH key in .infra-lab/ beside it. It never overwrites an inventory it did not write.

Running it again keeps the running lab, and starts again any host whose container died; leftovers of a crashed run are \
cleaned up first. Needs root on Linux; installs its Debian prerequisites (debootstrap, systemd-container, ...) when missing.

Exit status: 0 lab ready, 1 a host did not come up, 2 cannot run here (not root, not Linux, missing tools, existing \
inventory, a lab with other settings already running).`

  static override examples = [
    {description: 'One active and two standby web nodes behind a bastion, inventory in ./infra.yaml.', command: 'sudo <%= config.bin %> lab up'},
    {description: 'Two active web nodes and one standby, inventory in another folder.', command: 'sudo <%= config.bin %> lab up --web 2 --standby 1 --config lab/infra.yaml'},
    {description: 'Then: run a command on every host, and provision the fleet.', command: '<%= config.bin %> exec all -- hostname && <%= config.bin %> provision'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    web: Flags.integer({description: 'Active web nodes (default 1, or the running lab\'s).', min: 1, max: 40, env: 'INFRA_LAB_WEB'}),
    standby: Flags.integer({description: 'Standby web nodes (default 2, or the running lab\'s).', min: 0, max: 39, env: 'INFRA_LAB_STANDBY'}),
    timeout: Flags.integer({description: 'Seconds to wait for every host to boot and answer on SSH.', default: 120, min: 5, env: 'INFRA_LAB_TIMEOUT'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabUp)
    const {labUp, fmt} = await import('../../lab/index.js')
    const info = await labUp({config: flags.config, web: flags.web, standby: flags.standby, timeoutSec: flags.timeout})
    if (!this.jsonEnabled()) {
      const web = info.hosts.filter((h) => h.role === 'web')
      const standby = web.filter((h) => h.standby).length
      this.log(
        `Lab ${info.reused ? 'running' : 'ready'} in ${fmt(info.timings.totalMs)}: 1 bastion + ${web.length - standby} active + ${standby} standby web nodes.`,
      )
      for (const h of info.hosts) {
        this.log(`  ${h.name.padEnd(8)} ${h.role.padEnd(8)} ${(h.publicAddress ?? '-').padEnd(15)} ${h.privateAddress.padEnd(12)}${h.standby ? ' standby' : ''}`)
      }
      this.log(`Inventory: ${info.config}`)
      const c = flags.config === './infra.yaml' || flags.config === 'infra.yaml' ? '' : ` --config ${flags.config}`
      const next = [
        [`infra exec all${c} -- hostname`, 'a command on every host, through the bastion'],
        [`infra provision${c}`, 'make it a fleet: firewall and NAT, HAProxy, nginx'],
        ['infra lab status', "the lab's hosts"],
        ['infra lab down', 'remove the lab (the image cache stays)'],
      ]
      const w = Math.max(...next.map(([cmd]) => cmd.length))
      this.info(`\nNext:\n${next.map(([cmd, what]) => `  ${cmd.padEnd(w)}   # ${what}`).join('\n')}`)
    }
    return info
  }
}
