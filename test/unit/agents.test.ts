/**
 * The agents (src/roles/agents.ts): the rendered scripts pass `sh -n` and shellcheck, the node
 * agent refuses anything but its verbs, and the scaler's policy (the real awk file) decides
 * right on a table of synthetic sample histories.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {agentAuthorizedKey, agentBastionFiles, agentKeyCommand, agentWebFiles, parseAgentPublicKey, renderPolicy} from '../../src/roles/agents.js'
import {sha256} from '../../src/host/hash.js'
import {desiredState, renderSshd} from '../../src/roles/render.js'
import {context, EDGE_FLEET, fileAt, hostsByName, inventory, requireTool, runValidate, tempDir} from './render-helpers.js'
import {AGENT_PATHS} from '../../src/host/paths.js'

const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPq0mGqG7ynDzCjCk4bDbMJq9xQ2m7u0dD2b3c4e5f6g infra-agents@bastion'

const inv = inventory({
  ...EDGE_FLEET,
  healing: {every: '10s', attempts: 2},
  scaling: {cpuPercent: 75, sustainFor: '20s', recheckEvery: '30s'},
  alerts: {email: 'ops@example.com', webhookEnv: 'INFRA_TEST_WEBHOOK', smtp: {url: 'smtp://203.0.113.50:2525', user: 'infra'}},
})
const hosts = hostsByName(inv)
const dir = tempDir('infra-agents-')
afterAll(() => rmSync(dir, {recursive: true, force: true}))

function sh(script: string, env: Record<string, string> = {}): {code: number; stdout: string; stderr: string} {
  const r = spawnSync('sh', ['-c', script], {encoding: 'utf8', env: {...process.env, ...env}, timeout: 20_000})
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
}

describe('rendered agent files', () => {
  const ctx = {...context(inv, {agentPublicKey: PUB, smtpPassword: 'hunter2'}), alertWebhook: 'http://203.0.113.50:8080/hook'}
  const bastionFiles = agentBastionFiles(ctx)
  const webFiles = agentWebFiles(ctx, hosts.web1)
  const scripts = [...bastionFiles, ...webFiles].filter((f) => f.validate === 'sh -n {}')

  it('installs the scripts, policy, cron file and SMTP secret on the bastion, and the node agent and key on web nodes', () => {
    expect(bastionFiles.map((f) => f.path).sort()).toEqual(
      [AGENT_PATHS.lib, AGENT_PATHS.policy, AGENT_PATHS.healthcheck, AGENT_PATHS.scaler, AGENT_PATHS.cron, AGENT_PATHS.knownHosts, AGENT_PATHS.smtpSecret, AGENT_PATHS.webhookSecret].sort(),
    )
    expect(fileAt(bastionFiles, AGENT_PATHS.smtpSecret)).toMatchObject({secret: true, mode: 0o600})
    expect(fileAt(bastionFiles, AGENT_PATHS.webhookSecret)).toMatchObject({secret: true, mode: 0o600, owner: 'root', content: 'http://203.0.113.50:8080/hook'})
    expect(webFiles.map((f) => f.path)).toEqual([AGENT_PATHS.nodeAgent, `${AGENT_PATHS.agentKeysDir}/root`])
    // Without the bastion's key (a dry run before the first provision) the key file is left alone.
    expect(agentWebFiles(context(inv), hosts.web1).map((f) => f.path)).toEqual([AGENT_PATHS.nodeAgent])
    // Part of the roles' desired state.
    expect(desiredState(ctx, hosts.edge).files.map((f) => f.path)).toContain(AGENT_PATHS.cron)
    expect(desiredState(ctx, hosts.edge).services.map((s) => s.name)).toContain('cron')
    expect(desiredState(ctx, hosts.web2).files.map((f) => f.path)).toContain(`${AGENT_PATHS.agentKeysDir}/root`)
  })

  it.each(scripts.map((f) => [f.path, f] as const))('%s passes sh -n (its own validate command)', (_p, f) => {
    expect(runValidate(f, path.join(dir, 'stage')).code).toBe(0)
    // And a broken copy does not: the check can fail.
    expect(runValidate(f, path.join(dir, 'stage'), `${f.content}\nif then\n`).code).not.toBe(0)
  })

  it('passes shellcheck', () => {
    requireTool('shellcheck', 'shellcheck')
    const out = path.join(dir, 'sc')
    mkdirSync(out, {recursive: true})
    const names = scripts.map((f) => {
      const p = path.join(out, path.basename(f.path))
      writeFileSync(p, f.content)
      return p
    })
    const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-e', 'SC1090,SC1091', ...names], {encoding: 'utf8'})
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })

  it('renders the inventory into the shared settings, shell-quoted', () => {
    const lib = fileAt(bastionFiles, AGENT_PATHS.lib).content
    writeFileSync(path.join(dir, 'lib.sh'), lib)
    const r2 = sh(`. ${JSON.stringify(path.join(dir, 'lib.sh'))}; printf '%s|' "$HEAL_EVERY" "$HEAL_ATTEMPTS" "$CPU_PERCENT" "$SUSTAIN" "$RECHECK" "$SCALE_MIN" "$SCALE_MAX" "$MARGIN" "$ALERT_WEBHOOK_FILE" "$SMTP_URL"; node_field web3 2; node_field web3 3`)
    expect(r2.stdout).toBe('10|2|75|20|30|1|3|20|/etc/infra/alert-webhook|smtp://203.0.113.50:2525|10.10.0.13\n1\n')
    // The SMTP password and the webhook URL are never in the scripts, only in the secret files.
    for (const f of bastionFiles.filter((x) => !x.secret)) expect(f.content).not.toContain('hunter2')
    for (const f of bastionFiles.filter((x) => !x.secret)) expect(f.content).not.toContain('203.0.113.50:8080')
  })

  it('runs both agents from one cron file every minute', () => {
    const cron = fileAt(bastionFiles, AGENT_PATHS.cron).content
    expect(cron).toMatch(/^\* \* \* \* \* root \/usr\/local\/sbin\/infra-healthcheck run /m)
    expect(cron).toMatch(/^\* \* \* \* \* root \/usr\/local\/sbin\/infra-scaler run /m)
  })
})

describe('the restricted key', () => {
  it('authorizes only the node agent, only from the bastion', () => {
    expect(agentAuthorizedKey(context(inv), PUB)).toBe(
      `command="/usr/local/sbin/infra-node-agent",restrict,from="10.10.0.1" ${PUB.split(' ').slice(0, 2).join(' ')} infra-agents@edge`,
    )
  })

  it('reads the public key from the bastion fact, ignoring noise', () => {
    expect(parseAgentPublicKey(`\n${PUB}\n`)).toBe(PUB)
    expect(parseAgentPublicKey('cat: /var/lib/infra/agent/id_ed25519.pub: No such file\n')).toBeUndefined()
    expect(parseAgentPublicKey('')).toBeUndefined()
  })

  it('is created once on the bastion; the dry run only reads it', () => {
    expect(agentKeyCommand(false)).toContain(`[ -s ${AGENT_PATHS.key} ] || ssh-keygen -q -t ed25519`)
    expect(agentKeyCommand(true)).not.toContain('ssh-keygen')
  })

  it('web nodes read it from a second AuthorizedKeysFile; the operator keeps ~/.ssh/authorized_keys', () => {
    const ctx = context(inv)
    expect(renderSshd(ctx, hosts.web1)).toMatch(/^AuthorizedKeysFile \.ssh\/authorized_keys \/etc\/ssh\/infra_agent_keys\/%u$/m)
    expect(renderSshd(ctx, hosts.edge)).not.toMatch(/AuthorizedKeysFile/)
  })

  describe('the node agent (forced command)', () => {
    const agent = path.join(dir, 'infra-node-agent')
    writeFileSync(agent, fileAt(agentWebFiles(context(inv), hosts.web1), AGENT_PATHS.nodeAgent).content, {mode: 0o755})
    it.each(['id', 'cat /etc/shadow', 'start; id', 'restart nginx', 'sample && id', '', 'status\nid'])('refuses %j', (cmd) => {
      const r = sh(agent, {SSH_ORIGINAL_COMMAND: cmd, SSH_CLIENT: '10.10.0.1 5555 22'})
      expect(r.code).toBe(126)
      expect(r.stderr).toContain('refused')
      expect(r.stdout).toBe('')
    })
    it('samples CPU and memory as one parseable line', () => {
      const r = sh(agent, {SSH_ORIGINAL_COMMAND: 'sample'})
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^cpu=\d{1,3} mem=\d{1,3} ncpu=\d+ source=(cgroup|cgroup2|procstat)\n$/)
    })
  })
})

// --- The scaler's policy: the real awk file, synthetic histories -----------------------------------

interface Case {
  name: string
  /** CPU % per sample, oldest first, one every `step` seconds ending at `now`. */
  samples: number[]
  active: number
  spares?: number
  floor?: number
  min?: number
  max?: number
  /** Seconds since the last scaling change (undefined: none). */
  lastAgo?: number
  /** Active count recorded with the samples (default: `active`). */
  sampledActive?: number
  expect: 'up' | 'down' | 'hold'
  reason?: RegExp
  /** Seconds between samples (default 60, the policy's step). */
  spacing?: number
  /** The window (default 300 s) and the policy's sampling step (default 60 s). */
  sustain?: number
  step?: number
}

