import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'

import {shellWord} from '../../src/host/quote.js'
import {remoteCommand, shellJoin} from '../../src/ssh/command.js'

/** What a POSIX shell makes of a command line (the remote sshd hands it to the user's shell). */
function viaSh(line: string): string {
  return execFileSync('sh', ['-c', line], {encoding: 'utf8'})
}

describe('shell quoting', () => {
  it('leaves plain words alone and quotes the rest', () => {
    expect(shellWord('hostname')).toBe('hostname')
    expect(shellWord('/etc/ssh/sshd_config')).toBe('/etc/ssh/sshd_config')
    expect(shellWord('')).toBe("''")
    expect(shellWord("it's")).toBe(String.raw`'it'\''s'`)
  })

  it('round-trips awkward strings through a real shell', () => {
    for (const s of ["it's", 'a b', '$HOME', '`id`', 'a\nb', '"q"', '\\', '*', '; rm -rf /tmp/nothing', '']) {
      expect(viaSh(`printf %s ${shellWord(s)}`)).toBe(s)
    }
    expect(viaSh(`printf '%s|' ${shellJoin(['a b', "c'd", '$x'])}`)).toBe("a b|c'd|$x|")
  })
})

describe('remote command', () => {
  it('runs the command with bash -c, as root without sudo', () => {
    expect(remoteCommand('echo $0; exit 3', 'root')).toBe(String.raw`bash -c 'echo $0; exit 3'`)
  })

  it('uses sudo -n (never a password prompt) when the user is not root', () => {
    expect(remoteCommand('systemctl reload nginx', 'deploy')).toBe(`sudo -n bash -c 'systemctl reload nginx'`)
    expect(remoteCommand('id -u', 'deploy', {sudo: false})).toBe(`bash -c 'id -u'`)
  })

  it('keeps bash semantics whatever the login shell is', () => {
    // [[ ]] and $'..' are bash-only: through `sh -c` (as sshd would with a dash login shell) they still work.
    const out = viaSh(remoteCommand(String.raw`[[ a == a ]] && printf '%s' $'x\ty'; exit 4`, 'root') + '; echo " $?"')
    expect(out).toBe('x\ty 4\n')
  })
})
