/**
 * The one fact protocol of the tree. A fact script (provision's, doctor's, status's) prints one
 * line per fact, `@@tag<TAB>field<TAB>field…`; multi-line values travel base64-encoded on one line.
 * Scripts are composed from the fragments below (pure strings, tested as such) and their output
 * is read with `factLines`, so every parser is a `switch` on the tag over the same lines.
 */

/** One `@@tag` line of a fact script's output. */
export interface FactLine {
  /** With its `@@`, e.g. `@@os`. */
  tag: string
  fields: string[]
}

/** The `@@` lines of a fact script's output, in order (any other line is ignored). */
export function factLines(out: string): FactLine[] {
  const lines: FactLine[] = []
  for (const line of out.split('\n')) {
    if (!line.startsWith('@@')) continue
    const [tag, ...fields] = line.split('\t')
    lines.push({tag: tag, fields})
  }
  return lines
}

/** Shell: `$(…)` that captures a command's output and errors, base64-encoded on one line. */
export function b64Capture(cmd: string): string {
  return `$( { ${cmd} ; } 2>&1 | base64 -w0)`
}

/** A base64 field back to text. */
export function unb64(s: string | undefined): string {
  return Buffer.from(s ?? '', 'base64').toString('utf8')
}

/** The first lines of every fact script: C locale, then the facts every caller wants. */
export const COMMON_FACTS = [
  'export LC_ALL=C',
  `printf '@@os\\t%s\\t%s\\t%s\\n' "$(. /etc/os-release 2>/dev/null; echo "$ID")" "$(. /etc/os-release 2>/dev/null; echo "$VERSION_ID")" "$(. /etc/os-release 2>/dev/null; echo "$PRETTY_NAME")"`,
  `printf '@@time\\t%s\\n' "$(date +%s)"`,
  `ip -4 -o addr show scope global 2>/dev/null | awk '{print "@@addr\\t" $2 "\\t" $4}'`,
] as const

export interface OsFact {
  id: string
  versionId: string
  prettyName: string
}

export interface AddressFact {
  iface: string
  address: string
  prefix: number
}

/** `@@os` fields → the OS. */
export function osFact(fields: string[]): OsFact {
  return {id: fields[0] ?? '', versionId: fields[1] ?? '', prettyName: fields[2] ?? ''}
}

/** `@@addr` fields (`eth0`, `10.0.0.2/24`) → one interface address. */
export function addressFact(fields: string[]): AddressFact {
  const [address, prefix] = (fields[1] ?? '').split('/')
  return {iface: fields[0] ?? '', address: address ?? '', prefix: Number(prefix)}
}
