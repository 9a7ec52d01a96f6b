/** A simulated host for VIP tests: a device's addresses, changed and shown as iproute2 does. */
import type { CommandResult, CommandRunner } from '../../src/vip/commands.js'

export const ok = (stdout = ''): CommandResult => ({ exitCode: 0, signal: null, stdout, stderr: '', timedOut: false, durationMs: 1 })
export const fail = (exitCode: number, stderr: string): CommandResult => ({ exitCode, signal: null, stdout: '', stderr, timedOut: false, durationMs: 1 })

/** One host's eth0, as iproute2 would show and change it. */
export class FakeHost {
  readonly addrs = new Set<string>(['10.0.0.11/24'])
  readonly calls: string[] = []
  /** Answers to force, by the command's first words ('ip addr add', 'arping', ...). */
  readonly force = new Map<string, CommandResult>()
  /** Announcements wait for this to be called (arping lingers for a second). */
  releaseArping: (() => void) | undefined
  holdArping = false

  readonly run: CommandRunner = async (argv) => {
    const line = argv.join(' ')
    this.calls.push(line)
    for (const [prefix, r] of this.force) if (line.startsWith(prefix)) return r
    const [prog, ...a] = argv
    if (prog === 'arping') {
      if (this.holdArping) await new Promise<void>((r) => (this.releaseArping = r))
      return ok()
    }
    if (prog !== 'ip') return { ...fail(127, ''), exitCode: null, error: `spawn ${prog} ENOENT` }
    if (a[0] === '-o' && a[1] === 'addr' && a[2] === 'show') {
      return ok([...this.addrs].map((x) => `2: eth0    inet ${x} scope global eth0\\       valid_lft forever preferred_lft forever`).join('\n') + '\n')
    }
    if (a[0] === 'addr' && a[1] === 'add') {
      if (this.addrs.has(a[2]!)) return fail(2, 'RTNETLINK answers: File exists\n')
      this.addrs.add(a[2]!)
      return ok()
    }
    if (a[0] === 'addr' && a[1] === 'change') {
      if (!this.addrs.has(a[2]!)) return fail(2, 'RTNETLINK answers: No such file or directory\n')
      return ok()
    }
    if (a[0] === 'addr' && a[1] === 'del') {
      if (!this.addrs.delete(a[2]!)) return fail(2, 'Error: ipv4: Address not found.\n')
      return ok()
    }
    return fail(1, `unexpected: ${line}`)
  }
}

