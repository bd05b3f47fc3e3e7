import {Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'

export default class LabDown extends BaseCommand {
  static override summary = 'Stop the local lab and remove everything it made on this machine.'
  static override description = `Stops every lab host and removes the lab's network namespaces, links, mounts, cgroups, \
processes and state (/var/lib/infra-lab). Keeps the cached base image (/var/cache/infra-lab) unless --purge, and keeps \
the inventory and the keys in .infra-lab/ beside it, so the next \`infra lab up\` gives hosts the same SSH host keys.
Safe to run when no lab is up: it then removes any leftovers of a crashed run.

Exit status: 0 done, 2 cannot run here (not root, not Linux) or a lab test run is using the lab (see --force).`

  static override examples = [
    {description: 'Remove the lab.', command: 'sudo <%= config.bin %> lab down'},
    {description: 'Remove the lab and the cached image too (the next `lab up` rebuilds it).', command: 'sudo <%= config.bin %> lab down --purge'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    purge: Flags.boolean({description: 'Also remove the cached base image and packages (/var/cache/infra-lab).'}),
    force: Flags.boolean({description: 'Remove the lab even while a lab test run (vitest) is using it.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabDown)
    const {labDown, fmt} = await import('../../lab/index.js')
    const r = await labDown({purge: flags.purge, force: flags.force})
    if (!this.jsonEnabled()) {
      const what = r.wasRunning ? `Lab removed (${r.config})` : r.removed.namespaces.length + r.removed.processes > 0 ? 'Removed leftovers of a lab' : 'No lab was running'
      this.log(`${what} in ${fmt(r.ms)}.${r.purgedCache ? ' Image cache removed.' : ''}`)
    }
    return r
  }
}
