/**
 * CORS at the edge, live in a throwaway namespace (test/unit/edge-harness.ts): preflights answered
 * by HAProxy for allowed origins and refused for others, the allowed origin echoed (never `*`)
 * with Vary: Origin, more than one Origin value refused, and WebSocket upgrades checked on their
 * Origin (by cors.origins, or by cors.websocketOrigins with CORS itself off).
 */
import {writeFileSync} from 'node:fs'

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

/**
 * A WebSocket upgrade over HTTP/1.1 (TLS) with these Origin values (none: no Origin header), then
 * a few bytes the backend echoes; the raw answer.
 */
const upgrade = (harness: Harness, origins: string[] = []) =>
  harness.inNs([
    'sh',
    '-c',
    `printf 'GET /chat HTTP/1.1\\r\\nHost: ${DOMAIN}\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n${origins.map((o) => `Origin: ${o}\\r\\n`).join('')}\\r\\nhello-echo' | ` +
      `timeout 3 openssl s_client -quiet -connect ${inv.bastion.publicAddress}:443 -servername ${DOMAIN} -alpn http/1.1 2>/dev/null`,
  ]).output

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

  it('refuses a request or a preflight with more than one Origin value (two headers or comma-joined), even when each is allowed', async () => {
    const two = [
      ['-H', 'Origin: https://evil.example', '-H', 'Origin: https://app.example.net'],
      ['-H', 'Origin: https://evil.example, https://app.example.net'],
      ['-H', 'Origin: https://app.example.net', '-H', 'Origin: https://app.example.net'],
      ['-H', 'Origin: https://app.example.net,https://a.example.org'],
    ]
    for (const headers of two) {
      for (const http of [[], ['--http1.1']]) {
        const r = h.request(CLIENT, URL, [...headers, ...http])
        expect(r.status, `${headers.join(' ')}\n${r.raw}`).toBe(403)
        expect(r.headers['access-control-allow-origin']).toBeUndefined()
        expect(r.headers['x-served-by']).toBeUndefined()
        const pre = h.request(CLIENT, URL, ['-X', 'OPTIONS', ...headers, '-H', 'Access-Control-Request-Method: PUT', ...http])
        expect(pre.status, headers.join(' ')).toBe(403)
        expect(pre.headers['access-control-allow-origin']).toBeUndefined()
      }
    }
    expect(upgrade(h, ['https://evil.example', 'https://app.example.net'])).toMatch(/^HTTP\/1\.1 403/)
    // One allowed value still passes.
    expect(h.request(CLIENT, URL, ['-H', 'Origin: https://app.example.net']).status).toBe(200)
    await until('the log line', () => (/ 403 .*"GET \S*\/api\/things HTTP\/[\d.]+" edge=cors-origin$/m.test(h.log()) ? true : undefined))
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

/** An HTTP/2 WebSocket handshake (extended CONNECT) with an optional Origin: prints the status. */
const H2_WEBSOCKET = `
import http2 from 'node:http2'
const [addr, host, origin] = process.argv.slice(2)
const c = http2.connect('https://' + addr, {rejectUnauthorized: false, servername: host})
const done = (s) => { console.log(s); process.exit(0) }
c.on('error', (e) => done('error ' + e.message))
c.on('remoteSettings', (settings) => {
  if (!settings.enableConnectProtocol) return done('no extended CONNECT')
  const headers = {':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'https', ':authority': host, 'sec-websocket-version': '13'}
  if (origin) headers.origin = origin
  const req = c.request(headers)
  req.on('response', (h) => done(String(h[':status'])))
  req.on('error', (e) => done('error ' + e.message))
})
setTimeout(() => done('timeout'), 3000)
`

describe('WebSocket origins without CORS (cors.websocketOrigins)', () => {
  let ws: Harness
  beforeAll(async () => {
    const wsInv = inventory({
      domain: DOMAIN,
      bastion: {publicAddress: '198.51.100.10', privateAddress: '10.85.0.1'},
      web: {healthCheck: {interval: '1s'}, nodes: [{name: 'web1', address: '10.85.0.11'}]},
      cors: {websocketOrigins: ['https://chat.example.net', 'https://*.example.org']},
    })
    ws = await startEdge('corsws', wsInv, [CLIENT])
  }, 30_000)
  afterAll(() => ws?.stop())

  it('refuses an upgrade without Origin, or from an origin not listed, with 403, and logs it', async () => {
    for (const origins of [[], ['https://evil.example'], ['https://example.org'], ['null'], ['https://chat.example.net', 'https://evil.example'], ['https://chat.example.net, https://chat.example.net']]) {
      const r = upgrade(ws, origins)
      expect(r, origins.join(' ')).toMatch(/^HTTP\/1\.1 403/)
      expect(r).not.toContain('hello-echo')
    }
    const log = await until('the log line', () => (/edge=ws-origin/.test(ws.log()) ? ws.log() : undefined))
    expect(log).toMatch(/ 403 .*"GET \/chat HTTP\/1\.1" edge=ws-origin$/m)
  })

  it('lets an upgrade from a listed origin (or the site itself) through to the backend echo', () => {
    for (const origin of ['https://chat.example.net', 'HTTPS://Chat.Example.NET', 'https://a.b.example.org', 'https://example.com']) {
      const r = upgrade(ws, [origin])
      expect(r, origin).toMatch(/^HTTP\/1\.1 101 Switching Protocols/)
      expect(r).toMatch(/hello-echo$/)
    }
  }, 30_000)

  it('checks WebSocket upgrades over HTTP/2 (extended CONNECT, RFC 8441) the same way', () => {
    // Browsers open a WebSocket over HTTP/2 when the server offers it (HAProxy does); HAProxy turns
    // it into an "Upgrade: websocket" request, which the rules see.
    writeFileSync(`${ws.dir}/h2ws.mjs`, H2_WEBSOCKET)
    const h2 = (origin: string) => ws.inNs([process.execPath, `${ws.dir}/h2ws.mjs`, '198.51.100.10', DOMAIN, origin]).output.trim()
    expect(h2('')).toBe('403')
    expect(h2('https://evil.example')).toBe('403')
    expect(h2('https://chat.example.net')).toBe('200')
  })

  it('leaves other requests alone: CORS stays off (no Origin check, no Access-Control-* headers, preflights go to the web nodes)', () => {
    const r = ws.request(CLIENT, URL, ['-H', 'Origin: https://evil.example'])
    expect(r.status).toBe(200)
    expect(r.headers['x-served-by']).toBe('backend')
    expect(r.headers['access-control-allow-origin']).toBeUndefined()
    expect(r.headers.vary).toBeUndefined()
    const pre = ws.request(CLIENT, URL, ['-X', 'OPTIONS', '-H', 'Origin: https://chat.example.net', '-H', 'Access-Control-Request-Method: PUT'])
    expect(pre.status).toBe(200)
    expect(pre.headers['x-served-by']).toBe('backend')
  })
})
