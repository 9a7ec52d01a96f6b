import { execFile } from 'node:child_process'
import { HoldfastError } from '../errors.js'
import type { VipAddress } from './address.js'

/**
 * The commands that own a VIP, as argv templates (run without a shell, so nothing in them is
 * interpreted: no quoting, globbing or pipes). Placeholders, replaced anywhere in an argument:
 * `{address}` ('10.0.0.100/24'), `{ip}` ('10.0.0.100'), `{prefix}` ('24'), `{device}` ('eth0'),
 * `{lft}` (VipOptions.lifetimeSec: '2', or 'forever'), and any name given in VipOptions.vars (for example a cloud's floating-IP id). An unknown
 * placeholder is refused when the manager is created.
 *
 * The defaults are for iproute2 and iputils arping. For a cloud floating IP, `add` and `remove`
 * call the provider's CLI to (dis)associate the address with this instance, `check` prints
 * something that VipOptions.isPresent understands, `announce` and `refresh` are null, and
 * VipOptions.lifetimeSec is 0 (a floating IP has no kernel lifetime).
 */
export interface VipCommands {
  /** Adds the address. Exit code 0 means done. */
  add: readonly string[]
  /** Removes the address. Exit code 0 means done. */
  remove: readonly string[]
  /**
   * Prints the current state; VipOptions.isPresent reads its stdout. A non-zero exit code is a
   * failure (reported), never "absent". null: the state cannot be observed, so the manager
   * trusts its own commands (and cannot notice a VIP removed or added behind its back).
   */
  check: readonly string[] | null
  /**
   * Tells the neighbours that the address moved (gratuitous ARP), run after every add and after
   * adopting an address already present. null: nothing to announce.
   */
  announce: readonly string[] | null
  /**
   * Extends the address's lifetime to `{lft}` seconds from now; run every lifetime / 4 while
   * holding, so that an address whose holder was killed expires by itself. A non-zero exit code is
   * a failure (reported; the next reconcile checks and adds the address back if it expired). null:
   * the address has no lifetime.
   */
  refresh: readonly string[] | null
}

/**
 * iproute2 + iputils arping. IPv6 has no default announcement (arping is IPv4 only). With
 * `lease` (the default, VipOptions.lifetimeSec > 0) the address is added with a lifetime of `{lft}`
 * seconds and refreshed with `ip addr change`; without, it is permanent and never refreshed.
 */
export function defaultVipCommands(family: 4 | 6, lease = true): VipCommands {
  const lifetime = lease ? ['valid_lft', '{lft}', 'preferred_lft', '{lft}'] : []
  return {
    add: ['ip', 'addr', 'add', '{address}', 'dev', '{device}', ...lifetime],
    remove: ['ip', 'addr', 'del', '{address}', 'dev', '{device}'],
    check: ['ip', '-o', 'addr', 'show', 'dev', '{device}'],
    // -U: unsolicited ARP, which updates every neighbour's cache entry for {ip}. arping waits its
    // one-second interval after the packet before exiting; the manager does not wait for it.
    announce: family === 4 ? ['arping', '-c', '1', '-U', '-I', '{device}', '{ip}'] : null,
    // `change` fails (ENOENT) if the address is gone, rather than adding it back behind the plan's back.
    refresh: lease ? ['ip', 'addr', 'change', '{address}', 'dev', '{device}', ...lifetime] : null,
  }
}

/** The placeholder values of one VIP. */
export function placeholderValues(vip: VipAddress, device: string, vars: Readonly<Record<string, string>> = {}, lifetimeSec = 0): Record<string, string> {
  return { ...vars, address: vip.address, ip: vip.ip, prefix: String(vip.prefix), device, lft: lifetimeSec > 0 ? String(lifetimeSec) : 'forever' }
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/** Replaces the placeholders of `template`; throws INVALID_ARGUMENT for an empty template or an unknown name. */
export function expandCommand(template: readonly string[], values: Readonly<Record<string, string>>): string[] {
  if (!Array.isArray(template) || template.length === 0 || !template.every((a) => typeof a === 'string')) {
    throw new HoldfastError('INVALID_ARGUMENT', 'a VIP command must be a non-empty array of strings (argv)')
  }
  const argv = template.map((arg) =>
    arg.replace(PLACEHOLDER, (_, name: string) => {
      const v = values[name]
      if (v === undefined) throw new HoldfastError('INVALID_ARGUMENT', `VIP command ${JSON.stringify(template)}: unknown placeholder {${name}}`)
      return v
    }),
  )
  if (argv[0] === '') throw new HoldfastError('INVALID_ARGUMENT', `VIP command ${JSON.stringify(template)}: empty program name`)
  return argv
}

/** How one command ended. */
export interface CommandResult {
  /** The exit code, or null when it was killed by a signal or never started. */
  exitCode: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Killed because it ran past its timeout. */
  timedOut: boolean
  /** Why it did not start or could not be waited for (ENOENT: program not found, ...). */
  error?: string
  durationMs: number
}

/** Runs argv (no shell) and reports how it ended; never rejects. */
export type CommandRunner = (argv: readonly string[], options: { timeoutMs: number }) => Promise<CommandResult>

/** Output kept from one command: enough for an event, bounded against a chatty program. */
const MAX_OUTPUT = 64 * 1024

/** The real runner: child_process.execFile, SIGKILL at the timeout. */
export const execFileRunner: CommandRunner = (argv, { timeoutMs }) =>
  new Promise((resolve) => {
    const started = performance.now()
    const [file, ...args] = argv
    execFile(file!, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT, encoding: 'utf8', windowsHide: true }, (err, stdout, stderr) => {
      const durationMs = performance.now() - started
      if (err === null) {
        resolve({ exitCode: 0, signal: null, stdout, stderr, timedOut: false, durationMs })
        return
      }
      const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: NodeJS.Signals | null }
      const exitCode = typeof e.code === 'number' ? e.code : null
      const timedOut = e.killed === true && exitCode === null && e.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
      resolve({
        exitCode,
        signal: e.signal ?? null,
        stdout: String(stdout ?? ''),
        stderr: String(stderr ?? ''),
        timedOut,
        ...(exitCode === null && !timedOut ? { error: e.message } : {}),
        durationMs,
      })
    })
  })
