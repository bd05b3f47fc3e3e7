/** The one shell quoter of the tree: every word a generated script or command line carries goes through it. */

/** Single-quote a string for POSIX sh (`'...'`, each `'` written as `'\''`). */
export function shq(s: string): string {
  return `'${s.replaceAll("'", String.raw`'\''`)}'`
}

/** A word a shell reads as itself, so it needs no quotes (e.g. `ls`, `/etc/hosts`, `a=b`). */
export function isPlainWord(word: string): boolean {
  return word !== '' && /^[\w@%+=:,./-]+$/.test(word)
}

/** Quote a word only when it needs it: what a person would type (`ls -l '/tmp/a b'`). */
export function shellWord(word: string): string {
  return isPlainWord(word) ? word : shq(word)
}
