import createDebug from 'debug'
import { HoldfastError, isHoldfastError } from '../errors.js'
import type { ActingAuthority } from './authority.js'
import type { ActingStopReason, BuiltinEvent, EventFields } from './events.js'

const log = createDebug('holdfast:acting')

/** What an acting handler is given. */
export interface ActingContext {
  /**
   * The fencing token of this acting period: greater than that of any other node's earlier acting
   * period (the same node may act again under its token after a lease lapse within its term).
   * Pass it with writes (`{ fence: token }`) and to external systems that can refuse older tokens.
   */
  readonly token: number
  /**
   * Aborts when this node must stop acting: leadership lost, lease not renewed (before any other
   * node can be elected), a hand-over, close(), a failed handler, or this handler unregistered.
   */
  readonly signal: AbortSignal
}

/** Called after the signal aborted, to stop what the handler started; awaited up to the grace period. */
export type ActingStop = () => void | Promise<void>

/**
 * Work that runs only on the acting node. It resolves once it has *started* (the node reports
 * itself acting when every handler has); long-running work it starts must watch `signal`. It may
 * resolve with a stop function, called once the signal aborts.
 */
export type ActingHandler = (ctx: ActingContext) => void | ActingStop | Promise<void | ActingStop>

/** Options of one onActing() registration. */
export interface ActingHandlerOptions {
  /** A name for events and logs. @default "handler-<n>" */
  name?: string
  /** How long its start may take; past it, it counts as failed. @default NodeOptions.actingTimeoutMs */
  timeoutMs?: number
  /**
   * Handlers start by ascending `order`, then in registration order. Components built into holdfast
   * (the VIP manager) use it to place themselves before or after the service's handlers.
   * @default 0
   */
  order?: number
}

/** The event fields the controller supplies; the node adds time, node and term. */
export type ControllerEvent = EventFields<BuiltinEvent>

export interface ActingControllerOptions {
  authority: ActingAuthority
  /** Default start timeout per handler, ms. */
  timeoutMs: number
  /** How long handlers get to stop after an abort, ms. */
  graceMs: number
  /** A monotonic clock, ms. */
  now: () => number
  emit: (e: ControllerEvent) => void
}

interface Registration {
  readonly seq: number
  readonly name: string
  readonly handler: ActingHandler
  readonly order: number
  readonly timeoutMs: number | undefined
}

interface Run {
  readonly reg: Registration
  readonly ac: AbortController
  /** Settles when the handler's start settles; resolves with its stop function, if any. */
  readonly started: Promise<ActingStop | undefined>
  /** Set once stopping began (memoised: a run is stopped once). */
  stopping: Promise<void> | undefined
  done: boolean
  unregistered: boolean
  /** Resolves when the handler is unregistered, so a start waiting on it moves on. */
  readonly released: Promise<void>
  release: () => void
}

interface Session {
  readonly token: number
  readonly abort: AbortController
  readonly eligibleAt: number
  phase: 'starting' | 'acting' | 'stopping'
  readonly runs: Map<Registration, Run>
  /** Serialises handlers registered while acting. */
  chain: Promise<void>
  stopping: Promise<void> | undefined
}

