/** The text of deploy's and rollback's results (the commands print it; --json prints the value). */
import type {Release} from './release.js'

export interface RenderableOutcome {
  name: string
  result: string
  from: string | null
  detail?: string
}

export interface RenderableResult {
  operation: 'deploy' | 'rollback'
  release: Release
  previous: string | null
  unchanged: boolean
  image?: {ref: string; source: string}
  nodes: RenderableOutcome[]
  pruned: string[]
  warnings: string[]
  ms: number
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`

export function renderDeployResult(r: RenderableResult): string {
  const secs = (r.ms / 1000).toFixed(1)
  if (r.unchanged) return `Release ${r.release.id} is current on every node already: nothing to do (${secs} s).`
  const switched = r.nodes.filter((n) => n.result === 'switched').length
  const created = r.nodes.filter((n) => n.result === 'created').length
  const same = r.nodes.filter((n) => n.result === 'unchanged').length
  const verb = r.operation === 'deploy' ? 'Deployed' : 'Rolled back to'
  const lines = [
    `${verb} ${r.release.id} in ${secs} s: ${count(switched, 'node')} switched${same ? `, ${same} already on it` : ''}${created ? `, ${count(created, 'standby node')} updated (created, not started)` : ''}.`,
    `  image ${r.image?.ref ?? r.release.image}`,
  ]
  if (r.previous && r.previous !== r.release.id) lines.push(`  previous release ${r.previous} is stopped and kept on the nodes: \`infra rollback\` goes back to it in seconds.`)
  if (r.pruned.length > 0) lines.push(`  pruned from the registry: ${r.pruned.join(', ')}`)
  for (const w of r.warnings) lines.push(`  warning: ${w}`)
  return lines.join('\n')
}

export function renderFailedNodes(r: RenderableResult): string {
  return r.nodes
    .filter((n) => n.result !== 'switched' && n.result !== 'created' && n.result !== 'unchanged')
    .map((n) => `  ${n.name}: ${n.result}${n.detail ? ` (${n.detail})` : ''}`)
    .join('\n')
}
