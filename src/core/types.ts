/**
 * The data types of the pure consensus core. Nothing here performs I/O; the driver (src/node.ts,
 * or the simulator in test/sim/) persists, sends and applies what the core hands out in a Ready.
 */

/** A node's identity. In production this is the hex of its ed25519 public key. */
export type NodeId = string

/** `normal` entries carry application commands (empty data = the leader's no-op); `membership` entries carry a Membership. */
export type EntryType = 'normal' | 'membership'

/** One log entry. `index` starts at 1; `term` is the leader term that created it. */
export interface Entry {
  readonly index: number
  readonly term: number
  readonly type: EntryType
  readonly data: Uint8Array
}

/** The state that must survive a crash for safety. Persisted atomically as one record. */
export interface HardState {
  /** The latest term this node has seen. */
  readonly term: number
  /** The candidate this node voted for in `term`, or null. */
  readonly vote: NodeId | null
  /** The highest index known to be committed. Persisting it is an optimisation, not a safety need. */
  readonly commit: number
}

/** The members of a cluster. Voters elect and count toward commit; learners only receive the log. */
export interface Membership {
  readonly voters: readonly NodeId[]
  readonly learners: readonly NodeId[]
}

/** A single-server membership change. Changes take effect as soon as they are appended to a log. */
export type MembershipChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'addVoter'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'demote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId }

/** What a snapshot covers: the state after applying every entry up to `index`. */
export interface SnapshotMeta {
  readonly index: number
  readonly term: number
  /** The membership in force at `index`. */
  readonly membership: Membership
}

export type MessageType =
  | 'preVote'
  | 'preVoteResp'
  | 'vote'
  | 'voteResp'
  | 'append'
  | 'appendResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snapshot'
  | 'timeoutNow'

/**
 * One Raft message. Fields not used by a type are left undefined.
 *
 * - preVote/vote: `term` (for preVote, the term the sender would campaign at), `index`/`logTerm` of
 *   the sender's last entry, `transfer` when campaigning because of a leadership transfer.
 * - preVoteResp/voteResp: `reject`.
 * - append: `index`/`logTerm` of the entry before `entries`, `entries`, `commit`.
 * - appendResp: `index` = the last index now matching the leader's log; on `reject`, `rejectHint`
 *   and `logTerm` name the follower's best guess of where the logs may agree.
 * - heartbeat: `commit` (capped at the follower's known match), `readSeq` for ReadIndex confirmation,
 *   `index` = the leader's whole commit index, only to tell the follower how far the leader is
 *   (RaftCore.leaderCommit); a follower never commits by it (absent from older senders).
 * - heartbeatResp: `readSeq` echoed.
 * - snapshot: `snapshot` meta; the driver transfers the state bytes alongside.
 * - timeoutNow: the leader asks the transfer target to campaign at once.
 */
export interface Message {
  readonly type: MessageType
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly index?: number
  readonly logTerm?: number
  readonly entries?: readonly Entry[]
  readonly commit?: number
  readonly reject?: boolean
  readonly rejectHint?: number
  readonly snapshot?: SnapshotMeta
  readonly readSeq?: number
  readonly transfer?: boolean
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

/** Volatile state the driver may want to observe; reported in a Ready when it changes. */
export interface SoftState {
  readonly role: Role
  readonly leaderId: NodeId | null
  readonly term: number
  /** The membership in force (the latest in the log, committed or not). */
  readonly membership: Membership
}

/** The result of a readIndex request: reads may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly index: number
  readonly requestId: string
}

/**
 * Everything the driver must do in one turn. The contract, in order:
 *
 * 1. Persist `snapshot` (if any: install the snapshot state received alongside it, replacing the log),
 *    then `entries` (appending at entries[0].index and discarding any stored entries at or after
 *    it), then `hardState`. If `mustSync`, these must be durable (fsync'd), not just written.
 *    `earlyMessages` may be sent before step 1 starts or while it runs (see there).
 * 2. Only then send `messages`. Votes and append acknowledgements depend on the state in step 1;
 *    sending them earlier lets a crash make this node vote twice or un-acknowledge an entry.
 * 3. Apply `committedEntries` in order, recording the applied index atomically with their effects.
 *    They are committed by a majority, and are also stored locally by step 1 of this or an earlier Ready.
 * 4. `compact` (if set): the driver deletes stored entries at or before compact.index and records
 *    `compact` as its snapshot meta (the term and membership at that point). It is never above the
 *    snapshot point the driver declared with setSnapshotPoint().
 * 5. Serve `readStates` once the applied index reaches each one's index.
 * 6. Call `advance()`. The core must not be stepped, ticked or proposed to between `ready()` and
 *    `advance()`: the driver queues those events and feeds them after.
 */
export interface Ready {
  readonly softState: SoftState | undefined
  readonly hardState: HardState | undefined
  readonly snapshot: SnapshotMeta | undefined
  readonly entries: readonly Entry[]
  readonly mustSync: boolean
  /**
   * A leader's appends and heartbeats of its term, when this Ready changes neither term nor vote:
   * they promise nothing about this node's disk, so the driver may send them before or while it
   * persists step 1 (the leader's disk write then overlaps its followers'). Safe because the core
   * counts the leader toward commit only at advance(), and a crash before the write is as if the
   * leader had never appended those entries: not acknowledged to anyone, and any follower holding
   * them keeps them only if a later leader's log agrees. Send them no later than `messages`.
   */
  readonly earlyMessages: readonly Message[]
  /** Messages to send only after step 1 is done (durably, if `mustSync`). */
  readonly messages: readonly Message[]
  readonly committedEntries: readonly Entry[]
  readonly readStates: readonly ReadState[]
  readonly compact: SnapshotMeta | undefined
}

/**
 * The synchronous, read-only view of durable log storage that the core reads from. Writes go
 * through the driver (see Ready). Implementations: src/storage/memory.ts, src/storage/lmdb.ts.
 */
export interface LogReader {
  /** The durable hard state (term 0, no vote, commit 0 for a new node). */
  hardState(): HardState
  /** The last snapshot or compaction point: entries at or before `index` are no longer stored. */
  snapshotMeta(): SnapshotMeta
  /** The first stored entry's index: snapshotMeta().index + 1. */
  firstIndex(): number
  /** The last stored entry's index, or snapshotMeta().index when no entry is stored. */
  lastIndex(): number
  /** The term of entry `index`, for index in [firstIndex() - 1, lastIndex()]; undefined outside. */
  term(index: number): number | undefined
  /**
   * Entries in [lo, hi), stopping early once their total size passes `maxBytes` (at least one
   * entry is always returned when lo < hi). lo must be >= firstIndex() and hi <= lastIndex() + 1.
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[]
}

/** The approximate encoded size of an entry, for message size limits. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 24
}
