import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {EXIT} from '../lib/errors.js'

export interface ValidateResult {
  valid: boolean
  /** The inventory file as named in messages. */
  file: string
  errors: {file: string; line: number; column: number; path: string; message: string}[]
  /** Host counts, when valid. */
  hosts?: {bastion: number; web: number; active: number; standby: number}
}

export default class Validate extends BaseCommand {
  static override summary = 'Check the inventory (infra.yaml) without touching any host.'
  static override description = `Reads the inventory and reports every problem at once, each as FILE:LINE:COLUMN KEY: PROBLEM, \
with what would be valid. Checks the YAML syntax, every key and value, the rules between keys (unique names and \
addresses, web nodes inside the bastion's private network, scaling bounds, TLS mode) and the files the inventory \
names (ssh.privateKey, tls.cert, tls.key: they exist, can be read, private keys are not readable by other users).

Nothing is sent to any host. Exit status: 0 valid, 2 invalid or missing file.
Reference of every key: docs/INVENTORY.md.`

  static override examples = [
    {description: 'Check ./infra.yaml.', command: '<%= config.bin %> validate'},
    {description: 'Check another inventory.', command: '<%= config.bin %> validate --config fleets/prod/infra.yaml'},
    {description: 'Machine-readable result (exit status 2 when invalid).', command: '<%= config.bin %> validate --json'},
    {description: 'In CI, where the private key is not present.', command: '<%= config.bin %> validate --skip-files'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    'skip-files': Flags.boolean({
      description: 'Do not check the files the inventory names (ssh.privateKey, tls.cert, tls.key).',
      env: 'INFRA_SKIP_FILES',
    }),
  }

  async run(): Promise<ValidateResult> {
    const {flags} = await this.parse(Validate)
    const {checkInventoryFile} = await import('../inventory/load.js')
    const r = await checkInventoryFile(flags.config, {checkFiles: !flags['skip-files']})

    if (!r.inventory) {
      process.exitCode = EXIT.USAGE
      if (!this.jsonEnabled()) {
        const n = r.errors.length
        process.stderr.write(`${r.label} is not valid (${n} ${n === 1 ? 'error' : 'errors'}):\n${r.errors.join('\n')}\n`)
        process.stderr.write(`  → Fix the ${n === 1 ? 'key' : 'keys'} above; the reference of every key is in docs/INVENTORY.md.\n`)
      }
      return {valid: false, file: r.label, errors: r.issues}
    }

    const nodes = r.inventory.web.nodes
    const standby = nodes.filter((n) => n.standby).length
    const hosts = {bastion: 1, web: nodes.length, active: nodes.length - standby, standby}
    this.log(
      `${r.label} is valid: 1 bastion, ${hosts.web} web ${hosts.web === 1 ? 'node' : 'nodes'} (${hosts.active} active, ${hosts.standby} standby)`,
    )
    return {valid: true, file: r.label, errors: [], hosts}
  }
}
