import {Command, Flags, Interfaces} from '@oclif/core'

import {EXIT, InfraError, UsageError} from './errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/**
 * Every command: `-c/--config` (env INFRA_CONFIG), `--json` where a command returns a result,
 * and one place that turns errors into a message, a hint and an exit code.
 * Commands stay thin: parse flags, call a service in src/, render its result.
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = {
    config: Flags.string({
      char: 'c',
      description: 'Path to the inventory file.',
      default: './infra.yaml',
      env: 'INFRA_CONFIG',
      helpGroup: 'GLOBAL',
    }),
  }

  /**
   * A change that needs consent: nothing with --yes; a question on a terminal; without one (CI,
   * a pipe), a usage error (exit 2) saying to add --yes. A "no" is a usage error too: nothing changed.
   */
  protected async confirmOrYes(yes: boolean, o: {doing: string; question: string; hint: string}): Promise<void> {
    if (yes) return
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY && !process.env.CI)
    if (!interactive) throw new UsageError(`--yes is required to ${o.doing} without a terminal`, {hint: o.hint})
    const {confirm} = await import('@inquirer/prompts')
    if (!(await confirm({message: o.question, default: false}))) throw new UsageError('cancelled; nothing was changed')
  }

  /** Messages for people go to stderr; stdout is kept for results. */
  protected info(message: string): void {
    if (!this.jsonEnabled()) process.stderr.write(message + '\n')
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (err instanceof InfraError) {
      process.exitCode = err.exitCode
      if (this.jsonEnabled()) {
        const issues = (err as InfraError & {issues?: unknown}).issues
        this.logJson({error: {code: err.code, message: err.message, hint: err.hint, ...(issues ? {issues} : {})}})
      } else {
        process.stderr.write(`Error: ${err.message}\n`)
        if (err.hint) process.stderr.write(`  → ${err.hint}\n`)
      }
      return
    }
    // oclif parse errors (unknown flag, missing arg) are usage errors: exit 2.
    const isParse =
      err.oclif?.exit === 2 ||
      err.name?.includes('Parse') ||
      /Unexpected argument|Nonexistent flag|Missing required|Expected --|can only be specified once|Expected an integer|Expected a|must be one of/.test(err.message ?? '')
    if (isParse) {
      process.exitCode = EXIT.USAGE
      process.stderr.write(`Error: ${err.message}\n  → See \`infra ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.\n`)
      return
    }
    return super.catch(err)
  }
}