const NOW = 100_000
const policyFile = path.join(dir, 'policy.awk')
writeFileSync(policyFile, renderPolicy(context(inv)))

/** cpu 80, sustain 300 s, recheck 900 s, margin 20, one sample a minute. */
function decide(c: Case): string {
  const step = c.step ?? 60
  const spacing = c.spacing ?? step
  const hist = c.samples.map((cpu, i) => `${NOW - (c.samples.length - 1 - i) * spacing} ${c.sampledActive ?? c.active} ${cpu}`).join('\n')
  const file = path.join(dir, `hist-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, hist ? `${hist}\n` : '')
  const vars = {
    now: NOW, cpu: 80, sustain: c.sustain ?? 300, recheck: 900, margin: 20, step,
    min: c.min ?? 1, max: c.max ?? 3, active: c.active, spares: c.spares ?? 1, floor: c.floor ?? 1,
    last: c.lastAgo === undefined ? 0 : NOW - c.lastAgo,
  }
  const argv = [...Object.entries(vars).flatMap(([k, v]) => ['-v', `${k}=${v}`]), '-f', policyFile, file]
  const r = spawnSync('awk', argv, {encoding: 'utf8'})
  expect(r.stderr).toBe('')
  return r.stdout.trim()
}

const CASES: Case[] = [
  {name: 'exactly 80 % for the whole window scales out', samples: [80, 80, 80, 80, 80, 80], active: 1, expect: 'up', reason: /80% >= 80% for 300s/},
  {name: '79 % for the whole window holds', samples: [79, 79, 79, 79, 79, 79], active: 1, expect: 'hold'},
  {name: 'a dip inside the window holds', samples: [95, 95, 60, 95, 95, 95], active: 1, expect: 'hold'},
  {name: 'a dip before the window does not count', samples: [10, 90, 90, 90, 90, 90, 90], active: 1, expect: 'up'},
  {name: 'busy for less than the window holds', samples: [90, 90], active: 1, expect: 'hold', reason: /the window is 300s/},
  {name: 'max reached: never one more', samples: [99, 99, 99, 99, 99, 99], active: 3, max: 3, expect: 'hold', reason: /scaling\.max/},
  {name: 'a failed node is no spare: nothing to start', samples: [99, 99, 99, 99, 99, 99], active: 2, spares: 0, expect: 'hold', reason: /no standby/},
  {name: 'min reached: idle stays', samples: [0, 0, 0, 0, 0, 0], active: 1, floor: 1, expect: 'hold'},
  {name: 'below min: a node is started at once', samples: [], active: 0, min: 1, expect: 'up', reason: /scaling\.min/},
  {name: 'above max: one node goes', samples: [10], active: 4, max: 3, expect: 'down', reason: /scaling\.max/},
  {name: 'scale in when the load fits on one node fewer with the margin', samples: [25, 25, 25, 25, 25, 25], active: 2, expect: 'down', reason: /below 60%/},
  {name: 'no scale-in when one node fewer would be at the margin (30 % on 2 → 60 %)', samples: [30, 30, 30, 30, 30, 30], active: 2, expect: 'hold'},
  {name: 'no scale-in below the inventory floor', samples: [0, 0, 0, 0, 0, 0], active: 2, floor: 2, expect: 'hold'},
  {name: 'no decision before recheckEvery after a change', samples: [99, 99, 99, 99, 99, 99], active: 2, lastAgo: 600, expect: 'hold', reason: /recheckEvery/},
  {name: 'a decision again once recheckEvery has passed', samples: [99, 99, 99, 99, 99, 99], active: 2, lastAgo: 901, expect: 'up'},
  {name: 'short window, samples less regular than the step: observed long enough', samples: [90, 90, 90, 90], spacing: 7, sustain: 20, step: 5, active: 1, expect: 'up'},
  {name: 'short window: observed for 14 s of 20 s holds', samples: [90, 90, 90], spacing: 7, sustain: 20, step: 5, active: 1, expect: 'hold', reason: /over 14s only/},
  {name: 'samples before the last change do not count', samples: [90, 90, 90, 90, 90, 90], active: 1, lastAgo: 1000, expect: 'up'},
  {name: 'samples taken with another number of active nodes are ignored', samples: [99, 99, 99, 99, 99, 99], active: 2, sampledActive: 1, expect: 'hold', reason: /no samples/},
]

describe('scaler policy (policy.awk)', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const out = decide(c)
    expect(out.split(' ')[0], out).toBe(c.expect)
    if (c.reason) expect(out).toMatch(c.reason)
  })
})

describe('provision: the bastion fact hook', () => {
  it('runs the key command on the bastion and re-renders the web nodes with its public key', async () => {
    const {applyBastionFact} = await import('../../src/tasks/provision/hosts.js')
    const {agentKeyCommand: keyCmd} = await import('../../src/roles/agents.js')
    const ctx = context(inv)
    const prepared = Object.values(hosts).map((spec) => ({
      spec,
      desired: desiredState(ctx, spec),
      ...(spec.role === 'bastion'
        ? {bastionFact: keyCmd}
        : {withBastionFact: (out: string) => desiredState({...ctx, agentPublicKey: parseAgentPublicKey(out)}, spec)}),
    }))
    const ran: string[] = []
    const fleet = {
      async connect(name: string) {
        return {
          async exec(cmd: string) {
            ran.push(`${name}: ${cmd}`)
            return {code: 0, stdout: `${PUB}\n`, stderr: ''}
          },
        }
      },
      async connectFresh(): Promise<never> {
        throw new Error('not used')
      },
      async close() {},
    }
    const webs = prepared.filter((h) => h.spec.role === 'web')
    const out = await applyBastionFact(fleet, prepared, webs, false)
    expect(ran).toEqual([`edge: ${agentKeyCommand(false)}`])
    for (const h of out) expect(h.desired.files.find((f) => f.path === `${AGENT_PATHS.agentKeysDir}/root`)?.content).toContain(PUB.split(' ')[1])
    // A dry run only reads; a failing read leaves the web nodes as they were.
    ran.length = 0
    const failing = {...fleet, connect: async () => ({exec: async (cmd: string) => (ran.push(cmd), {code: 1, stdout: '', stderr: 'x'})})}
    const same = await applyBastionFact(failing, prepared, webs, true)
    expect(ran).toEqual([agentKeyCommand(true)])
    expect(same).toBe(webs)
  })
})

describe('provision: a no-change re-run', () => {
  /** What a host that already has `desired` reports (the fact script's output format). */
  function factsOutput(desired: ReturnType<typeof desiredState>): string {
    const lines = ['@@os\tdebian\t12', '@@hostname\tx', '@@time\t1700000000', '@@provisioned']
    for (const p of desired.packages) lines.push(`@@pkg\t${p}\tinstalled`)
    for (const f of desired.files) {
      lines.push(`@@stat\t${f.path}\t${f.mode.toString(8)}\t${f.owner}\t${f.group}`, `@@sha\t${sha256(f.content)}\t${f.path}`)
    }
    for (const s of desired.services) lines.push(`@@svc\t${s.name}\t${s.enabled ? 'enabled' : 'disabled'}\t${s.running === false ? 'inactive' : 'active'}`)
    return lines.join('\n') + '\n'
  }

  it("reads the bastion's agent key alongside its facts and never runs the key-creating command", async () => {
    const {provisionFleet} = await import('../../src/tasks/provision/hosts.js')
    const ctx = context(inv)
    const withKey = {...ctx, agentPublicKey: PUB}
    const prepared = Object.values(hosts).map((spec) => ({
      spec,
      desired: desiredState(ctx, spec),
      ...(spec.role === 'bastion'
        ? {bastionFact: agentKeyCommand}
        : {withBastionFact: (out: string) => desiredState({...ctx, agentPublicKey: parseAgentPublicKey(out)}, spec)}),
    }))
    const ran: string[] = []
    const connected: string[] = []
    const events: string[] = []
    const fleet = {
      async connect(name: string) {
        if (!connected.includes(name)) connected.push(name)
        events.push(`connect ${name}`)
        return {
          async exec(cmd: string, opts?: {stdin?: string | Buffer}) {
            ran.push(`${name}: ${cmd === 'bash -s' ? `facts (${String(opts?.stdin).length} bytes)` : cmd}`)
            events.push(`exec ${name}`)
            if (cmd === agentKeyCommand(true)) return {code: 0, stdout: `${PUB}\n`, stderr: ''}
            if (cmd !== 'bash -s') throw new Error(`unexpected command on ${name}: ${cmd}`)
            return {code: 0, stdout: factsOutput(desiredState(withKey, hosts[name])), stderr: ''}
          },
        }
      },
      async connectFresh(): Promise<never> {
        throw new Error('not used')
      },
      async close() {},
    }
    const result = await provisionFleet(fleet, prepared, {})
    expect(result.hosts.map((h) => [h.host, h.ok, h.changeCount])).toEqual([
      ['edge', true, 0],
      ['web1', true, 0],
      ['web2', true, 0],
      ['web3', true, 0],
    ])
    expect(ran).not.toContain(`edge: ${agentKeyCommand(false)}`)
    const onBastion = ran.filter((r) => r.startsWith('edge: '))
    expect(onBastion).toHaveLength(2)
    expect(onBastion).toContain(`edge: ${agentKeyCommand(true)}`)
    expect(onBastion.some((r) => r.startsWith('edge: facts'))).toBe(true)
    // Every web node's connection (through the bastion) was opened while the bastion was being read.
    expect(connected).toEqual(['edge', 'web1', 'web2', 'web3'])
    const firstWebExec = events.findIndex((e) => e.startsWith('exec web'))
    for (const w of ['web1', 'web2', 'web3']) expect(events.indexOf(`connect ${w}`)).toBeLessThan(events.indexOf('exec edge'))
    expect(firstWebExec).toBeGreaterThan(events.lastIndexOf('exec edge'))
  })
})

describe('the node agent parses (sh -n) for every kind of fleet', () => {
  // A stray quote in one branch of the template once broke only the fleets with an app: every
  // provision of the web nodes then failed its validation. Each branch is checked here.
  const variants: Record<string, Record<string, unknown>> = {
    plain: {},
    app: {app: {image: 'shop'}},
    sites: {sites: {blog: {domain: 'blog.example.org', app: {image: 'blog'}, previews: {domain: 'preview.blog.example.org'}}}},
    'app and sites': {app: {image: 'shop'}, sites: {blog: {domain: 'blog.example.org', app: {image: 'blog'}}}},
  }
  it.each(Object.keys(variants))('%s', (name) => {
    const v = inventory({...EDGE_FLEET, ...variants[name]})
    const file = fileAt(agentWebFiles(context(v, {agentPublicKey: PUB}), hostsByName(v).web1), AGENT_PATHS.nodeAgent)
    const at = path.join(dir, `node-agent-${name.replaceAll(' ', '-')}.sh`)
    writeFileSync(at, file.content)
    const r = spawnSync('sh', ['-n', at], {encoding: 'utf8'})
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(file.content.includes('units-up')).toBe(name.includes('sites'))
    expect(file.content.includes('preview-destroy')).toBe(name.includes('sites'))
  })
})
