import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'

export default class Init extends BaseCommand {
  static override summary = 'Write infra.yaml, the operator SSH key and a self-signed certificate.'

  static override description = `Asks for the domain, SSH access, the bastion's addresses, the web nodes and the TLS choice, shows the resulting infra.yaml and writes it after you confirm. Every question has a flag (and most an environment variable); a value given by a flag is not asked.

Nothing is asked with --yes, when CI is set, or when stdin or stdout is not a terminal: then --domain, --bastion-public, --bastion-private and at least one --web are required (and --tls-cert/--tls-key with --tls files), and a missing one fails with exit 2.

Files written beside the inventory: the operator key .infra/id_ed25519 (+ .pub; ed25519, 0600; an existing key is reused, see --ssh-key) and, with --tls self-signed, tls/<domain>.crt and tls/<domain>.key (RSA 2048, SHA-256, key 0600). The inventory is validated before anything is written; an existing inventory is only replaced with --force.

Exit codes: 0 written, 1 aborted or failed, 2 bad or missing flag, inventory exists, invalid result.`

  static override examples = [
    {description: 'Answer the questions in a terminal:', command: '<%= config.bin %> <%= command.id %>'},
    {
      description: 'Without questions (CI, scripts):',
      command:
        '<%= config.bin %> <%= command.id %> --yes --domain example.com --alias www.example.com --bastion-public 203.0.113.10 --bastion-private 10.0.0.1 --web web1=10.0.0.11 --web web2=10.0.0.12 --web web3=10.0.0.13:standby',
    },
    {
      description: 'Use your own certificate and an existing key, as a non-root user:',
      command:
        '<%= config.bin %> <%= command.id %> --domain example.com --ssh-user deploy --ssh-key ~/.ssh/id_ed25519 --tls files --tls-cert fullchain.pem --tls-key privkey.pem',
    },
    {description: 'Write another inventory, replacing it if present; print the result as JSON:', command: '<%= config.bin %> <%= command.id %> -c staging/infra.yaml --force --yes --json ...'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    domain: Flags.string({description: 'Apex domain the fleet serves (e.g. example.com). Required without a terminal.', env: 'INFRA_DOMAIN', helpGroup: 'FLEET'}),
    alias: Flags.string({
      description: 'Other name redirected to the domain (repeat the flag; INFRA_ALIASES takes a comma-separated list).',
      multiple: true,
      helpGroup: 'FLEET',
    }),
    'ssh-user': Flags.string({description: 'SSH user on every host [default: root].', env: 'INFRA_SSH_USER', helpGroup: 'SSH'}),
    'ssh-key': Flags.string({
      description: 'Operator private key; made (ed25519) if missing [default: .infra/id_ed25519 beside the inventory].',
      env: 'INFRA_SSH_KEY',
      helpGroup: 'SSH',
    }),
    // Numbers are parsed in run() so that a bad value is a usage error (exit 2) naming the flag.
    'ssh-port': Flags.string({description: 'SSH port on every host [default: 22].', env: 'INFRA_SSH_PORT', helpGroup: 'SSH'}),
    'bastion-public': Flags.string({description: "Bastion's public address. Required without a terminal.", env: 'INFRA_BASTION_PUBLIC', helpGroup: 'FLEET'}),
    'bastion-private': Flags.string({description: "Bastion's private address. Required without a terminal.", env: 'INFRA_BASTION_PRIVATE', helpGroup: 'FLEET'}),
    web: Flags.string({
      description: 'Web node as NAME=ADDRESS[:standby] (repeat the flag; INFRA_WEB takes a comma-separated list). At least one is required without a terminal.',
      multiple: true,
      helpGroup: 'FLEET',
    }),
    tls: Flags.string({description: 'TLS certificate: self-signed (made by infra) or files (yours) [default: self-signed].', options: ['self-signed', 'files'], env: 'INFRA_TLS', helpGroup: 'TLS'}),
    'tls-cert': Flags.string({description: 'With --tls files: PEM certificate, chain after it.', env: 'INFRA_TLS_CERT', helpGroup: 'TLS'}),
    'tls-key': Flags.string({description: 'With --tls files: PEM private key of the certificate.', env: 'INFRA_TLS_KEY', helpGroup: 'TLS'}),
    'tls-days': Flags.string({description: 'With --tls self-signed: days each certificate is valid, 1-825 [default: 365].', env: 'INFRA_TLS_DAYS', helpGroup: 'TLS'}),
    force: Flags.boolean({description: 'Replace an existing inventory.', default: false}),
    yes: Flags.boolean({char: 'y', description: 'Ask nothing: take flags, environment and defaults; write without confirming.', default: false}),
  }

  public async run(): Promise<unknown> {
    const {flags} = await this.parse(Init)
    const {runInit, summary} = await import('../init/service.js')
    const {UsageError} = await import('../lib/errors.js')

    const int = (v: string | undefined, flag: string, what: string): number | undefined => {
      if (v === undefined) return undefined
      if (!/^\d+$/.test(v.trim())) throw new UsageError(`${flag}: "${v}" is not ${what}`)
      return Number(v)
    }

    const list = (fromFlags: string[] | undefined, envName: string): string[] | undefined => {
      if (fromFlags && fromFlags.length > 0) return fromFlags
      const env = process.env[envName]
      return env ? env.split(/[\s,]+/).filter(Boolean) : undefined
    }

    const ci = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase())
    const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY)
    const interactive = flags.yes ? 'yes' : ci ? 'ci' : tty ? (this.jsonEnabled() ? 'json' : true) : 'tty'

    const report = await runInit({
      configPath: flags.config,
      force: flags.force,
      interactive,
      io: {input: process.stdin, output: process.stderr.isTTY ? process.stderr : process.stdout},
      input: {
        domain: flags.domain,
        aliases: list(flags.alias, 'INFRA_ALIASES'),
        sshUser: flags['ssh-user'],
        sshPort: int(flags['ssh-port'], '--ssh-port', 'a port number from 1 to 65535'),
        sshKey: flags['ssh-key'],
        bastionPublic: flags['bastion-public'],
        bastionPrivate: flags['bastion-private'],
        web: list(flags.web, 'INFRA_WEB'),
        tls: flags.tls as 'self-signed' | 'files' | undefined,
        tlsCert: flags['tls-cert'],
        tlsKey: flags['tls-key'],
        tlsDays: int(flags['tls-days'], '--tls-days', 'a whole number of days from 1 to 825'),
      },
    })

    const configFlag = flags.config === './infra.yaml' || flags.config === 'infra.yaml' ? undefined : flags.config
    if (!this.jsonEnabled()) this.log(summary(report, {configFlag}))
    return {
      config: report.config,
      key: report.key,
      publicKey: report.publicKey,
      ...(report.cert ? {cert: report.cert, notAfter: report.notAfter} : {}),
    }
  }
}
