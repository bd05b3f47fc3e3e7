/**
 * Errors that carry an exit code and, where one exists, the next step for the user.
 * Exit codes (documented in README): 0 success, 1 failure on a host or a check, 2 usage or configuration error.
 */
export const EXIT = {OK: 0, FAILURE: 1, USAGE: 2} as const

export class InfraError extends Error {
  readonly exitCode: number
  readonly hint?: string
  readonly code: string

  constructor(message: string, opts: {exitCode?: number; hint?: string; code?: string; cause?: unknown} = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = new.target.name
    this.exitCode = opts.exitCode ?? EXIT.FAILURE
    this.hint = opts.hint
    this.code = opts.code ?? 'EINFRA'
  }
}

/** Invalid inventory, bad flags, missing files: nothing on a host was touched. */
export class ConfigError extends InfraError {
  constructor(message: string, opts: {hint?: string; code?: string; cause?: unknown} = {}) {
    super(message, {...opts, exitCode: EXIT.USAGE, code: opts.code ?? 'ECONFIG'})
  }
}

export class UsageError extends InfraError {
  constructor(message: string, opts: {hint?: string; code?: string} = {}) {
    super(message, {...opts, exitCode: EXIT.USAGE, code: opts.code ?? 'EUSAGE'})
  }
}

/** Something failed on a host (or a check failed). */
export class HostError extends InfraError {
  readonly host: string
  constructor(host: string, message: string, opts: {hint?: string; code?: string; cause?: unknown} = {}) {
    super(message, {...opts, exitCode: EXIT.FAILURE, code: opts.code ?? 'EHOST'})
    this.host = host
  }
}
