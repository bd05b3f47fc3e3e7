/**
 * The apply step as a command builder (Kamal style): a pure function turns a host plan into ONE
 * shell script that is sent over the host's SSH connection in one exec (files travel inside it,
 * base64-encoded: one upload batch). Tested as a string and run for real (unit tests in a temporary
 * state folder, lab tests on hosts).
 *
 * Length: over 350 lines with its comments (about 340 of code), kept in one file because its
 * section builders write one shell script whose order is the contract below; each builder is short.
 *
 * Order on the host, each step only if needed:
 *  0. take the host's lock (a lease in /var/lib/infra/lock naming the run and who started it): a
 *     second provision of the same host fails at once and says who holds it;
 *  1. install missing packages (apt-get, from the host's own mirror);
 *  2. stage every changed file under /var/lib/infra/stage/RUN; write a pending-reload marker for
 *     every service this run will reload or restart (cleared only after a verified reload, so an
 *     apply cut between install and reload is finished by the next run);
 *  3. install plain files (the previous version kept under /var/lib/infra/prev/RUN);
 *  4. validate staged files that have a validator (haproxy -c, nft -c, sshd -t) — any failure
 *     undoes step 3 and stops: the live configuration keeps serving;
 *  5. install validated files; for guarded files (firewall, sshd) first back them up, then arm a
 *     systemd timer that restores them unless the operator confirms over a NEW connection;
 *  6. remove paths that must be absent; run service actions (check before reload, verify after);
 *     a failed step undoes this run's files, re-applies the previous firewall and sshd settings
 *     when they were touched, and only then cancels the timer.
 * On every exit the stage is removed, backups of secret files are shredded, and the backups of
 * all but the last few runs are pruned.
 * Machine-readable lines start with `@@` so the caller can report what happened.
 */
import {shq} from '../host/quote.js'
import type {FileChange, HostPlan, ServiceChange} from './diff.js'
import type {DesiredFile, DesiredService} from './types.js'
import {PROVISIONED_MARKER, STATE_DIR} from '../host/paths.js'

/** The shortest confirm window: a new SSH connection must have time to be made and checked. */
export const MIN_GUARD_SECONDS = 10
/** The longest: an unconfirmed firewall change should not wait long to revert. */
export const MAX_GUARD_SECONDS = 30 * 60
/** How many runs' previous file versions a host keeps under prev/ (secret files excepted: never kept). */
export const KEEP_RUNS = 5
/** How long the lock lasts during an apply if the run dies without releasing it. */
export const LOCK_SECONDS = 20 * 60
/** Exit status of the apply script when another run holds the host's lock. */
export const LOCKED_EXIT = 9

export interface ApplyScriptOptions {
  runId: string
  /** Seconds before an unconfirmed guarded change is reverted (MIN_GUARD_SECONDS..MAX_GUARD_SECONDS). */
  guardSeconds: number
  /** Desired services by name (for check/verify commands). */
  services?: DesiredService[]
  /** Who runs this provision (user@machine pid N), recorded in the host's lock. */
  holder?: string
  /** The state folder on the host (tests run the script in a temporary one). */
  stateDir?: string
  /**
   * A run whose lock may be taken over: provision passes it when the lock's holder is a process
   * of this machine that is gone (a provision killed with Ctrl-C or SIGKILL). Refused while an
   * unconfirmed firewall/sshd change of any run still waits for its timer.
   */
  takeOver?: string
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

/** Run ids are ours (time + random hex); anything else would be spliced into shell and unit names. */
function checkRunId(runId: string): void {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(runId)) throw new Error(`not a run id: ${runId}`)
}

export function checkGuardSeconds(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < MIN_GUARD_SECONDS || seconds > MAX_GUARD_SECONDS) {
    throw new RangeError(`the confirm timeout must be from ${MIN_GUARD_SECONDS} s to ${MAX_GUARD_SECONDS / 60} min (got ${seconds} s)`)
  }
}

/**
 * Shell lines that put the previous firewall and sshd settings back into effect (after the files
 * were restored): `nft -f` of the restored ruleset (or, when this run created it, the ruleset that
 * was live before, saved in `liveDump`), and a reload of sshd.
 */