class HandlerFailure extends Error {
  constructor(
    readonly reg: Registration,
    readonly error: unknown,
  ) {
    super(`acting handler '${reg.name}' failed: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/**
 * Runs the acting handlers on the node the ActingAuthority picks. Per acting period (a "session"):
 *
 *   eligible (authority.candidate()) → establish the token as the fence → start handlers in order,
 *   each within its timeout → acting ('actingStart') → … → abort (authority.holds() false, a
 *   hand-over or close) → 'actingStop', the signal aborts, stop functions run, up to graceMs →
 *   'actingStopped'.
 *
 * A handler that throws or times out aborts the session; after the grace period the node gives up
 * its authority (authority.relinquish()) and does not act again under that token. A session starts
 * only after the previous one finished stopping, so a node never runs two sets of handlers.
 */
export class ActingController {
  readonly #authority: ActingAuthority
  readonly #opts: ActingControllerOptions
  #regs: Registration[] = []
  #seq = 0
  #session: Session | undefined
  /** The previous session's stop (and, after a failure, its relinquish), in progress. */
  #stopping: Promise<void> | undefined
  #pauses = 0
  #closed = false
  /** A token this node gave up after a failed start: it never acts under it again. */
  #gaveUp: number | undefined
  readonly #unsubscribe: () => void

  constructor(options: ActingControllerOptions) {
    this.#opts = options
    this.#authority = options.authority
    this.#unsubscribe = this.#authority.subscribe(() => this.evaluate())
  }

  /** Registers a handler (see HoldfastNode.onActing). Returns the function that unregisters it. */
  register(handler: ActingHandler, options: ActingHandlerOptions = {}): () => void {
    if (typeof handler !== 'function') throw new HoldfastError('INVALID_ARGUMENT', 'an acting handler must be a function')
    if (options.timeoutMs !== undefined && !(options.timeoutMs > 0)) throw new HoldfastError('INVALID_ARGUMENT', 'timeoutMs must be positive')
    const seq = ++this.#seq
    const reg: Registration = { seq, handler, name: options.name ?? `handler-${seq}`, order: options.order ?? 0, timeoutMs: options.timeoutMs }
    this.#regs = [...this.#regs, reg].sort((a, b) => a.order - b.order || a.seq - b.seq)
    const s = this.#session
    // A session still starting picks it up in its loop; an acting one runs it at once, after the
    // handlers already running (and after earlier late registrations).
    if (s?.phase === 'acting') s.chain = s.chain.then(() => this.#runLate(s, reg))
    let registered = true
    return () => {
      if (!registered) return
      registered = false
      this.#regs = this.#regs.filter((r) => r !== reg)
      const run = this.#session?.runs.get(reg)
      if (run) {
        run.unregistered = true
        run.release()
        void this.#stopRun(run, new HoldfastError('ABORTED', `acting handler '${reg.name}' was unregistered`))
      }
    }
  }

  /** Whether the node acts: every handler of this period resolved and it has not been aborted. */
  isActing(): boolean {
    return this.#session?.phase === 'acting'
  }

  /** True only while acting and the authority (the lease) still holds at this instant. */
  leaderCheck(): boolean {
    const s = this.#session
    return s?.phase === 'acting' && this.#authority.holds(s.token)
  }

  /** The token of the current acting period, if acting. */
  token(): number | undefined {
    const s = this.#session
    return s?.phase === 'acting' ? s.token : undefined
  }

  /** Re-examines the authority: aborts a session that lost it, or starts one. Called on every driver turn. */
  evaluate(): void {
    if (this.#closed) return
    const s = this.#session
    if (s !== undefined) {
      if (s.phase !== 'stopping' && !this.#authority.holds(s.token)) void this.#stop(s, this.#authority.lossReason(s.token))
      return
    }
    if (this.#stopping !== undefined || this.#pauses > 0) return
    const token = this.#authority.candidate()
    if (token === undefined || token === this.#gaveUp) return
    void this.#start(token)
  }

  /**
   * Stops acting (handlers get their grace period) and keeps the node from starting again until
   * the returned function is called: for a hand-over, which must not race a new acting period.
   */
  async pause(reason: ActingStopReason): Promise<() => void> {
    this.#pauses++
    let resumed = false
    await this.#stopAll(reason)
    return () => {
      if (resumed) return
      resumed = true
      this.#pauses--
      this.evaluate()
    }
  }

  /** Stops acting for good (handlers get their grace period). */
  async close(): Promise<void> {
    this.#pauses++
    await this.#stopAll('close')
    this.#closed = true
    this.#unsubscribe()
  }

  async #stopAll(reason: ActingStopReason): Promise<void> {
    const s = this.#session
    if (s !== undefined && s.phase !== 'stopping') await this.#stop(s, reason)
    while (this.#stopping !== undefined) await this.#stopping
  }

  async #start(token: number): Promise<void> {
    const s: Session = {
      token,
      abort: new AbortController(),
      eligibleAt: this.#opts.now(),
      phase: 'starting',
      runs: new Map(),
      chain: Promise.resolve(),
      stopping: undefined,
    }
    this.#session = s
    log('token %d: starting', token)
    try {
      await this.#authority.establish(token, s.abort.signal)
      for (;;) {
        if (s.phase !== 'starting') return
        const reg = this.#regs.find((r) => !s.runs.has(r))
        if (reg === undefined) break
        await this.#runHandler(s, reg)
      }
      if (s.phase !== 'starting') return
      // The last handler may have resolved after the lease ran out but before the next check.
      if (!this.#authority.holds(token)) {
        void this.#stop(s, this.#authority.lossReason(token))
        return
      }
      s.phase = 'acting'
      log('token %d: acting', token)
      this.#opts.emit({ type: 'actingStart', token, startMs: this.#opts.now() - s.eligibleAt, handlers: s.runs.size })
    } catch (err) {
      if (s.phase === 'stopping') return // aborted meanwhile: failures after the abort are expected
      if (err instanceof HandlerFailure) {
        void this.#fail(s, err)
        return
      }
      // The fence could not be established (leadership lost, or the commit timed out): end this
      // attempt; the next turn starts another if the node is still eligible.
      log('token %d: could not establish the fence: %s', token, (err as Error).message)
      void this.#stop(s, this.#authority.holds(token) ? 'fenceFailed' : this.#authority.lossReason(token))
    }
  }

  /** Starts one handler within its timeout; throws HandlerFailure if it throws or times out. */
  async #runHandler(s: Session, reg: Registration): Promise<void> {
    const ac = new AbortController()
    const onSessionAbort = (): void => ac.abort(s.abort.signal.reason)
    if (s.abort.signal.aborted) ac.abort(s.abort.signal.reason)
    else s.abort.signal.addEventListener('abort', onSessionAbort, { once: true })
    const started = (async () => {
      const r = await reg.handler({ token: s.token, signal: ac.signal })
      return typeof r === 'function' ? r : undefined
    })()
    let release = (): void => {}
    const released = new Promise<void>((r) => (release = r))
    const run: Run = { reg, ac, started, stopping: undefined, done: false, unregistered: false, released, release }
    started.catch(() => {}) // observed through the race below and by #stopRun
    s.runs.set(reg, run)
    const timeoutMs = reg.timeoutMs ?? this.#opts.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HoldfastError('TIMEOUT', `acting handler '${reg.name}' did not resolve within ${timeoutMs} ms`)), timeoutMs)
      timer.unref()
    })
    try {
      await Promise.race([started, timeout, released])
    } catch (err) {
      if (run.unregistered) return // unregistered while starting: its failure is no longer ours
      throw new HandlerFailure(reg, err)
    } finally {
      clearTimeout(timer)
    }
  }

  async #runLate(s: Session, reg: Registration): Promise<void> {
    if (s.phase !== 'acting' || s.runs.has(reg) || !this.#regs.includes(reg)) return
    try {
      await this.#runHandler(s, reg)
    } catch (err) {
      if (s.phase === 'acting' && err instanceof HandlerFailure) await this.#fail(s, err)
    }
  }

  /** Aborts the session; resolves when its handlers stopped or the grace period ran out. */
  #stop(s: Session, reason: ActingStopReason): Promise<void> {
    if (s.stopping !== undefined) return s.stopping
    const wasActing = s.phase === 'acting'
    s.phase = 'stopping'
    const abortedAt = this.#opts.now()
    log('token %d: stopping (%s)', s.token, reason)
    s.abort.abort(new HoldfastError('ABORTED', `acting stopped: ${reason}`))
    this.#opts.emit({ type: 'actingStop', token: s.token, reason, wasActing })
    if (reason === 'leaseExpired' && wasActing) this.#opts.emit({ type: 'quorumLost', reason: 'leaseExpired' })
    s.stopping = this.#awaitStops(s, abortedAt)
    const done = s.stopping.finally(() => {
      if (this.#session === s) this.#session = undefined
    })
    this.#track(done)
    return done
  }

  /** Keeps `p` as the stop in progress; evaluates again once nothing is stopping. */
  #track(p: Promise<void>): void {
    const tracked = p
      .catch((err) => log('stop failed: %O', err))
      .finally(() => {
        if (this.#stopping === tracked) {
          this.#stopping = undefined
          this.evaluate()
        }
      })
    this.#stopping = tracked
  }

  async #awaitStops(s: Session, abortedAt: number): Promise<void> {
    const runs = [...s.runs.values()]
    const all = Promise.all(runs.map((r) => this.#stopRun(r, s.abort.signal.reason)))
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#opts.graceMs)
      timer.unref()
    })
    await Promise.race([all, grace])
    clearTimeout(timer)
    const late = runs.filter((r) => !r.done).map((r) => r.reg.name)
    if (late.length > 0) log('token %d: handlers still running after the grace period: %o', s.token, late)
    this.#opts.emit({ type: 'actingStopped', token: s.token, stopMs: this.#opts.now() - abortedAt, late })
  }

  /** Aborts one run's signal, waits for its start to settle, then calls its stop function. */
  #stopRun(run: Run, reason: unknown): Promise<void> {
    if (run.stopping !== undefined) return run.stopping
    run.ac.abort(reason)
    run.stopping = (async () => {
      try {
        const stop = await run.started
        if (stop) await stop()
      } catch (err) {
        if (!(isHoldfastError(err, 'ABORTED') || (err as Error)?.name === 'AbortError')) log('acting handler %s: %s', run.reg.name, (err as Error)?.message ?? err)
      } finally {
        run.done = true
      }
    })()
    return run.stopping
  }

  /** A handler failed: abort, let the others stop, then give up authority under this token. */
  async #fail(s: Session, failure: HandlerFailure): Promise<void> {
    this.#gaveUp = s.token
    log('token %d: %s', s.token, failure.message)
    const relinquished = (async () => {
      await this.#stop(s, 'handlerFailed')
      const r = await this.#authority.relinquish(s.token).catch((err) => {
        log('token %d: relinquish failed: %O', s.token, err)
        return { action: 'none' as const }
      })
      const e = failure.error
      this.#opts.emit({
        type: 'actingFailed',
        token: s.token,
        handler: failure.reg.name,
        code: isHoldfastError(e) ? e.code : e instanceof Error ? e.name : typeof e,
        message: e instanceof Error ? e.message : String(e),
        action: r.action,
        ...(r.action === 'transfer' ? { transferredTo: r.to } : {}),
      })
    })()
    this.#track(relinquished)
    await relinquished
  }
}
