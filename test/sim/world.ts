/**
 * The simulated world: virtual time, an event queue, a lossy network with blocked links, and nodes
 * whose driver loop follows the Ready contract (src/core/types.ts) exactly. Everything random comes
 * from seeded Prng streams and everything timed from the event queue, so a seed replays exactly.
 *
 * Per node: a MemoryStorage "disk", a KvState state machine (durable atomically with each apply),
 * a RaftCore (volatile: replaced on restart), and a clock ticking every tickMs * (1 + drift).
 */
import { RaftCore, bootstrapLog, type RaftOptions } from '../../src/core/raft.js'
import type { Membership, Message, NodeId, Ready } from '../../src/core/types.js'
import { isHoldfastError, type ErrorCode } from '../../src/errors.js'
import { MemoryStorage } from '../../src/storage/memory.js'
import type { KvOutput } from '../../src/testing/linearizability.js'
import { Checker, SimViolation } from './invariants.js'
import { KvState, encodeCommand, type Command } from './kv.js'
import { Prng } from './prng.js'
import { EventQueue } from './queue.js'

/** Core settings a run may vary. */
export type CoreSettings = Partial<
  Pick<RaftOptions, 'electionTicks' | 'heartbeatTicks' | 'leaseMarginTicks' | 'logTail' | 'maxMsgBytes' | 'maxInflightMsgs'>
>

/** Deliberate breakage, to prove the checkers catch it. */
export type Sabotage = 'secondLeader' | 'corruptApply' | 'staleRead'

export interface WorldConfig {
  tickMs: number
  core: CoreSettings
  /** Latency of a synced disk write, ms: uniform in [min, max), or slowDiskMs with slowDiskChance. */
  diskMs: readonly [number, number]
  slowDiskChance: number
  slowDiskMs: number
  /** One-way message latency, ms, plus an occasional long tail (reordering). */
  netMs: readonly [number, number]
  netTailChance: number
  netTailMs: number
  /** Chance per Ready that the driver declares a new snapshot point. */
  snapshotPointChance: number
  trace: boolean
  sabotage?: Sabotage | undefined
}

/** What a client learns about a request. `failed` means it certainly had no effect. */
export type Outcome =
  | { readonly status: 'ok'; readonly output: KvOutput | undefined }
  | { readonly status: 'failed'; readonly leaderHint?: NodeId | undefined }
  | { readonly status: 'unknown' }

export type Request = { readonly kind: 'command'; readonly command: Command } | { readonly kind: 'read'; readonly key: string; readonly lease: boolean }

type Callback = (o: Outcome) => void

interface PendingRead {
  readonly key: string
  readonly term: number
  /** The ReadState's index once it arrived; -1 before. */
  index: number
  readonly cb: Callback
}

/** One simulated machine. Fields other than storage and kv are volatile and reset by crash(). */
export class SimNode {
  readonly storage = new MemoryStorage()
  kv = new KvState()
  core: RaftCore | undefined
  up = false
  /** Bumped on crash and restart: events of an older incarnation are ignored. */
  epoch = 0
  drift = 0
  /** The Ready handed out and not yet advanced (its disk write is in flight). */
  inflight: Ready | undefined
  /** Events that arrived while a Ready was in flight; fed to the core after advance(). */
  queue: (() => void)[] = []
  /** Ticks among `queue`: the core's clock lags real time by this many ticks. */
  ticksOwed = 0
  /** When this node's clock last ticked (fed to the core or queued). */
  lastTickAt = 0
  proposals = new Map<number, { term: number; cb: Callback }>()
  reads = new Map<string, PendingRead>()
  readsWaiting: PendingRead[] = []
  /** State received with snapshot messages, by `${index}/${term}`, until the snapshot Ready installs it. */
  snapshotData = new Map<string, KvState>()

  constructor(readonly id: NodeId) {}
}