function reapplyLines(services: string[], liveDump: string): string[] {
  return services.map((s) =>
    s === 'nftables'
      ? `if [ -e /etc/nftables.conf ]; then nft -f /etc/nftables.conf; else { echo 'flush ruleset'; cat ${liveDump}; } | nft -f -; fi`
      : `systemctl reload-or-restart ${shq(s)}`,
  )
}

/** Releases the host's lock if this run holds it. */
function releaseLock(lock: string, run: string): string {
  return `[ "$(cut -d' ' -f1 ${lock} 2>/dev/null)" = ${shq(run)} ] && rm -f ${lock}`
}

/**
 * The command the NEW connection runs to confirm a guarded change. It confirms only while the
 * rollback has not started and its timer is still pending (waiting: an elapsed timer whose
 * rollback runs can still be stopped, which is how a late confirmation used to "succeed" while the
 * change was being reverted); the rollback script takes the same lock, so the two never both succeed.
 */
export function confirmScript(runId: string, stateDir = STATE_DIR): string {
  checkRunId(runId)
  const base = `${stateDir}/rollback-${runId}`
  const unit = rollbackUnit(runId)
  return [
    `exec 9>>${base}.lock`,
    `flock -w 10 9 || { echo busy; exit 3; }`,
    `if [ -e ${base}.started ] || [ -e ${base}.done ]; then echo reverted; exit 1; fi`,
    // Pending means waiting: once elapsed the timer shows active/running while its rollback runs.
    `[ "$(systemctl show -p SubState --value ${unit}.timer 2>/dev/null)" = waiting ] || { echo not-pending; exit 1; }`,
    `touch ${base}.confirmed`,
    `systemctl stop ${unit}.timer`,
    `rm -f ${base}.sh`,
    releaseLock(`${stateDir}/lock`, runId),
    'echo confirmed',
  ].join('\n')
}

/** What every section of the apply script needs to know, worked out once from the plan. */
interface ScriptContext {
  plan: HostPlan
  opts: ApplyScriptOptions
  run: string
  /** The state folder on the host. */
  sd: string
  unit: string
  liveDump: string
  holder: string
  /** Files whose content changes (not only their mode), in plan order; the index names the staged copy. */
  changed: FileChange[]
  indexOf: Map<FileChange, number>
  guarded: FileChange[]
  guardedServices: string[]
}

function scriptContext(plan: HostPlan, opts: ApplyScriptOptions): ScriptContext {
  const run = opts.runId
  checkRunId(run)
  const sd = opts.stateDir ?? STATE_DIR
  const changed = plan.files.filter((c) => c.kind !== 'mode')
  const guarded = changed.filter((c) => isGuarded(c.file))
  if (guarded.length > 0) checkGuardSeconds(opts.guardSeconds)
  return {
    plan,
    opts,
    run,
    sd,
    unit: rollbackUnit(run),
    liveDump: `${sd}/prev/${run}/nftables.live`,
    holder: opts.holder ?? 'infra provision',
    changed,
    indexOf: new Map(changed.map((c, i) => [c, i])),
    guarded,
    guardedServices: [...new Set(guarded.flatMap((c) => (c.file.notify ?? []).map((n) => n.service)))],
  }
}

/**
 * The variables, the host's lock (step 0: `RUN EXPIRES HOLDER` while a provision applies, and until
 * its guarded change is confirmed), and the removal of stages a dead run left.
 */
