/**
 * CORS at the edge, live in a throwaway namespace (test/unit/edge-harness.ts): preflights answered
 * by HAProxy for allowed origins and refused for others, the allowed origin echoed (never `*`)
 * with Vary: Origin, and WebSocket upgrades checked on their Origin.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type Harness, startEdge, until} from './edge-harness.js'
import {DOMAIN, inventory} from './render-helpers.js'

const CLIENT = '198.51.100.1'
const inv = inventory({
  domain: DOMAIN,
  bastion: {publicAddress: '198.51.100.10', privateAddress: '10.79.0.1'},
  web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.79.0.11'}]},
  cors: {origins: ['https://app.example.net', 'https://*.example.org'], methods: ['GET', 'POST', 'PUT'], headers: ['Content-Type', 'X-Token'], credentials: true, maxAge: '5m'},
})
const URL = `https://${DOMAIN}/api/things`

let h: Harness
beforeAll(async () => {
  h = await startEdge('cors', inv, [CLIENT])
}, 30_000)
afterAll(() => h?.stop())

const preflight = (origin: string) =>
  h.request(CLIENT, URL, ['-X', 'OPTIONS', '-H', `Origin: ${origin}`, '-H', 'Access-Control-Request-Method: PUT', '-H', 'Access-Control-Request-Headers: content-type'])

describe('CORS', () => {
  it('answers a preflight from an allowed origin at the edge: 204 with the allowed methods, headers and max-age', () => {
    for (const origin of ['https://app.example.net', 'https://a.b.example.org', 'https://example.com', 'HTTPS://App.Example.NET']) {
      const r = preflight(origin)
      expect(r.status, `${origin}\n${r.raw}`).toBe(204)
      expect(r.headers['access-control-allow-origin']).toBe(origin)
      expect(r.headers['access-control-allow-methods']).toBe('GET, POST, PUT, OPTIONS')
      expect(r.headers['access-control-allow-headers']).toBe('Content-Type, X-Token')
      expect(r.headers['access-control-max-age']).toBe('300')
      expect(r.headers['access-control-allow-credentials']).toBe('true')
      expect(r.headers.vary).toBe('Origin')
      // Answered by HAProxy: the backend would have echoed JSON with x-served-by.
      expect(r.headers['x-served-by']).toBeUndefined()
    }
  })

  it('refuses a preflight or a request from any other origin with 403, and logs it', async () => {
    for (const origin of ['https://evil.example', 'https://example.org', 'https://app.example.net.evil.example', 'http://app.example.net', 'null']) {
      expect(preflight(origin).status, origin).toBe(403)
      const r = h.request(CLIENT, URL, ['-H', `Origin: ${origin}`])
      expect(r.status, origin).toBe(403)
      expect(r.headers['access-control-allow-origin']).toBeUndefined()
    }
    const log = await until('the log line', () => (/edge=cors-origin/.test(h.log()) ? h.log() : undefined))
    expect(log).toMatch(/^198\.51\.100\.1:\d+ .* 403 .*"OPTIONS \S*\/api\/things HTTP\/[\d.]+" edge=cors-origin$/m)
  })

  it('echoes an allowed origin on the backend answer (never *), with Vary: Origin; no Origin, no CORS headers', () => {
    const r = h.request(CLIENT, URL, ['-H', 'Origin: https://app.example.net'])
    expect(r.status).toBe(200)
    expect(r.headers['x-served-by']).toBe('backend')
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example.net')
    expect(r.headers['access-control-allow-credentials']).toBe('true')
    expect(r.headers.vary).toBe('Origin')
    const plain = h.request(CLIENT, URL)
    expect(plain.status).toBe(200)
    expect(plain.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('checks WebSocket upgrades: a bad Origin gets 403, a good one reaches the backend echo', async () => {
    const ws = (origin: string) =>
      h.inNs([
        'sh',
        '-c',
        `printf 'GET /chat HTTP/1.1\\r\\nHost: ${DOMAIN}\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\nOrigin: ${origin}\\r\\n\\r\\nhello-echo' | ` +
          `timeout 3 openssl s_client -quiet -connect ${inv.bastion.publicAddress}:443 -servername ${DOMAIN} -alpn http/1.1 2>/dev/null`,
      ]).output
    const bad = ws('https://evil.example')
    expect(bad).toMatch(/^HTTP\/1\.1 403/)
    const good = ws('https://app.example.net')
    expect(good).toMatch(/^HTTP\/1\.1 101 Switching Protocols/)
    expect(good).toMatch(/Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i)
    // The backend echoes the bytes sent after the upgrade.
    expect(good).toMatch(/hello-echo$/)
  }, 15_000)
})
