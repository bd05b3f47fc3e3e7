import type {Ban} from '../edge/bans.js'
import {BaseCommand} from '../lib/base-command.js'

export default class Bans extends BaseCommand {
  static override summary = 'List the bans at the bastion: infra ban entries and automatic flood bans.'
  static override description = `Prints one line per ban: the address or network, where it comes from (\`list\`: \
infra ban; \`auto\`: banned by the flood limits), when it ends, and why. Expired bans are dropped first.

Exit status: 0, 1 the bastion could not be reached, 2 a bad inventory.`

  static override examples = [
    '<%= config.bin %> bans',
    {description: 'Machine-readable: [{address, source, until, since, reason}].', command: '<%= config.bin %> bans --json'},
  ]

  static override enableJsonFlag = true

  async run(): Promise<Ban[]> {
    const {flags} = await this.parse(Bans)
    const {listBans} = await import('../tasks/ban.js')
    const {loadInventory} = await import('../inventory/load.js')
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const bans = await listBans(loaded)
    if (!this.jsonEnabled()) {
      if (bans.length === 0) this.info('No bans.')
      const w = Math.max(7, ...bans.map((b) => b.address.length))
      if (bans.length > 0) process.stdout.write(`${'ADDRESS'.padEnd(w)}  SOURCE  UNTIL                     REASON\n`)
      for (const b of bans) {
        process.stdout.write(`${b.address.padEnd(w)}  ${b.source.padEnd(6)}  ${(b.until ?? 'unbanned by hand').padEnd(24)}  ${b.reason ?? ''}\n`)
      }
    }
    return bans
  }
}
