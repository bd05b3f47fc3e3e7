/**
 * Facts: what a host has now, gathered in ONE round trip (one `exec` of a generated script),
 * parsed into a typed value. The script is a pure function of the desired state, so it is
 * tested as a string, and the parser is tested on fixed output (pyinfra's fact = command + parser).
 */
import {sha256} from '../host/hash.js'
import {shq} from '../host/quote.js'
import type {HostDesiredState} from './types.js'
import {PENDING_DIR, PROVISIONED_MARKER} from '../host/paths.js'
import {addressFact, type AddressFact, COMMON_FACTS, factLines, osFact, type OsFact} from '../host/facts.js'

export interface FileFact {
  path: string
  exists: boolean
  mode?: number
  owner?: string
  group?: string
  sha256?: string
  /** Current content (utf8) for non-secret files, so a dry run can show a real diff. */
  content?: string
}

export interface ServiceFact {
  name: string
  /** `enabled`, `disabled`, `masked`, `static`, `not-found`, ... as systemctl prints it. */
  enabled: string
  /** `active`, `inactive`, `failed`, `activating`, ... */
  active: string
}

export interface HostFacts {
  os: OsFact
  hostname: string
  /** IPv4 addresses on the host's interfaces (scope global). */
  addresses: AddressFact[]
  /** Installed packages among those asked about. */
  installed: Set<string>
  files: Map<string, FileFact>
  services: Map<string, ServiceFact>
  /** Paths from `absent` that exist. */
  present: Set<string>
  /** Epoch seconds on the host, for clock-skew checks. */
  time: number
  /** infra has provisioned this host before (a marker written at the end of a successful apply). */
  provisioned: boolean
  /**
   * Services an earlier apply installed files for but did not finish reloading or restarting
   * (its connection dropped, say): the next run does it, even when every file already matches.
   */
  pending: Map<string, 'reload' | 'restart'>
}



/** Largest file content sent back for diffs; larger files are compared by hash only. */
const MAX_CONTENT = 256 * 1024

/**
 * `systemctl show` blocks (in the order of `names`) → one `@@svc NAME ENABLED ACTIVE` line each;
 * an unknown unit is `not-found`, as `systemctl is-enabled` says.
 */
const SERVICES_AWK = [
  'BEGIN { n = split(names, N, " "); i = 1 }',
  '/^$/ { i++; next }',
  '{ k = substr($0, 1, index($0, "=") - 1); v[i, k] = substr($0, index($0, "=") + 1) }',
  'END { for (j = 1; j <= n; j++) { e = v[j, "UnitFileState"]; l = v[j, "LoadState"];',
  '  if (l == "not-found" || l == "") e = "not-found"; else if (l == "masked") e = "masked";',
  '  printf "@@svc\\t%s\\t%s\\t%s\\n", N[j], e, v[j, "ActiveState"] } }',
].join(' ')

