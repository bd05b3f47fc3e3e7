import {BaseCommand} from '../../lib/base-command.js'
import type {HostPinInfo} from '../../tasks/hosts.js'

export default class HostsList extends BaseCommand {
  static override summary = 'List the hosts with their pinned SSH host key fingerprints.'
  static override description = `Shows every host of the inventory (name, role, address) and the fingerprint of the \
host key pinned for it in known_hosts beside the inventory, as \`ssh-keygen -lf\` prints it. A host not pinned yet \
gets its key pinned on the next connection: checked against ssh.hostKeys or \`infra hosts trust\` when they give its \
fingerprint, else trusted on first use. Nothing is sent to any host.`

  static override examples = [
    '<%= config.bin %> hosts list',
    {description: 'Machine-readable.', command: '<%= config.bin %> hosts list --json'},
  ]

  static override enableJsonFlag = true

  async run(): Promise<HostPinInfo[]> {
    const {flags} = await this.parse(HostsList)
    const {loadInventory} = await import('../../inventory/load.js')
    const {listHostPins} = await import('../../tasks/hosts.js')
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const hosts = await listHostPins(loaded)
    if (!this.jsonEnabled()) {
      const rows = [
        ['NAME', 'ROLE', 'ADDRESS', 'HOST KEY'],
        ...hosts.map((h) => [
          h.name,
          h.role + (h.standby ? ' (standby)' : ''),
          h.address,
          h.pinned.length > 0
            ? h.pinned.map((p) => `${p.keyType} ${p.fingerprint}`).join(', ')
            : h.pending.length > 0
              ? `(not pinned yet; must be ${h.pending.join(' or ')}: infra hosts trust)`
              : h.expected.length > 0
                ? `(not pinned yet; must be ${h.expected.join(' or ')}: ssh.hostKeys)`
                : '(not pinned yet: pinned on first use)',
        ]),
      ]
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
      for (const r of rows) this.log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '))
      this.info(`Pins: ${loaded.knownHostsPath}`)
    }
    return hosts
  }
}
