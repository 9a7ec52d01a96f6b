import { randomBytes, randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import createDebug from 'debug'
import { Packr } from 'msgpackr'
import type { Database } from 'lmdb'
import { RaftCore, bootstrapLog, type CoreStatus } from './core/raft.js'
import type { Entry, Membership, MembershipChange, Message, NodeId, Ready, Role, SnapshotMeta } from './core/types.js'
import { HoldfastError, isHoldfastError } from './errors.js'
import { ActingController, type ActingHandler, type ActingHandlerOptions, type ControllerEvent } from './acting/controller.js'
import type { CustomEvent, EventFields, HoldfastEvent } from './acting/events.js'
import { RaftAuthority } from './acting/raft-authority.js'
import { decodeCommand } from './state/commands.js'
import {
  DEFAULT_ACTING_GRACE_MS,
  DEFAULT_ACTING_TIMEOUT_MS,
  DEFAULT_CLOSE_TRANSFER_MS,
  DEFAULT_ELECTION_TICKS,
  DEFAULT_HEARTBEAT_TICKS,
  DEFAULT_LOG_TAIL,
  DEFAULT_MAX_VALUE_SIZE,
  DEFAULT_OPERATION_TIMEOUT_MS,
  DEFAULT_TICK_MS,
  type NodeOptions,
} from './options.js'
import { KvStateMachine, type ApplyResult, type Change, type Command, type CommandHandler, type KeyValue, type TxnOp, type Value } from './state/index.js'
import type { Compare } from './state/commands.js'
import { LmdbStorage } from './storage/lmdb.js'
import { decodeRaftMessage, encodeRaftMessage } from './transport/codec.js'
import { PeerRpc } from './transport/rpc.js'
import { SNAPSHOT_SPOOL_DIR } from './transfer/protocol.js'
import { SnapshotReceiver } from './transfer/receiver.js'
import { SnapshotSender, sendStats } from './transfer/sender.js'
import type { Transport } from './transport/types.js'

const log = createDebug('holdfast:node')
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false })

/** Peer RPC methods of holdfast itself; services may not register names with this prefix. */
const RESERVED_METHOD_PREFIX = 'holdfast.'
/** RPC methods the node serves to its peers. */
const METHOD = {
  propose: 'holdfast.propose',
  readIndex: 'holdfast.readIndex',
} as const

/** Options common to operations that may wait. */
export interface OperationOptions {
  /** Gives up waiting; the operation's effect is then unknown (ABORTED). */
  signal?: AbortSignal
  /** Deadline in ms; TIMEOUT when passed. @default NodeOptions.operationTimeoutMs */
  timeoutMs?: number
}

export interface PutOptions extends OperationOptions {
  bucket?: string
  /** Compare-and-set: the key's current modRevision must equal this (0 = must not exist). */
  ifRevision?: number
  /** A fencing token: the write fails with STALE_FENCE if a newer token is in force. */
  fence?: number
}

export interface GetOptions extends OperationOptions {
  bucket?: string
  /**
   * 'linearizable' (default) confirms leadership with a heartbeat round; 'lease' trusts the leader's
   * lease (see NodeOptions.leaseMarginTicks) and saves that round trip.
   */
  consistency?: 'linearizable' | 'lease'
}

/** One member as this node sees it. */
export interface MemberStatus {
  readonly id: NodeId
  readonly voter: boolean
  /** Connected to this node now (always true for itself); on the leader, also heard from within an election timeout. */
  readonly reachable: boolean
  /** On the leader: the highest log index known to be on that member. */
  readonly matchIndex: number | undefined
}

export interface NodeStatus {
  readonly id: NodeId
  readonly role: Role
  readonly term: number
  readonly leaderId: NodeId | null
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly members: readonly MemberStatus[]
}

interface ProposalWaiter {
  readonly term: number
  readonly resolve: (r: ApplyResult) => void
  readonly reject: (e: HoldfastError) => void
}

interface ReadWaiter {
  readonly resolve: (index: number) => void
  readonly reject: (e: HoldfastError) => void
}

/**
 * A member of a holdfast cluster, embedded in the service's process. It owns the LMDB environment,
 * the consensus core and the transport, and runs the driver loop that feeds the core:
 *
 *   events (messages, ticks, proposals) → core → for each Ready: persist (durably, when the core
 *   says so) → send → apply committed entries (effects and applied index in one LMDB transaction)
 *   → resolve waiting callers → advance.
 *
 * Proposals that arrive during one turn are appended together (group commit).
 */
export class HoldfastNode extends EventEmitter {
  readonly id: NodeId
  readonly #opts: Required<Pick<NodeOptions, 'tickMs' | 'operationTimeoutMs' | 'closeTransferMs'>>
  readonly #storage: LmdbStorage
  readonly #sm: KvStateMachine
  readonly #core: RaftCore
  readonly #rpc: PeerRpc
  readonly #transport: Transport
  readonly #nodeMeta: Database<unknown, string>
  readonly #now: () => number
  /** When each peer's last valid Raft message arrived (this.#now() time), for status(). */
  readonly #lastHeard = new Map<NodeId, number>()
  readonly #electionTicks: number
  readonly #faultPoints: NonNullable<NodeOptions['faultPoints']>

  #events: (() => void)[] = []
  #running = false
  #closed = false
  #ticker: NodeJS.Timeout | undefined
  #lastTickAt: number
  #proposals = new Map<number, ProposalWaiter>()
  #reads = new Map<string, ReadWaiter>()
  /** Reads whose read point is known, waiting for the state machine to apply it. */
  #readsAwaitingApply: { index: number; resolve: () => void }[] = []
  /** Receives snapshots from peers into spool files (src/transfer/). */
  readonly #receiver: SnapshotReceiver
  /** Sends snapshots to followers, keeping a broken transfer's snapshot for a retry (src/transfer/). */
  readonly #sender: SnapshotSender
  #loopError: unknown
  #idle: (() => void)[] = []

