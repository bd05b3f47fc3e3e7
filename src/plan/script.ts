/**
 * The apply step as a command builder (Kamal style): a pure function turns a host plan into ONE
 * shell script that is sent over the host's SSH connection in one exec (files travel inside it,
 * base64-encoded: one upload batch). Tested as a string; the lab tests run it for real.
 *
 * Order on the host, each step only if needed:
 *  1. install missing packages (apt-get, from the host's own mirror);
 *  2. stage every changed file under /var/lib/infra/stage/RUN;
 *  3. install plain files (backing up the previous version under /var/lib/infra/prev);
 *  4. validate staged files that have a validator (haproxy -c, nft -c, sshd -t) — any failure
 *     undoes step 3 and stops: the live configuration keeps serving;
 *  5. install validated files; for guarded files (firewall, sshd) first arm a systemd timer that
 *     restores the previous version unless the operator confirms over a NEW connection;
 *  6. remove paths that must be absent; run service actions (check before reload, verify after);
 *     a failed reload undoes this run's files and reloads again.
 * Machine-readable lines start with `@@` so the caller can report what happened.
 */
import {PROVISIONED_MARKER, shq} from './facts.js'
import type {FileChange, HostPlan} from './diff.js'
import type {DesiredFile, DesiredService} from './types.js'

export const STATE_DIR = '/var/lib/infra'
export const PREV_DIR = `${STATE_DIR}/prev`

export interface ApplyScriptOptions {
  runId: string
  /** Seconds before an unconfirmed guarded change is reverted. */
  guardSeconds: number
  /** Desired services by name (for check/verify commands). */
  services?: DesiredService[]
}

