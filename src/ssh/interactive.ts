/**
 * `infra ssh HOST`: a shell on one host over the tool's own connection (through the bastion for
 * web nodes, with the same pinned host keys and keys-only login as every other command).
 */
import {constants as osConstants} from 'node:os'
import type {Readable, Writable} from 'node:stream'
import type {ClientChannel} from 'ssh2'

import {SshError} from './errors.js'
import type {HostConnection} from './connection.js'

export interface Terminal {
  stdin: Readable & {isTTY?: boolean; setRawMode?: (mode: boolean) => unknown}
  stdout: Writable & {isTTY?: boolean; rows?: number; columns?: number}
  stderr: Writable
}

function processTerminal(): Terminal {
  return {stdin: process.stdin, stdout: process.stdout, stderr: process.stderr}
}

function exitCode(code: number | null | undefined, signal: string | undefined): number {
  if (typeof code === 'number') return code
  const n = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined
  return n === undefined ? 255 : 128 + n
}

/**
 * Open a login shell on the host. With a terminal on both stdin and stdout: a PTY of the same
 * size (resized with the local window), local terminal in raw mode for the session and
 * restored after. Without a terminal: no PTY, and stdin is fed to the remote shell (so
 * `echo hostname | infra ssh web1` works). Resolves with the shell's exit status.
 */
export function interactiveShell(conn: HostConnection, term: Terminal = processTerminal()): Promise<number> {
  const {stdin, stdout, stderr} = term
  const tty = Boolean(stdin.isTTY && stdout.isTTY)
  const window = tty ? {term: process.env.TERM || 'xterm-256color', rows: stdout.rows ?? 24, cols: stdout.columns ?? 80} : false
  return new Promise<number>((resolve, reject) => {
    const onShell = (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        reject(new SshError('closed', conn.host.name, `could not open a shell: ${err.message}`, {cause: err}))
        return
      }
      let code: number | null | undefined
      let signal: string | undefined
      const onResize = () => ch.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0)
      if (tty) {
        stdin.setRawMode?.(true)
        stdout.on('resize', onResize)
      }
      stdin.pipe(ch)
      stdin.resume()
      ch.pipe(stdout, {end: false})
      ch.stderr.pipe(stderr, {end: false})
      ch.on('exit', (c: number | null, s?: string) => {
        code = c
        signal = s
      })
      ch.on('error', () => {})
      ch.on('close', () => {
        stdin.unpipe(ch)
        if (tty) {
          stdout.off('resize', onResize)
          stdin.setRawMode?.(false)
        }
        stdin.pause()
        resolve(exitCode(code, signal))
      })
    }
    try {
      conn.client.shell(window, onShell)
    } catch (error) {
      reject(new SshError('closed', conn.host.name, `could not open a shell: ${(error as Error).message}`, {cause: error}))
    }
  })
}

/**
 * `infra ssh HOST -- CMD`: run one command with its output going straight to this terminal
 * (no prefix); stdin is forwarded when it is not a terminal. Resolves with the exit status.
 */
export async function runAttached(conn: HostConnection, command: string, term: Terminal = processTerminal()): Promise<number> {
  const {stdin, stdout, stderr} = term
  const forward = !stdin.isTTY
  try {
    const r = await conn.exec(command, {
      collect: false,
      stdin: forward ? stdin : undefined,
      onStdout: (d) => stdout.write(d),
      onStderr: (d) => stderr.write(d),
    })
    return r.code
  } finally {
    if (forward) stdin.pause()
  }
}
