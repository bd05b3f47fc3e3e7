/** Hashes of the host vocabulary: file contents (the facts compare them) and key fingerprints. */
import {createHash} from 'node:crypto'

/** Hex sha256 of a text (utf8), as `sha256sum` prints it. */
export function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex')
}

/** An SSH key's fingerprint as OpenSSH prints it: `SHA256:` + unpadded base64 of the key blob's sha256. */
export function sshFingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}
