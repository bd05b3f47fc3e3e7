import {defineConfig} from 'vitest/config'

import LabSequencer from './test/lab/sequencer.js'

export default defineConfig({
  test: {
    disableConsoleIntercept: true,
    // Lab files in a fixed order: lab.test.ts first, zz-* last (see test/lab/sequencer.ts).
    sequence: {sequencer: LabSequencer},
    projects: [
      {
        test: {
          name: 'unit',
          disableConsoleIntercept: true,
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'lab',
          disableConsoleIntercept: true,
          include: ['test/lab/**/*.test.ts'],
          // One shared fleet per run: lab files run one after another.
          fileParallelism: false,
          // Real hosts on a shared 2-core machine: a timing-sensitive lab test gets one more try
          // (it still fails when it fails twice). Unit tests get none.
          retry: 1,
          globalSetup: ['test/lab/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
})
