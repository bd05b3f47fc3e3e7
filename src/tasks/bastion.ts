/** Operations that are one command on the bastion (scale, ban): one connection, opened and closed here. */
import type {LoadedInventory} from '../inventory/load.js'
import type {HostConnection} from '../ssh/connection.js'

/** Runs `fn` with a connection to the bastion, closed afterwards whatever happens. */
export async function onBastion<T>(loaded: LoadedInventory, fn: (conn: HostConnection, name: string) => Promise<T>): Promise<T> {
  const {openFleet} = await import('../ssh/fleet.js')
  const fleet = openFleet(loaded)
  const name = loaded.inventory.bastion.name
  try {
    return await fn(await fleet.connect(name), name)
  } finally {
    await fleet.close()
  }
}
