import { EventEmitter } from 'node:events'
import createDebug from 'debug'
import { HoldfastError } from '../errors.js'
import { iproute2HasAddress, parseVipAddress, type VipAddress } from './address.js'
import { defaultVipCommands, execFileRunner, expandCommand, placeholderValues, type CommandResult, type CommandRunner, type VipCommands } from './commands.js'
import type { VipAction, VipEvent, VipStepName } from './events.js'
import { planVip, type VipStep } from './plan.js'

const log = createDebug('holdfast:vip')

/** @default 1000 */
export const DEFAULT_VIP_RECONCILE_MS = 1_000
/** @default 2000 */
export const DEFAULT_VIP_COMMAND_TIMEOUT_MS = 2_000
/** @default 0 (announce only when starting to hold) */
export const DEFAULT_VIP_ANNOUNCE_EVERY_MS = 0
/** @default 2 (seconds) */
export const DEFAULT_VIP_LIFETIME_SEC = 2
/** The lifetime is refreshed this often, as a fraction of it, and never more often than every 250 ms. */
const REFRESH_FRACTION = 4
const MIN_REFRESH_MS = 250

/** The `vip` option: a virtual IP address that follows the acting node. */
export interface VipOptions {
  /** The address with its prefix length, as `ip addr add` takes it: '10.0.0.100/24'. */
  address: string
  /** The network device: 'eth0'. */
  device: string
  /** Replaces some or all of the iproute2/arping command templates (see VipCommands). @default defaultVipCommands() */
  commands?: Partial<VipCommands>
  /** Extra placeholder values for custom templates. */
  vars?: Record<string, string>
  /**
   * Reads the check command's stdout: is the VIP on this node? Needed with a custom `check`.
   * @default iproute2HasAddress (the address with its prefix length in `ip -o addr show` output)
   */
  isPresent?: (stdout: string, vip: VipAddress) => boolean
  /**
   * How often the manager compares the host with what it wants, in ms: a VIP removed behind its
   * back comes back while acting; a VIP present while not acting goes.
   * @default 1000
   */
  reconcileMs?: number
  /** Re-send the announcement this often while holding, in ms; 0: only when starting to hold. @default 0 */
  announceEveryMs?: number
  /** Each command is killed (SIGKILL) after this long and reported as failed. @default 2000 */
  commandTimeoutMs?: number
  /**
   * The address is a kernel lease: added with `valid_lft`/`preferred_lft` of this many whole
   * seconds (the `{lft}` placeholder) and refreshed (`ip addr change`, the `refresh` template)
   * every lifetime / 4 while held, so the address of a holder that was SIGKILLed expires by itself
   * about lifetime + 1 s (kernel rounding) after its last refresh. Keep lifetime + 1 s below the
   * election timeout, or that address can overlap the next holder's. 0 or 'forever': a permanent
   * address, never refreshed (today's behaviour; for templates that cannot do lifetimes, such as a
   * cloud floating IP). With a custom `add` and no custom `refresh`, nothing is refreshed, so a
   * custom `add` that uses {lft} needs a `refresh`.
   * @default 2
   */
  lifetimeSec?: number | 'forever'
}

/** Dependencies of a VipManager, for tests. */
export interface VipManagerDeps {
  /** Runs a command. @default execFileRunner (child_process.execFile, no shell) */
  run?: CommandRunner
  /** A monotonic clock, ms (announcement refresh). @default performance.now */
  now?: () => number
  /** Wall-clock time for events, ms since the epoch. @default Date.now */
  wallClock?: () => number
}

/** What the manager knows, for status pages and tests. */
export interface VipStatus {
  address: string
  device: string
  /** It should hold the VIP (acquire() without release() since). */
  desired: boolean
  /** What the last check saw; undefined if it could not tell. */
  observed: boolean | undefined
  /** What its own commands last left. */
  believed: boolean | undefined
  token: number | undefined
}

/**
 * Owns a VIP on this host: adds it and announces it when the node starts acting (acquire), removes
 * it when it stops (release), and reconciles every `reconcileMs` so the host converges on what is
 * wanted whatever happened in between (the address removed by hand, or left behind by a killed
 * process). Decisions come from planVip() (pure); this class only observes and runs commands.
 *
 * Passes (check, plan, run) are serialised: one at a time, and a pass requested while another is
 * waiting joins it. Every command failure is an event ('commandFailed'), and so is every change.
 * Announcements run in the background: arping lingers for a second after its packet, and neither
 * acquire() nor release() waits for that.
 */
