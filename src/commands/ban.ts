import {Args, Flags} from '@oclif/core'

import type {BanResult} from '../tasks/ban.js'
import {BaseCommand} from '../lib/base-command.js'

export default class Ban extends BaseCommand {
  static override summary = 'Ban a client address or network at the bastion (HAProxy answers 403).'
  static override description = `Adds ADDRESS (an IPv4/IPv6 address or a CIDR network) to the bastion's ban list and to \
the running HAProxy at once (runtime API): the next request from it gets 403. The list is a file on the bastion \
(/etc/haproxy/infra/bans.lst), so the ban survives reloads, \`infra provision\` and reboots. With --for, the ban ends \
by itself (a timer on the bastion drops expired bans every 10 seconds); without it, it lasts until \`infra unban\`. \
Banning an address again replaces its end and reason. Addresses in limits.allow are never refused. See docs/EDGE.md.

Exit status: 0 banned, 1 the bastion could not be reached or refused, 2 a bad address, duration or inventory.`

  static override examples = [
    {description: 'Ban one address for an hour.', command: '<%= config.bin %> ban 203.0.113.50 --for 1h --reason "credential stuffing"'},
    {description: 'Ban a network until unbanned.', command: '<%= config.bin %> ban 198.51.100.0/24'},
    {description: 'Machine-readable: {address, until, reason}.', command: '<%= config.bin %> ban 203.0.113.50 --for 30m --json'},
  ]

  static override enableJsonFlag = true

  static override args = {
    address: Args.string({description: 'IP address or CIDR network.', required: true}),
  }

  static override flags = {
    for: Flags.string({description: 'How long: a whole number and s, m or h (30m, 24h; a week is 168h). Default: until unbanned.'}),
    reason: Flags.string({description: 'Why (kept in the ban list, shown by `infra bans`).'}),
  }

  async run(): Promise<BanResult> {
    const {args, flags} = await this.parse(Ban)
    const {durationFlag} = await import('../inventory/flags.js')
    const [{ban}, {parseTarget}] = await Promise.all([import('../tasks/ban.js'), import('../edge/bans.js')])
    parseTarget(args.address)
    let forMs: number | undefined
    if (flags.for !== undefined) {
      forMs = durationFlag('for', flags.for, {hint: 'Use a whole number followed by s, m or h, e.g. 30m or 24h.'})
    }
    const {loadInventory} = await import('../inventory/load.js')
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const r = await ban(loaded, {target: args.address, forMs, reason: flags.reason})
    this.info(`Banned ${r.address} ${r.until ? `until ${r.until}` : 'until unbanned'}${r.reason ? ` (${r.reason})` : ''}.`)
    return r
  }
}