function lockAndStageLines(ctx: ScriptContext): string[] {
  const {run, sd, opts} = ctx
  return [
    'set -u',
    'export LC_ALL=C DEBIAN_FRONTEND=noninteractive',
    `RUN=${shq(run)}; SD=${shq(sd)}; STAGE="$SD/stage/$RUN"; PREV="$SD/prev/$RUN"; LOCK="$SD/lock"; PENDING="$SD/pending"`,
    `install -d -m 0700 "$SD" "$SD/prev" "$SD/stage" "$PENDING"`,
    `say() { printf '%s\\n' "$*"; }`,
    // 0. The lock: a lease, taken under flock so two runs never both take it.
    `exec 8>>"$SD/lock.flock"`,
    `flock -w 10 8 || { say "@@locked	another provision is starting on this host"; exit ${LOCKED_EXIT}; }`,
    `now=$(date +%s)`,
    `if [ -s "$LOCK" ]; then read -r l_run l_until l_who < "$LOCK"; ` +
      `if [ "$l_run" != "$RUN" ] && [ "\${l_until:-0}" -gt "$now" ] 2>/dev/null; then ` +
      (opts.takeOver
        ? `if [ "$l_run" != ${shq(opts.takeOver)} ] || systemctl list-units --type=timer --state=active --plain --no-legend 'infra-rollback-*' 2>/dev/null | grep -q .; then say "@@locked	$l_who	$l_run	$l_until"; exit ${LOCKED_EXIT}; fi; `
        : `say "@@locked	$l_who	$l_run	$l_until"; exit ${LOCKED_EXIT}; `) +
      `fi; fi`,
    `printf '%s %s %s\\n' "$RUN" "$((now + ${LOCK_SECONDS}))" ${shq(ctx.holder)} > "$LOCK"`,
    'flock -u 8',
    // What a run that died left (it could not clean up: SIGKILL, a cut connection): with the lock
    // held, no other run is applying, so every other stage is stale. Its secret copies and the
    // backups of secrets it listed are shredded, then it goes.
    `for d in "$SD"/stage/*; do [ -d "$d" ] || continue; [ "$d" = "$STAGE" ] && continue; ` +
      `if [ -f "$d/secret" ]; then while read -r f; do [ -f "$f" ] && shred -u -- "$f" 2>/dev/null; rm -f -- "$f"; done < "$d/secret"; fi; ` +
      `find "$d" -type f -exec shred -u -- {} + 2>/dev/null; rm -rf -- "$d" "$d.armed"; done`,
    `install -d -m 0700 "$PREV" "$STAGE"`,
    ': > "$STAGE/replaced"; : > "$STAGE/created"; : > "$STAGE/secret"',
  ]
}

/** The exit trap and the shell helpers the later steps call (backup, place, put, undo, reapply, out). */
function trapLines(ctx: ScriptContext): string[] {
  const {run, unit, opts} = ctx
  const lines = [
    // On every exit: shred secret copies (staged and backed up), drop the stage, keep the last
    // KEEP_RUNS runs' backups (and nothing of the flat layout older versions used), and release
    // the lock, or, while a guarded change waits for its confirmation, keep it until then.
    `cleanup() { while read -r f; do [ -f "$f" ] && shred -u -- "$f" 2>/dev/null; rm -f -- "$f"; done < "$STAGE/secret"; rm -rf "$STAGE"; ` +
      `for d in "$SD"/prev/*; do [ -e "$d" ] || continue; case "\${d##*/}" in [0-9]*T*-*) ;; *) rm -rf -- "$d";; esac; done; ` +
      `ls -1d "$SD"/prev/[0-9]*T*-* 2>/dev/null | sort -r | tail -n +${KEEP_RUNS + 1} | while read -r d; do rm -rf -- "$d"; done; ` +
      `if [ -e "$STAGE.armed" ]; then rm -f "$STAGE.armed"; printf '%s %s %s\\n' "$RUN" "$(( $(date +%s) + ${opts.guardSeconds} + 120 ))" ${shq(ctx.holder)} > "$LOCK"; else ${releaseLock('"$LOCK"', run)}; fi; }`,
    'trap cleanup EXIT',
    // backup PATH: keep the current version under prev/RUN (or note that the file is new).
    `backup() { if [ -e "$1" ]; then install -d -m 0700 "$PREV$(dirname "$1")" && cp -a "$1" "$PREV$1" && echo "$1" >> "$STAGE/replaced"; else echo "$1" >> "$STAGE/created"; fi; }`,
    // place INDEX PATH MODE OWNER GROUP: atomically replace (rename in the same folder).
    `place() { d=$(dirname "$2"); [ -d "$d" ] || install -d -m 0755 "$d"; install -m "$3" -o "$4" -g "$5" "$STAGE/$1" "$2.infra-new" && mv -f "$2.infra-new" "$2" && say "@@done	file	$2"; }`,
    `put() { backup "$2" && place "$@"; }`,
    // Restore every file this run replaced or created, newest first; when firewall or sshd files
    // were installed, put the previous ruleset and sshd settings back in effect before the
    // automatic rollback is cancelled (if that fails, the timer stays armed and does it).
    `undo() { tac "$STAGE/replaced" 2>/dev/null | while read -r p; do cp -a "$PREV$p" "$p"; done; ` +
      `tac "$STAGE/created" 2>/dev/null | while read -r p; do rm -f -- "$p"; done; ` +
      `if [ -e "$STAGE/guarded" ]; then if reapply > "$STAGE/reapply.log" 2>&1; then systemctl stop ${unit}.timer >/dev/null 2>&1; rm -f "$STAGE.armed"; say "@@reapplied"; ` +
      `else out "$STAGE/reapply.log"; say "@@error	could not put the previous firewall/sshd settings back in effect: the automatic rollback (${unit}) stays armed and will"; fi; ` +
      `else systemctl stop ${unit}.timer >/dev/null 2>&1; rm -f "$STAGE.armed"; fi; say "@@undone"; }`,
    `reapply() { ${ctx.guardedServices.length > 0 ? reapplyLines(ctx.guardedServices, ctx.liveDump).join(' && ') : 'true'}; }`,
    `out() { sed 's/^/@@out\t/' "$1"; }`,
  ]
  for (const c of ctx.changed) {
    if (!c.file.secret) continue
    // Staged copies and this run's backup of secret files go at exit; so does the copy that the
    // flat prev/ layout of older versions kept forever.
    const p = shq(c.file.path)
    lines.push(`echo "$PREV"${p} >> "$STAGE/secret"; echo "$SD/prev"${p} >> "$STAGE/secret"`)
  }
  return lines
}

