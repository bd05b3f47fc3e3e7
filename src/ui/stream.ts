/**
 * Streaming output of commands that run on several hosts (`exec`, `logs`): lines with a host
 * prefix, errors with their fix shown once, and Ctrl-C that stops the stream (src/ui/interrupt.ts).
 */

/**
 * Splits a byte stream into lines and writes each with a prefix (`web1 | `). A partial last
 * line is held until more data or `flush()`. Multi-byte characters split across chunks are kept
 * whole (decoding happens per complete line).
 */
export class LinePrefixer {
  private pending: Buffer = Buffer.alloc(0)

  constructor(
    private readonly prefix: string,
    private readonly write: (text: string) => void,
  ) {}

  push(chunk: Buffer | string): void {
    let buf = Buffer.concat([this.pending, typeof chunk === 'string' ? Buffer.from(chunk) : chunk])
    let nl: number
    let out = ''
    while ((nl = buf.indexOf(0x0a)) !== -1) {
      out += this.prefix + buf.subarray(0, nl).toString('utf8').replace(/\r$/, '') + '\n'
      buf = buf.subarray(nl + 1)
    }
    this.pending = buf
    if (out) this.write(out)
  }

  flush(): void {
    if (this.pending.length > 0) this.write(this.prefix + this.pending.toString('utf8') + '\n')
    this.pending = Buffer.alloc(0)
  }
}

/** `web1  | ` with names padded to the longest, so that columns line up. */
export function hostPrefix(name: string, width: number): string {
  return `${name.padEnd(width)} | `
}

/** One LinePrefixer per host and stream, writing to this process's stdout or stderr. */
export function hostStreams(width: number): {push(host: string, stream: 'stdout' | 'stderr', chunk: Buffer): void; flush(): void} {
  const prefixers = new Map<string, LinePrefixer>()
  return {
    push(host, stream, chunk) {
      const key = `${host}\0${stream}`
      let p = prefixers.get(key)
      if (!p) {
        const out = stream === 'stdout' ? process.stdout : process.stderr
        p = new LinePrefixer(hostPrefix(host, width), (t) => out.write(t))
        prefixers.set(key, p)
      }
      p.push(chunk)
    },
    flush() {
      for (const p of prefixers.values()) p.flush()
    },
  }
}

/**
 * Writes a host's error on stderr (`<prefix><label><message>`, then `<prefix>  → <hint>`); the same
 * fix for several hosts (e.g. the bastion is down) is shown once.
 */
export function errorPrinter(): (prefix: string, label: string, error: {message: string; hint?: string}) => void {
  const hints = new Set<string>()
  return (prefix, label, error) => {
    process.stderr.write(`${prefix}${label}${error.message}\n`)
    if (error.hint && !hints.has(error.hint)) process.stderr.write(`${prefix}  → ${error.hint}\n`)
    if (error.hint) hints.add(error.hint)
  }
}
