import {spawn} from 'node:child_process'

/** Result of a finished process. */
export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Text written to the process's stdin (stdin is closed either way). */
  input?: string
  /** Kill the process (SIGKILL) after this many milliseconds. */
  timeoutMs?: number
  /** Do not throw on a non-zero exit status. */
  allowFail?: boolean
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Called with each chunk of stdout (for progress). */
  onStdout?: (chunk: string) => void
}

/** A command failed: the message names the command and ends with the tail of its stderr. */
export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: RunResult,
  ) {
    const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n')
    super(`\`${argv.join(' ')}\` exited with ${result.code}${tail ? `: ${tail}` : ''}`)
    this.name = 'CommandError'
  }
}

/** The PATH the lab uses for its own tools (root's sbin folders included). */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Run a program (no shell) and collect its output. Throws CommandError on a non-zero exit unless allowFail. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = opts.env ?? {...process.env, PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}`, LC_ALL: 'C'}
    const child = spawn(argv[0], argv.slice(1), {cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, opts.timeoutMs)
    }
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      stdout += d
      opts.onStdout?.(d)
    })
    child.stderr.on('data', (d: string) => (stderr += d))
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
    child.on('error', (err) => {
      if (timer) clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      const result: RunResult = {code: code ?? (signal ? 128 : 1), stdout, stderr: timedOut ? `${stderr}\n(timed out after ${opts.timeoutMs} ms)` : stderr}
      if (result.code !== 0 && !opts.allowFail) reject(new CommandError(argv, result))
      else resolve(result)
    })
  })
}

/** Run a program and return its trimmed stdout. */
export async function out(argv: string[], opts: RunOptions = {}): Promise<string> {
  return (await run(argv, opts)).stdout.trim()
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