export class VipManager extends EventEmitter {
  readonly vip: VipAddress
  readonly device: string
  readonly #commands: VipCommands
  readonly #values: Record<string, string>
  readonly #isPresent: (stdout: string, vip: VipAddress) => boolean
  readonly #reconcileMs: number
  readonly #announceEveryMs: number
  readonly #timeoutMs: number
  readonly #run: CommandRunner
  readonly #now: () => number
  readonly #wallClock: () => number

  #desired = false
  #token: number | undefined
  #observed: boolean | undefined
  #believed: boolean | undefined
  #announced = false
  #lastAnnounceAt: number | undefined
  readonly #lifetimeSec: number
  readonly #refreshEveryMs: number
  /** When the lifetime was last set (add or refresh) while holding; undefined otherwise. */
  #lastRefreshAt: number | undefined
  #refreshTimer: NodeJS.Timeout | undefined
  /** The next pass only refreshes (and re-announces) what is held, without the check command. */
  #refreshOnly = false
  /** The tail of the pass queue. */
  #tail: Promise<void> = Promise.resolve()
  /** A pass queued and not yet started: later requests join it. */
  #waiting: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #background = new Set<Promise<void>>()
  #lastFailure: VipEvent | undefined
  #closed = false
  /** release() asked for the next pass to remove what this manager added without checking first. */
  #fastRelease = false

