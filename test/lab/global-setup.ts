/**
 * One shared lab for the whole lab test run: 1 bastion + 2 active + 1 standby web nodes, with its
 * inventory at /tmp/infra-lab-test/infra.yaml (INFRA_LAB_TEST_DIR overrides the folder). Tests get
 * the path with `inject('labConfig')`. Each run starts from a fresh lab and takes it down at the end.
 * Runs on this machine are serialised with a lock, so two test runs never share or break one lab.
 */
import {spawnSync} from 'node:child_process'
import {mkdir, rm} from 'node:fs/promises'
import path from 'node:path'
import type {TestProject} from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Absolute path of the shared lab's inventory. */
    labConfig: string
  }
}

export const LAB_TEST_DIR = process.env.INFRA_LAB_TEST_DIR ?? '/tmp/infra-lab-test'

/**
 * The lab's public side used to be planned on 192.0.2.0/24, which is this kind of machine's real
 * uplink. While the lab tests run, a stale hard-coded 192.0.2.10 must fail here instead of
 * leaving the machine: an `unreachable` route (local only, removed at the end).
 */
const STALE_ADDRESS = '192.0.2.10'

const log = (m: string) => process.stderr.write(`[lab] ${m}\n`)

function guard(add: boolean): void {
  const own = spawnSync('ip', ['-o', '-4', 'addr', 'show'], {encoding: 'utf8'}).stdout ?? ''
  if (own.includes(` ${STALE_ADDRESS}/`)) return
  spawnSync('ip', ['route', add ? 'replace' : 'del', 'unreachable', `${STALE_ADDRESS}/32`], {encoding: 'utf8'})
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const {acquireLock, LAB_TEST_LOCK, labDown, labStatus, labUp} = await import('../../src/lab/index.js')
  const release = await acquireLock(LAB_TEST_LOCK, {timeoutSec: 3600, onWait: () => log('waiting for another lab test run on this machine to finish…')})
  const config = path.join(LAB_TEST_DIR, 'infra.yaml')
  try {
    const running = await labStatus()
    if (running.config && running.config !== config) {
      // The quick start runs `npm run demo` then `npm test`: the tests replace the demo's lab
      // (a lab is disposable; `npm run demo` brings it back). INFRA_LAB_TEST_KEEP=1 refuses instead.
      if (process.env.INFRA_LAB_TEST_KEEP) {
        throw new Error(`a lab for ${running.config} is running on this machine; the lab tests need their own. Stop it with \`infra lab down\`.`)
      }
      log(`replacing the running lab of ${running.config} (run \`npm run demo\` again afterwards to get it back)`)
    }
    const t0 = Date.now()
    await labDown({force: true, log})
    await rm(LAB_TEST_DIR, {recursive: true, force: true})
    await mkdir(LAB_TEST_DIR, {recursive: true})
    guard(true)
    const info = await labUp({config, web: 2, standby: 1, log})
    log(`lab up for the tests in ${((Date.now() - t0) / 1000).toFixed(1)} s (${info.hosts.length} hosts, inventory ${config})`)
  } catch (error) {
    guard(false)
    await release()
    throw error
  }
  project.provide('labConfig', config)

  return async () => {
    try {
      const t0 = Date.now()
      // zz-down.test.ts may have taken it down already: labDown is then a quick no-op.
      await labDown({force: true, log})
      log(`lab down in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    } finally {
      guard(false)
      await release()
    }
  }
}