export interface WorldStats {
  events: number
  messages: number
  dropped: number
  readies: number
  diskWrites: number
  snapshotsSent: number
  snapshotsInstalled: number
  crashes: number
  applied: number
  refused: Partial<Record<ErrorCode, number>>
}

const TOLERATED: readonly ErrorCode[] = ['NOT_LEADER', 'TRANSFER_IN_PROGRESS', 'MEMBERSHIP_CHANGE_PENDING', 'INVALID_MEMBERSHIP_CHANGE', 'INVALID_ARGUMENT']

export class World {
  readonly queue = new EventQueue()
  readonly nodes = new Map<NodeId, SimNode>()
  readonly checker = new Checker()
  readonly stats: WorldStats = {
    events: 0,
    messages: 0,
    dropped: 0,
    readies: 0,
    diskWrites: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    crashes: 0,
    applied: 0,
    refused: {},
  }
  readonly traceLines: string[] = []
  now = 0
  /** Per-message loss and duplication probabilities. */
  loss = 0
  dup = 0
  /** Degradations faults may raise; healAll() resets them to the configured baseline. */
  netTailMs: number
  slowDiskMs: number
  /** Blocked directed links `${from}>${to}`, counted so that overlapping faults compose. */
  readonly #blocked = new Map<string, number>()
  readonly #cfg: WorldConfig
  readonly #rng: Prng
  readonly #net: Prng
  readonly #disk: Prng
  #readSeq = 0

  constructor(cfg: WorldConfig, rng: Prng) {
    this.#cfg = cfg
    this.netTailMs = cfg.netTailMs
    this.slowDiskMs = cfg.slowDiskMs
    this.#rng = rng.fork()
    this.#net = rng.fork()
    this.#disk = rng.fork()
  }

  get config(): WorldConfig {
    return this.#cfg
  }

  /** Creates the initial cluster: every member starts from the same bootstrap record. */
  bootstrap(membership: Membership): void {
    const boot = bootstrapLog(membership)
    for (const id of [...membership.voters, ...membership.learners]) {
      const n = new SimNode(id)
      n.storage.apply({ entries: boot.entries, hardState: boot.hardState })
      this.nodes.set(id, n)
      this.restart(n)
    }
  }

  /** Adds a brand-new node with an empty disk (it joins through a membership change). */
  addEmptyNode(id: NodeId): SimNode {
    const n = new SimNode(id)
    this.nodes.set(id, n)
    this.restart(n)
    return n
  }

  /** Runs events until virtual time `until` (or the queue empties, or stop() returns true). */
  runUntil(until: number, stop?: () => boolean): void {
    while (this.queue.peekTime() <= until) {
      const ev = this.queue.pop()!
      this.now = ev.time
      this.stats.events++
      ev.run()
      this.checker.checkLeases((id) => {
        const n = this.nodes.get(id)
        return n && { core: n.core, owedTicks: this.owedTicks(n) }
      })
      if (stop?.()) return
    }
    this.now = Math.max(this.now, until)
  }

  /** The ticks of real time `n`'s core has not been given, rounded up: what hasLease() must be told. */
  owedTicks(n: SimNode): number {
    return n.ticksOwed + (this.now > n.lastTickAt ? 1 : 0)
  }

  /** Whether a trace is recorded: guard costly trace lines with it. */
  get tracing(): boolean {
    return this.#cfg.trace
  }