/** Step 1: missing packages, with one retry after refreshing the package list. */
function packageLines({plan}: ScriptContext): string[] {
  if (plan.packages.length === 0) return []
  const pkgs = plan.packages.map(shq).join(' ')
  return [
    `say "@@step	packages"`,
    `inst() { apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${pkgs} > "$STAGE/apt.log" 2>&1; }`,
    // A stale package list is the usual reason for a failed install: refresh once and retry.
    `if ! inst; then apt-get update -q > "$STAGE/apt-update.log" 2>&1; if ! inst; then out "$STAGE/apt.log"; say "@@error	package installation failed: ${plan.packages.join(' ')}"; exit 4; fi; fi`,
    ...plan.packages.map((p) => `say "@@done	package	${p}"`),
  ]
}

/** Step 2: every changed file staged (base64), then the pending-reload markers. */
function stageLines({plan, changed}: ScriptContext): string[] {
  const lines: string[] = []
  if (changed.length > 0) lines.push(`say "@@step	files"`)
  changed.forEach((c, i) => {
    const b64 = Buffer.from(c.file.content, 'utf8').toString('base64').replace(/.{1,76}/g, '$&\n')
    if (c.file.secret) lines.push(`echo "$STAGE/${i}" >> "$STAGE/secret"`)
    lines.push(
      `base64 -d > "$STAGE/${i}" <<'INFRA_EOF_${i}'`,
      b64.trimEnd(),
      `INFRA_EOF_${i}`,
      `chmod ${octal(c.file.mode)} "$STAGE/${i}"; chown ${shq(c.file.owner)}:${shq(c.file.group)} "$STAGE/${i}" 2>/dev/null || true`,
    )
  })
  // Before any file is installed: the services this run will reload or restart. A marker is
  // cleared only once its service passed the action (and its verify check); the fact script
  // reports the rest, so the next run reloads what an interrupted run did not.
  for (const svc of plan.services) {
    const action = svc.actions.includes('restart') ? 'restart' : svc.actions.includes('reload') ? 'reload' : undefined
    if (action) lines.push(`echo ${action} > "$PENDING"/${shq(svc.name)}`)
  }
  return lines
}

/** The arguments of `put`/`place` for a staged file: INDEX PATH MODE OWNER GROUP. */
function fileArgs(ctx: ScriptContext, c: FileChange): string {
  return `${ctx.indexOf.get(c)} ${shq(c.file.path)} ${octal(c.file.mode)} ${shq(c.file.owner)} ${shq(c.file.group)}`
}

function onFail(c: FileChange): string {
  return `|| { undo; say "@@error	could not install ${c.file.path}"; exit 5; }`
}

function putLine(ctx: ScriptContext, c: FileChange): string {
  return `put ${fileArgs(ctx, c)} ${onFail(c)}`
}

/**
 * Steps 3 and 4, and the install half of 5: plain files, then the validation of every staged file
 * that has a validator (after plain files such as certificates and error pages are in place), then
 * the validated files that are not guarded.
 */
