import path from 'node:path'
import {BaseSequencer, type TestSpecification} from 'vitest/node'

/**
 * Lab test files share one fleet and run one after another, in a fixed order: `lab.test.ts`
 * first (it checks the fresh lab before anything provisions it), then the others by file name,
 * and `zz-*` files last (`zz-down.test.ts` takes the lab down and checks nothing is left).
 * Other projects keep vitest's default order.
 */
export function labRank(file: string): number {
  const base = path.basename(file)
  if (base === 'lab.test.ts') return 0
  if (base.startsWith('zz-')) return 2
  return 1
}

export function isLabFile(file: string): boolean {
  return file.split(path.sep).join('/').includes('/test/lab/')
}

export default class LabSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const lab = sorted.filter((f) => isLabFile(f.moduleId))
    lab.sort((a, b) => labRank(a.moduleId) - labRank(b.moduleId) || path.basename(a.moduleId).localeCompare(path.basename(b.moduleId)))
    return [...sorted.filter((f) => !isLabFile(f.moduleId)), ...lab]
  }
}