export function factScript(state: Pick<HostDesiredState, 'packages' | 'files' | 'services'> & {absent?: string[]}): string {
  const lines: string[] = [
    ...COMMON_FACTS,
    `printf '@@hostname\\t%s\\n' "$(hostname)"`,
    `[ -e ${PROVISIONED_MARKER} ] && echo '@@provisioned'`,
    `for p in ${PENDING_DIR}/*; do [ -f "$p" ] && printf '@@pending\\t%s\\t%s\\n' "\${p##*/}" "$(head -c 16 "$p")"; done`,
  ]
  if (state.packages.length > 0) {
    lines.push(
      `dpkg-query -W -f='@@pkg\\t\${Package}\\t\${db:Status-Status}\\n' ${state.packages.map(shq).join(' ')} 2>/dev/null || true`,
    )
  }
  // Files: one `stat` and one `sha256sum` for all that exist; content comes back only for a
  // non-secret file whose hash differs from the desired one (what a diff needs), not for the
  // unchanged majority. Paths are ours (no newline or backslash), so the outputs parse by line.
  if (state.files.length > 0) {
    lines.push(
      `F=(${state.files.map((f) => shq(f.path)).join(' ')})`,
      `E=(); for p in "\${F[@]}"; do if [ -f "$p" ]; then E+=("$p"); else printf '@@nofile\\t%s\\n' "$p"; fi; done`,
      `H=''; if [ \${#E[@]} -gt 0 ]; then stat --printf '@@stat\\t%n\\t%a\\t%U\\t%G\\n' -- "\${E[@]}"; H=$'\\n'"$(sha256sum -- "\${E[@]}")"$'\\n'; printf '%s' "$H" | sed -n 's/^\\([0-9a-f]\\{64\\}\\)  /@@sha\\t\\1\\t/p'; fi`,
      `c() { [ -f "$1" ] || return 0; case "$H" in *$'\\n'"$2  $1"$'\\n'*) return 0;; esac; [ "$(stat -c %s "$1")" -le ${MAX_CONTENT} ] || return 0; printf '@@content\\t%s\\t' "$1"; base64 -w0 < "$1"; echo; }`,
    )
    for (const file of state.files) if (!file.secret) lines.push(`c ${shq(file.path)} ${sha256(file.content)}`)
  }
  // Services: one `systemctl show` for all units, printed in the order asked, a blank line between.
  if (state.services.length > 0) {
    const names = state.services.map((svc) => svc.name)
    lines.push(
      `systemctl show --property=LoadState,UnitFileState,ActiveState -- ${names.map(shq).join(' ')} 2>/dev/null | ` +
        `awk -v names=${shq(names.join(' '))} '${SERVICES_AWK}'`,
    )
  }
  for (const p of state.absent ?? []) lines.push(`[ -e ${shq(p)} ] || [ -L ${shq(p)} ] && printf '@@present\\t%s\\n' ${shq(p)}`)
  lines.push('true')
  return lines.join('\n') + '\n'
}

/** Facts of a host that reported nothing (what the parser starts from); `over` sets some. */
export function emptyFacts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    os: {id: '', versionId: '', prettyName: ''},
    hostname: '',
    addresses: [],
    installed: new Set(),
    files: new Map(),
    services: new Map(),
    present: new Set(),
    time: 0,
    provisioned: false,
    pending: new Map(),
    ...over,
  }
}

export function parseFacts(out: string): HostFacts {
  const facts = emptyFacts()
  for (const {tag, fields: f} of factLines(out)) {
    switch (tag) {
      case '@@os':
        facts.os = osFact(f)
        break
      case '@@hostname':
        facts.hostname = f[0] ?? ''
        break
      case '@@provisioned':
        facts.provisioned = true
        break
      case '@@time':
        facts.time = Number(f[0])
        break
      case '@@addr':
        facts.addresses.push(addressFact(f))
        break
      case '@@pkg':
        if (f[1] === 'installed') facts.installed.add(f[0] ?? '')
        break
      case '@@stat':
        facts.files.set(f[0], {...facts.files.get(f[0]), path: f[0], exists: true, mode: Number.parseInt(f[1], 8), owner: f[2], group: f[3]})
        break
      case '@@sha': {
        const file = facts.files.get(f[1])
        if (file) file.sha256 = f[0]
        break
      }
      case '@@content': {
        const file = facts.files.get(f[0])
        if (file) file.content = Buffer.from(f[1] ?? '', 'base64').toString('utf8')
        break
      }
      case '@@nofile':
        facts.files.set(f[0], {path: f[0], exists: false})
        break
      case '@@svc':
        facts.services.set(f[0], {name: f[0], enabled: f[1] || 'not-found', active: f[2] || 'unknown'})
        break
      case '@@present':
        facts.present.add(f[0])
        break
      case '@@pending':
        facts.pending.set(f[0], f[1]?.trim() === 'restart' ? 'restart' : 'reload')
        break
    }
  }
  return facts
}
