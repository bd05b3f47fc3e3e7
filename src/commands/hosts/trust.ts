import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'
import type {TrustHostResult} from '../../tasks/hosts.js'

export default class HostsTrust extends BaseCommand {
  static override summary = "Trust a host's SSH host key by its fingerprint, before infra first connects to it."
  static override description = `Without this (or ssh.hostKeys in the inventory), the first connection to a host pins whatever key \
answers at its address (trust on first use). With it, the first connection must present a key with this fingerprint, or infra \
stops before logging in; the host's full key then replaces the fingerprint in known_hosts (beside the inventory).

Read the fingerprint on the host's own console (your provider's web console, not an SSH session): \
\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`. infra asks hosts for their Ed25519 key first, so give that one \
(several fingerprints: the host must present one of them).

Nothing is sent to any host. A host already pinned is only compared: exit 0 when its key has the fingerprint, 1 when it has \
another (\`infra hosts forget HOST\` first if the key really changed), 2 for an unknown host or a malformed fingerprint.`

  static override examples = [
    '<%= config.bin %> hosts trust bastion SHA256:TI8z1hBzvNf0Wfz1Ykd3dXK3VxXxSbbMgmQk8IXA0nI',
    {description: 'Then connect: the first contact is checked.', command: '<%= config.bin %> exec bastion -- true'},
  ]

  static override usage = ['hosts trust HOST SHA256:... [SHA256:...] [-c <value>] [--json]']
  static override enableJsonFlag = true
  static override strict = false

  static override args = {
    host: Args.string({description: 'Host name (or `bastion`).', required: true}),
    fingerprint: Args.string({description: 'The host key fingerprint, `SHA256:...` (more may follow).', required: true}),
  }

  async run(): Promise<TrustHostResult> {
    const {args, argv, flags} = await this.parse(HostsTrust)
    const fps = (argv as string[]).slice(1)
    const {loadInventory} = await import('../../inventory/load.js')
    const {trustHostKey} = await import('../../tasks/hosts.js')
    const {configFlag} = await import('../../ssh/targets.js')
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const r = await trustHostKey(loaded, args.host, fps)
    if (r.status === 'pinned') {
      this.info(`${r.host} is already pinned to a key with that fingerprint (${r.knownHostsPath}): nothing to do.`)
    } else {
      this.info(
        `${r.host}: the next connection must present a host key with fingerprint ${r.fingerprints.join(' or ')} (pending in ${r.knownHostsPath}); ` +
          `its full key is pinned then. Connect now to check it: infra exec ${r.host}${configFlag(loaded)} -- true`,
      )
    }
    return r
  }
}
