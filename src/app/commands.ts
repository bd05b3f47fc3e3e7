/**
 * The shell commands of a deploy, built from values (Kamal's command builders): tested without a
 * host, run by src/tasks/deploy over SSH. Every script goes to `bash -s` on stdin, never on a
 * command line, so the env file (secrets) never shows in a process list.
 */
import {APP_PATHS, type UnitPaths, unitPaths} from '../host/paths.js'
import {shq} from '../host/quote.js'
import type {Inventory} from '../inventory/schema.js'

export interface ReleaseFiles {
  /** `docker create` arguments after infra-app's own, one per line: options, the image, the command. */
  run: string
  /** KEY=value lines (secrets included): written 0600. */
  env: string
  health: string
  /** The container's port (a site unit's release; the single app's is in infra-app itself). */
  port?: string
}

/** The single app's paths: every builder's default. */
const SINGLE = unitPaths()

/** The env file: app.env then the secrets, KEY=value (Docker's --env-file takes the rest of the line as the value). */
export function envFileText(inv: Inventory, secrets: Record<string, string>): string {
  const lines = Object.entries(inv.app?.env ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const name of inv.app?.secrets ?? []) lines.push(`${name}=${secrets[name] ?? ''}`)
  return lines.length > 0 ? lines.join('\n') + '\n' : ''
}

