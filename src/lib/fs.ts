/** Small file-system helpers of this machine (the operator's side). */
import {stat} from 'node:fs/promises'

/** Whether something exists at `p` (a file, a folder, …); false when it cannot be stat'ed. */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}
