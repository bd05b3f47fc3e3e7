import {spawn} from 'node:child_process'
import {existsSync, mkdirSync} from 'node:fs'
import path from 'node:path'

/**
 * An exclusive lock on a file, held by a `flock` child process for as long as we keep its stdin
 * open. If this process dies, the pipe closes, the child exits and the lock is released: a crashed
 * run never leaves the lab locked.
 */
export async function acquireLock(file: string, opts: {timeoutSec?: number; onWait?: () => void} = {}): Promise<() => Promise<void>> {
  mkdirSync(path.dirname(file), {recursive: true})
  const timeout = opts.timeoutSec ?? 900
  const child = spawn('flock', ['-x', '-w', String(timeout), file, '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const waitNote = setTimeout(() => opts.onWait?.(), 1000)
  try {
    await new Promise<void>((resolve, reject) => {
      let out = ''
      let err = ''
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (d: string) => {
        out += d
        if (out.includes('locked')) resolve()
      })
      child.stderr.on('data', (d: Buffer) => (err += d.toString()))
      child.on('error', reject)
      child.on('exit', (code) => reject(new Error(`could not lock ${file} within ${timeout} s (flock exited with ${code}${err ? `: ${err.trim()}` : ''})`)))
    })
  } finally {
    clearTimeout(waitNote)
  }
  // The lock holder must not keep this process alive on its own (while held).
  type Refable = {ref?: () => void; unref?: () => void}
  const handles = [child, child.stdout, child.stderr, child.stdin] as unknown as Refable[]
  for (const h of handles) h.unref?.()
  let released = false
  return async () => {
    if (released) return
    released = true
    for (const h of handles) h.ref?.()
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.stdin.end()
    })
  }
}

/** Run `fn` while holding the lock. */
export async function withLock<T>(file: string, fn: () => Promise<T>, opts: {timeoutSec?: number; onWait?: () => void} = {}): Promise<T> {
  const release = await acquireLock(file, opts)
  try {
    return await fn()
  } finally {
    await release()
  }
}

/** Does another process hold the lock on `file` right now? (A non-blocking try; nothing is kept.) */
export async function isLockHeld(file: string): Promise<boolean> {
  if (!existsSync(file)) return false
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('flock', ['-n', file, 'true'], {stdio: 'ignore'})
    child.on('error', () => resolve(0))
    child.on('exit', (c) => resolve(c))
  })
  return code !== 0
}
