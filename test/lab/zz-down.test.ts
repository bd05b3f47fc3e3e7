/**
 * Runs last (see sequencer.ts): `lab down` leaves nothing of the lab on this machine but the
 * image cache. The global teardown then finds the lab already down.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'

import {imageDir, imageKey} from '../../src/lab/image.js'
import {labDown, labLeftovers, labStatus} from '../../src/lab/index.js'
import {LAB_STATE_DIR} from '../../src/lab/state.js'
import {labConfig} from './helpers.js'

const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], {encoding: 'utf8'}).stdout

describe('lab down', () => {
  it('removes every namespace, link, mount, cgroup and process of the lab, and its state; keeps the image', async () => {
    expect((await labStatus()).config).toBe(labConfig())
    const r = await labDown({force: true, log: () => {}})
    expect(r.wasRunning).toBe(true)
    expect(r.ms).toBeLessThan(15_000)

    expect(sh('ip netns list')).not.toMatch(/infl-/)
    expect(sh('ip -o link show')).not.toMatch(/infl-/)
    expect(readFileSync('/proc/mounts', 'utf8')).not.toMatch(/infra-lab/)
    // Live processes only (a just-killed one may linger as a zombie until its parent reaps it).
    expect(sh('pgrep -f -r R,S,D "[s]ystemd-nspawn" || true').trim()).toBe('')
    expect(sh('find /sys/fs/cgroup -maxdepth 4 -type d -name infra-lab').trim()).toBe('')
    expect(await labLeftovers()).toEqual({namespaces: [], links: [], mounts: [], nspawns: [], cgroups: []})
    expect(existsSync(LAB_STATE_DIR)).toBe(false)
    expect(await labStatus()).toEqual({config: null, hosts: []})

    expect(existsSync(`${imageDir(imageKey())}/rootfs/sbin/init`)).toBe(true)
    // The inventory and the lab's keys stay: the next `lab up` reuses the same host keys.
    expect(existsSync(labConfig())).toBe(true)
  })

  it('is a quick no-op when no lab is up', async () => {
    const r = await labDown({force: true, log: () => {}})
    expect(r.wasRunning).toBe(false)
    expect(r.removed.namespaces).toEqual([])
  })
})