  private constructor(
    id: NodeId,
    options: NodeOptions,
    storage: LmdbStorage,
    sm: KvStateMachine,
    nodeMeta: Database<unknown, string>,
  ) {
    super()
    this.id = id
    this.#opts = {
      tickMs: options.tickMs ?? DEFAULT_TICK_MS,
      operationTimeoutMs: options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
      closeTransferMs: options.closeTransferMs ?? DEFAULT_CLOSE_TRANSFER_MS,
    }
    this.#storage = storage
    this.#sm = sm
    this.#nodeMeta = nodeMeta
    this.#now = options.now ?? (() => performance.now())
    this.#faultPoints = options.faultPoints ?? {}
    this.#electionTicks = options.electionTicks ?? DEFAULT_ELECTION_TICKS
    this.#core = new RaftCore({
      id,
      storage,
      rand: options.rand ?? Math.random,
      applied: sm.appliedIndex(),
      electionTicks: this.#electionTicks,
      heartbeatTicks: options.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS,
      ...(options.leaseMarginTicks !== undefined ? { leaseMarginTicks: options.leaseMarginTicks } : {}),
      logTail: options.logTail ?? DEFAULT_LOG_TAIL,
    })
    this.#transport = options.transport
    this.#rpc = new PeerRpc(options.transport)
    this.#rpc.onRaft((from, bytes) => this.#onRaft(from, bytes))
    this.#rpc.onPeer((peer, up) => {
      if (!up) this.#enqueue(() => this.#core.reportUnreachable(peer))
      this.emit('peer', { id: peer, up })
    })
    this.#rpc.handle(METHOD.propose, (payload) => this.#serveProposal(payload))
    this.#rpc.handle(METHOD.readIndex, (payload) => this.#serveReadIndex(payload))
    this.#receiver = this.#snapshotReceiver(join(options.dataDir, SNAPSHOT_SPOOL_DIR))
    this.#receiver.register(this.#rpc)
    this.once('close', () => this.#receiver.close())
    this.#sender = new SnapshotSender({ rpc: this.#rpc, timeoutMs: this.#opts.operationTimeoutMs })
    // A held snapshot pins LMDB pages; only a leader sends snapshots.
    this.on('role', (role: Role) => {
      if (role !== 'leader') void this.#sender.releaseAll()
    })
    this.#lastTickAt = this.#now()
    this.#acting = this.#createActing(options)
    this.#ticker = setInterval(() => this.#enqueue(() => {}), this.#opts.tickMs)
    this.#ticker.unref()
    this.#enqueue(() => {})
  }

  /** Opens (or creates) a node in options.dataDir. Prefer createNode(). */
  static async open(options: NodeOptions): Promise<HoldfastNode> {
    await mkdir(options.dataDir, { recursive: true })
    const id = options.id ?? (await loadOrCreateId(options.dataDir))
    if (options.transport.id !== id) {
      throw new HoldfastError('INVALID_ARGUMENT', `transport id ${options.transport.id} differs from node id ${id}`)
    }
    const storage = await LmdbStorage.open(options.dataDir, { verifyPages: options.verifyOnOpen ?? true })
    try {
      const nodeMeta = storage.openDb<unknown, string>('node.meta')
      const sm = KvStateMachine.open(storage.env, { maxValueSize: options.maxValueSize ?? DEFAULT_MAX_VALUE_SIZE })
      await finishSnapshotInstall(storage, sm, nodeMeta)
      if (storage.lastIndex() === 0 && storage.snapshotMeta().index === 0 && options.bootstrap) {
        const boot = bootstrapLog(options.bootstrap)
        await storage.save({ entries: boot.entries, hardState: boot.hardState }, true)
        log('%s bootstrapped a cluster of %o', id, options.bootstrap)
      }
      return new HoldfastNode(id, options, storage, sm, nodeMeta)
    } catch (err) {
      await storage.close()
      throw err
    }
  }

  // ------------------------------------------------------------------ writes

  /** Writes `value` under `key`. Resolves once a majority committed it and this node applied it. */
  async put(key: string, value: Value, options: PutOptions = {}): Promise<{ revision: number }> {
    const cmd: Command = { type: 'put', key, value, ...pick(options, 'bucket', 'ifRevision', 'fence') }
    const r = (await this.#write(cmd, options)) as { revision: number }
    return { revision: r.revision }
  }

  /** Deletes `key`. Resolves with the revision of the delete and whether the key existed. */
  async delete(key: string, options: PutOptions = {}): Promise<{ revision: number; deleted: boolean }> {
    const cmd: Command = { type: 'delete', key, ...pick(options, 'bucket', 'ifRevision', 'fence') }
    const r = (await this.#write(cmd, options)) as { revision: number; deleted: boolean }
    return { revision: r.revision, deleted: r.deleted }
  }

  /**
   * Applies operations all or nothing. With `compare`, `success` runs if every compared key has the
   * given modRevision, otherwise `failure` does.
   */
  async transaction(
    ops: readonly TxnOp[] | { compare?: readonly Compare[]; success: readonly TxnOp[]; failure?: readonly TxnOp[] },
    options: OperationOptions & { fence?: number } = {},
  ): Promise<{ revision: number; succeeded: boolean; results: unknown[] }> {
    const body = Array.isArray(ops) ? { success: ops as readonly TxnOp[] } : (ops as { compare?: readonly Compare[]; success: readonly TxnOp[]; failure?: readonly TxnOp[] })
    const cmd = { type: 'txn', ...body, ...pick(options, 'fence') } as Command
    return (await this.#write(cmd, options)) as { revision: number; succeeded: boolean; results: unknown[] }
  }

  /**
   * Registers a deterministic command, run inside the apply transaction on every replica. Every
   * node must register the same handlers before entries calling them are applied.
   */
  command(name: string, handler: CommandHandler): void {
    this.#sm.register(name, handler)
  }

  /** Runs a registered command through the log. A handler that throws fails this call alone. */
  async call(name: string, args?: Value, options: OperationOptions & { fence?: number } = {}): Promise<unknown> {
    const cmd = { type: 'call', name, ...(args === undefined ? {} : { args }), ...pick(options, 'fence') } as Command
    const r = (await this.#write(cmd, options)) as { value: unknown }
    return r.value
  }

  async #write(cmd: Command, options: OperationOptions): Promise<unknown> {
    this.#assertOpen()
    const data = this.#sm.encode(cmd) // validates and refuses oversized values before the log
    const result = await this.#proposeAnywhere(data, options)
    if (!result.ok) throw result.error
    return result.result
  }

  /** Proposes on the leader: locally when this node leads, otherwise forwarded to the leader. */
  async #proposeAnywhere(data: Uint8Array, options: OperationOptions): Promise<ApplyResult> {
    const deadline = Date.now() + (options.timeoutMs ?? this.#opts.operationTimeoutMs)
    for (;;) {
      checkDeadline(deadline, options.signal)
      if (this.#core.role === 'leader') {
        try {
          return await this.#proposeLocal(data, deadline, options.signal)
        } catch (err) {
          if (!retryable(err)) throw err
        }
      } else {
        const leader = this.#core.leaderId
        if (leader !== null && leader !== this.id) {
          try {
            const reply = await this.#rpc.request(leader, METHOD.propose, data, { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
            return decodeApplyResult(reply)
          } catch (err) {
            if (!retryable(err)) throw err
          }
        }
      }
      await this.#leaderChange(deadline, options.signal)
    }
  }

  #proposeLocal(data: Uint8Array, deadline: number, signal?: AbortSignal): Promise<ApplyResult> {
    return this.#proposeWith(() => this.#core.propose(data), deadline, signal)
  }

  /** Runs `propose` inside the driver loop and waits for its entry to apply (or to be replaced). */
  #proposeWith(propose: () => { index: number; term: number }, deadline: number, signal?: AbortSignal): Promise<ApplyResult> {
    return new Promise<ApplyResult>((resolve, reject) => {
      this.#enqueue(() => {
        let ticket: { index: number; term: number }
        try {
          ticket = propose()
        } catch (err) {
          reject(err)
          return
        }
        // An older waiter at this index belongs to an entry our new term has replaced.
        this.#proposals.get(ticket.index)?.reject(
          new HoldfastError('LEADERSHIP_LOST', `the proposal at index ${ticket.index} was replaced after a leader change; it did not take effect`),
        )
        const waiter: ProposalWaiter = {
          term: ticket.term,
          resolve: (r) => {
            cleanup()
            resolve(r)
          },
          reject: (e) => {
            cleanup()
            reject(e)
          },
        }
        const forget = (): void => {
          if (this.#proposals.get(ticket.index) === waiter) this.#proposals.delete(ticket.index)
        }
        const disarm = withDeadline(deadline, signal, (err) => {
          forget()
          reject(err)
        })
        const cleanup = (): void => {
          disarm()
          forget()
        }
        this.#proposals.set(ticket.index, waiter)
      })
    })
  }

  async #serveProposal(data: Uint8Array): Promise<Uint8Array> {
    if (this.#core.role !== 'leader') {
      throw new HoldfastError('NOT_LEADER', `${this.id} is not the leader`, { leaderHint: this.#core.leaderId ?? undefined })
    }
    const r = await this.#proposeLocal(data, Date.now() + this.#opts.operationTimeoutMs)
    return encodeApplyResult(r)
  }

  // ------------------------------------------------------------------ reads

  /** Reads `key`. Linearizable by default: it reflects every write acknowledged before the call. */
  async get(key: string, options: GetOptions = {}): Promise<KeyValue | undefined> {
    this.#assertOpen()
    await this.#readBarrier(options.consistency === 'lease', options)
    return this.#sm.get(key, pick(options, 'bucket'))
  }

  /**
   * Waits until this replica reflects every write acknowledged before the call (linearizable,
   * the default: the leader confirms its leadership with a heartbeat round; 'lease': it trusts its
   * lease), so that following local reads (getLocal, list) are as fresh as a linearizable get().
   */
  async readBarrier(options: Pick<GetOptions, 'consistency' | 'signal' | 'timeoutMs'> = {}): Promise<void> {
    this.#assertOpen()
    await this.#readBarrier(options.consistency === 'lease', options)
  }

  /** Reads `key` from the local state machine at once: possibly stale, never blocking. */
  getLocal(key: string, options: { bucket?: string } = {}): KeyValue | undefined {
    this.#assertOpen()
    return this.#sm.get(key, options)
  }

  /** Lists keys from the local state machine (a stale read), in key order. */
  list(options: { bucket?: string; prefix?: string; start?: string; end?: string; limit?: number; reverse?: boolean } = {}): KeyValue[] {
    this.#assertOpen()
    return this.#sm.list(options)
  }

  /**
   * Every change after `fromRevision` in revision order, history first and then live. A watcher that
   * fell behind the retained change history fails with COMPACTED.
   */
  watch(options: { bucket?: string; prefix?: string; fromRevision?: number; signal?: AbortSignal } = {}): AsyncIterableIterator<Change> {
    this.#assertOpen()
    return this.#sm.watch(options)
  }

  /** Waits until this node has applied everything committed before the call (linearizable read point). */
  async #readBarrier(lease: boolean, options: OperationOptions): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? this.#opts.operationTimeoutMs)
    for (;;) {
      checkDeadline(deadline, options.signal)
      let index: number | undefined
      try {
        if (this.#core.role === 'leader') {
          index = await this.#readIndexLocal(lease, deadline, options.signal)
        } else {
          const leader = this.#core.leaderId
          if (leader !== null && leader !== this.id) {
            const reply = await this.#rpc.request(leader, METHOD.readIndex, packr.pack({ lease }), { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) })
            index = (packr.unpack(reply) as { index: number }).index
          }
        }
      } catch (err) {
        if (!retryableRead(err)) throw err
      }
      if (index !== undefined) return this.#waitApplied(index, deadline, options.signal)
      await this.#leaderChange(deadline, options.signal)
    }
  }

  #readIndexLocal(lease: boolean, deadline: number, signal?: AbortSignal): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#enqueue(() => {
        const requestId = randomUUID()
        try {
          this.#core.readIndex(requestId, { lease })
        } catch (err) {
          reject(err)
          return
        }
        const cleanup = withDeadline(deadline, signal, (err) => {
          this.#reads.delete(requestId)
          reject(err)
        })
        this.#reads.set(requestId, {
          resolve: (i) => {
            cleanup()
            resolve(i)
          },
          reject: (e) => {
            cleanup()
            reject(e)
          },
        })
      })
    })
  }

  async #serveReadIndex(payload: Uint8Array): Promise<Uint8Array> {
    const { lease } = packr.unpack(payload) as { lease?: unknown }
    const index = await this.#readIndexLocal(lease === true, Date.now() + this.#opts.operationTimeoutMs)
    return packr.pack({ index })
  }

  #waitApplied(index: number, deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.#sm.appliedIndex() >= index) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const entry = {
        index,
        resolve: () => {
          cleanup()
          resolve()
        },
      }
      const cleanup = withDeadline(deadline, signal, (err) => {
        this.#readsAwaitingApply = this.#readsAwaitingApply.filter((w) => w !== entry)
        reject(err)
      })
      this.#readsAwaitingApply.push(entry)
    })
  }

  /** Resolves when the leader changes, or after a tick; rejects when `signal` aborts. */
  #leaderChange(deadline: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#leaderWaiters.delete(done)
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = (): void => {
        clearTimeout(timer)
        this.#leaderWaiters.delete(done)
        reject(new HoldfastError('ABORTED', 'the operation was aborted'))
      }
      const timer = setTimeout(done, Math.max(0, Math.min(this.#opts.tickMs, deadline - Date.now())))
      this.#leaderWaiters.add(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  // ------------------------------------------------------------------ membership and leadership

  /** Proposes a single-server membership change on the leader (this node must lead). */
  async changeMembership(change: MembershipChange, options: OperationOptions = {}): Promise<Membership> {
    this.#assertOpen()
    const deadline = Date.now() + (options.timeoutMs ?? this.#opts.operationTimeoutMs)
    const result = await this.#proposeWith(() => this.#core.changeMembership(change), deadline, options.signal)
    if (!result.ok) throw result.error
    return this.#core.membership()
  }

  /**
   * Asks the leader (this node) to hand leadership to `to`. Resolves when `to` leads, or rejects at
   * the deadline. An acting leader first stops acting (its handlers get actingGraceMs). A leader
   * whose transfer failed steps down: after attempting a transfer it can hold no lease for the rest
   * of its term, so it could not act, and the cluster had better elect one that can.
   */
  async transferLeadership(to: NodeId, options: OperationOptions = {}): Promise<void> {
    this.#assertOpen()
    const resume = await this.#acting.pause('transfer')
    try {
      await this.#transfer(to, options)
    } finally {
      resume()
    }
  }

  async #transfer(to: NodeId, options: OperationOptions): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? this.#opts.operationTimeoutMs)
    const term = await new Promise<number>((resolve, reject) => this.#enqueue(() => {
      try {
        this.#core.transferLeadership(to)
        resolve(this.#core.term)
      } catch (err) {
        reject(err)
      }
    }))
    try {
      while (this.#core.leaderId !== to) {
        checkDeadline(deadline, options.signal)
        await this.#leaderChange(deadline, options.signal)
      }
    } catch (err) {
      if (this.#core.role === 'leader' && this.#core.term === term) await this.#stepDown()
      throw err
    }
  }

  /** Raft messages from peers that did not decode (each closed that peer's connection). */
  malformedMessages = 0
  /** Raft messages dropped because they claimed a sender other than the connection's peer. */
  spoofedMessages = 0

  /** The transport this node talks to its peers over (for its counters and events). */
  get transport(): Transport {
    return this.#transport
  }

  /**
   * Serves peer RPC `method` for services built on holdfast: `handler` gets the request payload
   * and the authenticated id of the peer that sent it; what it returns (or throws, as a typed
   * error) goes back to the caller. Method names starting with "holdfast." are reserved.
   */
  handle(method: string, handler: (payload: Uint8Array, from: NodeId) => Promise<Uint8Array> | Uint8Array): void {
    this.#assertOpen()
    if (method.startsWith(RESERVED_METHOD_PREFIX)) throw new HoldfastError('INVALID_ARGUMENT', `method names starting with "${RESERVED_METHOD_PREFIX}" are reserved`)
    this.#rpc.handle(method, handler)
  }

  /**
   * Calls `method` on peer `to` and resolves with its reply. Many requests may be in flight at
   * once. Fails with UNAVAILABLE when the peer is not connected (nothing was sent), CONNECTION_LOST
   * when it disconnects before answering (effect unknown), TIMEOUT, ABORTED, or the remote
   * handler's error code.
   */
  request(to: NodeId, method: string, payload: Uint8Array, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new HoldfastError('CLOSED', `node ${this.id} is closed`))
    return this.#rpc.request(to, method, payload, { signal: options.signal, timeoutMs: options.timeoutMs ?? this.#opts.operationTimeoutMs })
  }

  /** The membership in force on this node (the latest in its log). */
  membership(): Membership {
    return this.#core.membership()
  }

  status(): NodeStatus {
    const s: CoreStatus = this.#core.status()
    // A connection to a SIGKILLed peer lingers until the transport's keep-alive gives up; the
    // leader, which hears from every member each heartbeat, also requires a recent message.
    const electionMs = this.#electionTicks * this.#opts.tickMs
    const heardRecently = (id: NodeId): boolean => s.role !== 'leader' || this.#now() - (this.#lastHeard.get(id) ?? -Infinity) <= electionMs
    const reachable = new Set([this.id, ...this.#rpcPeers().filter(heardRecently)])
    const progress = new Map(s.progress.map((p) => [p.id, p]))
    const members: MemberStatus[] = [
      ...s.membership.voters.map((id) => ({ id, voter: true })),
      ...s.membership.learners.map((id) => ({ id, voter: false })),
    ].map((m) => ({ ...m, reachable: reachable.has(m.id), matchIndex: progress.get(m.id)?.match }))
    return { id: this.id, role: s.role, term: s.term, leaderId: s.leaderId, commitIndex: s.commitIndex, appliedIndex: this.#sm.appliedIndex(), members }
  }

  /** Whether this node leads and holds a valid lease, counting the real time since the core's last tick. */
  hasLease(): boolean {
    return this.#core.hasLease(this.#owedTicks())
  }

  /** The whole ticks of real time since the core's last tick, rounded up: what lease queries must count. */
  #owedTicks(): number {
    return Math.ceil((this.#now() - this.#lastTickAt) / this.#opts.tickMs)
  }

  #rpcPeers(): NodeId[] {
    return this.#transport.connectedPeers()
  }

  /** Resolves once the driver loop is idle (for tests). */
  settled(): Promise<void> {
    // A failed loop never runs again: events queued after the failure stay unconsumed.
    if (!this.#running && (this.#events.length === 0 || this.#loopError)) return Promise.resolve()
    return new Promise((r) => this.#idle.push(r))
  }

  /**
   * Stops the node. A leader first hands leadership to the most up-to-date voter (up to
   * closeTransferMs), so the cluster does not wait out an election timeout.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.#acting.close()
    if (this.#core.role === 'leader') await this.#handOver().catch((err) => log('%s: hand-over before close failed: %O', this.id, err))
    this.#closed = true
    clearInterval(this.#ticker)
    await this.settled()
    const closing = new HoldfastError('CLOSED', `node ${this.id} is closed`)
    for (const w of this.#proposals.values()) w.reject(closing)
    for (const w of this.#reads.values()) w.reject(closing)
    this.#proposals.clear()
    this.#reads.clear()
    this.#rpc.close()
    await this.#transport.close()
    await this.#sender.close() // held snapshots end their read transactions while the environment is open
    this.#sm.close()
    await this.#storage.close()
    this.emit('close')
  }

  async #handOver(): Promise<void> {
    const target = this.#transferTargets()[0]
    if (target === undefined) return
    await this.transferLeadership(target, { timeoutMs: this.#opts.closeTransferMs })
  }

  /** Connected voters that could take over, most up to date first (on the leader). */
  #transferTargets(): NodeId[] {
    const s = this.#core.status()
    const connected = new Set(this.#rpcPeers())
    return s.progress
      .filter((p) => p.id !== this.id && s.membership.voters.includes(p.id) && connected.has(p.id))
      .sort((a, b) => b.match - a.match)
      .map((p) => p.id)
  }

  // ------------------------------------------------------------------ acting (src/acting/)
  //
  // Who acts is decided by an ActingAuthority (here RaftAuthority: the leader with a valid lease,
  // token = term); ActingController runs the handlers. This section wires them to the driver loop:
  // the controller re-examines the lease after every turn (at least once per tick).

  readonly #acting: ActingController
  #afterTurnListeners = new Set<() => void>()
  #eventRole: Role = 'follower'
  #checkQuorumStepDowns = 0

  /**
   * Registers work that runs only on the acting node: the leader, once it has committed an entry
   * of its own term and setFence(token), so it has all committed state and every replica refuses
   * writes fenced with an older token. Handlers start in order (see ActingHandlerOptions.order),
   * each within actingTimeoutMs; the node reports itself acting ('actingStart', isActing()) once
   * all have resolved. A handler registered while the node acts starts at once, after those
   * running. `signal` aborts when leadership or the lease is lost (before any other node can be
   * elected), on a hand-over or close(), and when the handler is unregistered; a stop function the
   * handler resolved with is then called, and handlers get actingGraceMs to stop. A handler that
   * throws or times out aborts the others and makes the node give up leadership.
   * Returns the function that unregisters the handler.
   */
  onActing(handler: ActingHandler, options: ActingHandlerOptions = {}): () => void {
    this.#assertOpen()
    const off = this.#acting.register(handler, options)
    this.#enqueue(() => {}) // a turn, so an eligible node starts without waiting for the next tick
    return off
  }

  /** Whether this node acts: it leads with a fence of its own term and every handler has started. */
  isActing(): boolean {
    return this.#acting.isActing()
  }

  /**
   * True only while this node acts and its lease is valid at this instant (counting the real time
   * since its last tick): the check for a load balancer's "is this the one" probe. At most one node
   * of a cluster answers true at any moment, given the clock-drift bound of leaseMarginTicks.
   */
  leaderCheck(): boolean {
    return !this.#closed && !this.#loopError && this.#acting.leaderCheck()
  }

  /**
   * True when this node knows a leader and has applied everything that leader had committed when
   * it last spoke to this node: reads here are then as fresh as the last contact with the leader.
   */
  ready(): boolean {
    if (this.#closed || this.#loopError || this.#core.leaderId === null) return false
    return this.#sm.appliedIndex() >= this.#core.leaderCommit
  }

  /**
   * The fencing token in force, as applied on this node (0 before any node acted). On the acting
   * node it is its own token. Tokens are terms: strictly increasing, never shared by two acting
   * periods. Pass it with writes (`{ fence }`) and to external systems that can refuse old tokens.
   */
  fence(): number {
    return this.#sm.fenceToken()
  }

  /**
   * Emits an event of a kind outside holdfast's own ('vip' or 'x-...') on this node's event stream
   * ('event', see HoldfastEvent), with the time, node id and term added, so notifiers carry it too.
   */
  reportEvent(event: EventFields<CustomEvent>): void {
    if (typeof event?.type !== 'string' || !(event.type === 'vip' || event.type.startsWith('x-'))) {
      throw new HoldfastError('INVALID_ARGUMENT', "custom event types are 'vip' or start with 'x-'")
    }
    this.#emitEvent(event as ControllerEvent)
  }

  #emitEvent(event: ControllerEvent): void {
    const e = { ...event, time: Date.now(), node: this.id, term: this.#core.term } as HoldfastEvent
    try {
      this.emit('event', e)
    } catch (err) {
      log('%s: an event listener threw: %O', this.id, err)
    }
  }

  #createActing(options: NodeOptions): ActingController {
    const authority = new RaftAuthority({
      core: this.#core,
      owedTicks: () => this.#owedTicks(),
      proposeFence: (token, signal) => this.#proposeFence(token, signal),
      transferTargets: () => this.#transferTargets(),
      transfer: (to) => this.#transfer(to, { timeoutMs: this.#opts.closeTransferMs }),
      stepDown: () => this.#stepDown(),
      fence: () => this.#sm.fenceToken(),
      onTurn: (listener) => {
        this.#afterTurnListeners.add(listener)
        return () => this.#afterTurnListeners.delete(listener)
      },
    })
    return new ActingController({
      authority,
      timeoutMs: options.actingTimeoutMs ?? DEFAULT_ACTING_TIMEOUT_MS,
      graceMs: options.actingGraceMs ?? DEFAULT_ACTING_GRACE_MS,
      now: this.#now,
      emit: (e) => this.#emitEvent(e),
    })
  }

  /** Commits setFence(token) as the leader of term `token`; resolves with the fence in force once applied here. */
  async #proposeFence(token: number, signal: AbortSignal): Promise<number> {
    const data = this.#sm.encode({ type: 'setFence', token })
    const propose = (): { index: number; term: number } => {
      if (this.#core.role !== 'leader' || this.#core.term !== token) {
        throw new HoldfastError('LEADERSHIP_LOST', `${this.id} no longer leads term ${token}`, { leaderHint: this.#core.leaderId ?? undefined })
      }
      return this.#core.propose(data)
    }
    const r = await this.#proposeWith(propose, Date.now() + this.#opts.operationTimeoutMs, signal)
    if (!r.ok) throw r.error
    return (r.result as { fence: number }).fence
  }

  #stepDown(): Promise<void> {
    return new Promise<void>((resolve) => this.#enqueue(() => {
      this.#core.stepDown()
      resolve()
    }))
  }

  /** After every driver turn: role and quorum events, then the acting controller's lease check. */
  #afterTurn(): void {
    const role = this.#core.role
    const stepDowns = this.#core.stats.checkQuorumStepDowns
    if (stepDowns !== this.#checkQuorumStepDowns) {
      this.#checkQuorumStepDowns = stepDowns
      this.#emitEvent({ type: 'quorumLost', reason: 'checkQuorum' })
    }
    if (role !== this.#eventRole) {
      const previous = this.#eventRole
      this.#eventRole = role
      this.#emitEvent({ type: 'role', role, previous, leaderId: this.#core.leaderId })
    }
    for (const l of this.#afterTurnListeners) l()
  }

  /** Emits 'staleFence' for each entry the state machine refused for its old fencing token. */
  #reportStaleFences(entries: readonly Entry[], results: readonly ApplyResult[]): void {
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!
      if (r.ok || r.error.code !== 'STALE_FENCE') continue
      let details: { operation: string; token: number; key?: string; command?: string } = { operation: 'unknown', token: 0 }
      try {
        const cmd = decodeCommand(entries[i]!.data)
        if (cmd.type !== 'setFence') {
          details = { operation: cmd.type, token: cmd.fence ?? 0, ...(cmd.type === 'put' || cmd.type === 'delete' ? { key: cmd.key } : {}), ...(cmd.type === 'call' ? { command: cmd.name } : {}) }
        }
      } catch {
        /* it decoded once to be refused; the details are a courtesy */
      }
      this.#emitEvent({ type: 'staleFence', index: r.index, fence: this.#sm.fenceToken(), ...details })
    }
  }

  // ------------------------------------------------------------------ the driver loop

  #enqueue(event: () => void): void {
    if (this.#closed) return
    this.#events.push(event)
    if (!this.#running) {
      this.#running = true
      queueMicrotask(() => void this.#run())
    }
  }

  async #run(): Promise<void> {
    try {
      while (!this.#loopError && (this.#events.length > 0 || this.#core.hasReady())) {
        // Ticks first, from the monotonic clock: after a pause (GC, SIGSTOP) the core must see the
        // time that passed before it decides anything, or it could trust an expired lease.
        this.#catchUpTicks()
        const events = this.#events
        this.#events = []
        for (const e of events) e()
        while (this.#core.hasReady()) await this.#handleReady(this.#core.ready())
        this.#afterTurn()
      }
    } catch (err) {
      this.#fail(err)
    } finally {
      this.#running = false
      if (this.#events.length > 0 && !this.#loopError && !this.#closed) this.#enqueue(() => {})
      if (!this.#running) for (const r of this.#idle.splice(0)) r()
    }
  }

  #catchUpTicks(): void {
    const now = this.#now()
    const due = Math.floor((now - this.#lastTickAt) / this.#opts.tickMs)
    if (due <= 0) return
    this.#lastTickAt += due * this.#opts.tickMs
    // Beyond a few election timeouts more ticks change nothing but cost time.
    const n = Math.min(due, 100)
    for (let i = 0; i < n; i++) this.#core.tick()
  }

  async #handleReady(rd: Ready): Promise<void> {
    // 0. A leader's appends go out first, so its own disk write overlaps its followers'.
    for (const m of rd.earlyMessages) this.#send(m)
    // 1. Persist. A received snapshot is installed first: the state machine, then the log.
    if (rd.snapshot) await this.#installSnapshot(rd.snapshot)
    // A hard state whose only change is the commit index is not written on its own: losing it is
    // harmless (the commit index is recovered from a majority), and it would cost a disk sync per turn.
    const commitOnly = rd.hardState !== undefined && !rd.mustSync
    const save = rd.entries.length > 0 || (rd.hardState && !commitOnly) || rd.snapshot !== undefined || rd.compact !== undefined
    // 3 (early). Committed entries are applied in the durable write's own transaction when there is
    // one: one commit and one disk sync for both. They are stored locally already, or by this very
    // transaction (Ready contract), and the applied index commits atomically with their effects.
    // The state machine's change history is trimmed with the log, in the same transaction too.
    let applied: { results: ApplyResult[]; publish: () => void } | undefined
    const applyWithin = save && rd.mustSync && !rd.snapshot && rd.committedEntries.length > 0
    if (save) {
      const within = (): void => {
        if (rd.compact) this.#sm.compactChanges()
        if (applyWithin) applied = this.#sm.applyWithin(rd.committedEntries)
      }
      await this.#storage.save(
        { snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, compact: rd.compact },
        rd.mustSync || rd.snapshot !== undefined,
        rd.compact || applyWithin ? within : undefined,
      )
    }
    if (applied) applied.publish()
    // 2. Send, now that what the messages promise is durable.
    for (const m of rd.messages) this.#send(m)
    // 3. Apply (unless done above), and answer the callers whose entries these are.
    if (applied) this.#answer(rd.committedEntries, applied.results)
    else if (rd.committedEntries.length > 0) this.#answer(rd.committedEntries, this.#sm.apply(rd.committedEntries))
    for (const rs of rd.readStates) {
      const w = this.#reads.get(rs.requestId)
      this.#reads.delete(rs.requestId)
      w?.resolve(rs.index)
    }
    this.#core.advance()
    if (rd.softState) this.#onSoftState(rd.softState.role, rd.softState.leaderId)
    this.#core.setSnapshotPoint(this.#sm.appliedIndex())
  }

  /** Settles the proposals and reads waiting on `entries`, which have just been applied with `results`. */
  #answer(entries: readonly Entry[], results: readonly ApplyResult[]): void {
    this.#reportStaleFences(entries, results)
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      const w = this.#proposals.get(e.index)
      if (!w) continue
      this.#proposals.delete(e.index)
      if (w.term !== e.term) {
        w.reject(new HoldfastError('LEADERSHIP_LOST', `the proposal at index ${e.index} was replaced after a leader change; it did not take effect`, { leaderHint: this.#core.leaderId ?? undefined }))
      } else {
        w.resolve(results[i]!)
      }
    }
    const applied = this.#sm.appliedIndex()
    if (this.#readsAwaitingApply.length > 0) {
      const ready = this.#readsAwaitingApply.filter((w) => w.index <= applied)
      this.#readsAwaitingApply = this.#readsAwaitingApply.filter((w) => w.index > applied)
      for (const w of ready) w.resolve()
    }
    this.emit('applied', applied)
  }

  #onSoftState(role: Role, leaderId: NodeId | null): void {
    if (role !== 'leader') {
      // Reads pending on a former leader can no longer be confirmed; their callers retry elsewhere.
      for (const [id, w] of this.#reads) {
        this.#reads.delete(id)
        w.reject(new HoldfastError('NOT_LEADER', `${this.id} lost leadership`, { leaderHint: leaderId ?? undefined }))
      }
    }
    if (role !== this.#lastRole) {
      this.#lastRole = role
      this.emit('role', role)
    }
    if (leaderId !== this.#lastLeader) {
      this.#lastLeader = leaderId
      for (const w of [...this.#leaderWaiters]) w()
      this.emit('leader', leaderId)
    }
    const m = this.#core.membership()
    const key = JSON.stringify(m)
    if (key !== this.#lastMembership) {
      this.#lastMembership = key
      this.emit('member', m)
    }
  }

  /** Operations waiting for a (new) leader; one set rather than a listener each. */
  #leaderWaiters = new Set<() => void>()
  #lastRole: Role = 'follower'
  #lastLeader: NodeId | null = null
  #lastMembership = ''

  #send(m: Message): void {
    if (m.type === 'snapshot') {
      void this.#sendSnapshot(m)
      return
    }
    this.#rpc.sendRaft(m.to, encodeRaftMessage(m))
  }

  #onRaft(from: NodeId, bytes: Uint8Array): void {
    let m: Message
    try {
      m = decodeRaftMessage(bytes)
    } catch (err) {
      // A peer that sends garbage is broken or hostile: close its connection (it may reconnect).
      this.malformedMessages++
      log('%s: undecodable raft message from %s: %s', this.id, from, (err as Error).message)
      this.#transport.disconnect(from, `undecodable raft message: ${(err as Error).message}`)
      return
    }
    // The transport authenticated `from`; a message claiming another sender is dropped.
    if (m.from !== from) {
      this.spoofedMessages++
      return
    }
    // A snapshot message is valid only at the end of a completed transfer (src/transfer/); bare,
    // it has no data behind it, so it is a protocol violation.
    if (m.type === 'snapshot') {
      this.malformedMessages++
      this.#transport.disconnect(from, 'a snapshot message outside a snapshot transfer')
      return
    }
    this.#lastHeard.set(from, this.#now())
    this.#enqueue(() => this.#core.step(m))
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * Streams the state machine to a follower behind the compaction point (src/transfer/:
   * a bounded window of chunks, resumed at the receiver's held offset, checksummed). The
   * snapshot's read transaction is opened now, inside the Ready turn, so it holds exactly the
   * state at the applied index the core put into the message. If an earlier transfer to this
   * follower broke, the sender may send that older snapshot again instead, to resume it (see
   * SnapshotSender: only while the log holds every entry after it, so the follower then continues
   * from the log; the core probes from whatever index the follower answers with).
   * Emits 'snapshotProgress' {to, index, term, bytes, totalBytes?, startOffset} while sending and
   * 'snapshotSent' {to, index, term, requestedIndex, reoffered, ok, startOffset, sentBytes,
   * totalBytes, error?} at the end (index: the snapshot sent; requestedIndex: the core's).
   */
  async #sendSnapshot(m: Message): Promise<void> {
    const meta = m.snapshot!
    const stats = sendStats(meta)
    let ok = false
    let error: HoldfastError | undefined
    try {
      const snap = this.#sm.snapshot()
      if (snap.meta.appliedIndex !== meta.index) {
        snap.release()
        throw new HoldfastError('CONTRACT_VIOLATION', `snapshot at ${snap.meta.appliedIndex} does not match the core's ${meta.index}`)
      }
      await this.#sender.send({
        to: m.to,
        snapshot: { meta, chunks: snap.chunks, release: snap.release },
        firstIndex: this.#core.status().firstIndex,
        // The envelope (term, sender) is this message's; the meta is that of the snapshot sent.
        message: (sent) => encodeRaftMessage({ ...m, snapshot: sent }),
        stats,
        onProgress: (p) => this.emit('snapshotProgress', { to: m.to, ...p }),
      })
      ok = true
    } catch (err) {
      error = isHoldfastError(err) ? err : new HoldfastError('REMOTE_ERROR', String(err), { cause: err })
      log('%s: snapshot %d to %s failed: %s', this.id, stats.index, m.to, error.message)
    } finally {
      this.#enqueue(() => this.#core.reportSnapshot(m.to, ok))
      this.emit('snapshotSent', { to: m.to, ok, ...stats, ...(error ? { error } : {}) })
    }
  }

  /**
   * The receiving side of snapshot transfers, spooling into `dir`. A verified transfer's Raft
   * message goes to the core, whose Ready then installs it (#installSnapshot).
   * Emits 'snapshotProgress' {from, index, term, bytes, totalBytes?, startOffset} and
   * 'snapshotFailed' {from, index, term, error} (a checksum mismatch, for one).
   */
  #snapshotReceiver(dir: string): SnapshotReceiver {
    return new SnapshotReceiver({
      dir,
      appliedIndex: () => this.#sm.appliedIndex(),
      checkMessage: (from, bytes, index, term) => {
        const m = decodeRaftMessage(bytes)
        if (m.type !== 'snapshot' || m.from !== from || m.to !== this.id || m.snapshot?.index !== index || m.snapshot.term !== term) {
          throw new HoldfastError('INVALID_ARGUMENT', `not a snapshot message from ${from} to ${this.id} for the snapshot at ${index} (term ${term})`)
        }
      },
      deliver: (_from, bytes) => {
        const m = decodeRaftMessage(bytes)
        this.#enqueue(() => this.#core.step(m))
      },
      onProgress: (p) => this.emit('snapshotProgress', p),
      onFailed: (e) => this.emit('snapshotFailed', e),
    })
  }

  /**
   * Installs a received snapshot from its spool file: the intent is recorded durably first, then
   * the state machine is restored (atomically, beside the live data), then the log is reset by the
   * caller's save. A crash between the restore and the save is finished at the next open
   * (finishSnapshotInstall). The spool file is removed either way.
   */
  async #installSnapshot(meta: SnapshotMeta): Promise<void> {
    const incoming = this.#receiver.takeCompleted(meta.index, meta.term)
    if (!incoming) throw new HoldfastError('CONTRACT_VIOLATION', `no received data for the snapshot at ${meta.index} (term ${meta.term})`)
    try {
      await this.#nodeMeta.put(PENDING_INSTALL, meta)
      await this.#storage.env.flushed
      const restored = await this.#sm.restore(incoming.read())
      if (restored.appliedIndex !== meta.index) {
        throw new HoldfastError('CORRUPT_DATA', `the snapshot restored index ${restored.appliedIndex}, expected ${meta.index}`)
      }
      this.#faultPoints.afterSnapshotRestore?.()
      this.emit('snapshotInstalled', { from: incoming.from, index: meta.index, bytes: incoming.bytes })
    } finally {
      await incoming.remove()
    }
  }

  #fail(err: unknown): void {
    // A storage or state machine failure leaves the node unable to keep its promises: stop it.
    this.#loopError = err
    log('%s: driver loop failed: %O', this.id, err)
    void this.#acting.close() // no more turns: its lease can no longer be checked
    const e = isHoldfastError(err) ? err : new HoldfastError('CLOSED', `node ${this.id} failed: ${String(err)}`, { cause: err })
    for (const w of this.#proposals.values()) w.reject(e)
    for (const w of this.#reads.values()) w.reject(e)
    this.#proposals.clear()
    this.#reads.clear()
    this.emit('error', err)
  }

  #assertOpen(): void {
    if (this.#closed) throw new HoldfastError('CLOSED', `node ${this.id} is closed`)
    if (this.#loopError) throw new HoldfastError('CLOSED', `node ${this.id} failed: ${String(this.#loopError)}`)
  }
}

const PENDING_INSTALL = 'pendingSnapshotInstall'

/** Completes a snapshot install that a crash interrupted after the state machine switched. */
async function finishSnapshotInstall(storage: LmdbStorage, sm: KvStateMachine, nodeMeta: Database<unknown, string>): Promise<void> {
  const pending = nodeMeta.get(PENDING_INSTALL) as SnapshotMeta | undefined
  if (!pending) return
  if (sm.appliedIndex() === pending.index && storage.snapshotMeta().index < pending.index) {
    await storage.save({ snapshot: pending }, true)
  }
  await nodeMeta.remove(PENDING_INSTALL)
}

/** Creates or opens a holdfast node. See NodeOptions. */
export function createNode(options: NodeOptions): Promise<HoldfastNode> {
  return HoldfastNode.open(options)
}

async function loadOrCreateId(dir: string): Promise<NodeId> {
  const file = join(dir, 'node-id')
  try {
    const id = (await readFile(file, 'utf8')).trim()
    if (id.length > 0) return id
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const id = randomBytes(16).toString('hex')
  await writeFile(file, id + '\n', { flag: 'wx' })
  return id
}

function pick<T extends object, K extends keyof T>(o: T, ...keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
}

function checkDeadline(deadline: number, signal?: AbortSignal): void {
  if (signal?.aborted) throw new HoldfastError('ABORTED', 'the operation was aborted')
  if (Date.now() >= deadline) throw new HoldfastError('TIMEOUT', 'the operation did not complete before its deadline; its effect is unknown')
}

/** Arms a deadline and an abort signal; returns the function that disarms both. */
function withDeadline(deadline: number, signal: AbortSignal | undefined, fail: (err: HoldfastError) => void): () => void {
  const timer = setTimeout(() => {
    disarm()
    fail(new HoldfastError('TIMEOUT', 'the operation did not complete before its deadline; its effect is unknown'))
  }, Math.max(0, deadline - Date.now()))
  const onAbort = (): void => {
    disarm()
    fail(new HoldfastError('ABORTED', 'the operation was aborted; its effect is unknown'))
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  const disarm = (): void => {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
  return disarm
}

/** Errors after which a write certainly did not take effect, so it may be sent again. */
function retryable(err: unknown): boolean {
  return isHoldfastError(err) && (err.code === 'NOT_LEADER' || err.code === 'UNAVAILABLE' || err.code === 'LEADERSHIP_LOST' || err.code === 'TRANSFER_IN_PROGRESS')
}

/** Errors after which a read may be tried again: a read has no effect, so only the deadline limits it. */
function retryableRead(err: unknown): boolean {
  return retryable(err) || (isHoldfastError(err) && err.code === 'CONNECTION_LOST')
}

function encodeApplyResult(r: ApplyResult): Uint8Array {
  return r.ok ? packr.pack({ ok: true, result: r.result ?? null }) : packr.pack({ ok: false, code: r.error.code, message: r.error.message })
}

function decodeApplyResult(bytes: Uint8Array): ApplyResult {
  const r = packr.unpack(bytes) as { ok: boolean; result?: unknown; code?: string; message?: string }
  if (r.ok) return { index: 0, ok: true, result: r.result as never }
  return { index: 0, ok: false, error: new HoldfastError((r.code ?? 'REMOTE_ERROR') as never, r.message ?? 'remote failure') }
}
