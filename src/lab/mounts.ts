import {readFileSync} from 'node:fs'

import {run} from './run.js'

/** Mount points listed in /proc/mounts (octal escapes decoded). */
export function mountPoints(procMounts = readFileSync('/proc/mounts', 'utf8')): string[] {
  return procMounts
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[1].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string, procMounts?: string): string[] {
  const base = dir.replace(/\/+$/, '')
  return mountPoints(procMounts)
    .filter((m) => m === base || m.startsWith(base + '/'))
    .sort((a, b) => b.length - a.length)
}

/** Unmount everything at or below `dir` (deepest first; lazily if busy). Returns what was unmounted. */
export async function unmountUnder(dir: string): Promise<string[]> {
  const done: string[] = []
  for (let round = 0; round < 5; round++) {
    const list = mountsUnder(dir)
    if (list.length === 0) break
    for (const m of list) {
      const r = await run(['umount', m], {allowFail: true})
      if (r.code !== 0) await run(['umount', '-l', m], {allowFail: true})
      done.push(m)
    }
  }
  return [...new Set(done)]
}

/** rm -rf that never crosses into another file system (so a stale mount is never emptied). */
export async function removeTree(dir: string): Promise<void> {
  await unmountUnder(dir)
  await run(['rm', '-rf', '--one-file-system', dir], {allowFail: true})
}
