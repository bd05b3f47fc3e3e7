/**
 * A bounded HTTPS request loop against the lab's bastion (tests, demo, bench): a few workers on
 * keep-alive connections, each request's status and body counted, until stopped or a bound
 * (requests, time) is reached. It refuses an address the kernel does not route over the lab link.
 */
import https from 'node:https'

import {routeGet} from './network.js'
import {ROOT_LINK} from './topology.js'

export interface LoadReport {
  total: number
  /** Answers with status 200. */
  ok: number
  /** Anything else: another status, a reset, a timeout. */
  failed: number
  statuses: Record<string, number>
  /** The first word after "hello " in each 200 body (the sample app's version), counted. */
  versions: Record<string, number>
  /** The versions in the order they were first seen, and the last one seen. */
  order: string[]
  last?: string
  errors: string[]
  ms: number
}

export interface LoadOptions {
  address: string
  domain: string
  path?: string
  workers?: number
  /** Bounds: the loop stops by itself at the first reached. */
  maxRequests?: number
  maxMs?: number
}

export interface LoadRun {
  /** Stops the loop and resolves with its report once in-flight requests ended. */
  stop(): Promise<LoadReport>
  /** Resolves when the loop stopped by itself (a bound was reached). */
  done: Promise<LoadReport>
}

function one(agent: https.Agent, o: LoadOptions): Promise<{status: string; body: string}> {
  return new Promise((resolve) => {
    const req = https.request(
      {host: o.address, port: 443, path: o.path ?? '/', servername: o.domain, headers: {Host: o.domain}, agent, rejectUnauthorized: false, timeout: 10_000},
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve({status: String(res.statusCode), body}))
        res.on('error', (e) => resolve({status: `error ${e.message}`, body: ''}))
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (e) => resolve({status: `error ${(e as NodeJS.ErrnoException).code ?? e.message}`, body: ''}))
    req.end()
  })
}

export async function startLoad(o: LoadOptions): Promise<LoadRun> {
  const route = await routeGet(o.address)
  if (route?.dev !== ROOT_LINK) throw new Error(`${o.address} is not routed over the lab link ${ROOT_LINK}; not sending requests to it`)
  const workers = o.workers ?? 4
  const maxRequests = o.maxRequests ?? 20_000
  const maxMs = o.maxMs ?? 180_000
  const agent = new https.Agent({keepAlive: true, maxSockets: workers})
  const r: LoadReport = {total: 0, ok: 0, failed: 0, statuses: {}, versions: {}, order: [], errors: [], ms: 0}
  const started = Date.now()
  let stopping = false
  const worker = async () => {
    while (!stopping && r.total < maxRequests && Date.now() - started < maxMs) {
      r.total++
      const {status, body} = await one(agent, o)
      r.statuses[status] = (r.statuses[status] ?? 0) + 1
      if (status === '200') {
        r.ok++
        const v = /hello (\S+)/.exec(body)?.[1] ?? 'other'
        r.versions[v] = (r.versions[v] ?? 0) + 1
        if (!r.order.includes(v)) r.order.push(v)
        r.last = v
      } else {
        r.failed++
        if (r.errors.length < 10) r.errors.push(`${status}${body ? `: ${body.slice(0, 80).replaceAll('\n', ' ')}` : ''}`)
      }
    }
  }
  const all = Promise.all(Array.from({length: workers}, worker)).then(() => {
    agent.destroy()
    r.ms = Date.now() - started
    return r
  })
  return {
    stop: async () => {
      stopping = true
      return all
    },
    done: all,
  }
}
