/**
 * Before `infra scale up` / `--to N` with an app: every standby node gets the current release
 * (its files copied from a node that has it, the image pulled, the container created), so that
 * the scaler never starts a node with no release or an old one. A new node added to the inventory
 * after the last deploy is the usual case. The release's files (its env file holds secrets) go
 * from one node to the other through this process's memory only: never printed, never on a
 * command line. Under the deploy lock, so no deploy runs meanwhile.
 */
import {appCommand, loginCommand, parseReleaseFiles, readReleaseFilesScript, stageReleaseScript} from '../../app/commands.js'
import {currentRelease, parseAppStatus} from '../../app/release.js'
import {configOf} from '../../inventory/config.js'
import type {LoadedInventory} from '../../inventory/load.js'
import {HostError} from '../../lib/errors.js'
import type {Fleet} from '../../ssh/fleet.js'
import {readRegistryLogin, type RegistryLogin} from './inputs.js'
import {acquireDeployLock, releaseDeployLock} from './lock.js'
import {readHistory} from './steps.js'

export interface StandbySync {
  /** The current release (null: none deployed yet, nothing to do). */
  release: string | null
  /** Standby nodes that were given the current release. */
  updated: string[]
}

export async function syncStandbyNodes(loaded: LoadedInventory, fleet: Fleet, log: (line: string) => void = () => {}, env: NodeJS.ProcessEnv = process.env): Promise<StandbySync> {
  const inv = loaded.inventory
  // An outside registry's credentials (app.registry) when the environment has them; else the node's earlier login.
  let login: RegistryLogin | undefined
  try {
    login = readRegistryLogin(loaded, env)
  } catch {
    login = undefined
  }
  const bastion = await fleet.connect(inv.bastion.name)
  const lock = await acquireDeployLock(bastion, 'scale: bring standby nodes the current release', configOf(inv).ms.deployLockStale)
  try {
    const current = currentRelease(await readHistory(bastion))
    if (!current) return {release: null, updated: []}
    const id = current.id
    const states = await Promise.all(
      inv.web.nodes.map(async (n) => {
        const conn = await fleet.connect(n.name)
        const r = await conn.exec(appCommand('status'), {timeoutMs: 20_000})
        return {node: n, conn, release: r.code === 0 ? parseAppStatus(r.stdout).release : null}
      }),
    )
    const behind = states.filter((s) => s.node.standby && s.release !== id)
    if (behind.length === 0) return {release: id, updated: []}
    const source = states.find((s) => s.release === id)
    if (!source) {
      throw new HostError(behind[0].node.name, `no web node has the current release ${id} to copy to ${behind.map((s) => s.node.name).join(', ')}`, {
        hint: 'Deploy it again: `infra deploy --version ' + current.version + '`.',
      })
    }
    const read = await source.conn.exec('bash -s', {stdin: readReleaseFilesScript(id), timeoutMs: 20_000})
    const files = parseReleaseFiles(read.stdout)
    if (read.code !== 0 || !files) throw new HostError(source.node.name, `the files of release ${id} cannot be read on ${source.node.name}`, {hint: `See \`infra exec ${source.node.name} -- ls -l /var/lib/infra/app/releases\`.`})
    for (const s of behind) {
      log(`${s.node.name}: standby without the current release ${id} (has ${s.release ?? 'none'}): pulling it`)
      if (login) await s.conn.exec(loginCommand(login.registry, login.user), {stdin: login.password, timeoutMs: 60_000})
      const staged = await s.conn.exec('bash -s', {stdin: stageReleaseScript(id, files, {pull: true, login: inv.app?.registry !== undefined}), timeoutMs: 15 * 60_000})
      const created = staged.code === 0 ? await s.conn.exec(appCommand('create', id), {timeoutMs: 60_000}) : staged
      if (created.code !== 0) {
        throw new HostError(s.node.name, `${s.node.name} could not get release ${id}: ${(created.stderr || created.stdout).trim().split('\n').at(-1)}`, {
          hint: 'Check the fleet registry: `infra doctor`.',
        })
      }
    }
    return {release: id, updated: behind.map((s) => s.node.name)}
  } finally {
    await releaseDeployLock(bastion, lock.run)
  }
}
