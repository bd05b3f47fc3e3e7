/**
 * Doctor facts: everything the checks of one host need, gathered in ONE round trip (one `exec` of
 * a generated script) and parsed into a typed value. The script is a pure function of the host's
 * role and desired state (tested as a string); the parser is tested on fixed output.
 *
 * Output lines are `@@tag<TAB>fields...`; multi-line values (sshd -T, rulesets, show stat) are
 * sent base64-encoded on one line.
 */
import {shq} from '../host/quote.js'
import type {HostDesiredState} from '../plan/types.js'
import {AGENT_PATHS, APP_PATHS, DEFAULT_PATHS} from '../host/paths.js'
import {type AppStatus, currentFromFact, parseAppStatus, releasesFactLine} from '../app/release.js'
import {parseShowStat, runtimeCommand, type StatRow} from '../host/haproxy.js'
import {addressFact, type AddressFact, COMMON_FACTS, factLines, osFact, type OsFact, unb64} from '../host/facts.js'

/** The agents' files doctor looks at (scripts, cron file, heartbeats, the pause flag). */
export const CHECKED_AGENT_PATHS = [
  AGENT_PATHS.cron,
  AGENT_PATHS.healthcheck,
  AGENT_PATHS.scaler,
  AGENT_PATHS.healthcheckHeartbeat,
  AGENT_PATHS.scalerHeartbeat,
  AGENT_PATHS.scalerPaused,
] as const

export interface DoctorScriptInput {
  role: 'bastion' | 'web'
  /** The host's desired state (paths of the firewall, TLS PEM, agents). */
  desired?: Pick<HostDesiredState, 'files'>
  /** Web nodes: the private address, port and path of the local health check. */
  health?: {address: string; port: number; path: string}
  /** An inventory with an app: the fleet registry's address (`10.0.0.1:5000`). */
  app?: {registryAddress: string}
}

/** The application's facts (an inventory with `app`). */
export interface AppFacts {
  /** Web nodes: `infra-app status`; undefined when infra-app is missing. */
  status?: AppStatus
  /** Web nodes: the filesystem of /var/lib/docker. */
  dockerDisk?: {usedPercent: number; availKb: number}
  /** Bastion: the current release of releases.json (null: none yet); undefined when unreadable. */
  current?: string | null
  /** Bastion: HTTP status of the registry's `/v2/` (401 when it asks for credentials), 0 for no answer. */
  registryCode?: number
}


export interface DoctorFacts {
  os: OsFact
  /** Epoch seconds on the host. */
  time: number
  addresses: AddressFact[]
  /** `sshd -T` as key → value (keys lowercase, as sshd prints them); empty when sshd -T failed. */
  sshd: Map<string, string>
  sshdError?: string
  services: Map<string, string>
  /** sha256 of /etc/nftables.conf, undefined when missing. */
  nftFileSha?: string
  nftFile?: string
  /** `nft -s list ruleset` of the live kernel. */
  nftLive?: string
  /** The file loaded into a throwaway network namespace and listed the same way; undefined when that failed. */
  nftFromFile?: string
  nftFromFileError?: string
  /** `df -P /`: percent used. */
  diskUsedPercent?: number
  memTotalKb?: number
  memAvailableKb?: number
  load1?: number
  cpus?: number
  /** `APT::Periodic::Unattended-Upgrade` as apt-config reads it. */
  unattendedPeriodic?: string
  unattendedInstalled: boolean
  // Bastion
  haproxyCheck?: {code: number; output: string}
  stat?: StatRow[]
  statError?: string
  cert?: {notAfter?: string; san: string[]; error?: string}
  /** path → exists and executable bit, mtime epoch seconds. */
  paths: Map<string, {exists: boolean; executable: boolean; mtime?: number; content?: string}>
  // Web
  healthCode?: number
  app?: AppFacts
}


/** The PEM HAProxy serves, from the desired state (the one secret file ending in .pem). */
export function pemPathOf(desired?: Pick<HostDesiredState, 'files'>): string | undefined {
  return desired?.files.find((f) => f.secret && f.path.endsWith('.pem'))?.path
}

