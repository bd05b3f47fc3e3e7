import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'

export default class Ssh extends BaseCommand {
  static override summary = 'Open a shell on one host (web nodes through the bastion), or run one command there.'
  static override description = `Connects to HOST the way every infra command does: keys only (ssh.privateKey or the \
ssh-agent), host key checked against known_hosts beside the inventory (pinned on first use, refused when changed), and \
web nodes reached only through the bastion. No OpenSSH configuration is needed.

Without a command: a login shell. On a terminal it gets a PTY that follows the window size; without a terminal, \
stdin is fed to the remote shell (\`echo hostname | infra ssh web1\`).

With \`-- COMMAND\`: runs it with bash (under \`sudo -n\` when ssh.user is not root), output unprefixed, stdin \
forwarded when it is not a terminal.

Exit status: the shell's or the command's own exit status (as with ssh); 1 when the host cannot be reached; \
2 for an unknown host or a bad inventory.`

  static override examples = [
    {description: 'A shell on the bastion.', command: '<%= config.bin %> ssh bastion'},
    {description: 'A shell on a web node (through the bastion).', command: '<%= config.bin %> ssh web1'},
    {description: 'One command.', command: '<%= config.bin %> ssh web2 -- journalctl -u nginx -n 50'},
    {description: 'Feed a file to a command.', command: "<%= config.bin %> ssh web1 -- 'cat > /tmp/notes.txt' < notes.txt"},
  ]

  static override usage = ['ssh HOST [-c <value>]', 'ssh HOST [-c <value>] -- COMMAND...']
  static override strict = false

  static override args = {
    host: Args.string({description: 'Host name (or `bastion`).', required: true}),
  }

  async run(): Promise<void> {
    const {args, argv, flags} = await this.parse(Ssh)
    const words = (argv as string[]).slice(1)
    const {loadInventory} = await import('../inventory/load.js')
    const {connectOne} = await import('../tasks/exec.js')
    const {interactiveShell, runAttached} = await import('../ssh/interactive.js')
    const loaded = await loadInventory(flags.config)
    const {fleet, conn} = await connectOne(loaded, args.host, {
      onHostKeyNew: (e) => this.info(e.message),
    })
    try {
      process.exitCode = words.length > 0 ? await runAttached(conn, words.join(' ')) : await interactiveShell(conn)
    } finally {
      await fleet.close()
    }
  }
}