  trace(line: string): void {
    if (this.#cfg.trace) this.traceLines.push(`${this.now.toFixed(3)} ${line}`)
  }

  // ------------------------------------------------------------------ node lifecycle

  /** Crash: the in-flight Ready (unsynced writes), queued events and all volatile state are lost. */
  crash(n: SimNode): void {
    if (!n.up) return
    this.trace(`crash ${n.id}`)
    this.stats.crashes++
    n.up = false
    n.epoch++
    n.core = undefined
    n.inflight = undefined
    n.queue = []
    n.ticksOwed = 0
    n.snapshotData.clear()
    this.checker.nodeDown(n.id)
    const props = [...n.proposals.values()]
    const reads = [...n.reads.values(), ...n.readsWaiting]
    n.proposals.clear()
    n.reads.clear()
    n.readsWaiting = []
    for (const p of props) p.cb({ status: 'unknown' })
    for (const r of reads) r.cb({ status: 'failed' })
  }

  /** (Re)starts a node: a fresh core over the same disk, applied = the state machine's applied index. */
  restart(n: SimNode): void {
    if (n.up) return
    this.trace(`start ${n.id} applied=${n.kv.applied} last=${n.storage.lastIndex()}`)
    n.up = true
    n.epoch++
    n.lastTickAt = this.now
    const rand = this.#rng.fork()
    n.core = new RaftCore({ ...this.#cfg.core, id: n.id, storage: n.storage, rand: () => rand.next(), applied: n.kv.applied })
    this.#observe(n)
    this.#scheduleTick(n)
  }

  /** Ends every fault: all links open, no loss or duplication, every node up. */
  healAll(): void {
    this.#blocked.clear()
    this.loss = 0
    this.dup = 0
    this.netTailMs = this.#cfg.netTailMs
    this.slowDiskMs = this.#cfg.slowDiskMs
    for (const n of this.nodes.values()) this.restart(n)
  }

  #scheduleTick(n: SimNode): void {
    const epoch = n.epoch
    this.queue.push(this.now + this.#cfg.tickMs * (1 + n.drift), () => {
      if (n.epoch !== epoch) return
      n.ticksOwed++
      n.lastTickAt = this.now
      this.#enqueue(n, () => {
        n.ticksOwed--
        n.core!.tick()
      })
      this.#scheduleTick(n)
    })
  }

  // ------------------------------------------------------------------ the driver loop

  /** Feeds `fn` (a core call) to the node now, or after advance() if a Ready is in flight. */
  #enqueue(n: SimNode, fn: () => void): void {
    if (!n.up) return
    n.queue.push(fn)
    this.#settle(n)
  }

  #settle(n: SimNode): void {
    while (n.up && n.inflight === undefined) {
      while (n.queue.length > 0) {
        n.queue.shift()!()
        this.#observe(n)
      }
      if (!n.core!.hasReady()) return
      this.#startReady(n)
    }
  }

  #startReady(n: SimNode): void {
    const core = n.core!
    const rd = core.ready()
    this.stats.readies++
    n.inflight = rd
    this.checker.onReady(n.id, core, rd)
    if (this.tracing) this.trace(`ready ${n.id} ${describeReady(rd)}`)
    // A leader's appends leave before its disk write; a crash during the write keeps them sent.
    for (const m of rd.earlyMessages) this.#send(n, m)
    if (!rd.mustSync) return this.#completeReady(n, rd)
    const epoch = n.epoch
    const delay = this.#disk.chance(this.#cfg.slowDiskChance) ? this.#disk.range(0, this.slowDiskMs) : this.#disk.range(...this.#cfg.diskMs)
    this.queue.push(this.now + delay, () => {
      if (n.epoch !== epoch) return // crashed meanwhile: the write never happened
      this.#completeReady(n, rd)
      this.#settle(n)
    })
  }

  #completeReady(n: SimNode, rd: Ready): void {
    const core = n.core!
    // 1. Persist, atomically. compact is never above the snapshot point, which is <= applied.
    if (rd.compact && rd.compact.index > n.kv.applied) {
      throw new SimViolation('contract', `${n.id} asked to compact to ${rd.compact.index} above applied ${n.kv.applied}`)
    }
    if (rd.hardState) this.checker.onHardState(n.id, n.storage.hardState(), rd.hardState)
    n.storage.apply({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, compact: rd.compact })
    if (rd.mustSync) this.stats.diskWrites++
    if (rd.snapshot) this.#installSnapshot(n, rd.snapshot.index, rd.snapshot.term)
    const first = rd.entries[0]
    if (first !== undefined) {
      const prevTerm = n.storage.term(first.index - 1)
      if (prevTerm === undefined) throw new SimViolation('contract', `${n.id} persisted ${first.index} with no predecessor`)
      this.checker.onPersist(n.id, rd.entries, prevTerm, n.kv.applied)
    }
    // 2. Send.
    for (const m of rd.messages) this.#send(n, m)
    // 3. Apply.
    for (const e of rd.committedEntries) {
      if (e.index !== n.kv.applied + 1) throw new SimViolation('contract', `${n.id} handed entry ${e.index} to apply after ${n.kv.applied}`)
      const out = n.kv.apply(e)
      if (this.#cfg.sabotage === 'corruptApply' && n.id === 'n2' && e.index === 3) n.kv.digest ^= 1
      this.checker.onApply(n.id, e, n.kv.digest)
      this.stats.applied++
      const p = n.proposals.get(e.index)
      if (p !== undefined) {
        n.proposals.delete(e.index)
        // Another term at our index: our entry was overwritten, it can never apply.
        p.cb(p.term === e.term ? { status: 'ok', output: out } : { status: 'failed' })
      }
    }
    // 5. Reads.
    for (const rs of rd.readStates) {
      const r = n.reads.get(rs.requestId)
      if (r === undefined) continue
      n.reads.delete(rs.requestId)
      r.index = rs.index
      n.readsWaiting.push(r)
    }
    this.#serveReads(n)
    // 6. Advance.
    core.advance()
    n.inflight = undefined
    if (this.#disk.chance(this.#cfg.snapshotPointChance)) core.setSnapshotPoint(n.kv.applied)
    this.#observe(n)
  }

  #installSnapshot(n: SimNode, index: number, term: number): void {
    const data = n.snapshotData.get(`${index}/${term}`)
    if (data === undefined) throw new SimViolation('contract', `${n.id} got a snapshot Ready ${index}/${term} it never received`)
    if (index <= n.kv.applied) throw new SimViolation('snapshot', `${n.id} told to install snapshot ${index} over applied ${n.kv.applied}: a rollback`)
    n.kv = data.clone()
    for (const [k, d] of n.snapshotData) if (d.applied <= index) n.snapshotData.delete(k)
    this.stats.snapshotsInstalled++
    this.checker.onInstall(n.id, index, n.kv.digest)
    this.trace(`install ${n.id} ${index}/${term}`)
    // Proposals the snapshot jumped over: whether they applied is not known here.
    for (const [i, p] of n.proposals) {
      if (i > index) continue
      n.proposals.delete(i)
      p.cb({ status: 'unknown' })
    }
    this.#serveReads(n)
  }

  #serveReads(n: SimNode): void {
    if (n.readsWaiting.length === 0) return
    const still: PendingRead[] = []
    for (const r of n.readsWaiting) {
      if (r.index <= n.kv.applied) r.cb({ status: 'ok', output: { kind: 'read', value: n.kv.read(r.key) } })
      else still.push(r)
    }
    n.readsWaiting = still
  }

  /** Runs the invariant checks that follow any core call, and fails reads leadership changes dropped. */
  #observe(n: SimNode): void {
    const core = n.core!
    this.checker.observe(n.id, core)
    if (n.reads.size > 0) {
      const leading = core.role === 'leader'
      for (const [id, r] of n.reads) {
        if (leading && r.term === core.term) continue
        n.reads.delete(id)
        r.cb({ status: 'failed' })
      }
    }
  }

  // ------------------------------------------------------------------ network

  block(from: NodeId, to: NodeId): void {
    const k = `${from}>${to}`
    this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + 1)
  }

  unblock(from: NodeId, to: NodeId): void {
    const k = `${from}>${to}`
    const c = (this.#blocked.get(k) ?? 0) - 1
    if (c <= 0) this.#blocked.delete(k)
    else this.#blocked.set(k, c)
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.#blocked.size > 0 && this.#blocked.has(`${from}>${to}`)
  }

  #send(from: SimNode, m: Message): void {
    this.stats.messages++
    let snap: KvState | undefined
    if (m.type === 'snapshot') {
      // The snapshot's state travels alongside: the sender's state machine at exactly that index.
      if (from.kv.applied !== m.snapshot!.index) {
        throw new SimViolation('contract', `${from.id} sends snapshot ${m.snapshot!.index} with its state machine at ${from.kv.applied}`)
      }
      snap = from.kv.clone()
      this.stats.snapshotsSent++
    }
    const epoch = from.epoch
    if (this.isBlocked(m.from, m.to)) return this.#dropped(from, epoch, m, true)
    if (this.loss > 0 && this.#net.chance(this.loss)) return this.#dropped(from, epoch, m, false)
    const copies = this.dup > 0 && this.#net.chance(this.dup) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      let delay = this.#net.range(...this.#cfg.netMs)
      if (this.#net.chance(this.#cfg.netTailChance)) delay += this.#net.range(0, this.netTailMs)
      this.queue.push(this.now + delay, () => this.#deliver(from, epoch, m, snap))
    }
  }

  #deliver(from: SimNode, epoch: number, m: Message, snap: KvState | undefined): void {
    const to = this.nodes.get(m.to)
    if (to === undefined || !to.up || this.isBlocked(m.from, m.to)) return this.#dropped(from, epoch, m, true)
    if (this.tracing) this.trace(`deliver ${describeMessage(m)}`)
    if (snap !== undefined) {
      const key = `${m.snapshot!.index}/${m.snapshot!.term}`
      const had = to.snapshotData.get(key)
      if (had !== undefined && had.digest !== snap.digest) {
        throw new SimViolation('state-machine-safety', `two snapshots ${key} with different state reached ${to.id}`)
      }
      to.snapshotData.set(key, snap)
      if (from.epoch === epoch) this.#enqueue(from, () => from.core!.reportSnapshot(m.to, true))
    }
    this.#enqueue(to, () => to.core!.step(m))
  }

  #dropped(from: SimNode, epoch: number, m: Message, unreachable: boolean): void {
    this.stats.dropped++
    if (from.epoch !== epoch) return
    if (m.type === 'snapshot') this.#enqueue(from, () => from.core!.reportSnapshot(m.to, false))
    else if (unreachable && m.type === 'append' && this.#net.chance(0.2)) this.#enqueue(from, () => from.core!.reportUnreachable(m.to))
  }

  // ------------------------------------------------------------------ clients and operators

  /**
   * A client request to node `to`; `cb` is called exactly once unless the node crashes with the
   * request still queued (the client's timeout covers that). Client traffic is never blocked by
   * partitions between nodes.
   */
  request(to: NodeId, req: Request, latency: number, cb: Callback): void {
    const n = this.nodes.get(to)!
    this.queue.push(this.now + latency, () => {
      if (!n.up) return cb({ status: 'failed' }) // connection refused: it never reached the node
      this.#enqueue(n, () => this.#handleRequest(n, req, cb))
    })
  }

  #handleRequest(n: SimNode, req: Request, cb: Callback): void {
    const core = n.core!
    try {
      if (req.kind === 'command') {
        const t = core.propose(encodeCommand(req.command))
        if (this.tracing) this.trace(`propose ${n.id} ${t.index}/${t.term} ${JSON.stringify(req.command)}`)
        const old = n.proposals.get(t.index)
        if (old !== undefined) old.cb({ status: 'unknown' })
        n.proposals.set(t.index, { term: t.term, cb })
      } else if (this.#cfg.sabotage === 'staleRead') {
        cb({ status: 'ok', output: { kind: 'read', value: n.kv.read(req.key) } }) // any node, no ReadIndex
      } else {
        const id = `r${this.#readSeq++}`
        core.readIndex(id, { lease: req.lease })
        if (this.tracing) this.trace(`readIndex ${n.id} ${id} ${req.key} lease=${req.lease}`)
        n.reads.set(id, { key: req.key, term: core.term, index: -1, cb })
      }
    } catch (err) {
      if (isHoldfastError(err, 'NOT_LEADER') || isHoldfastError(err, 'TRANSFER_IN_PROGRESS')) {
        cb({ status: 'failed', leaderHint: err.leaderHint })
      } else throw err
    }
  }

  /** Runs an operator action on a node's core (membership change, transfer), tolerating typed refusals. */
  admin(to: NodeId, what: string, fn: (core: RaftCore) => void): void {
    const n = this.nodes.get(to)
    if (n === undefined || !n.up) return
    this.#enqueue(n, () => {
      try {
        fn(n.core!)
        this.trace(`admin ${to} ${what}`)
      } catch (err) {
        if (!isHoldfastError(err) || !TOLERATED.includes(err.code)) throw err
        this.stats.refused[err.code] = (this.stats.refused[err.code] ?? 0) + 1
        this.trace(`admin ${to} ${what} refused ${err.code}`)
      }
    })
  }

  // ------------------------------------------------------------------ observation

  /** The up node leading at the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const n of this.nodes.values()) {
      if (n.up && n.core!.role === 'leader' && (best === undefined || n.core!.term > best.core!.term)) best = n
    }
    return best
  }

  /** The membership as the best-informed node sees it (the leader, else the highest term and log). */
  membership(): Membership {
    let best = this.leader()
    if (best === undefined) {
      for (const n of this.nodes.values()) {
        if (!n.up) continue
        const c = n.core!
        if (best === undefined || c.term > best.core!.term || (c.term === best.core!.term && c.lastIndex > best.core!.lastIndex)) best = n
      }
    }
    return best?.core?.membership() ?? { voters: [], learners: [] }
  }
}