/** The files that describe a release on a node. */
export function releaseFiles(inv: Inventory, image: string, env: string, healthPath: string, unit?: {network?: string; key?: string}): ReleaseFiles {
  const app = inv.app!
  const args: string[] = []
  if (unit?.network) args.push(`--network=${unit.network}`)
  if (app.memory) args.push(`--memory=${app.memory}`)
  if (app.cpus !== undefined) args.push(`--cpus=${app.cpus}`)
  for (const v of app.volumes) args.push(`--volume=${v}`)
  args.push(image, ...(app.command ?? []))
  return {run: args.join('\n') + '\n', env, health: healthPath + '\n', ...(unit?.key ? {port: `${app.port}\n`} : {})}
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

/**
 * Writes a release's files on a node (env 0600, written before anything can read it), then
 * `infra-app pull`; with `login` (an outside registry with app.registry credentials), the pull
 * uses the login that loginCommand made (its own DOCKER_CONFIG).
 */
export function stageReleaseScript(id: string, files: ReleaseFiles, opts: {pull: boolean; login?: boolean; paths?: UnitPaths; nginxConf?: string}): string {
  const paths = opts.paths ?? SINGLE
  const put = (ext: string, text: string, mode: string) =>
    `{ umask 077; printf %s ${shq(b64(text))} | base64 -d > "$R/${id}.${ext}.tmp" && chmod ${mode} "$R/${id}.${ext}.tmp" && mv "$R/${id}.${ext}.tmp" "$R/${id}.${ext}"; } || { echo "writing $R/${id}.${ext} failed" >&2; exit 1; }`
  return [
    'set -e',
    `R=${paths.releasesDir}`,
    'mkdir -p -m 0700 "$R"',
    put('env', files.env, '600'),
    put('run', files.run, '644'),
    put('health', files.health, '644'),
    ...(files.port !== undefined ? [put('port', files.port, '644')] : []),
    ...(opts.nginxConf !== undefined && paths.nginxConf ? unitNginxLines(paths, opts.nginxConf) : []),
    'set +e',
    ...(opts.pull ? [`${opts.login ? `DOCKER_CONFIG=${APP_PATHS.registryLogin} ` : ''}${paths.script} pull ${shq(id)}`] : ['true']),
  ].join('\n')
}

/**
 * A unit's nginx server block: written when it changed (the upstream seeded when absent, so nginx
 * can load it), checked with `nginx -t` (the previous one is put back on failure) and loaded with
 * a graceful reload; the unit's switch rewrites the upstream later.
 */
function unitNginxLines(paths: UnitPaths, conf: string): string[] {
  const c = shq(paths.nginxConf!)
  const u = shq(paths.upstream)
  return [
    `mkdir -p "$(dirname ${c})"`,
    `[ -e ${u} ] || printf '# Seeded by infra deploy (no release switched yet).\\nserver 127.0.0.1:9;\\n' > ${u}`,
    `printf %s ${shq(b64(conf))} | base64 -d > ${c}.new`,
    `if ! cmp -s ${c}.new ${c}; then`,
    `  [ -e ${c} ] && cp -p ${c} ${c}.prev`,
    `  mv ${c}.new ${c}`,
    `  if ! nginx -t -q 2>/tmp/infra-nginx-t.$$; then cat /tmp/infra-nginx-t.$$ >&2; rm -f /tmp/infra-nginx-t.$$; if [ -e ${c}.prev ]; then mv ${c}.prev ${c}; else rm -f ${c}; fi; echo "nginx -t refused the unit's server block" >&2; exit 1; fi`,
    `  rm -f /tmp/infra-nginx-t.$$ ${c}.prev`,
    '  systemctl is-active -q nginx && systemctl reload nginx',
    'else rm -f ' + `${c}.new; fi`,
  ]
}

/** Prints a release's three files on a node, base64 on one `@@relfile` line each (read by parseReleaseFiles; never printed). */
export function readReleaseFilesScript(id: string, paths: UnitPaths = SINGLE): string {
  return ['set -e', `R=${paths.releasesDir}`, `for e in env run health; do [ -r "$R/"${shq(id)}".$e" ] || { echo "release ${id} has no .$e file here" >&2; exit 1; }; done`, ...(['env', 'run', 'health'] as const).map((ext) => `printf '@@relfile\\t%s\\t%s\\n' ${ext} "$(base64 -w0 < "$R/"${shq(id)}.${ext})"`)].join('\n')
}

/** The files readReleaseFilesScript printed, or undefined when one is missing. */
export function parseReleaseFiles(out: string): ReleaseFiles | undefined {
  const got = new Map<string, string>()
  for (const line of out.split('\n')) {
    const [tag, ext, data] = line.split('\t')
    if (tag === '@@relfile' && ext && data !== undefined) got.set(ext, Buffer.from(data, 'base64').toString('utf8'))
  }
  const [env, run, health] = [got.get('env'), got.get('run'), got.get('health')]
  return env !== undefined && run && health ? {env, run, health} : undefined
}

/**
 * The release command (app.release) in a one-off container of the release: its env file, its
 * volumes and limits (a migration sees the data the app sees), output to the journal
 * (tag app-release). Named, so a run left behind by a lost connection is removed by the next one.
 */
export function releaseCommand(id: string, image: string, app: NonNullable<Inventory['app']>, paths: UnitPaths = SINGLE, network?: string): string {
  const name = shq(`${paths.containerPrefix}-release-${id}`)
  return [
    `docker rm -f ${name} >/dev/null 2>&1;`,
    `docker run --rm --name ${name} --log-driver journald --log-opt tag=app-release`,
    `--env-file ${paths.releasesDir}/${shq(id)}.env`,
    ...(network ? [`--network=${shq(network)}`] : []),
    ...(app.memory ? [`--memory=${shq(app.memory)}`] : []),
    ...(app.cpus !== undefined ? [`--cpus=${app.cpus}`] : []),
    ...app.volumes.map((v) => `--volume=${shq(v)}`),
    shq(image),
    ...(app.release ?? []).map((w) => shq(w)),
  ].join(' ')
}

/** `infra-app VERB ARGS…` (IDs are checked by isReleaseId before they get here). */
export function appCommand(verb: string, ...args: (string | number)[]): string {
  return unitCommand(SINGLE, verb, ...args)
}

/** `infra-app [-u KEY] VERB ARGS…` for a deploy unit. */
export function unitCommand(paths: UnitPaths, verb: string, ...args: (string | number)[]): string {
  return [paths.script, verb, ...args.map((a) => shq(String(a)))].join(' ')
}

/**
 * Logs in a node's Docker to an outside registry (app.registry): run as the command itself, with
 * the password as its stdin (never in an argument); the login goes to a DOCKER_CONFIG of its own
 * (0700), so root's config.json (the fleet registry's, managed by provision) is left alone.
 */
export function loginCommand(registry: string, user: string): string {
  const dir = APP_PATHS.registryLogin
  return `umask 077 && mkdir -p ${dir} && chmod 700 ${dir} && DOCKER_CONFIG=${dir} docker login ${shq(registry)} --username ${shq(user)} --password-stdin >/dev/null`
}

// --- the bastion: lock, history, images --------------------------------------------------------

export interface LockInfo {
  holder: string
  run: string
  /** Unix seconds. */
  since: number
  what: string
}

/**
 * Takes the deploy lock: prints `@@locked` when taken, or `@@held<TAB>base64(lock)` when someone
 * else holds it. `takeOver` (a stale lock) replaces a lock whose run is `takeOver`.
 */
export function lockScript(info: LockInfo, takeOver?: string, paths: UnitPaths = SINGLE): string {
  const json = JSON.stringify(info)
  return [
    `L=${paths.deployLock}`,
    'mkdir -p "$(dirname "$L")"',
    ...(takeOver ? [`grep -qF ${shq(`"run":${JSON.stringify(takeOver)}`)} "$L" 2>/dev/null && rm -f "$L"`] : []),
    `if ( set -o noclobber; printf '%s\\n' ${shq(json)} > "$L" ) 2>/dev/null; then echo @@locked; else printf '@@held\\t%s\\n' "$(base64 -w0 < "$L")"; fi`,
  ].join('\n')
}

/** Releases the lock if this run still holds it. */
export function unlockScript(run: string, paths: UnitPaths = SINGLE): string {
  return `L=${paths.deployLock}; grep -qF ${shq(`"run":${JSON.stringify(run)}`)} "$L" 2>/dev/null && rm -f "$L"; true`
}

export function readHistoryCommand(paths: UnitPaths = SINGLE): string {
  return `cat ${paths.history} 2>/dev/null || true`
}

export function writeHistoryScript(text: string, paths: UnitPaths = SINGLE): string {
  const f = paths.history
  return `set -e; mkdir -p "$(dirname ${f})"; printf %s ${shq(b64(text))} | base64 -d > ${f}.tmp; mv ${f}.tmp ${f}`
}

/** Builds the context read from stdin (a tar) on the bastion's Docker; prints the image ID last. */
export function buildCommand(tag: string, version: string): string {
  return `docker build --quiet --build-arg VERSION=${shq(version)} --label infra.version=${shq(version)} --tag ${shq(tag)} -`
}

/** Pushes `tag` to the fleet registry and prints `@@digest<TAB>sha256:…`. */
export function pushScript(tag: string): string {
  return [
    `out=$(docker push ${shq(tag)} 2>&1) || { printf '%s\\n' "$out" | tail -n 5 >&2; exit 1; }`,
    `d=$(printf '%s\\n' "$out" | sed -n 's/.*digest: \\(sha256:[0-9a-f]\\{64\\}\\).*/\\1/p' | tail -n 1)`,
    `[ -n "$d" ] || d=$(docker inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' ${shq(tag)} | sed -n 's/.*@//p' | head -n 1)`,
    `printf '@@digest\\t%s\\n' "$d"`,
  ].join('\n')
}

/** Loads a `docker save` archive from stdin, tags its (first) image `tag`; prints `@@loaded<TAB>name`. */
export function loadArchiveScript(tag: string): string {
  return [
    `out=$(docker load 2>&1) || { printf '%s\\n' "$out" | tail -n 5 >&2; exit 1; }`,
    `img=$(printf '%s\\n' "$out" | sed -n 's/^Loaded image: //p; s/^Loaded image ID: //p' | head -n 1)`,
    `[ -n "$img" ] || { echo "the archive holds no image (docker load said: $(printf '%s' "$out" | tail -n 1))" >&2; exit 1; }`,
    `docker tag "$img" ${shq(tag)}`,
    `printf '@@loaded\\t%s\\n' "$img"`,
  ].join('\n')
}

/** Pulls `image` on the bastion and prints its digest (`@@digest`), for `--version` of an image already in a registry. */
export function resolveScript(image: string): string {
  return [
    `out=$(docker pull --quiet ${shq(image)} 2>&1) || { printf '%s\\n' "$out" | tail -n 3 >&2; exit 1; }`,
    `d=$(docker inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' ${shq(image)} | sed -n 's/.*@//p' | head -n 1)`,
    `printf '@@digest\\t%s\\n' "$d"`,
  ].join('\n')
}

/**
 * The fleet registry keeps the images of the newest releases only: deletes the manifests of the
 * given digests (credentials from root's Docker config, on curl's stdin), then garbage-collects
 * with the registry stopped (the deploy lock is held: nothing pushes or pulls meanwhile).
 */
export function registryGcScript(address: string, repositoryPath: string, digests: string[], localTags: string[]): string {
  if (digests.length === 0 && localTags.length === 0) return 'true'
  const ca = `${APP_PATHS.dockerCertsDir}/${address}/ca.crt`
  return [
    `auth=$(sed -n 's/.*"auth": *"\\([^"]*\\)".*/\\1/p' ${APP_PATHS.dockerAuth} | head -n 1 | base64 -d)`,
    'n=0',
    ...digests.map(
      (d) =>
        `printf 'user = "%s"\\n' "$auth" | curl -s -o /dev/null -w '%{http_code}' -K - --cacert ${ca} -X DELETE ${shq(`https://${address}/v2/${repositoryPath}/manifests/${d}`)} | grep -qE '^(202|404)$' && n=$((n + 1))`,
    ),
    ...localTags.map((t) => `docker rmi ${shq(t)} >/dev/null 2>&1 || true`),
    ...(digests.length > 0
      ? [
          `systemctl stop docker-registry && docker-registry garbage-collect --delete-untagged ${APP_PATHS.registryConfig} >/dev/null 2>&1; systemctl start docker-registry`,
          `for i in $(seq 1 20); do [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert ${ca} https://${address}/v2/)" = 401 ] && break; sleep 0.25; done`,
        ]
      : []),
    'docker image prune --force >/dev/null 2>&1 || true',
    `printf '@@gc\\t%s\\n' "$n"`,
  ].join('\n')
}