function installAndValidateLines(ctx: ScriptContext): string[] {
  const validated = ctx.changed.filter((c) => c.file.validate && !isGuarded(c.file))
  const plain = ctx.changed.filter((c) => !c.file.validate && !isGuarded(c.file))
  const lines = plain.map((c) => putLine(ctx, c))
  for (const c of [...validated, ...ctx.guarded]) {
    if (!c.file.validate) continue
    const cmd = c.file.validate.replaceAll('{}', `"$STAGE/${ctx.indexOf.get(c)}"`)
    lines.push(
      `if ! ( ${cmd} ) > "$STAGE/check.log" 2>&1; then say "@@invalid	${c.file.path}"; out "$STAGE/check.log"; undo; exit 3; fi`,
    )
  }
  for (const c of validated) lines.push(putLine(ctx, c))
  return lines
}

/** Step 5 for guarded files: back up, write and arm the rollback timer, then install. */
function guardedLines(ctx: ScriptContext): string[] {
  const {guarded, guardedServices, liveDump, sd, run, unit, opts} = ctx
  if (guarded.length === 0) return []
  // Back up first, then arm: the timer must never restore a backup that is not there yet.
  const lines = guarded.map((c) => `backup ${shq(c.file.path)} ${onFail(c)}`)
  if (guardedServices.includes('nftables')) lines.push(`nft list ruleset > ${liveDump} 2>/dev/null || : > ${liveDump}`)
  const restore = guarded.map((c) => (c.before?.exists ? `cp -a "$PREV"${shq(c.file.path)} ${shq(c.file.path)}` : `rm -f ${shq(c.file.path)}`))
  const base = `${sd}/rollback-${run}`
  lines.push(
    `{ echo '#!/bin/sh'`,
    `echo '# Written by infra provision: restores the previous firewall/sshd files unless the change was confirmed.'`,
    // The same lock as the confirmation: one of the two wins, never both.
    `echo ${shq(`exec 9>>${base}.lock; flock 9; [ -e ${base}.confirmed ] && exit 0; echo started > ${base}.started`)}`,
    ...restore.map((l) => `echo ${shq(l.replaceAll('"$PREV"', `${sd}/prev/${run}`))}`),
    ...reapplyLines(guardedServices, liveDump).map((l) => `echo ${shq(l)}`),
    `echo ${shq(`logger -t infra "rolled back unconfirmed change ${run}"`)}`,
    `echo ${shq(`echo reverted > ${base}.done`)}`,
    `echo ${shq(releaseLock(`${sd}/lock`, run))}`,
    `} > ${shq(base + '.sh')}`,
    `systemd-run --quiet --unit=${unit} --on-active=${opts.guardSeconds}s --timer-property=AccuracySec=100ms /bin/sh ${shq(base + '.sh')} > "$STAGE/guard.log" 2>&1 || ` +
      `{ out "$STAGE/guard.log"; undo; say "@@error	could not arm the automatic rollback (systemd-run)"; exit 6; }`,
    `touch "$STAGE.armed"`,
    `say "@@armed	${unit}	${opts.guardSeconds}"`,
    `: > "$STAGE/guarded"`,
  )
  for (const c of guarded) lines.push(`place ${fileArgs(ctx, c)} ${onFail(c)}`)
  return lines
}

/** Step 6, first half: mode-only changes, removals, and a daemon-reload when a unit file changed. */
function modeAndRemoveLines({plan, changed}: ScriptContext): string[] {
  const lines: string[] = []
  for (const c of plan.files.filter((f) => f.kind === 'mode')) {
    lines.push(
      `chmod ${octal(c.file.mode)} ${shq(c.file.path)} && chown ${shq(c.file.owner)}:${shq(c.file.group)} ${shq(c.file.path)} && say "@@done	mode	${c.file.path}"`,
    )
  }
  for (const p of plan.remove) {
    lines.push(`d=$(dirname ${shq(p)}); install -d -m 0700 "$PREV$d"; cp -a ${shq(p)} "$PREV"${shq(p)} 2>/dev/null; rm -f -- ${shq(p)} && say "@@done	remove	${p}"`)
  }
  // daemon-reload when a unit file changed: DesiredFile.daemonReload, or any file under /etc/systemd.
  if (changed.some((c) => c.file.daemonReload || c.file.path.startsWith('/etc/systemd/'))) lines.push('systemctl daemon-reload')
  return lines
}

