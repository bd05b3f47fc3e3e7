/**
 * Checks made from this machine, as the internet sees the fleet: traffic goes only to the
 * bastion's public address (curl --resolve, openssl s_client -connect). Web nodes' private
 * addresses are judged by `ip route get` (which sends nothing); a TCP connect is attempted only
 * when this machine routes the address via the bastion's public address.
 */
import {execFile} from 'node:child_process'
import net from 'node:net'

import {configOf} from '../inventory/config.js'
import type {Inventory} from '../inventory/schema.js'
import {NODE_EXPORTER_PORT} from '../host/ports.js'
import type {Verdict} from './types.js'

export const INTERNET = 'internet'

export interface HttpAnswer {
  status: number
  headers: Record<string, string>
  error?: string
}

export interface ExternalFacts {
  httpRoot?: HttpAnswer
  httpsRoot?: HttpAnswer
  aliases: {name: string; answer: HttpAnswer}[]
  health?: HttpAnswer
  /** Handshake accepted, per protocol version. */
  tls: {tls1?: boolean; tls1_1?: boolean; tls1_2?: boolean}
  private: {node: string; address: string; route: string; viaBastion: boolean; open: number[]}[]
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, {timeout: timeoutMs, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024}, (err, stdout, stderr) => {
      const code = err ? (typeof (err as {code?: unknown}).code === 'number' ? ((err as {code: number}).code) : 1) : 0
      resolve({code, stdout: stdout ?? '', stderr: stderr ?? ''})
    })
    child.stdin?.end()
  })
}

export function parseHeaders(raw: string): HttpAnswer {
  // The last response block (curl -D - prints only one without -L).
  const lines = raw.split(/\r?\n/)
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
  }
  return {status, headers}
}

async function head(name: string, scheme: 'http' | 'https', path: string, address: string): Promise<HttpAnswer> {
  const port = scheme === 'https' ? 443 : 80
  const r = await run('curl', ['-sS', '-k', '-o', '/dev/null', '-D', '-', '--max-time', '3', '--noproxy', '*', '--resolve', `${name}:${port}:${address}`, `${scheme}://${name}${path}`], 5000)
  if (r.code !== 0) return {status: 0, headers: {}, error: r.stderr.trim().split('\n')[0] || `curl exit ${r.code}`}
  return parseHeaders(r.stdout)
}

/** A TLS handshake at one protocol version; for 1.0/1.1 the client's security level is lowered so a refusal is the server's. */
async function handshake(address: string, domain: string, version: 'tls1' | 'tls1_1' | 'tls1_2'): Promise<boolean> {
  const args = ['s_client', '-connect', `${address}:443`, '-servername', domain, `-${version}`]
  if (version !== 'tls1_2') args.push('-cipher', 'DEFAULT:@SECLEVEL=0')
  const r = await run('openssl', args, 5000)
  return r.code === 0
}

async function routeOf(address: string): Promise<{gateway?: string; dev?: string; type?: string} | undefined> {
  const r = await run('ip', ['-j', 'route', 'get', address], 3000)
  if (r.code !== 0) return undefined
  try {
    return (JSON.parse(r.stdout) as {gateway?: string; dev?: string; type?: string}[])[0]
  } catch {
    return undefined
  }
}

function tcpOpen(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({host: address, port, timeout: timeoutMs})
    const done = (ok: boolean) => {
      s.destroy()
      resolve(ok)
    }
    s.once('connect', () => done(true))
    s.once('timeout', () => done(false))
    s.once('error', () => done(false))
  })
}

export async function gatherExternal(inv: Inventory): Promise<ExternalFacts> {
  const pub = inv.bastion.publicAddress
  const domain = inv.domain.toLowerCase()
  const aliases = [...new Set(inv.aliases.map((a) => a.toLowerCase()))].filter((a) => a !== domain)
  const [httpRoot, httpsRoot, health, tls1, tls1_1, tls1_2, aliasAnswers, priv] = await Promise.all([
    head(domain, 'http', '/', pub),
    head(domain, 'https', '/', pub),
    head(domain, 'https', configOf(inv).healthPath, pub),
    handshake(pub, domain, 'tls1'),
    handshake(pub, domain, 'tls1_1'),
    handshake(pub, domain, 'tls1_2'),
    Promise.all(aliases.map(async (name) => ({name, answer: await head(name, 'https', '/', pub)}))),
    Promise.all(
      inv.web.nodes.map(async (n) => {
        const route = await routeOf(n.address)
        const viaBastion = route?.gateway === pub
        // Only when this machine routes the address through the bastion does a packet go there.
        const ports = viaBastion ? [...new Set([22, inv.web.port, NODE_EXPORTER_PORT])] : []
        const results = await Promise.all(ports.map((port) => tcpOpen(n.address, port, 1000)))
        const open = ports.filter((_, i) => results[i])
        const desc = !route ? 'no route' : route.type && route.type !== 'unicast' ? route.type : viaBastion ? `via ${route.gateway} dev ${route.dev}` : 'no route via the bastion'
        return {node: n.name, address: n.address, route: desc, viaBastion, open}
      }),
    ),
  ])
  return {httpRoot, httpsRoot, health, aliases: aliasAnswers, tls: {tls1, tls1_1, tls1_2}, private: priv}
}

