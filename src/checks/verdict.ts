/** The verdicts a host check returns, and the few words they share. */
import type {Verdict} from './types.js'

export const PROVISION = 'run `infra provision` to restore'
export const pass = (value: string, message: string): Verdict => ({status: 'pass', value, message, fix: ''})
export const warn = (value: string, message: string, fix: string): Verdict => ({status: 'warn', value, message, fix})
export const fail = (value: string, message: string, fix: string, detail?: string): Verdict => ({status: 'fail', value, message, fix, ...(detail ? {detail} : {})})
export const skip = (message: string): Verdict => ({status: 'skip', value: '-', message, fix: ''})

export function ago(sec: number): string {
  if (sec < 120) return `${Math.round(sec)}s`
  if (sec < 7200) return `${Math.round(sec / 60)}m`
  if (sec < 172_800) return `${Math.round(sec / 3600)}h`
  return `${Math.round(sec / 86_400)}d`
}
