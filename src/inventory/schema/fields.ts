/** The value types several sections share: health path, addresses, names, host key fingerprints. */
import {z} from 'zod'

import {expected, show} from './base.js'

/**
 * web.healthCheck.path: the one rule for the health path (src/inventory/config.ts hands it to the
 * renderers, checks and status). It goes into haproxy.cfg (`http-check send ... uri`, an ACL), nginx (`location =`),
 * the agents' shell (quoted) and curl URLs, so: letters, digits and . _ ~ / - only; no empty or dot
 * segment (nginx merges slashes and resolves dots before matching `location =`, so such a path
 * would never match and every node would fail its check); at most HEALTH_PATH_MAX characters.
 */
export const HEALTH_PATH_MAX = 128
const healthPathError = expected('a plain URL path', `"/" then letters, digits and . _ ~ / - only, at most ${HEALTH_PATH_MAX} characters, e.g. "/healthz"`)
export const healthPathSchema = z
  .string({error: healthPathError})
  .max(HEALTH_PATH_MAX, {error: healthPathError, abort: true})
  .regex(/^\/[\w.~/-]*$/, {error: healthPathError, abort: true})
  .regex(/^(?!.*\/\/)(?!.*\/\.\.?(\/|$))/, {error: (iss) => `${show(iss.input)} has an empty, "." or ".." segment, which nginx normalizes away, so the check would never match (e.g. "/healthz")`})

export const ipv4 = z.ipv4({error: expected('an IPv4 address')})

export const cidr = z.cidrv4({error: expected('an IPv4 network in CIDR form', 'e.g. "10.10.0.0/24"')})

const domainError = expected('a domain name', 'e.g. "example.com"')
export const hostname = z
  .string({error: domainError})
  .regex(/^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]$/, {
    error: domainError,
  })

const nodeNameError = expected('a host name', 'lowercase letters, digits and "-", starting with a letter, at most 31 characters')
export const nodeName = z.string({error: nodeNameError}).regex(/^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$/, {error: nodeNameError})

const fingerprintError = expected('a host key fingerprint', '"SHA256:" and 43 characters, as `ssh-keygen -lf` prints it')
/** A host key fingerprint as `ssh-keygen -lf` prints it (src/ssh/known-hosts.ts FINGERPRINT_RE). */
export const hostKeyFingerprint = z.string({error: fingerprintError}).regex(/^SHA256:[A-Za-z0-9+/]{43}$/, {error: fingerprintError})

/** The name of an environment variable that holds a secret (`*Env` keys), e.g. `envVarName("JWT_SECRET")`. */
export function envVarName(example: string) {
  const error = expected('an environment variable name', `e.g. "${example}"`)
  return z.string({error}).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {error})
}

/** A path beside the inventory to a file of this kind, e.g. `pathTo('a PEM public key file')`. */
export function pathTo(what: string) {
  const error = expected(`a path to ${what}`)
  return z.string({error}).min(1, {error})
}
