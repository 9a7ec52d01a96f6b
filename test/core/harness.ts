/**
 * A small synchronous cluster for scripted core tests: every node persists each Ready at once
 * (MemoryStorage), and messages wait in a queue until the test delivers them, optionally through
 * a filter. Deterministic; the PRNG is a seeded LCG so tests replay exactly.
 */
import { RaftCore, bootstrapLog, type RaftOptions } from '../../src/core/raft.js'
import type { Entry, Membership, Message, NodeId, ReadState } from '../../src/core/types.js'
import { MemoryStorage } from '../../src/storage/memory.js'

export function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

export interface HarnessNode {
  id: NodeId
  core: RaftCore
  storage: MemoryStorage
  applied: Entry[]
  readStates: ReadState[]
  up: boolean
  /** A held node's Readys are left for the test to process with processReady(). */
  held: boolean
  /** State-machine contents that arrived with a snapshot message, installed with its Ready. */
  incomingSnapshot: Entry[] | undefined
}

export type Filter = (m: Message) => boolean

export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>()
  queue: Message[] = []
  /** Messages pass only if every filter returns true. */
  filters: Filter[] = []
  /** Rewrites applied to each message that passes the filters, in order. */
  rewrites: ((m: Message) => Message)[] = []
  readonly #opts: Partial<RaftOptions>
  #seed: number

  constructor(ids: NodeId[], options: Partial<RaftOptions> & { seed?: number; learners?: NodeId[] } = {}) {
    this.#opts = options
    this.#seed = options.seed ?? 1
    const membership: Membership = { voters: ids, learners: options.learners ?? [] }
    const boot = bootstrapLog(membership)
    for (const id of [...ids, ...(options.learners ?? [])]) {
      const storage = new MemoryStorage()
      storage.apply({ entries: boot.entries, hardState: boot.hardState })
      this.#add(id, storage)
    }
  }

  #add(id: NodeId, storage: MemoryStorage, applied = 0): HarnessNode {
    const core = new RaftCore({ electionTicks: 10, ...this.#opts, id, storage, rand: lcg(this.#seed++ * 7919), applied })
    const node: HarnessNode = { id, core, storage, applied: [], readStates: [], up: true, held: false, incomingSnapshot: undefined }
    this.nodes.set(id, node)
    return node
  }

  /** Adds a brand-new node with an empty log (to be added to the cluster by a membership change). */
  addEmpty(id: NodeId): HarnessNode {
    return this.#add(id, new MemoryStorage())
  }

  node(id: NodeId): HarnessNode {
    const n = this.nodes.get(id)
    if (!n) throw new Error(`no node ${id}`)
    return n
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core
  }

  /** Processes every pending Ready of every up node. */
  flush(): void {
    let progress = true
    while (progress) {
      progress = false
      for (const n of this.nodes.values()) {
        while (n.up && !n.held && n.core.hasReady()) {
          progress = true
          this.processReady(n.id)
        }
      }
    }
  }

  /**
   * Takes one Ready of `id` and carries it out: persist (unless `persist` is false: the write is
   * lost as in a crash before fsync), then send (unless `send` is false), apply and advance.
   * Returns the Ready's messages (early ones first).
   */
  processReady(id: NodeId, options: { persist?: boolean; send?: boolean } = {}): Message[] {
    const n = this.node(id)
    const rd = n.core.ready()
    // A leader's early messages go out even when the write is lost (sent before it, as drivers may).
    if (options.send !== false) this.queue.push(...rd.earlyMessages)
    if (options.persist !== false) {
      n.storage.apply({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, compact: rd.compact })
      if (rd.snapshot) {
        n.applied = (n.incomingSnapshot ?? []).filter((e) => e.index <= rd.snapshot!.index)
        n.incomingSnapshot = undefined
      }
    }
    if (options.send !== false) this.queue.push(...rd.messages)
    for (const e of rd.committedEntries) n.applied.push(e)
    n.readStates.push(...rd.readStates)
    n.core.advance()
    return [...rd.earlyMessages, ...rd.messages]
  }

  /** Delivers queued messages (and those they cause) until quiet, or `maxRounds` rounds. */
  deliverAll(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.flush()
      if (this.queue.length === 0) return
      const batch = this.queue
      this.queue = []
      for (const m of batch) this.deliver(m)
    }
  }

  deliver(m: Message): void {
    const to = this.nodes.get(m.to)
    if (!to || !to.up) return
    if (!this.filters.every((f) => f(m))) return
    for (const r of this.rewrites) m = r(m)
    if (m.type === 'snapshot') to.incomingSnapshot = this.node(m.from).applied.slice()
    to.core.step(m)
  }

  tick(ids: NodeId[] = [...this.nodes.keys()], times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) {
        const n = this.node(id)
        if (n.up) n.core.tick()
      }
      this.deliverAll()
    }
  }

  /** Ticks everyone until some node leads, or throws. */
  electLeader(maxTicks = 200): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      const l = this.leader()
      if (l) return l
      this.tick()
    }
    throw new Error('no leader elected')
  }

  leader(): NodeId | undefined {
    let best: HarnessNode | undefined
    for (const n of this.nodes.values()) {
      if (n.up && n.core.role === 'leader' && (!best || n.core.term > best.core.term)) best = n
    }
    return best?.id
  }

  /**
   * Makes `id` the first leader of a new cluster: every node first waits out the boot lease (a
   * node refuses candidates for an election timeout after it starts), then `id` campaigns.
   */
  bootstrapLeader(id: NodeId): void {
    const ids = [...this.nodes.values()].filter((n) => n.up).map((n) => n.id)
    this.isolateAndTick(ids, (this.#opts.electionTicks ?? 10) + 1)
    this.campaign(id)
  }

  /** Campaigns `id` explicitly and delivers until quiet. */
  campaign(id: NodeId): void {
    this.core(id).campaign()
    this.deliverAll()
  }

  /**
   * Isolates `ids` from everyone and ticks them `ticks` times, so leases and leader contact expire
   * without any term changing (isolated pre-candidates cannot win a pre-vote). Then reconnects.
   */
  isolateAndTick(ids: NodeId[], ticks: number): void {
    const isolate: Filter = (m) => !ids.includes(m.from) && !ids.includes(m.to)
    this.filters.push(isolate)
    this.tick(ids, ticks)
    this.filters = this.filters.filter((f) => f !== isolate)
    this.queue = []
  }

  /** Delivers messages one by one until `pred` holds; throws if the queue runs dry first. */
  deliverUntil(pred: () => boolean, maxMessages = 10000): void {
    for (let i = 0; i < maxMessages; i++) {
      if (pred()) return
      this.flush()
      if (pred()) return
      const m = this.queue.shift()
      if (!m) throw new Error('queue empty before the condition held')
      this.deliver(m)
    }
    throw new Error('condition not reached')
  }

  /** Crash: the node loses nothing durable (every Ready was persisted synchronously) but all volatile state. */
  crash(id: NodeId): void {
    this.node(id).up = false
    this.queue = this.queue.filter((m) => m.from !== id)
  }

  restart(id: NodeId): HarnessNode {
    const old = this.node(id)
    const applied = old.applied.length > 0 ? old.applied[old.applied.length - 1]!.index : old.storage.snapshotMeta().index
    const n = this.#add(id, old.storage, applied)
    n.applied = old.applied.filter((e) => e.index <= applied)
    return n
  }

  /** Blocks all traffic between the two groups (both directions). */
  partition(a: NodeId[], b: NodeId[]): void {
    this.filters.push((m) => !((a.includes(m.from) && b.includes(m.to)) || (b.includes(m.from) && a.includes(m.to))))
  }

  heal(): void {
    this.filters = []
    this.rewrites = []
  }

  propose(id: NodeId, text: string): { index: number; term: number } {
    return this.core(id).propose(new TextEncoder().encode(text))
  }

  /** The texts of the normal, non-empty entries `id` has applied. */
  appliedTexts(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === 'normal' && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data))
  }
}