function describeMessage(m: Message): string {
  let s = `${m.type} ${m.from}>${m.to} t${m.term}`
  if (m.index !== undefined) s += ` i${m.index}`
  if (m.logTerm !== undefined) s += ` lt${m.logTerm}`
  if (m.entries && m.entries.length > 0) s += ` n${m.entries.length}`
  if (m.commit !== undefined) s += ` c${m.commit}`
  if (m.reject) s += ` reject(${m.rejectHint ?? ''})`
  if (m.snapshot) s += ` snap${m.snapshot.index}/${m.snapshot.term}`
  if (m.readSeq !== undefined) s += ` seq${m.readSeq}`
  return s
}

function describeReady(rd: Ready): string {
  const parts: string[] = []
  if (rd.softState) parts.push(`${rd.softState.role}@${rd.softState.term} lead=${rd.softState.leaderId}`)
  if (rd.hardState) parts.push(`hs=${rd.hardState.term}/${rd.hardState.vote}/${rd.hardState.commit}`)
  if (rd.snapshot) parts.push(`snap=${rd.snapshot.index}/${rd.snapshot.term}`)
  if (rd.entries.length > 0) parts.push(`ents=${rd.entries[0]!.index}..${rd.entries[rd.entries.length - 1]!.index}`)
  if (rd.committedEntries.length > 0) parts.push(`apply=${rd.committedEntries[0]!.index}..${rd.committedEntries[rd.committedEntries.length - 1]!.index}`)
  if (rd.readStates.length > 0) parts.push(`reads=${rd.readStates.length}`)
  if (rd.compact) parts.push(`compact=${rd.compact.index}`)
  parts.push(`msgs=${rd.earlyMessages.length}+${rd.messages.length}`)
  return parts.join(' ')
}
