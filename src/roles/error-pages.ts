/**
 * HAProxy's error pages as files: whole raw HTTP responses (status line, headers, blank line, HTML
 * body), built-in or from the user's HTML or raw-response files. Shared by the fleet's own pages
 * (src/roles/bastion.ts) and each site's (src/roles/sites.ts). Pure.
 */
import {ConfigError} from '../lib/errors.js'

/** The error pages HAProxy serves from our files, and their wording. */
export const ERROR_PAGES: Record<number, {reason: string; title: string; message: string}> = {
  400: {reason: 'Bad Request', title: 'Bad request', message: 'Your browser sent a request this server could not understand.'},
  403: {reason: 'Forbidden', title: 'Forbidden', message: 'You are not allowed to access this page.'},
  408: {reason: 'Request Timeout', title: 'Request timed out', message: 'Your browser did not send a complete request in time. Please try again.'},
  429: {reason: 'Too Many Requests', title: 'Too many requests', message: 'You sent too many requests in a short time. Please wait a moment and try again.'},
  500: {reason: 'Internal Server Error', title: 'Something went wrong', message: 'The server met an unexpected error. Please try again later.'},
  502: {reason: 'Bad Gateway', title: 'Bad gateway', message: 'The site received an invalid answer from its servers. Please try again in a moment.'},
  503: {reason: 'Service Unavailable', title: 'Service unavailable', message: 'No server is available to answer right now. Please try again in a moment.'},
  504: {reason: 'Gateway Timeout', title: 'Gateway timeout', message: 'The site did not answer in time. Please try again in a moment.'},
}

/** Codes HAProxy 2.6 accepts in `errorfile` (an override may add one of these beyond ours). */
export const HAPROXY_ERRORFILE_CODES = [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504] as const

/** HAProxy reads an error file into one buffer (16 KB, minus room for rewrites). */
export const ERROR_PAGE_MAX_BYTES = 15 * 1024

const REASONS: Record<number, string> = {
  200: 'OK',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  410: 'Gone',
  413: 'Payload Too Large',
  425: 'Too Early',
  501: 'Not Implemented',
  ...Object.fromEntries(Object.entries(ERROR_PAGES).map(([c, p]) => [c, p.reason])),
}

/** A whole raw HTTP response around an HTML body, with our headers. */
export function rawResponse(code: number, body: string): string {
  const head = [
    `HTTP/1.1 ${code} ${REASONS[code] ?? 'Error'}`,
    'Content-Type: text/html; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body, 'utf8')}`,
    'Cache-Control: no-cache',
    'Connection: close',
  ]
  return head.join('\r\n') + '\r\n\r\n' + body
}

/**
 * A user's page for `code`: an HTML document (it gets our status line and headers) or a whole raw
 * HTTP response (used as it is). `name` says where it came from in messages (e.g.
 * `errors/404.http`, `sites.shop.errorPages.404 (errors/shop-404.html)`).
 */
export function checkOverride(code: number, text: string, name: string): string {
  if (!(HAPROXY_ERRORFILE_CODES as readonly number[]).includes(code)) {
    throw new ConfigError(`${name}: HAProxy has no error page for status ${code}`, {
      hint: `Use one of ${HAPROXY_ERRORFILE_CODES.join(', ')}, or remove the file.`,
    })
  }
  const trimmed = text.replace(/^\uFEFF/, '')
  if (/^\s*</.test(trimmed)) return rawResponse(code, trimmed)
  const status = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n/.exec(trimmed)
  if (!status) {
    throw new ConfigError(`${name}: the first line is not an HTTP status line`, {
      hint: `Start the file with "HTTP/1.1 ${code} ${REASONS[code] ?? 'Error'}", headers and a blank line, or put only an HTML document in it.`,
    })
  }
  if (!/\r?\n\r?\n/.test(trimmed)) {
    throw new ConfigError(`${name}: no blank line between the headers and the body`, {
      hint: 'A raw HTTP response is: the status line, header lines, an empty line, then the body.',
    })
  }
  return trimmed
}

/** A page HAProxy can hold in its buffer, or a ConfigError naming it. */
export function checkSize(page: string, name: string): string {
  const bytes = Buffer.byteLength(page, 'utf8')
  if (bytes > ERROR_PAGE_MAX_BYTES) {
    throw new ConfigError(`${name}: the error page is ${bytes} bytes; HAProxy takes at most ${ERROR_PAGE_MAX_BYTES}`, {
      hint: 'Make the page smaller (inline less CSS, link images instead of embedding them).',
    })
  }
  return page
}