export function doctorScript(input: DoctorScriptInput): string {
  const nft = input.desired?.files.find((f) => f.path.endsWith('nftables.conf'))?.path ?? DEFAULT_PATHS.nftablesConfig
  const lines = [
    ...COMMON_FACTS,
    `if o=$(sshd -T 2>&1); then printf '@@sshd\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; else printf '@@sshderr\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; fi`,
    `s() { printf '@@svc\\t%s\\t%s\\n' "$1" "$(systemctl is-active "$1" 2>/dev/null || true)"; }`,
    's nftables',
    `if [ -f ${shq(nft)} ]; then printf '@@nftfile\\t%s\\t%s\\n' "$(sha256sum < ${shq(nft)} | cut -d' ' -f1)" "$(base64 -w0 < ${shq(nft)})"; fi`,
    `printf '@@nftlive\\t%s\\n' "$(nft -s list ruleset 2>&1 | base64 -w0)"`,
    // The file as the kernel would load it, listed the same way, in a throwaway network namespace
    // (gone when the command ends): live == this means the live ruleset is the file's.
    `if o=$(unshare --net sh -c ${shq(`nft -f ${shq(nft)} && nft -s list ruleset`)} 2>&1); then printf '@@nftwant\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; else printf '@@nftwanterr\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; fi`,
    `printf '@@disk\\t%s\\n' "$(df -P / | awk 'NR==2 {sub("%","",$5); print $5}')"`,
    `awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {print "@@mem\\t" t "\\t" a}' /proc/meminfo`,
    `printf '@@load\\t%s\\t%s\\n' "$(cut -d' ' -f1 /proc/loadavg)" "$(nproc)"`,
    `printf '@@unattended\\t%s\\t%s\\n' "$(apt-config shell v APT::Periodic::Unattended-Upgrade 2>/dev/null | sed -n "s/^v='\\(.*\\)'$/\\1/p")" "$(dpkg-query -W -f='\${db:Status-Status}' unattended-upgrades 2>/dev/null)"`,
    `p() { if [ -e "$1" ]; then printf '@@path\\t%s\\t1\\t%s\\t%s\\t%s\\n' "$1" "$([ -x "$1" ] && echo 1 || echo 0)" "$(stat -c %Y "$1")" "$(head -c 64 "$1" | tr -d '\\n\\t')"; else printf '@@path\\t%s\\t0\\n' "$1"; fi; }`,
  ]
  if (input.role === 'bastion') {
    lines.push(
      's haproxy',
      `o=$(haproxy -c -f ${DEFAULT_PATHS.haproxyConfig} 2>&1); printf '@@haproxyc\\t%s\\t%s\\n' "$?" "$(printf '%s' "$o" | base64 -w0)"`,
      `if o=$(${runtimeCommand('show stat')} 2>&1); then printf '@@stat\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; else printf '@@staterr\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; fi`,
    )
    const pem = pemPathOf(input.desired)
    if (pem) {
      lines.push(
        `if o=$(openssl x509 -in ${shq(pem)} -noout -enddate -ext subjectAltName 2>&1); then printf '@@cert\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; else printf '@@certerr\\t%s\\n' "$(printf '%s' "$o" | base64 -w0)"; fi`,
      )
    }
    for (const p of CHECKED_AGENT_PATHS) lines.push(`p ${shq(p)}`)
    if (input.app) lines.push(...bastionAppFacts(input.app.registryAddress))
  } else {
    lines.push('s nginx')
    if (input.health) {
      const url = `http://${input.health.address}:${input.health.port}${input.health.path}`
      lines.push(`printf '@@health\\t%s\\n' "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${shq(url)} 2>/dev/null)"`)
    }
    if (input.app) lines.push(...WEB_APP_FACTS)
  }
  lines.push('true')
  return lines.join('\n') + '\n'
}

/** The registry's service and its answer to `/v2/` over TLS (trusting the fleet CA), and the release history. */
function bastionAppFacts(registryAddress: string): string[] {
  const ca = `${APP_PATHS.dockerCertsDir}/${registryAddress}/ca.crt`
  return [
    's docker-registry',
    `printf '@@registry\\t%s\\n' "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert ${shq(ca)} ${shq(`https://${registryAddress}/v2/`)} 2>/dev/null)"`,
    releasesFactLine(APP_PATHS.releases),
  ]
}

/** `infra-app status` (one line) and the room where Docker keeps images. */
const WEB_APP_FACTS = [
  's docker',
  `if [ -x ${APP_PATHS.script} ]; then printf '@@appstatus\\t%s\\n' "$(${APP_PATHS.script} status 2>/dev/null | head -n 1)"; fi`,
  `printf '@@dockerdisk\\t%s\\n' "$(df -P /var/lib/docker 2>/dev/null | awk 'NR==2 {sub("%","",$5); print $5 "\\t" $4}')"`,
]

