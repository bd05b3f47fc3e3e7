/** A plan as people read it: one line per change, and the dry run's unified diffs (secrets never shown). */
import {createTwoFilesPatch} from 'diff'

import type {HostPlan} from './diff.js'

/** Human lines for a plan (used in both dry run and apply summaries). */
export function describePlan(plan: HostPlan): string[] {
  return [
    ...plan.packages.map((p) => `install package ${p}`),
    ...plan.files.map((f) => `${f.kind === 'create' ? 'create' : f.kind === 'update' ? 'update' : 'fix owner/mode of'} ${f.file.path}`),
    ...plan.remove.map((p) => `remove ${p}`),
    ...plan.services.map((s) => `${s.actions.join(' + ')} ${s.name} (${s.reason})`),
  ]
}

/** The dry-run text: a unified diff per file, and package/service changes. Secrets are never shown. */
export function renderPlanDiff(plan: HostPlan): string {
  const parts: string[] = []
  for (const p of plan.packages) parts.push(`+ package ${p}`)
  for (const change of plan.files) {
    const {file, before} = change
    if (change.kind === 'mode') {
      parts.push(`~ ${file.path}: mode ${before?.mode?.toString(8)} ${before?.owner}:${before?.group} → ${file.mode.toString(8)} ${file.owner}:${file.group}`)
      continue
    }
    if (file.secret) {
      parts.push(`~ ${file.path}: secret content ${change.kind === 'create' ? 'created' : 'changed'} (not shown)`)
      continue
    }
    const old = before?.exists ? (before.content ?? '(content not fetched: file too large)\n') : ''
    parts.push(
      createTwoFilesPatch(before?.exists ? `a${file.path}` : '/dev/null', `b${file.path}`, old, file.content, '', '', {context: 3})
        .split('\n')
        .filter((l) => !l.startsWith('====='))
        .map((l) => (l.startsWith('--- ') || l.startsWith('+++ ') ? l.trimEnd() : l))
        .join('\n')
        .trimEnd(),
    )
  }
  for (const p of plan.remove) parts.push(`- ${p}`)
  for (const s of plan.services) parts.push(`~ service ${s.name}: ${s.actions.join(', ')} (${s.reason})`)
  return parts.join('\n')
}

