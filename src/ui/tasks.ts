/**
 * The runner of every multi-host operation's task list (src/tasks): steps run in order as a
 * listr2 task list; a step that works on hosts has one line per host under it.
 * - a terminal: listr2's live renderer on stderr;
 * - CI or no TTY: plain lines on stderr (`» Hosts`, `web1  gathering facts`, `web1  ✔ …`);
 * - --json or a test (`silent`, the default): nothing, so stdout holds only the JSON document.
 * A task is a plain async function: tests call it and get its value.
 */
import type {ListrTask} from 'listr2'

import {type HostUpdate, hostLines, plainHostUpdate, type ProgressMode} from './progress.js'

export {progressMode, type ProgressMode} from './progress.js'

export interface Step<C> {
  title: string
  /** Left out (not shown) when this returns false, asked when the step's turn comes. */
  enabled?: (ctx: C) => boolean
  /** The hosts this step reports on, one line each (known before it starts). */
  hosts?: (ctx: C) => string[]
  run: (ctx: C, host: HostUpdate) => Promise<void>
}

const NOTHING: HostUpdate = () => {}

/** Runs the steps in order on `ctx`; a step that throws stops the list, and its error is rethrown. */
export async function runSteps<C extends object>(ctx: C, steps: Step<C>[], mode: ProgressMode = 'silent'): Promise<C> {
  // `enabled` is asked when the step's turn comes: it may depend on what earlier steps found.
  const on = (s: Step<C>) => !s.enabled || s.enabled(ctx)
  if (mode !== 'tty') {
    for (const step of steps) {
      if (!on(step)) continue
      if (mode === 'plain') process.stderr.write(`» ${step.title}\n`)
      await step.run(ctx, mode === 'plain' && step.hosts ? plainHostUpdate(step.hosts(ctx)) : NOTHING)
    }
    return ctx
  }
  const {Listr, ListrLogger, ProcessOutput} = await import('listr2')
  let failure: unknown
  const tasks: ListrTask[] = steps.map((step) => ({
    title: step.title,
    enabled: () => on(step),
    task: (_c, task) => {
      if (!step.hosts) return step.run(ctx, NOTHING)
      const lines = hostLines(step.hosts(ctx))
      // The work itself is an untitled (hidden) subtask beside the host lines.
      const work = async () => {
        try {
          await step.run(ctx, lines.update)
        } catch (error) {
          failure = error
        } finally {
          lines.settle()
        }
      }
      return task.newListr([{task: work}, ...lines.subtasks], {concurrent: true, exitOnError: false})
    },
  }))
  const listr = new Listr(tasks, {
    exitOnError: true,
    rendererOptions: {collapseSubtasks: false, logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
  })
  await listr.run()
  if (failure instanceof Error) throw failure
  if (failure !== undefined) throw new Error('a step failed')
  return ctx
}