/** `openssl x509 -noout -enddate -ext subjectAltName` → notAfter and DNS names. */
export function parseCert(out: string): {notAfter?: string; san: string[]} {
  const notAfter = /notAfter=(.+)/.exec(out)?.[1]?.trim()
  const san = [...out.matchAll(/DNS:([^,\s]+)/g)].map((m) => m[1].toLowerCase())
  return {notAfter, san}
}

export function parseSshdT(out: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ')
    if (i <= 0) continue
    const k = line.slice(0, i).toLowerCase()
    if (!m.has(k)) m.set(k, line.slice(i + 1).trim())
  }
  return m
}

type FactSetter = (f: DoctorFacts, v: string[]) => void

/** What each `@@tag` line of the doctor script sets; a tag not listed is ignored. */
const FACT_SETTERS: Record<string, FactSetter> = {
  '@@os': (f, v) => (f.os = osFact(v)),
  '@@time': (f, v) => (f.time = Number(v[0])),
  '@@addr': (f, v) => f.addresses.push(addressFact(v)),
  '@@sshd': (f, v) => (f.sshd = parseSshdT(unb64(v[0]))),
  '@@sshderr': (f, v) => (f.sshdError = unb64(v[0]).trim() || 'sshd -T failed'),
  '@@svc': (f, v) => f.services.set(v[0] ?? '', v[1] || 'unknown'),
  '@@nftfile': (f, v) => {
    f.nftFileSha = v[0]
    f.nftFile = unb64(v[1])
  },
  '@@nftlive': (f, v) => (f.nftLive = unb64(v[0])),
  '@@nftwant': (f, v) => (f.nftFromFile = unb64(v[0])),
  '@@nftwanterr': (f, v) => (f.nftFromFileError = unb64(v[0]).trim() || 'loading the file failed'),
  '@@disk': (f, v) => {
    if (v[0]) f.diskUsedPercent = Number(v[0])
  },
  '@@mem': (f, v) => {
    if (v[0]) f.memTotalKb = Number(v[0])
    if (v[1]) f.memAvailableKb = Number(v[1])
  },
  '@@load': (f, v) => {
    f.load1 = Number(v[0])
    f.cpus = Number(v[1]) || 1
  },
  '@@unattended': (f, v) => {
    f.unattendedPeriodic = v[0] ?? ''
    f.unattendedInstalled = v[1] === 'installed'
  },
  '@@path': (f, v) => f.paths.set(v[0] ?? '', v[1] === '1' ? {exists: true, executable: v[2] === '1', mtime: Number(v[3]), content: v[4] ?? ''} : {exists: false, executable: false}),
  '@@haproxyc': (f, v) => (f.haproxyCheck = {code: Number(v[0]), output: unb64(v[1])}),
  '@@stat': (f, v) => (f.stat = parseShowStat(unb64(v[0]))),
  '@@staterr': (f, v) => (f.statError = unb64(v[0]).trim() || 'the runtime API did not answer'),
  '@@cert': (f, v) => (f.cert = parseCert(unb64(v[0]))),
  '@@certerr': (f, v) => (f.cert = {san: [], error: unb64(v[0]).trim() || 'cannot read the certificate'}),
  '@@health': (f, v) => (f.healthCode = Number(v[0]) || 0),
  '@@appstatus': (f, v) => (app(f).status = parseAppStatus(v.join(' '))),
  '@@dockerdisk': (f, v) => {
    if (v[0]) app(f).dockerDisk = {usedPercent: Number(v[0]), availKb: Number(v[1] ?? 0)}
  },
  '@@registry': (f, v) => (app(f).registryCode = Number(v[0]) || 0),
  // Not JSON: undefined, the current release is unknown (app-release is skipped, deploy says why).
  '@@releases': (f, v) => (app(f).current = currentFromFact(v[0])),
}

const app = (f: DoctorFacts): AppFacts => (f.app ??= {})

export function parseDoctorFacts(out: string): DoctorFacts {
  const f: DoctorFacts = {
    os: {id: '', versionId: '', prettyName: ''},
    time: 0,
    addresses: [],
    sshd: new Map(),
    services: new Map(),
    unattendedInstalled: false,
    paths: new Map(),
  }
  for (const {tag, fields} of factLines(out)) {
    if (Object.hasOwn(FACT_SETTERS, tag)) FACT_SETTERS[tag](f, fields)
  }
  return f
}