/** One service action: its check first (reload, restart, start), then systemctl, undoing the run on failure. */
function serviceActionLines(svc: ServiceChange, action: ServiceChange['actions'][number], desired: DesiredService | undefined): string[] {
  const name = shq(svc.name)
  const lines: string[] = []
  if (desired?.check && ['reload', 'restart', 'start'].includes(action)) {
    lines.push(
      `if ! ( ${desired.check} ) > "$STAGE/check.log" 2>&1; then say "@@invalid	${svc.name}"; out "$STAGE/check.log"; undo; exit 3; fi`,
    )
  }
  // A reload cannot move a listener the running service does not have yet (nginx keeps its
  // wildcard socket and refuses the new address): when the service does not pass its verify
  // check now, restart it at once rather than reload, wait, and restart anyway.
  lines.push(`act=${action}`)
  if (action === 'reload' && desired?.verify) lines.push(`( ${desired.verify} ) >/dev/null 2>&1 || act=restart`)
  lines.push(
    `verb=$act; [ "$act" = reload ] && verb=reload-or-restart`,
    `if ! systemctl "$verb" ${name} > "$STAGE/svc.log" 2>&1; then out "$STAGE/svc.log"; journalctl -u ${name} -n 5 --no-pager 2>/dev/null | sed 's/^/@@out\t/'; ` +
      `undo; systemctl reload-or-restart ${name} >/dev/null 2>&1; say "@@error	$act ${svc.name} failed; previous files restored"; exit 7; fi`,
    `say "@@done	service	${svc.name}	$act"`,
  )
  return lines
}

/** After a service's actions: wait for its verify check (one restart when a reload did not take effect). */
function serviceVerifyLines(svc: ServiceChange, desired: DesiredService | undefined): string[] {
  if (!desired?.verify || !svc.actions.some((a) => a !== 'stop' && a !== 'disable' && a !== 'enable')) return []
  const verify = desired.verify
  // A reload that did not take effect (e.g. a listener that moved) gets one restart.
  // (a reload is quick to show: give it 1.5 s before restarting; a start or restart gets 5 s)
  const wait = (tenths: string) =>
    `ok=0; for i in $(seq 1 ${tenths}); do if ( ${verify} ) >/dev/null 2>&1; then ok=1; break; fi; sleep 0.1; done`
  const reloading = svc.actions.includes('reload')
  return [
    reloading ? `n=50; [ "$act" = reload ] && n=15` : 'n=50',
    wait('$n'),
    ...(reloading
      ? [`if [ $ok = 0 ] && [ "$act" = reload ]; then systemctl restart ${shq(svc.name)} && say "@@done	service	${svc.name}	restart (the reload did not take effect)"; ${wait('50')}; fi`]
      : []),
    `[ $ok = 1 ] || { say "@@error	${svc.name} did not pass its check after ${svc.actions.join('/')}: ${verify.replaceAll('"', "'")}"; exit 8; }`,
  ]
}

/** Step 6, second half: the service actions, each clearing its pending marker once it passed. */
function serviceLines({plan, opts}: ScriptContext): string[] {
  const byName = new Map((opts.services ?? []).map((s) => [s.name, s]))
  const lines: string[] = []
  if (plan.services.length > 0) lines.push(`say "@@step	services"`)
  for (const svc of plan.services) {
    const desired = byName.get(svc.name)
    for (const action of svc.actions) lines.push(...serviceActionLines(svc, action, desired))
    lines.push(...serviceVerifyLines(svc, desired), `rm -f "$PENDING"/${shq(svc.name)}`)
  }
  return lines
}

export function applyScript(plan: HostPlan, opts: ApplyScriptOptions): string {
  const ctx = scriptContext(plan, opts)
  const out = [
    ...lockAndStageLines(ctx),
    ...trapLines(ctx),
    ...packageLines(ctx),
    ...stageLines(ctx),
    ...installAndValidateLines(ctx),
    ...guardedLines(ctx),
    ...modeAndRemoveLines(ctx),
    ...serviceLines(ctx),
    `touch ${ctx.sd === STATE_DIR ? PROVISIONED_MARKER : `${ctx.sd}/provisioned`}`,
    'say "@@ok"',
  ]
  return out.join('\n') + '\n'
}
