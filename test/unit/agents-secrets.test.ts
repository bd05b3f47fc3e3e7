/**
 * The agents' secrets and host keys (issue 13, items 9, 10 and 12b):
 * - the alert webhook URL (alerts.webhookEnv) lives only in a 600 secret file: never in a script,
 *   a plan diff, --json, anything sent to a host in a dry run, curl's argv or a log line;
 * - the SMTP user is validated and the password reaches curl's config escaped, byte for byte (the
 *   rendered shell function runs for real, with a fake curl that keeps its -K config, replayed by the
 *   real curl against a loopback server);
 * - the agents' known_hosts is the operator's pins of the web nodes, and the agents hold a pinned
 *   node to them.
 */
import {execFile, spawnSync} from 'node:child_process'
import {createHmac, randomBytes} from 'node:crypto'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import {ConfigError} from '../../src/lib/errors.js'
import {factScript} from '../../src/plan/facts.js'
import {readAlertSecrets} from '../../src/tasks/provision/prepare.js'
import {type AgentsContext, agentBastionFiles, agentKeyCommand, renderAgentKnownHosts, renderAgentsLib} from '../../src/roles/agents.js'
import {desiredState} from '../../src/roles/render.js'
import {context, EDGE_FLEET, fileAt, hostsByName, inventory, requireTool, tempDir} from './render-helpers.js'
import {AGENT_PATHS} from '../../src/host/paths.js'

const execFileP = promisify(execFile)
const dir = tempDir('infra-agents-secrets-')
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const USER = "o'brien+alerts@example.com"
const inv = inventory({
  ...EDGE_FLEET,
  alerts: {email: 'ops@example.com', webhookEnv: 'INFRA_TEST_WEBHOOK', smtp: {url: 'smtp://203.0.113.50:2525', user: USER, passwordEnv: 'INFRA_TEST_SMTP_PASSWORD'}},
})
const hosts = hostsByName(inv)

/** A token that marks the secret part of the webhook URL (Slack-like path). */
const TOKEN = `T0SECRET${randomBytes(6).toString('hex')}`
const HOOK = `https://hooks.example.com/services/T000/B000/${TOKEN}`
/** Everything curl's config syntax treats specially, and what a shell would. */
const PASSWORD = `pa"ss\\w0rd\\n $(id) \`id\` 'q' %s\t€ --url=file:///etc/shadow \\`

function sh(script: string, env: Record<string, string> = {}): {code: number; stdout: string; stderr: string} {
  const r = spawnSync('sh', ['-c', script], {encoding: 'utf8', env: {...process.env, ...env}, timeout: 20_000})
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
}

function sshKey(type: 'ed25519' | 'ecdsa'): string {
  const f = path.join(dir, `key-${randomBytes(4).toString('hex')}`)
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', f], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(r.stderr)
  const [t, b64] = readFileSync(`${f}.pub`, 'utf8').trim().split(' ')
  return `${t} ${b64}`
}