export interface ExternalCheck {
  id: string
  summary: string
  run(f: ExternalFacts, inv: Inventory): Verdict
}

const pass = (value: string, message: string): Verdict => ({status: 'pass', value, message, fix: ''})
const fail = (value: string, message: string, fix: string): Verdict => ({status: 'fail', value, message, fix})
const skip = (message: string): Verdict => ({status: 'skip', value: '-', message, fix: ''})
const PROVISION = 'run `infra provision` to restore the HAProxy configuration'

function shown(a: HttpAnswer | undefined): string {
  if (!a) return 'not checked'
  if (a.error) return a.error
  return `${a.status}${a.headers.location ? ` → ${a.headers.location}` : ''}`
}

export const EXTERNAL_CHECKS: ExternalCheck[] = [
  {
    id: 'http-redirect',
    summary: 'http:// answers 301 to https:// on the domain',
    run: (f, inv) => {
      const a = f.httpRoot
      const want = `https://${inv.domain.toLowerCase()}/`
      return a && a.status === 301 && a.headers.location === want
        ? pass(shown(a), 'HTTP redirects to HTTPS')
        : fail(shown(a), `http://${inv.domain}/ should answer 301 to ${want}`, PROVISION)
    },
  },
  {
    id: 'alias-redirect',
    summary: 'every alias answers 301 to the apex domain',
    run: (f, inv) => {
      if (f.aliases.length === 0) return pass('no aliases', 'nothing to redirect')
      const apex = `https://${inv.domain.toLowerCase()}/`
      const bad = f.aliases.filter((a) => !(a.answer.status === 301 && a.answer.headers.location?.startsWith(apex)))
      const v = f.aliases.map((a) => `${a.name} ${shown(a.answer)}`).join(', ')
      return bad.length === 0 ? pass(v, 'aliases redirect to the domain') : fail(v, `not redirected to ${apex}: ${bad.map((b) => b.name).join(', ')}`, PROVISION)
    },
  },
  {
    id: 'tls-versions',
    summary: 'TLS 1.0 and 1.1 refused, TLS 1.2 accepted (client at SECLEVEL=0)',
    run: (f) => {
      const v = `1.0 ${f.tls.tls1 ? 'accepted' : 'refused'}, 1.1 ${f.tls.tls1_1 ? 'accepted' : 'refused'}, 1.2 ${f.tls.tls1_2 ? 'accepted' : 'refused'}`
      if (f.tls.tls1 || f.tls.tls1_1) return fail(v, 'old TLS versions are accepted', PROVISION + ' (ssl-default-bind-options ssl-min-ver TLSv1.2)')
      if (!f.tls.tls1_2) return fail(v, 'TLS 1.2 is refused (clients without TLS 1.3 cannot connect)', PROVISION)
      return pass(v, 'modern TLS only')
    },
  },
  {
    id: 'hsts',
    summary: 'Strict-Transport-Security on HTTPS answers',
    run: (f) => {
      const h = f.httpsRoot?.headers['strict-transport-security']
      return h && /max-age=\d+/.test(h) ? pass(h, 'HSTS present') : fail(f.httpsRoot?.error ?? 'missing', 'no Strict-Transport-Security header on https://', PROVISION)
    },
  },
  {
    id: 'edge-health',
    summary: 'the health path answers 200 through the bastion',
    run: (f, inv) => {
      const a = f.health
      const url = `https://${inv.domain}${configOf(inv).healthPath}`
      const served = a?.headers['x-served-by']
      return a && a.status === 200
        ? pass(`200${served ? ` from ${served}` : ''}`, `${url} answers`)
        : fail(shown(a), `${url} does not answer 200`, 'see the `backends` and `web-health` checks; `infra provision` restores the configuration')
    },
  },
  {
    id: 'private-unreachable',
    summary: "web nodes' private addresses not reachable from here",
    run: (f) => {
      const open = f.private.filter((p) => p.open.length > 0)
      if (open.length > 0) {
        const v = open.map((p) => `${p.node} ${p.address}:${p.open.join(',')}`).join(', ')
        return fail(v, 'private ports are reachable from outside through the bastion', 'run `infra provision` to restore the bastion firewall (forwarding from the public side is dropped)')
      }
      const v = [...new Set(f.private.map((p) => (p.viaBastion ? 'routed via the bastion, ports closed' : 'no route')))].join(', ') || 'no web nodes'
      return pass(v, 'web nodes are not reachable from this machine')
    },
  },
]

export const EXTERNAL_CHECK_IDS = EXTERNAL_CHECKS.map((c) => c.id)

export function skipExternal(reason: string): Verdict {
  return skip(reason)
}