export function isGuarded(file: DesiredFile): boolean {
  return Boolean(file.guarded) || (file.notify ?? []).some((n) => n.service === 'nftables' || n.service === 'ssh')
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

export function rollbackUnit(runId: string): string {
  return `infra-rollback-${runId}`
}

export function applyScript(plan: HostPlan, opts: ApplyScriptOptions): string {
  const run = opts.runId
  const out: string[] = [
    'set -u',
    'export LC_ALL=C DEBIAN_FRONTEND=noninteractive',
    `RUN=${shq(run)}; STAGE=${STATE_DIR}/stage/$RUN; PREV=${PREV_DIR}`,
    `install -d -m 0700 ${STATE_DIR} "$PREV" "$STAGE"`,
    ': > "$STAGE/replaced"; : > "$STAGE/created"',
    `say() { printf '%s\\n' "$*"; }`,
    // Restore every file this run replaced or created, newest first.
    `undo() { tac "$STAGE/replaced" 2>/dev/null | while read -r p; do cp -a "$PREV$p" "$p"; done; ` +
      `tac "$STAGE/created" 2>/dev/null | while read -r p; do rm -f -- "$p"; done; ` +
      `systemctl stop ${rollbackUnit(run)}.timer >/dev/null 2>&1; say "@@undone"; }`,
    // put INDEX PATH MODE OWNER GROUP: back up, then atomically replace (rename in the same folder).
    `put() { d=$(dirname "$2"); [ -d "$d" ] || install -d -m 0755 "$d"; ` +
      `if [ -e "$2" ]; then install -d -m 0700 "$PREV$d"; cp -a "$2" "$PREV$2"; echo "$2" >> "$STAGE/replaced"; else echo "$2" >> "$STAGE/created"; fi; ` +
      `install -m "$3" -o "$4" -g "$5" "$STAGE/$1" "$2.infra-new" && mv -f "$2.infra-new" "$2" && say "@@done	file	$2"; }`,
    `out() { sed 's/^/@@out\t/' "$1"; }`,
  ]

  if (plan.packages.length > 0) {
    const pkgs = plan.packages.map(shq).join(' ')
    out.push(
      `say "@@step	packages"`,
      `inst() { apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${pkgs} > "$STAGE/apt.log" 2>&1; }`,
      // A stale package list is the usual reason for a failed install: refresh once and retry.
      `if ! inst; then apt-get update -q > "$STAGE/apt-update.log" 2>&1; if ! inst; then out "$STAGE/apt.log"; say "@@error	package installation failed: ${plan.packages.join(' ')}"; exit 4; fi; fi`,
      ...plan.packages.map((p) => `say "@@done	package	${p}"`),
    )
  }

  const changed = plan.files.filter((c) => c.kind !== 'mode')
  const indexOf = new Map<FileChange, number>()
  if (changed.length > 0) out.push(`say "@@step	files"`)
  changed.forEach((c, i) => {
    indexOf.set(c, i)
    const b64 = Buffer.from(c.file.content, 'utf8').toString('base64').replace(/.{1,76}/g, '$&\n')
    out.push(
      `base64 -d > "$STAGE/${i}" <<'INFRA_EOF_${i}'`,
      b64.trimEnd(),
      `INFRA_EOF_${i}`,
      `chmod ${octal(c.file.mode)} "$STAGE/${i}"; chown ${shq(c.file.owner)}:${shq(c.file.group)} "$STAGE/${i}" 2>/dev/null || true`,
    )
  })
  const putLine = (c: FileChange) =>
    `put ${indexOf.get(c)} ${shq(c.file.path)} ${octal(c.file.mode)} ${shq(c.file.owner)} ${shq(c.file.group)} || { undo; say "@@error	could not install ${c.file.path}"; exit 5; }`

  const plain = changed.filter((c) => !c.file.validate && !isGuarded(c.file))
  const validated = changed.filter((c) => c.file.validate && !isGuarded(c.file))
  const guarded = changed.filter((c) => isGuarded(c.file))
  for (const c of plain) out.push(putLine(c))

  // Validation of staged files, after plain files (certificates, error pages) are in place.
  for (const c of [...validated, ...guarded]) {
    if (!c.file.validate) continue
    const cmd = c.file.validate.replaceAll('{}', `"$STAGE/${indexOf.get(c)}"`)
    out.push(
      `if ! ( ${cmd} ) > "$STAGE/check.log" 2>&1; then say "@@invalid	${c.file.path}"; out "$STAGE/check.log"; undo; exit 3; fi`,
    )
  }
  for (const c of validated) out.push(putLine(c))

  if (guarded.length > 0) {
    const unit = rollbackUnit(run)
    const restore = guarded
      .map((c) =>
        c.before?.exists
          ? `cp -a ${shq(PREV_DIR + c.file.path)} ${shq(c.file.path)}`
          : `rm -f ${shq(c.file.path)}`,
      )
      .join('\n')
    const reapply = [...new Set(guarded.flatMap((c) => (c.file.notify ?? []).map((n) => n.service)))]
      .map((s) => (s === 'nftables' ? 'nft -f /etc/nftables.conf' : `systemctl reload-or-restart ${shq(s)}`))
      .join('\n')
    out.push(
      `cat > ${STATE_DIR}/rollback-$RUN.sh <<'INFRA_ROLLBACK'`,
      '#!/bin/sh',
      '# Written by infra provision: restores the previous firewall/sshd files unless the change was confirmed.',
      restore,
      reapply,
      `logger -t infra "rolled back unconfirmed change ${run}"`,
      `echo reverted > ${STATE_DIR}/rollback-${run}.done`,
      'INFRA_ROLLBACK',
      `systemd-run --quiet --unit=${unit} --on-active=${opts.guardSeconds}s --timer-property=AccuracySec=100ms /bin/sh ${STATE_DIR}/rollback-$RUN.sh > "$STAGE/guard.log" 2>&1 || ` +
        `{ out "$STAGE/guard.log"; undo; say "@@error	could not arm the automatic rollback (systemd-run)"; exit 6; }`,
      `say "@@armed	${unit}	${opts.guardSeconds}"`,
    )
    for (const c of guarded) out.push(putLine(c))
  }

  for (const c of plan.files.filter((f) => f.kind === 'mode')) {
    out.push(
      `chmod ${octal(c.file.mode)} ${shq(c.file.path)} && chown ${shq(c.file.owner)}:${shq(c.file.group)} ${shq(c.file.path)} && say "@@done	mode	${c.file.path}"`,
    )
  }
  for (const p of plan.remove) {
    out.push(`d=$(dirname ${shq(p)}); install -d -m 0700 "$PREV$d"; cp -a ${shq(p)} "$PREV"${shq(p)} 2>/dev/null; rm -f -- ${shq(p)} && say "@@done	remove	${p}"`)
  }

  if (changed.some((c) => c.file.path.startsWith('/etc/systemd/'))) out.push('systemctl daemon-reload')
  const byName = new Map((opts.services ?? []).map((s) => [s.name, s]))
  if (plan.services.length > 0) out.push(`say "@@step	services"`)
  for (const svc of plan.services) {
    const desired = byName.get(svc.name)
    for (const action of svc.actions) {
      const name = shq(svc.name)
      const needsCheck = desired?.check && ['reload', 'restart', 'start'].includes(action)
      if (needsCheck) {
        out.push(
          `if ! ( ${desired!.check} ) > "$STAGE/check.log" 2>&1; then say "@@invalid	${svc.name}"; out "$STAGE/check.log"; undo; exit 3; fi`,
        )
      }
      // A reload cannot move a listener the running service does not have yet (nginx keeps its
      // wildcard socket and refuses the new address): when the service does not pass its verify
      // check now, restart it at once rather than reload, wait, and restart anyway.
      out.push(`act=${action}`)
      if (action === 'reload' && desired?.verify) out.push(`( ${desired.verify} ) >/dev/null 2>&1 || act=restart`)
      out.push(
        `verb=$act; [ "$act" = reload ] && verb=reload-or-restart`,
        `if ! systemctl "$verb" ${name} > "$STAGE/svc.log" 2>&1; then out "$STAGE/svc.log"; journalctl -u ${name} -n 5 --no-pager 2>/dev/null | sed 's/^/@@out\t/'; ` +
          `undo; systemctl reload-or-restart ${name} >/dev/null 2>&1; say "@@error	$act ${svc.name} failed; previous files restored"; exit 7; fi`,
        `say "@@done	service	${svc.name}	$act"`,
      )
    }
    if (desired?.verify && svc.actions.some((a) => a !== 'stop' && a !== 'disable' && a !== 'enable')) {
      // A reload that did not take effect (e.g. a listener that moved) gets one restart.
      // (a reload is quick to show: give it 1.5 s before restarting; a start or restart gets 5 s)
      const wait = (tenths: string) =>
        `ok=0; for i in $(seq 1 ${tenths}); do if ( ${desired.verify} ) >/dev/null 2>&1; then ok=1; break; fi; sleep 0.1; done`
      const reloading = svc.actions.includes('reload')
      out.push(
        reloading ? `n=50; [ "$act" = reload ] && n=15` : 'n=50',
        wait('$n'),
        ...(reloading
          ? [`if [ $ok = 0 ] && [ "$act" = reload ]; then systemctl restart ${shq(svc.name)} && say "@@done	service	${svc.name}	restart (the reload did not take effect)"; ${wait('50')}; fi`]
          : []),
        `[ $ok = 1 ] || { say "@@error	${svc.name} did not pass its check after ${svc.actions.join('/')}: ${desired.verify.replaceAll('"', "'")}"; exit 8; }`,
      )
    }
  }
  out.push(`rm -rf "$STAGE"`, `touch ${PROVISIONED_MARKER}`, 'say "@@ok"')
  return out.join('\n') + '\n'
}

/** What the host said while applying, parsed from `@@` lines. */
export interface ApplyReport {
  ok: boolean
  done: string[]
  errors: string[]
  invalid: string[]
  /** Lines of tool output (validator, apt, systemctl) to show with an error. */
  output: string[]
  armed?: {unit: string; seconds: number}
  undone: boolean
}

export function parseApplyOutput(stdout: string): ApplyReport {
  const r: ApplyReport = {ok: false, done: [], errors: [], invalid: [], output: [], undone: false}
  for (const line of stdout.split('\n')) {
    const [tag, ...f] = line.split('\t')
    switch (tag) {
      case '@@done':
        r.done.push(f.join(' '))
        break
      case '@@error':
        r.errors.push(f.join('\t'))
        break
      case '@@invalid':
        r.invalid.push(f[0] ?? '')
        break
      case '@@out':
        r.output.push(f.join('\t'))
        break
      case '@@armed':
        r.armed = {unit: f[0] ?? '', seconds: Number(f[1])}
        break
      case '@@undone':
        r.undone = true
        break
      case '@@ok':
        r.ok = true
        break
    }
  }
  return r
}
