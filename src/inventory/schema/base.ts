/**
 * The building blocks of the inventory schema (src/inventory/schema.ts): how values are shown in
 * messages, `expected(...)`, strict mappings, numbers, list limits and durations.
 */
import {z} from 'zod'

/** How a value is shown in a message: strings quoted, lists and mappings named. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'a list'
  if (value !== null && typeof value === 'object') return 'a mapping'
  return String(value)
}

/**
 * An error map for a schema: what a valid value is (`what`), and optionally more detail.
 * Yields `"x" is not WHAT (DETAIL)`, `is missing (expected WHAT, DETAIL)` or `is empty (...)`.
 */
export function expected(what: string, detail?: string) {
  return (iss: {input?: unknown}): string => {
    if (iss.input === undefined) return `is missing (expected ${what}${detail ? `, ${detail}` : ''})`
    if (iss.input === null) return `is empty (expected ${what}${detail ? `, ${detail}` : ''})`
    return `${show(iss.input)} is not ${what}${detail ? ` (${detail})` : ''}`
  }
}

const DURATION = /^[1-9]\d*(s|m|h)$/
const durationError = expected('a duration', 'a whole number followed by s, m or h, e.g. "30s", "5m", "1h"')

/**
 * The longest duration anything that reads one can take: Node's timers and HAProxy's timeouts and
 * stick-table expiries hold at most 2^31-1 ms (about 24.8 days); a longer one overflows (Node
 * fires after 1 ms, `haproxy -c` refuses the file).
 */
export const DURATION_CEILING = '596h'

/**
 * A duration of at most `max`: `"1000h" is too long (at most 1h)`. Every duration key has its
 * own maximum (the reason is in its description); none may exceed DURATION_CEILING.
 */
export function durationUpTo(max: string) {
  const limit = durationMs(max)
  if (limit > durationMs(DURATION_CEILING)) throw new Error(`durationUpTo(${max}): above the ceiling ${DURATION_CEILING}`)
  return z
    .string({error: durationError})
    .regex(DURATION, {error: durationError, abort: true})
    .refine((d) => !DURATION.test(d) || durationMs(d) <= limit, {error: (iss) => `${show(iss.input)} is too long (at most ${max})`})
}

/** Any duration a timer or HAProxy can hold; a key should prefer durationUpTo with its own maximum. */
export const duration = durationUpTo(DURATION_CEILING)

export function durationMs(d: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(d)
  if (!m) throw new Error(`not a duration: ${d}`)
  return Number(m[1]) * {s: 1000, m: 60_000, h: 3_600_000}[m[2] as 's' | 'm' | 'h']
}

export const port = (what = 'a port number from 1 to 65535') => z.int({error: expected(what)}).min(1).max(65535)
export const wholeNumber = (min: number, max: number) => z.int({error: expected(`a whole number from ${min} to ${max}`)}).min(min).max(max)
export const and = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`)

/**
 * The most entries of a list HAProxy gets on one line: it reads at most 64 words a line (the
 * rest is cut off and `haproxy -c` fails), and the longest such line (a rule's roles) has 15 words besides the list.
 */
export const HAPROXY_LIST_MAX = 40
/** For `.max(n, tooMany(n, 'aliases'))` on a list: `has 60 aliases; at most 40 (...)`. */
export const tooMany = (n: number, what: string, why = 'HAProxy reads at most 64 words on one line') => ({
  error: (iss: {input?: unknown}) => `has ${Array.isArray(iss.input) ? iss.input.length : 'too many'} ${what}; at most ${n} (${why})`,
})

/** A mapping that allows only its own keys; its error message names the required and the optional keys. */
export function mappingOf<T extends Record<string, z.ZodType>>(shape: T) {
  const keys = Object.keys(shape)
  const required = keys.filter((k) => !shape[k].safeParse(undefined).success)
  const optional = keys.filter((k) => !required.includes(k))
  return z.strictObject(shape, {
    error: expected(
      required.length > 0 ? `a mapping with ${and(required)}` : 'a mapping',
      optional.length > 0 ? `${required.length > 0 ? 'optional keys' : 'keys'}: ${optional.join(', ')}` : undefined,
    ),
  })
}

