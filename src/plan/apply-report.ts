/** What a host said while running the apply script (src/plan/script.ts): its `@@` lines, read with the one fact protocol. */
import {factLines} from '../host/facts.js'

/** What the host said while applying, parsed from `@@` lines. */
export interface ApplyReport {
  ok: boolean
  done: string[]
  errors: string[]
  invalid: string[]
  /** Lines of tool output (validator, apt, systemctl) to show with an error. */
  output: string[]
  armed?: {unit: string; seconds: number}
  undone: boolean
  /** After a failure, the previous firewall/sshd settings were put back in effect. */
  reapplied?: boolean
  /** Another run holds the host's lock: who, which run, and until when (epoch seconds). */
  locked?: {holder: string; run?: string; until?: number}
}

export function parseApplyOutput(stdout: string): ApplyReport {
  const r: ApplyReport = {ok: false, done: [], errors: [], invalid: [], output: [], undone: false}
  for (const {tag, fields: f} of factLines(stdout)) {
    switch (tag) {
      case '@@done':
        r.done.push(f.join(' '))
        break
      case '@@error':
        r.errors.push(f.join('\t'))
        break
      case '@@invalid':
        r.invalid.push(f[0] ?? '')
        break
      case '@@out':
        r.output.push(f.join('\t'))
        break
      case '@@armed':
        r.armed = {unit: f[0] ?? '', seconds: Number(f[1])}
        break
      case '@@undone':
        r.undone = true
        break
      case '@@reapplied':
        r.reapplied = true
        break
      case '@@locked':
        r.locked = {holder: f[0] ?? '', ...(f[1] ? {run: f[1]} : {}), ...(f[2] ? {until: Number(f[2])} : {})}
        break
      case '@@ok':
        r.ok = true
        break
    }
  }
  return r
}