/** OpenSSH's hashed host name: |1|base64(salt)|base64(HMAC-SHA1(salt, name)). */
function hashed(name: string): string {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

/** A loopback HTTP server that records each request's raw target and Authorization header. */
async function recorder(): Promise<{port: number; seen: {url: string; auth?: string; body: string}[]; close: () => Promise<void>}> {
  const seen: {url: string; auth?: string; body: string}[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      seen.push({url: req.url ?? '', auth: req.headers.authorization, body})
      res.writeHead(204)
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {port: (server.address() as AddressInfo).port, seen, close: () => new Promise((resolve) => server.close(() => resolve()))}
}

// --- 9. The webhook URL is a secret ---------------------------------------------------------------

describe('alerts.webhookEnv: the URL only in a 600 file', () => {
  const ctx: AgentsContext = {...context(inv, {smtpPassword: PASSWORD}), alertWebhook: HOOK}

  it('renders the URL into the secret file only, never into a script or any other file of any host', () => {
    const files = agentBastionFiles(ctx)
    expect(fileAt(files, AGENT_PATHS.webhookSecret)).toMatchObject({content: HOOK, mode: 0o600, owner: 'root', group: 'root', secret: true})
    for (const h of Object.values(hosts)) {
      for (const f of desiredState(ctx, h).files.filter((x) => !x.secret)) {
        expect(f.content, `${h.name}:${f.path}`).not.toContain(TOKEN)
        expect(f.content, `${h.name}:${f.path}`).not.toContain('pa"ss')
      }
    }
    const lib = renderAgentsLib(ctx)
    expect(lib).toMatch(/^ALERT_WEBHOOK_FILE=\/etc\/infra\/alert-webhook$/m)
    expect(lib).not.toMatch(/^ALERT_WEBHOOK=/m)
    // No webhookEnv: no secret file, no webhook.
    const plain = inventory(EDGE_FLEET)
    expect(agentBastionFiles(context(plain)).map((f) => f.path)).not.toContain(AGENT_PATHS.webhookSecret)
    expect(renderAgentsLib(context(plain))).toContain("ALERT_WEBHOOK_FILE=''")
  })

  it('refuses alerts.webhook in the inventory (exit 2) without echoing the URL, and names the fix', async () => {
    const text = `domain: example.com\nbastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}\nweb:\n  nodes:\n    - {name: web1, address: 10.10.0.11}\nalerts:\n  webhook: ${HOOK}\n`
    const r = validateInventoryText(text, 'infra.yaml')
    expect(r.errors).toHaveLength(1)
    expect(r.errors[0]).toMatch(/^infra\.yaml:7:12 alerts\.webhook: a URL is not accepted here any more: a webhook URL is a secret/)
    expect(r.errors[0]).toContain('set alerts.webhookEnv: NAME')
    expect(r.errors[0]).not.toContain(TOKEN)
    const file = path.join(dir, 'old-webhook.yaml')
    writeFileSync(file, text)
    const err = await loadInventory(file).catch((error: unknown) => error)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    expect((err as Error).message).not.toContain(TOKEN)
    expect(validateInventoryText(text.replace(`webhook: ${HOOK}`, 'webhookEnv: INFRA_ALERT_WEBHOOK')).errors).toEqual([])
  })

  it('reads the URL and the SMTP password from the environment; unset, empty or malformed is a ConfigError naming the key and variable, never the value', () => {
    expect(readAlertSecrets(inv, {INFRA_TEST_WEBHOOK: HOOK, INFRA_TEST_SMTP_PASSWORD: PASSWORD})).toEqual({alertWebhook: HOOK, smtpPassword: PASSWORD})
    expect(readAlertSecrets(inventory(EDGE_FLEET), {})).toEqual({})
    const fails = (env: Record<string, string>, message: RegExp, secret?: string) => {
      let err: unknown
      try {
        readAlertSecrets(inv, env)
      } catch (error) {
        err = error
      }
      expect(err, JSON.stringify(env)).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).exitCode).toBe(2)
      expect((err as Error).message).toMatch(message)
      if (secret) expect(`${(err as Error).message} ${(err as ConfigError).hint}`).not.toContain(secret)
    }
    fails({INFRA_TEST_SMTP_PASSWORD: PASSWORD}, /^alerts\.webhookEnv: the environment variable INFRA_TEST_WEBHOOK is not set/)
    fails({INFRA_TEST_SMTP_PASSWORD: PASSWORD, INFRA_TEST_WEBHOOK: ''}, /^alerts\.webhookEnv: the environment variable INFRA_TEST_WEBHOOK is not set/)
    fails({INFRA_TEST_WEBHOOK: HOOK}, /^alerts\.smtp\.passwordEnv: the environment variable INFRA_TEST_SMTP_PASSWORD is not set/)
    fails({INFRA_TEST_SMTP_PASSWORD: PASSWORD, INFRA_TEST_WEBHOOK: `ftp://x.example/${TOKEN}`}, /^alerts\.webhookEnv: the value of INFRA_TEST_WEBHOOK is not an http:\/\/ or https:\/\/ URL/, TOKEN)
    fails({INFRA_TEST_SMTP_PASSWORD: PASSWORD, INFRA_TEST_WEBHOOK: `hooks.example.com/${TOKEN}`}, /is not an http:\/\/ or https:\/\/ URL/, TOKEN)
    fails({INFRA_TEST_SMTP_PASSWORD: PASSWORD, INFRA_TEST_WEBHOOK: `${HOOK}\n`}, /^alerts\.webhookEnv: the value of INFRA_TEST_WEBHOOK has a line break/, TOKEN)
    fails({INFRA_TEST_SMTP_PASSWORD: 'line1\nline2', INFRA_TEST_WEBHOOK: HOOK}, /^alerts\.smtp\.passwordEnv: the value of INFRA_TEST_SMTP_PASSWORD has a line break/, 'line1')
  })

  it('a dry run (plan, plan --json) through prepareHosts shows the secret files by path only and sends nothing secret to a host', async () => {
    const {prepareHosts} = await import('../../src/tasks/provision/prepare.js')
    const {provisionFleet} = await import('../../src/tasks/provision/hosts.js')
    const fleetDir = path.join(dir, 'fleet')
    mkdirSync(fleetDir, {recursive: true})
    writeFileSync(
      path.join(fleetDir, 'infra.yaml'),
      [
        'domain: example.com',
        'bastion: {name: edge, publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}',
        'web:',
        '  nodes:',
        '    - {name: web1, address: 10.10.0.11}',
        'alerts:',
        '  email: ops@example.com',
        '  webhookEnv: INFRA_TEST_WEBHOOK',
        `  smtp: {url: "smtp://203.0.113.50:2525", user: "${USER}", passwordEnv: INFRA_TEST_SMTP_PASSWORD}`,
        '',
      ].join('\n'),
    )
    const saved = {w: process.env.INFRA_TEST_WEBHOOK, p: process.env.INFRA_TEST_SMTP_PASSWORD}
    process.env.INFRA_TEST_WEBHOOK = HOOK
    process.env.INFRA_TEST_SMTP_PASSWORD = PASSWORD
    try {
      const loaded = await loadInventory(path.join(fleetDir, 'infra.yaml'))
      const prepared = await prepareHosts(loaded)
      const bastion = prepared.find((h) => h.spec.role === 'bastion')!
      expect(fileAt(bastion.desired.files, AGENT_PATHS.webhookSecret).content).toBe(HOOK)
      expect(fileAt(bastion.desired.files, AGENT_PATHS.smtpSecret).content).toBe(PASSWORD)
      const sent: string[] = []
      const fresh = '@@os\tdebian\t12\n@@hostname\tx\n@@time\t1700000000\n'
      const fleet = {
        async connect() {
          return {
            async exec(cmd: string, opts?: {stdin?: string | Buffer}) {
              sent.push(cmd, String(opts?.stdin ?? ''))
              if (cmd === agentKeyCommand(true)) return {code: 0, stdout: '', stderr: ''}
              return {code: 0, stdout: fresh, stderr: ''}
            },
          }
        },
        async connectFresh(): Promise<never> {
          throw new Error('not used')
        },
        async close() {},
      }
      const result = await provisionFleet(fleet, prepared, {dryRun: true})
      const json = JSON.stringify(result)
      const edge = result.hosts.find((h) => h.host === 'edge')!
      expect(edge.diff).toContain(`~ ${AGENT_PATHS.webhookSecret}: secret content created (not shown)`)
      expect(edge.diff).toContain(`~ ${AGENT_PATHS.smtpSecret}: secret content created (not shown)`)
      expect(json).toContain(AGENT_PATHS.webhookSecret)
      for (const [what, text] of [['plan --json', json], ['sent to hosts', sent.join('\n')], ['fact scripts', prepared.map((h) => factScript(h.desired)).join('\n')]] as const) {
        expect(text, what).not.toContain(TOKEN)
        expect(text, what).not.toContain('pa"ss')
      }
    } finally {
      for (const [k, v] of [['INFRA_TEST_WEBHOOK', saved.w], ['INFRA_TEST_SMTP_PASSWORD', saved.p]] as const) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
  }, 60_000)
})

// --- 9 + 10. The real alert function: curl reads its secrets from a config on stdin --------------------

describe('alert(): the secrets reach curl through -K - only, escaped, byte for byte', () => {
  const work = path.join(dir, 'alert')
  const bin = path.join(work, 'bin')
  const out = path.join(work, 'out')
  let server: Awaited<ReturnType<typeof recorder>>
  let hook: string

  beforeAll(async () => {
    mkdirSync(bin, {recursive: true})
    server = await recorder()
    // The webhook's URL on loopback, with what curl's config syntax and a shell treat specially.
    hook = `http://127.0.0.1:${server.port}/services/${TOKEN}/a"b\\c\\"d?sig=x%2Fy&q='$(id)'`
    writeFileSync(path.join(work, 'lib.sh'), renderAgentsLib({...context(inv), alertWebhook: hook}))
    writeFileSync(path.join(work, 'webhook'), hook) // as provision writes them: the value, no newline
    writeFileSync(path.join(work, 'password'), PASSWORD)
    // A fake curl: keeps its argv and its stdin (the -K - config) per call; a fake logger keeps the log lines.
    writeFileSync(
      path.join(bin, 'curl'),
      `#!/bin/sh\nkind=webhook\nfor a in "$@"; do [ "$a" = --mail-rcpt ] && kind=smtp; done\nprintf '%s\\n' "$@" > "$FAKE_OUT/$kind.argv"\ncat > "$FAKE_OUT/$kind.conf"\nexit "\${FAKE_CURL_RC:-0}"\n`,
      {mode: 0o755},
    )
    writeFileSync(path.join(bin, 'logger'), `#!/bin/sh\nprintf '%s\\n' "$*" >> "$FAKE_OUT/log"\n`, {mode: 0o755})
  })
  afterAll(async () => server?.close())

  function runAlert(rc = 0, detail = ''): {code: number; stderr: string; log: string; argv: Record<string, string>; conf: Record<string, string>} {
    rmSync(out, {recursive: true, force: true})
    mkdirSync(out, {recursive: true})
    const r = sh(
      `. "$W/lib.sh"; PATH="$W/bin:$PATH"; COUNTS_DIR="$W/counts"; ALERT_WEBHOOK_FILE="$W/webhook"; SMTP_SECRET="$W/password"; AGENT=test
       alert node-failed web2 "web node web2 is down" "parked web2" "the node" "$DETAIL"`,
      {W: work, FAKE_OUT: out, FAKE_CURL_RC: String(rc), DETAIL: detail},
    )
    const read = (f: string) => {
      try {
        return readFileSync(path.join(out, f), 'utf8')
      } catch {
        return ''
      }
    }
    return {code: r.code, stderr: r.stderr, log: read('log'), argv: {webhook: read('webhook.argv'), smtp: read('smtp.argv')}, conf: {webhook: read('webhook.conf'), smtp: read('smtp.conf')}}
  }

  it('gives curl the webhook URL as one escaped config line on stdin; the URL arrives exact, never on argv or in the log', async () => {
    requireTool('curl', 'curl')
    const r = runAlert()
    expect(r.code, r.stderr).toBe(0)
    expect(r.argv.webhook.split('\n')).toContain('-K')
    expect(r.conf.webhook.split('\n').filter(Boolean)).toHaveLength(1)
    expect(r.conf.webhook).toMatch(/^url = ".*"\n$/)
    for (const text of [r.argv.webhook, r.argv.smtp, r.log, r.stderr]) expect(text).not.toContain(TOKEN)
    expect(r.log).toContain('-t infra-alert -- webhook sent: web node web2 is down')
    // The real curl, given the same config, asks the loopback server for exactly the URL's target.
    writeFileSync(path.join(work, 'replay-webhook.conf'), r.conf.webhook)
    server.seen.length = 0
    await execFileP('curl', ['-K', path.join(work, 'replay-webhook.conf'), '-sS', '-m', '5', '-o', '/dev/null'])
    expect(server.seen.map((s) => s.url)).toEqual([hook.slice(hook.indexOf('/services/'))])
  })

  it('sends the node\'s own lines (a container\'s log: quotes, tabs, line breaks, escape codes) as valid JSON, line by line', () => {
    const detail = 'release=v2 state=exited health=failed restarts=3 exit=137\n  | panic: "db" unreachable\t(retry)\r\n  | \u001b[31mred\u001b[0m \\ done'
    const r = runAlert(0, detail)
    expect(r.code, r.stderr).toBe(0)
    const argv = r.argv.webhook.split('\n')
    const body = JSON.parse(argv[argv.indexOf('--data-binary') + 1]) as Record<string, string>
    expect(body).toMatchObject({kind: 'node-failed', node: 'web2', what: 'web node web2 is down'})
    expect(body.detail).toBe('release=v2 state=exited health=failed restarts=3 exit=137\n  | panic: "db" unreachable\t(retry)\r\n  | [31mred[0m \\ done')
  })

  it('gives curl the SMTP user and password as one escaped config line; they arrive byte for byte and inject nothing', async () => {
    requireTool('curl', 'curl')
    const r = runAlert()
    expect(r.argv.smtp.split('\n')).toContain('-K')
    expect(r.argv.smtp).toContain('--mail-rcpt\nops@example.com\n')
    expect(r.conf.smtp.split('\n').filter(Boolean)).toHaveLength(1)
    expect(r.conf.smtp).toMatch(/^user = ".*"\n$/)
    for (const text of [r.argv.webhook, r.argv.smtp, r.log]) {
      expect(text).not.toContain('pa"ss')
      expect(text).not.toContain('w0rd')
    }
    // The real curl parses the config: one request (no injected url or option), Basic auth of exactly user:password.
    writeFileSync(path.join(work, 'replay-smtp.conf'), r.conf.smtp)
    server.seen.length = 0
    await execFileP('curl', ['-K', path.join(work, 'replay-smtp.conf'), '-sS', '-m', '5', '-o', '/dev/null', `http://127.0.0.1:${server.port}/replay`])
    expect(server.seen).toHaveLength(1)
    expect(server.seen[0].url).toBe('/replay')
    const auth = Buffer.from(server.seen[0].auth!.replace(/^Basic /, ''), 'base64')
    expect(auth.equals(Buffer.from(`${USER}:${PASSWORD}`, 'utf8'))).toBe(true)
  })

  it('logs a failed webhook with curl\'s exit code, never the URL', () => {
    const r = runAlert(22)
    expect(r.log).toContain('-t infra-alert -- webhook failed (curl exit 22): web node web2 is down')
    expect(r.log).not.toContain(TOKEN)
    expect(r.log).not.toContain('127.0.0.1')
  })
})

// --- 10. The SMTP user is validated -------------------------------------------------------------------

describe('alerts.smtp.user', () => {
  const text = (user: string) =>
    `domain: example.com\nbastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}\nweb:\n  nodes:\n    - {name: web1, address: 10.10.0.11}\nalerts:\n  smtp:\n    url: smtp://mail.example.com:587\n    user: ${JSON.stringify(user)}\n`
  it.each(['a"b', 'a\\b', 'alerts:x', 'a b', 'a\nuser = "x:y"', 'a\tb', 'ünïcode', ''])('refuses %j, naming the key', (user) => {
    const errors = validateInventoryText(text(user), 'infra.yaml').errors
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^infra\.yaml:\d+:\d+ alerts\.smtp\.user: .* is not an SMTP user name \(printable ASCII without spaces, ", \\ or :/)
  })
  it.each(['alerts@example.com', "o'brien+alerts@example.com", 'AKIAIOSFODNN7EXAMPLE', 'user%tenant!x#y'])('accepts %j', (user) => {
    expect(validateInventoryText(text(user)).errors).toEqual([])
  })
})

// --- 12b. The agents' known_hosts: the operator's pins -------------------------------------------------

describe("the agents' known_hosts", () => {
  const k = {bastion: '', web1: '', web1e: '', web2: '', revoked: '', other: ''}
  let pins = ''
  beforeAll(() => {
    requireTool('ssh-keygen', 'openssh-client')
    Object.assign(k, {bastion: sshKey('ed25519'), web1: sshKey('ed25519'), web1e: sshKey('ecdsa'), web2: sshKey('ed25519'), revoked: sshKey('ed25519'), other: sshKey('ed25519')})
    pins = [
      '# the operator\'s pins',
      `edge,203.0.113.10 ${k.bastion}`,
      `web1,10.10.0.11 ${k.web1} pinned by infra`,
      `10.10.0.11 ${k.web1e}`,
      `${hashed('web2')} ${k.web2}`,
      `@revoked web2 ${k.revoked}`,
      `web2 ${k.revoked}`,
      `[web1]:2222,[10.10.0.11]:2222 ${k.other}`,
      `other,10.99.0.1 ${k.other}`,
      '',
    ].join('\n')
  })

  it('holds exactly the pinned keys of the web nodes at their private address, and says which node is not pinned yet', () => {
    const text = renderAgentKnownHosts({...context(inv), operatorKnownHosts: pins})
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'))
    expect(lines).toEqual([`10.10.0.11 ${k.web1}`, `10.10.0.11 ${k.web1e}`, `10.10.0.12 ${k.web2}`])
    expect(text).toMatch(/^# web3 10\.10\.0\.13: not pinned yet/m)
    expect(fileAt(agentBastionFiles(context(inv)), AGENT_PATHS.knownHosts)).toMatchObject({mode: 0o644, owner: 'root'})
    // On another SSH port: [address]:port, and only the pins for that port.
    const on2222 = inventory({...EDGE_FLEET, ssh: {port: 2222}})
    const other = renderAgentKnownHosts({...context(on2222), operatorKnownHosts: pins}).split('\n').filter((l) => l && !l.startsWith('#'))
    expect(other).toEqual([`[10.10.0.11]:2222 ${k.other}`])
    // No pins file yet (a first provision): every node is "not pinned yet".
    expect(renderAgentKnownHosts(context(inv)).split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([])
    // OpenSSH reads it.
    const f = path.join(dir, 'agents_known_hosts')
    writeFileSync(f, text)
    expect(spawnSync('ssh-keygen', ['-F', '10.10.0.12', '-f', f], {encoding: 'utf8'}).stdout).toContain(k.web2.split(' ')[1])
    expect(spawnSync('ssh-keygen', ['-F', '10.10.0.13', '-f', f]).status).not.toBe(0)
  })

  it('agent(): a pinned node is held to its keys (StrictHostKeyChecking yes), a node not pinned yet is accepted once (accept-new)', () => {
    const work = path.join(dir, 'hostkeys')
    mkdirSync(path.join(work, 'bin'), {recursive: true})
    writeFileSync(path.join(work, 'lib.sh'), renderAgentsLib(context(inv)))
    writeFileSync(path.join(work, 'known_hosts'), renderAgentKnownHosts({...context(inv), operatorKnownHosts: pins}))
    writeFileSync(path.join(work, 'bin', 'ssh'), `#!/bin/sh\nprintf '%s\\n' "$@"\n`, {mode: 0o755})
    const argv = (node: string) => {
      const r = sh(`. "$W/lib.sh"; PATH="$W/bin:$PATH"; KNOWN_HOSTS="$W/known_hosts"; agent ${node} status`, {W: work})
      expect(r.code, r.stderr).toBe(0)
      return r.stdout.split('\n')
    }
    for (const node of ['web1', 'web2']) {
      const a = argv(node)
      expect(a, node).toContain('StrictHostKeyChecking=yes')
      expect(a).toContain(`UserKnownHostsFile=${path.join(work, 'known_hosts')}`)
      expect(a).toContain('GlobalKnownHostsFile=/dev/null')
    }
    expect(argv('web3')).toContain('StrictHostKeyChecking=accept-new')
    expect(argv('web1').slice(-3)).toEqual(['root@10.10.0.11', 'status', ''])
  })
})
