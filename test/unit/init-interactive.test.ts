import {type ChildProcessWithoutNullStreams, execFileSync, spawn} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadInventory} from '../../src/inventory/load.js'
import {TSX, writeInitRunner} from './command-helpers.js'
import {shq} from '../../src/host/quote.js'

/**
 * The wizard answered by a "person": `infra init` runs under a real pseudo-terminal (util-linux
 * `script`), and the test types answers when each question appears on the screen.
 */

const ENTER = '\r'
const DOWN = '\u001B[B'
const KILL_LINE = '\u0015' // Ctrl-U
const CTRL_C = '\u0003'

let tmp: string
let runner: string
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'infra-init-tty-'))
  runner = writeInitRunner(tmp)
})
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

// eslint-disable-next-line no-control-regex -- terminal escape sequences are what this strips
const ANSI = /\u001B\[[\d;?]*[A-Za-z]|\u001B[()][AB012]|\u001B[=>78]|\r/g

/** A tiny expect(1): run a command on a pseudo-terminal, wait for text, type answers. */
class Terminal {
  private readonly proc: ChildProcessWithoutNullStreams
  private raw = ''
  private seen = 0
  private readonly exited: Promise<number>

  constructor(args: string[], cwd: string) {
    const env: NodeJS.ProcessEnv = {...process.env, TERM: 'xterm-256color', COLUMNS: '200', LINES: '50'}
    delete env.CI
    delete env.NODE_ENV
    for (const k of Object.keys(env)) if (k.startsWith('INFRA_')) delete env[k]
    const cmd = ['stty cols 200 rows 50;', 'exec', shq(process.execPath), '--import', shq(TSX), shq(runner), ...args.map((a) => shq(a))].join(' ')
    this.proc = spawn('script', ['-qfec', cmd, '/dev/null'], {cwd, env})
    this.proc.stdout.on('data', (d: Buffer) => (this.raw += d.toString('utf8')))
    this.proc.stderr.on('data', (d: Buffer) => (this.raw += d.toString('utf8')))
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => resolve(code ?? -1)))
  }

  /** The screen output so far, without escape sequences. */
  get text(): string {
    return this.raw.replace(ANSI, '')
  }

  /** Wait until `re` appears in output not yet consumed by an earlier wait. */
  async expect(re: RegExp, timeoutMs = 15_000): Promise<string> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const rest = this.text.slice(this.seen)
      const m = re.exec(rest)
      if (m) {
        this.seen += m.index + m[0].length
        return m[0]
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${re}; screen after last match:\n${rest}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  /** Answer: type text (with a short pause so the prompt is listening). */
  async type(s: string): Promise<void> {
    await new Promise((r) => setTimeout(r, 60))
    this.proc.stdin.write(s)
  }

  async answer(question: RegExp, keys: string): Promise<void> {
    await this.expect(question)
    await this.type(keys)
  }

  async exitCode(timeoutMs = 20_000): Promise<number> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<number>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not exit; screen:\n${this.text}`)), timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
      this.proc.stdin.end()
    }
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL')
  }
}

describe('infra init in a terminal', {timeout: 90_000}, () => {
  it('asks every question, re-asks after a bad answer, shows the file and writes it on confirmation', async () => {
    const dir = path.join(tmp, 'wizard')
    mkdirSync(dir)
    const t = new Terminal([], dir)
    try {
      await t.answer(/Domain the fleet serves/, `exa mple${ENTER}`)
      await t.expect(/"exa mple" is not a domain name/)
      await t.type(`${KILL_LINE}Example.com${ENTER}`)
      await t.answer(/Other names redirected to example\.com/, `www.example.com${ENTER}`)
      await t.answer(/SSH user on every host/, ENTER) // default root
      await t.answer(/Operator SSH private key \(made if missing\)/, ENTER) // default .infra/id_ed25519
      await t.answer(/Bastion public address/, `203.0.113.10${ENTER}`)
      await t.answer(/Bastion private address/, `10.0.0.1${ENTER}`)
      await t.answer(/Web node 1: name/, ENTER) // web1
      await t.answer(/Web node 1: private address/, ENTER) // suggested 10.0.0.11
      await t.answer(/Add another web node\?/, ENTER) // yes: a second node is the default
      await t.answer(/Web node 2: name/, `api${ENTER}`)
      await t.answer(/Web node 2: private address/, `10.0.1.5${ENTER}`)
      await t.expect(/"10\.0\.1\.5" is outside the private network 10\.0\.0\.0\/24/)
      await t.type(`${KILL_LINE}10.0.0.12${ENTER}`)
      await t.answer(/Web node 2: standby/, `y${ENTER}`)
      await t.answer(/Add another web node\?/, ENTER) // no
      await t.answer(/TLS certificate/, ENTER) // self-signed
      // The file is shown before anything is written.
      await t.expect(/privateKey: \.infra\/id_ed25519[\s\S]+- name: api\s+address: 10\.0\.0\.12\s+standby: true/)
      expect(existsSync(path.join(dir, 'infra.yaml'))).toBe(false)
      await t.answer(/Write infra\.yaml, \.infra\/id_ed25519 \(\+ \.pub\), tls\/example\.com\.crt \(\+ \.key\)\?/, ENTER)
      await t.expect(/Next: infra provision --dry-run/)
      expect(await t.exitCode()).toBe(0)
    } finally {
      t.kill()
    }

    const inv = (await loadInventory(path.join(dir, 'infra.yaml'))).inventory
    expect(inv.domain).toBe('example.com')
    expect(inv.aliases).toEqual(['www.example.com'])
    expect(inv.bastion).toMatchObject({publicAddress: '203.0.113.10', privateAddress: '10.0.0.1'})
    expect(inv.web.nodes).toEqual([
      {name: 'web1', address: '10.0.0.11', standby: false},
      {name: 'api', address: '10.0.0.12', standby: true},
    ])
    expect(statSync(path.join(dir, '.infra/id_ed25519')).mode & 0o777).toBe(0o600)
    expect(execFileSync('ssh-keygen', ['-lf', path.join(dir, '.infra/id_ed25519')], {encoding: 'utf8'})).toMatch(/\(ED25519\)/)
    expect(execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', path.join(dir, 'tls/example.com.crt')], {encoding: 'utf8'})).toMatch(
      /DNS:example\.com, DNS:www\.example\.com/,
    )
  })

  it('asks only what the flags left out, checks the certificate files, and writes nothing when not confirmed', async () => {
    const dir = path.join(tmp, 'files')
    mkdirSync(path.join(dir, 'certs'), {recursive: true})
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=example.com', '-addext', 'subjectAltName=DNS:example.com', '-keyout', 'certs/privkey.pem', '-out', 'certs/fullchain.pem', '-days', '90'],
      {cwd: dir, stdio: 'ignore'},
    )
    chmodSync(path.join(dir, 'certs/privkey.pem'), 0o600)
    const before = readdirSync(dir).sort()

    const t = new Terminal(['--domain', 'example.com', '--bastion-public', '203.0.113.10', '--bastion-private', '10.0.0.1', '--web', 'web1=10.0.0.11'], dir)
    try {
      await t.answer(/Other names redirected to example\.com/, ENTER) // none
      await t.answer(/SSH user on every host/, `deploy${ENTER}`)
      await t.answer(/Operator SSH private key/, `keys/operator${ENTER}`)
      await t.answer(/TLS certificate/, `${DOWN}${ENTER}`) // my own files
      await t.answer(/Certificate file/, `nope.pem${ENTER}`)
      await t.expect(/Cannot read nope\.pem/)
      await t.type(`${KILL_LINE}certs/fullchain.pem${ENTER}`)
      await t.answer(/Private key file of that certificate/, `certs/fullchain.pem${ENTER}`)
      await t.expect(/not a PEM private key/)
      await t.type(`${KILL_LINE}certs/privkey.pem${ENTER}`)
      await t.expect(/user: deploy[\s\S]+privateKey: keys\/operator[\s\S]+mode: files\s+cert: certs\/fullchain\.pem\s+key: certs\/privkey\.pem/)
      await t.answer(/Write infra\.yaml, keys\/operator \(\+ \.pub\)\?/, `n${ENTER}`)
      await t.expect(/Aborted: nothing was written/)
      expect(await t.exitCode()).toBe(1)
    } finally {
      t.kill()
    }
    expect(readdirSync(dir).sort()).toEqual(before)
  })

  it('stops on Ctrl-C with nothing written, and refuses an existing inventory before asking anything', async () => {
    const dir = path.join(tmp, 'cancel')
    mkdirSync(dir)
    const t = new Terminal([], dir)
    try {
      await t.answer(/Domain the fleet serves/, CTRL_C)
      await t.expect(/Aborted: nothing was written/)
      expect(await t.exitCode()).toBe(1)
    } finally {
      t.kill()
    }
    expect(readdirSync(dir)).toEqual([])

    writeFileSync(path.join(dir, 'infra.yaml'), 'domain: example.com\n')
    const t2 = new Terminal([], dir)
    try {
      await t2.expect(/infra\.yaml already exists/)
      expect(await t2.exitCode()).toBe(2)
      expect(t2.text).not.toMatch(/Domain the fleet serves/)
    } finally {
      t2.kill()
    }
    expect(readFileSync(path.join(dir, 'infra.yaml'), 'utf8')).toBe('domain: example.com\n')
  })
})
