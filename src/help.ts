import {Help} from '@oclif/core'

/** Root help: oclif's command list, then the examples an operator needs first. */
const ROOT_EXAMPLES = `EXAMPLES
  Write infra.yaml, an operator key and a self-signed certificate (asks, or takes flags with --yes)
    $ infra init

  See what would change on every host, then apply it
    $ infra plan
    $ infra provision --yes

  Run a command on every web node, through the bastion
    $ infra exec web -- systemctl is-active nginx

  Try everything on a local fleet of real Debian hosts (root on Debian 12)
    $ infra lab up && infra provision --yes

EXIT CODES
  0 success · 1 a host or a check failed · 2 usage or configuration error (nothing was touched)
`

export default class InfraHelp extends Help {
  protected override async showRootHelp(): Promise<void> {
    await super.showRootHelp()
    this.log('')
    this.log(ROOT_EXAMPLES)
  }
}
