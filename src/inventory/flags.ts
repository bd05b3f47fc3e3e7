/**
 * Durations given as command flags (`exec --timeout`, `provision --confirm-timeout`, `ban --for`),
 * read with the inventory's own duration rule and bounded like the inventory's durations: a value
 * out of range is a UsageError (exit 2) before anything is read or contacted.
 */
import {UsageError} from '../lib/errors.js'
import {durationMs} from './schema.js'

export interface DurationFlagRule {
  /** Units the flag takes (default s, m and h). */
  units?: 's|m' | 's|m|h'
  /** Shortest value (a duration), and why, as the error says it. */
  min?: {value: string; why?: string}
  /** Longest value (a duration). */
  max?: string
  hint: string
}

/** `--NAME VALUE` in milliseconds, or a UsageError naming the flag, the value and the bound. */
export function durationFlag(name: string, value: string, rule: DurationFlagRule): number {
  const units = rule.units ?? 's|m|h'
  if (!new RegExp(`^[1-9]\\d*(${units})$`).test(value)) throw new UsageError(`--${name} ${value}: not a duration`, {hint: rule.hint})
  const ms = durationMs(value)
  if (rule.min && ms < durationMs(rule.min.value)) {
    throw new UsageError(`--${name} ${value} is too short: at least ${rule.min.value}${rule.min.why ? `, ${rule.min.why}` : ''}`, {hint: rule.hint})
  }
  if (rule.max && ms > durationMs(rule.max)) throw new UsageError(`--${name} ${value} is too long: at most ${rule.max}`, {hint: rule.hint})
  return ms
}

