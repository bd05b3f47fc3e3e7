import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'
import type {ForgetResult} from '../../tasks/hosts.js'

export default class HostsForget extends BaseCommand {
  static override summary = "Forget a host's pinned SSH host key, to accept a new one on purpose."
  static override description = `Removes every known_hosts entry (beside the inventory) that names HOST by its name \
or its address, and any fingerprint trusted for it with \`infra hosts trust\`. The next connection pins the key the host \
then presents (unless ssh.hostKeys lists the keys it must present).

Use it after you reinstalled a host or regenerated its host keys, when infra refuses to connect with "host key ... has \
CHANGED". Check the new fingerprint on the host's console first (\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`): \
a changed key you did not expect can mean that someone intercepts the connection.

Exit status: 0 (also when nothing was pinned), 2 for a host that is neither in the inventory nor in known_hosts.`

  static override examples = [
    '<%= config.bin %> hosts forget web1',
    {description: 'Then pin the new key and check it.', command: '<%= config.bin %> exec web1 -- true && <%= config.bin %> hosts list'},
  ]

  static override enableJsonFlag = true

  static override args = {
    host: Args.string({description: 'Host name.', required: true}),
  }

  async run(): Promise<ForgetResult> {
    const {args, flags} = await this.parse(HostsForget)
    const {loadInventory} = await import('../../inventory/load.js')
    const {forgetHostPin} = await import('../../tasks/hosts.js')
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const r = await forgetHostPin(loaded, args.host)
    if (r.removed.length === 0 && r.removedPending.length === 0) {
      this.info(`Nothing was pinned for ${r.host} in ${r.knownHostsPath}.`)
    } else {
      const keys = [...r.removed.map((k) => `${k.keyType} ${k.fingerprint}`), ...r.removedPending.map((fp) => `${fp} (pending)`)].join(', ')
      this.info(`Forgot ${r.host}: ${keys}. The next connection pins the key ${r.host} presents (check it, or \`infra hosts trust ${r.host} SHA256:...\` first).`)
    }
    return r
  }
}
