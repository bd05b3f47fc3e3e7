import {Args} from '@oclif/core'

import type {UnbanResult} from '../tasks/ban.js'
import {BaseCommand} from '../lib/base-command.js'

export default class Unban extends BaseCommand {
  static override summary = 'Lift a ban at the bastion (one made by infra ban, or an automatic flood ban).'
  static override description = `Removes ADDRESS from the bastion's ban list and from the running HAProxy at once, and \
clears an automatic ban (after a flood) of that address. Give the address or network exactly as \`infra bans\` lists it.

Exit status: 0 (also when it was not banned), 1 the bastion could not be reached, 2 a bad address or inventory.`

  static override examples = [
    '<%= config.bin %> unban 203.0.113.50',
    {description: 'Machine-readable: {address, listed, auto}.', command: '<%= config.bin %> unban 198.51.100.0/24 --json'},
  ]

  static override enableJsonFlag = true

  static override args = {
    address: Args.string({description: 'IP address or CIDR network.', required: true}),
  }

  async run(): Promise<UnbanResult> {
    const {args, flags} = await this.parse(Unban)
    const [{unban}, {parseTarget}] = await Promise.all([import('../tasks/ban.js'), import('../edge/bans.js')])
    parseTarget(args.address)
    const {loadInventory} = await import('../inventory/load.js')
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const r = await unban(loaded, args.address)
    const what = [r.listed ? 'the ban list' : '', r.auto ? 'the automatic bans' : ''].filter(Boolean).join(' and ')
    this.info(what ? `Unbanned ${r.address} (removed from ${what}).` : `${r.address} was not banned.`)
    return r
  }
}
