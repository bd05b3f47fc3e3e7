import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/base-command.js'

export default class MonitoringExport extends BaseCommand {
  static override summary = 'Write Prometheus, Alertmanager and Grafana files for the fleet into a folder.'
  static override description = `Writes what a team adds to the monitoring stack it already runs, from the inventory:
- prometheus/infra-scrape.yml: scrape jobs infra-haproxy (HAProxy) and infra-node (node exporters, via the bastion)
- prometheus/targets/infra-nodes.json: the hosts of infra-node (file-based service discovery)
- prometheus/prometheus.yml: a complete example configuration
- prometheus/infra-rules.yml: alert rules, each saying what to do; infra-rules.test.yml: their promtool tests
- alertmanager/infra-alertmanager.yml: a route and e-mail receiver from alerts.email/alerts.smtp (no password)
- grafana/infra-dashboard.json: requests, errors, latency, active nodes, CPU, scaler actions
- README.md: how to plug each file in

Prometheus must reach the bastion's private address (port 8404): from a host of the private network, or through an \
ssh tunnel with --address. Nothing is sent to any host. DIR is created when missing; a non-empty DIR is refused unless \
an earlier export wrote it or --force is given. See docs/MONITORING.md.

Exit status: 0 written, 2 a bad inventory, DIR is not a folder, or DIR holds other files (without --force).`

  static override examples = [
    {description: 'Write the files into ./monitoring.', command: '<%= config.bin %> monitoring export monitoring'},
    {
      description: 'Prometheus reaches the bastion through `ssh -L 8404:<private address>:8404 <bastion>`.',
      command: '<%= config.bin %> monitoring export monitoring --address 127.0.0.1:8404',
    },
    {description: 'Machine-readable: {dir, files}.', command: '<%= config.bin %> monitoring export /tmp/mon --json'},
  ]

  static override enableJsonFlag = true

  static override args = {
    dir: Args.string({description: 'Folder to write into (created when missing).', required: true}),
  }

  static override flags = {
    force: Flags.boolean({description: 'Write into a non-empty folder that an earlier export did not write (same names are overwritten).', default: false}),
    address: Flags.string({
      description: 'host:port at which Prometheus reaches the bastion\'s stats frontend. Default: <bastion.privateAddress>:8404.',
    }),
  }

  async run(): Promise<{dir: string; files: string[]}> {
    const {args, flags} = await this.parse(MonitoringExport)
    const {checkExportDir, exportNotes, parseScrapeAddress, renderMonitoringFiles, writeMonitoringExport} = await import('../../monitoring/export.js')
    const {loadInventory} = await import('../../inventory/load.js')
    const address = flags.address === undefined ? undefined : parseScrapeAddress(flags.address)
    await checkExportDir(args.dir, flags.force)
    const loaded = await loadInventory(flags.config, {checkFiles: false})
    const files = renderMonitoringFiles(loaded.inventory, {address})
    const result = await writeMonitoringExport(args.dir, files, {force: flags.force})
    if (!this.jsonEnabled()) {
      const path = await import('node:path')
      for (const f of result.files) this.log(path.join(args.dir, f))
      for (const note of exportNotes(loaded.inventory, {address})) this.info(`Note: ${note}`)
      this.info(`Next: read ${path.join(args.dir, 'README.md')}; check with \`promtool check config ${path.join(args.dir, 'prometheus', 'prometheus.yml')}\`.`)
    }
    return result
  }
}