  constructor(options: VipOptions, deps: VipManagerDeps = {}) {
    super()
    if (options === null || typeof options !== 'object') throw new HoldfastError('INVALID_ARGUMENT', 'vip options must be an object')
    this.vip = parseVipAddress(options.address)
    if (typeof options.device !== 'string' || !/^[^\s/]{1,64}$/.test(options.device)) throw new HoldfastError('INVALID_ARGUMENT', `vip.device '${String(options.device)}' is not a device name`)
    this.device = options.device
    const lft = options.lifetimeSec ?? DEFAULT_VIP_LIFETIME_SEC
    if (!(lft === 'forever' || (Number.isInteger(lft) && lft >= 0))) throw new HoldfastError('INVALID_ARGUMENT', "vip.lifetimeSec must be a whole number of seconds, 0 or 'forever'")
    this.#lifetimeSec = lft === 'forever' ? 0 : lft
    const defaults = defaultVipCommands(this.vip.family, this.#lifetimeSec > 0)
    // A custom add is not an iproute2 address that `ip addr change` could refresh.
    if (options.commands?.add !== undefined && options.commands.refresh === undefined) defaults.refresh = null
    this.#commands = { ...defaults, ...options.commands }
    if (this.#lifetimeSec > 0 && this.#commands.refresh === null && this.#commands.add.some((a) => a.includes('{lft}'))) {
      throw new HoldfastError('INVALID_ARGUMENT', 'a vip add command with a lifetime ({lft}) needs a refresh command, or the address expires while held')
    }
    this.#refreshEveryMs = Math.max(MIN_REFRESH_MS, (this.#lifetimeSec * 1000) / REFRESH_FRACTION)
    if (options.commands?.check !== undefined && options.commands.check !== null && options.isPresent === undefined) {
      throw new HoldfastError('INVALID_ARGUMENT', 'a custom vip check command needs isPresent, which reads its output')
    }
    this.#values = placeholderValues(this.vip, this.device, options.vars, this.#lifetimeSec)
    // Expand every template once now, so an unknown placeholder is refused before anything runs.
    for (const name of ['add', 'remove', 'check', 'announce', 'refresh'] as const) {
      const template = this.#commands[name]
      if (template === null && (name === 'check' || name === 'announce' || name === 'refresh')) continue
      expandCommand(template as readonly string[], this.#values)
    }
    this.#isPresent = options.isPresent ?? iproute2HasAddress
    this.#reconcileMs = positive(options.reconcileMs ?? DEFAULT_VIP_RECONCILE_MS, 'reconcileMs')
    this.#announceEveryMs = options.announceEveryMs ?? DEFAULT_VIP_ANNOUNCE_EVERY_MS
    if (!(this.#announceEveryMs >= 0)) throw new HoldfastError('INVALID_ARGUMENT', 'vip.announceEveryMs must be 0 or more')
    this.#timeoutMs = positive(options.commandTimeoutMs ?? DEFAULT_VIP_COMMAND_TIMEOUT_MS, 'commandTimeoutMs')
    this.#run = deps.run ?? execFileRunner
    this.#now = deps.now ?? (() => performance.now())
    this.#wallClock = deps.wallClock ?? Date.now
  }

  /** Starts reconciling every `reconcileMs` (a first pass runs now: it removes a stale VIP at start-up). */
  start(): this {
    if (this.#closed) throw new HoldfastError('CLOSED', 'the VIP manager is closed')
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.reconcile(), this.#reconcileMs)
      this.#timer.unref()
      if (this.#canRefresh) {
        // Ticks at half the refresh interval, so a refresh is never more than 1.5 intervals late.
        this.#refreshTimer = setInterval(() => this.#refreshTick(), this.#refreshEveryMs / 2)
        this.#refreshTimer.unref()
      }
      void this.reconcile()
    }
    return this
  }

  get #canRefresh(): boolean {
    return this.#lifetimeSec > 0 && this.#commands.refresh !== null
  }

  /** Queues a pass that refreshes the lifetime if it is due, without checking first. */
  #refreshTick(): void {
    if (!this.holding || this.#waiting !== undefined) return // a queued pass refreshes as well
    void this.#queue()
    this.#refreshOnly = true
  }

  /**
   * Starts holding the VIP under `token`: adds the address unless it is already there, then
   * announces it. Resolves once the address is on this host; rejects (COMMAND_FAILED) if it could
   * not be added, so an acting handler built on it fails rather than act without its address.
   */
  async acquire(token?: number): Promise<void> {
    if (this.#closed) throw new HoldfastError('CLOSED', 'the VIP manager is closed')
    this.#desired = true
    this.#token = token
    this.#announced = false // a new holding is announced, even if the address never left
    await this.reconcile()
    if (this.#desired && this.#believed !== true) {
      const f = this.#lastFailure
      const why = f ? `${f.command?.join(' ')}: ${f.timedOut ? 'timed out' : (f.error ?? `exit code ${f.exitCode}`)}${f.stderr ? `: ${f.stderr.trim()}` : ''}` : 'unknown failure'
      throw new HoldfastError('COMMAND_FAILED', `could not add VIP ${this.vip.address} on ${this.device}: ${why}`)
    }
  }

  /**
   * Stops holding the VIP: removes the address (one command: an address this manager added is
   * removed without checking first). Resolves true once it is gone as far as this host shows, false
   * if the removal failed (reported as 'commandFailed'; the reconcile keeps trying). Never rejects:
   * it runs on the path that stops acting.
   */
  async release(): Promise<boolean> {
    this.#desired = false
    this.#fastRelease = true
    await this.reconcile() // its events still carry the token released
    if (!this.#desired) this.#token = undefined
    return !this.#desired && (this.#observed ?? this.#believed) !== true
  }

  /** One pass now: check, plan, act. Joins a pass that is queued and has not started. */
  reconcile(): Promise<void> {
    this.#refreshOnly = false // a queued refresh-only pass checks after all
    return this.#queue()
  }

  #queue(): Promise<void> {
    if (this.#waiting !== undefined) return this.#waiting
    const pass = this.#tail
      .then(() => {
        this.#waiting = undefined
        return this.#pass()
      })
      .catch((err) => log('reconcile failed: %O', err))
    this.#waiting = pass
    this.#tail = pass
    return pass
  }

  /** What the manager knows now. */
  status(): VipStatus {
    return { address: this.vip.address, device: this.device, desired: this.#desired, observed: this.#observed, believed: this.#believed, token: this.#token }
  }

  /** Whether this node holds the VIP as far as it knows (wanted, and added or found present). */
  get holding(): boolean {
    return this.#desired && this.#believed === true
  }

  /** Stops reconciling. Releases the VIP first if it is held, then waits for running commands. */
  async close(): Promise<void> {
    if (this.#closed) return
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    if (this.#refreshTimer !== undefined) clearInterval(this.#refreshTimer)
    this.#refreshTimer = undefined
    if (this.#desired) await this.release()
    this.#closed = true
    await this.#tail
    await Promise.all([...this.#background])
  }

  async #pass(): Promise<void> {
    if (this.#closed) return
    // Releasing an address this manager added: remove it at once, without a check first. It is the
    // path that stops acting, which must finish before another node can take over; a removal that
    // fails (someone removed it already) is reported, and the next pass checks.
    const fastRelease = this.#fastRelease && !this.#desired && this.#believed === true
    this.#fastRelease = false
    // A refresh tick while holding: plan on what the own commands left (a failed refresh is
    // reported, and the next full pass checks).
    const refreshOnly = this.#refreshOnly && this.holding
    this.#refreshOnly = false
    let observed: boolean | undefined
    if (this.#commands.check !== null && !fastRelease && !refreshOnly) {
      const r = await this.#exec('check', this.#commands.check)
      if (r !== undefined) observed = this.#isPresent(r.stdout, this.vip)
    }
    if (!refreshOnly) this.#observed = observed
    if (!this.holding) this.#lastRefreshAt = undefined
    // The desire read after the check: an acquire() or release() meanwhile is acted on at once.
    const steps = planVip({
      desired: this.#desired,
      observed,
      believed: this.#believed,
      announced: this.#announced,
      canAnnounce: this.#commands.announce !== null,
      sinceAnnounceMs: this.#lastAnnounceAt === undefined ? undefined : this.#now() - this.#lastAnnounceAt,
      announceEveryMs: this.#announceEveryMs,
      canRefresh: this.#canRefresh,
      sinceRefreshMs: this.#lastRefreshAt === undefined ? undefined : this.#now() - this.#lastRefreshAt,
      refreshEveryMs: this.#refreshEveryMs,
    })
    for (const step of steps) {
      if (!(await this.#step(step))) return
    }
  }

  /** Runs one step; false ends the plan. */
  async #step(step: VipStep): Promise<boolean> {
    switch (step.op) {
      case 'add': {
        const started = this.#now()
        const r = await this.#exec('add', this.#commands.add)
        if (r === undefined) return false
        this.#lastRefreshAt = started // the add set the lifetime
        this.#believed = true
        this.#observed = true
        this.#announced = false
        this.#report(step.why === 'acquire' ? 'added' : 'restored', { why: step.why, step: 'add', command: this.#argv(this.#commands.add), durationMs: r.durationMs })
        return true
      }
      case 'remove': {
        const r = await this.#exec('remove', this.#commands.remove)
        if (r === undefined) return false
        this.#believed = false
        this.#observed = false
        this.#lastRefreshAt = undefined
        this.#report(step.why === 'release' ? 'removed' : 'removedStale', { why: step.why, step: 'remove', command: this.#argv(this.#commands.remove), durationMs: r.durationMs })
        return true
      }
      case 'adopt':
        this.#believed = true
        this.#announced = false
        this.#report('adopted', {})
        return true
      case 'refresh': {
        // Not an event when it works: it runs every lifetime / 4. A failure is ('commandFailed').
        const template = this.#commands.refresh
        if (template === null) return true
        const started = this.#now()
        const r = await this.#exec('refresh', template)
        if (r === undefined) return false
        this.#lastRefreshAt = started
        return true
      }
      case 'announce': {
        const template = this.#commands.announce
        if (template === null) return true
        this.#announced = true
        this.#lastAnnounceAt = this.#now()
        const running = this.#exec('announce', template).then((r) => {
          if (r !== undefined) this.#report('announced', { why: step.why, step: 'announce', command: this.#argv(template), durationMs: r.durationMs })
        })
        this.#background.add(running)
        void running.finally(() => this.#background.delete(running))
        return true
      }
    }
  }

  #argv(template: readonly string[]): string[] {
    return expandCommand(template, this.#values)
  }

  /** Runs a command; undefined (after a 'commandFailed' event) unless it exited 0. */
  async #exec(step: VipStepName, template: readonly string[]): Promise<CommandResult | undefined> {
    const argv = this.#argv(template)
    let r: CommandResult
    try {
      r = await this.#run(argv, { timeoutMs: this.#timeoutMs })
    } catch (err) {
      // A runner must not throw; a custom one that does is reported like a command that did not start.
      r = { exitCode: null, signal: null, stdout: '', stderr: '', timedOut: false, error: err instanceof Error ? err.message : String(err), durationMs: 0 }
    }
    log('%s: %o -> exit %s%s (%d ms)', step, argv, r.exitCode, r.timedOut ? ' timed out' : '', Math.round(r.durationMs))
    if (r.exitCode === 0) return r
    this.#lastFailure = this.#report('commandFailed', {
      step,
      command: argv,
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut: r.timedOut,
      stderr: r.stderr.slice(-4096),
      ...(r.error !== undefined ? { error: r.error } : {}),
      durationMs: r.durationMs,
    })
    return undefined
  }

  #report(action: VipAction, details: Partial<VipEvent>): VipEvent {
    const e: VipEvent = {
      type: 'vip',
      action,
      time: this.#wallClock(),
      address: this.vip.address,
      device: this.device,
      ...(this.#token !== undefined ? { token: this.#token } : {}),
      ...details,
    }
    if (action === 'commandFailed') log('command failed: %o', e)
    else log('%s %s on %s', action, this.vip.address, this.device)
    this.emit('event', e)
    return e
  }
}

function positive(n: number, name: string): number {
  if (!(typeof n === 'number' && n > 0 && Number.isFinite(n))) throw new HoldfastError('INVALID_ARGUMENT', `vip.${name} must be a positive number of ms`)
  return n
}
