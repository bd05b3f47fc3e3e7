/**
 * Running infra's oclif commands inside the test process (no child process, no build): what they
 * print and the exit code they set. Also the runner script the init tests start as a child.
 */
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {format} from 'node:util'

import {captureOutput} from '@oclif/test'
import {vi} from 'vitest'

/** The repository's root folder (oclif loads the commands' config from it). */
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..')

/** An oclif command class: `Cmd.run(argv, root)`. */
export interface CommandClass {
  run(argv?: string[], opts?: string): Promise<unknown>
}

/**
 * `cmd` run with `argv`: stdout (with what it printed through console.log, which vitest would
 * intercept), stderr and the exit code it set (0 when none). process.exitCode is cleared before and
 * after. An error the command throws (not a handled exit) is thrown again.
 */
export async function runCommand(cmd: CommandClass, argv: string[]): Promise<{out: string; err: string; code: number}> {
  process.exitCode = undefined
  const logged: string[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logged.push(format(...args) + '\n'))
  try {
    const r = await captureOutput(() => cmd.run(argv, REPO_ROOT))
    if (r.error) throw r.error
    return {out: r.stdout + logged.join(''), err: r.stderr, code: Number(process.exitCode ?? 0)}
  } finally {
    spy.mockRestore()
    process.exitCode = undefined
  }
}

/** tsx's ESM loader (`node --import TSX file.ts` runs TypeScript sources). */
export const TSX = path.join(REPO_ROOT, 'node_modules/tsx/dist/esm/index.mjs')

/** Writes `dir`/run-init.mjs, which runs `infra init ARGS` from the sources (under tsx); returns its path. */
export function writeInitRunner(dir: string): string {
  const runner = path.join(dir, 'run-init.mjs')
  writeFileSync(
    runner,
    `const {default: Init} = await import(${JSON.stringify(path.join(REPO_ROOT, 'src/commands/init.ts'))})\nawait Init.run(process.argv.slice(2), ${JSON.stringify(REPO_ROOT)})\n`,
  )
  return runner
}
