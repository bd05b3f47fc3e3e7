import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {EXIT, UsageError} from '../lib/errors.js'
import type {HostRun} from '../tasks/exec.js'

export default class Exec extends BaseCommand {
  static override summary = 'Run a shell command on hosts of the fleet (web nodes through the bastion).'
  static override description = `Runs COMMAND on every host TARGET names, in parallel (up to ssh.parallel hosts at once), \
over SSH: the bastion directly, web nodes only through the bastion. Each line of output is printed with its host's name \
(\`web1 | ...\`); stderr lines go to stderr.

TARGET is a host name, \`bastion\`, \`web\` (every web node, standby ones included), \`all\`, or several of these \
separated by commas (\`web1,web3\`).

The command runs with bash (\`bash -c\`), under \`sudo -n\` when ssh.user is not root. Put it after \`--\` so that \
its own options are not taken for infra's. Unknown host keys are pinned on first use in known_hosts beside the \
inventory; a changed host key is refused (see \`infra hosts forget\`).

Exit status: 0 when the command exited 0 on every host, 1 when it failed or could not run on any host, 2 for a \
bad target or inventory.`

  static override examples = [
    {description: 'Hostname of every web node.', command: '<%= config.bin %> exec web -- hostname'},
    {description: 'Is nginx running everywhere?', command: "<%= config.bin %> exec all -- 'systemctl is-active nginx || true'"},
    {description: 'Two nodes, another inventory.', command: '<%= config.bin %> exec web1,web2 -c fleets/prod/infra.yaml -- uptime'},
    {description: 'Machine-readable: [{host, code, stdout, stderr, error?}].', command: '<%= config.bin %> exec web --json -- df -h /'},
  ]

  static override usage = 'exec TARGET [-c <value>] [--json] [--timeout <value>] -- COMMAND...'
  static override enableJsonFlag = true
  static override strict = false

  static override args = {
    target: Args.string({description: 'Host name, bastion, web, all, or a comma-separated list.', required: true}),
  }

  static override flags = {
    timeout: Flags.string({
      description: 'Stop the command on a host after this long, at most 24h (e.g. 30s, 5m). Default: no limit.',
    }),
  }

  async run(): Promise<HostRun[]> {
    const {args, argv, flags} = await this.parse(Exec)
    const words = (argv as string[]).slice(1)
    if (words.length === 0) {
      throw new UsageError('no command given', {hint: `Put the command after "--", e.g. \`infra exec ${args.target} -- hostname\`.`})
    }
    // Words are joined with spaces, as ssh does: quote a command that needs its own quoting.
    const command = words.join(' ')
    let timeoutMs: number | undefined
    if (flags.timeout !== undefined) {
      const {durationFlag} = await import('../inventory/flags.js')
      // Node's timers hold at most 2^31-1 ms (24.8 days); beyond that they fire at once.
      timeoutMs = durationFlag('timeout', flags.timeout, {max: '24h', hint: 'Use a whole number followed by s, m or h, from 1s to 24h, e.g. 30s.'})
    }

    const [{loadInventory}, {runOnTargets}, {resolveTarget}, {errorPrinter, hostPrefix, hostStreams}, {onInterrupt}] = await Promise.all([
      import('../inventory/load.js'),
      import('../tasks/exec.js'),
      import('../ssh/targets.js'),
      import('../ui/stream.js'),
      import('../ui/interrupt.js'),
    ])
    const loaded = await loadInventory(flags.config)
    const json = this.jsonEnabled()
    const names = resolveTarget(loaded.inventory, args.target).map((h) => h.name)
    const width = Math.max(...names.map((n) => n.length))
    const streams = hostStreams(width)
    // Ctrl-C closes the connections (the commands on the hosts end with their session).
    const interrupt = onInterrupt({exitCode: () => 130})
    let runs: HostRun[]
    try {
      runs = await runOnTargets(loaded, args.target, command, {
        timeoutMs,
        collect: json,
        signal: interrupt.signal,
        onHostKeyNew: (e) => this.info(e.message),
        onOutput: json ? undefined : (host, stream, chunk) => streams.push(host, stream, chunk),
      })
    } finally {
      interrupt.dispose()
    }
    streams.flush()
    if (interrupt.signal.aborted) {
      process.exitCode = 130
      return runs
    }
    if (!json) {
      const printError = errorPrinter()
      for (const r of runs) if (r.error) printError(hostPrefix(r.host, width), 'error: ', r.error)
      const failed = runs.filter((r) => r.code !== 0 || r.error)
      if (failed.length > 0) {
        const what = failed.map((r) => (r.error ? `${r.host} (${r.error.kind})` : `${r.host} (exit ${r.code})`)).join(', ')
        this.info(`Failed on ${failed.length} of ${runs.length} host${runs.length === 1 ? '' : 's'}: ${what}`)
      }
    }
    if (!runs.every((r) => r.code === 0 && !r.error)) process.exitCode = EXIT.FAILURE
    return runs
  }
}
