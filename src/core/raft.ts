import { HoldfastError } from '../errors.js'
import { RaftLog } from './log.js'
import {
  EMPTY_MEMBERSHIP,
  allMembers,
  applyChange,
  decodeMembership,
  encodeMembership,

  isVoter,
  sameMembership,
} from './membership.js'
import { Progress } from './progress.js'
import { committedIndex, majority, voteOutcome } from './quorum.js'
import type {
  Entry,
  HardState,
  LogReader,
  Membership,
  MembershipChange,
  Message,
  NodeId,
  ReadState,
  Ready,
  Role,
  SnapshotMeta,
  SoftState,
} from './types.js'
import { entrySize } from './types.js'

/** @default 10 */
export const DEFAULT_ELECTION_TICKS = 10
/** @default 1 */
export const DEFAULT_HEARTBEAT_TICKS = 1
/** For a follower receiving a snapshot or lagging, the leader keeps up to this many log tails more than usual. */
export const SNAPSHOT_HOLD_TAILS = 4
/** @default 2 */
export const DEFAULT_LEASE_MARGIN_TICKS = 2
/** @default 256 */
export const DEFAULT_MAX_INFLIGHT_MSGS = 256
/** @default 1 MiB */
export const DEFAULT_MAX_MSG_BYTES = 1024 * 1024
/** @default 64 MiB */
export const DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024
/** @default 16 MiB */
export const DEFAULT_MAX_APPLY_BYTES = 16 * 1024 * 1024
/** @default 1000 */
export const DEFAULT_LOG_TAIL = 1000

/** Settings and dependencies of a RaftCore. */
export interface RaftOptions {
  /** This node's id. */
  id: NodeId
  /** Durable log state, read synchronously. The driver writes it as each Ready instructs. */
  storage: LogReader
  /** Uniform random numbers in [0, 1). Injected so a seeded simulator can replay any run. */
  rand: () => number
  /** The state machine's applied index at start; entries after it are handed out again. @default storage.snapshotMeta().index */
  applied?: number
  /** A follower campaigns after a random timeout in [electionTicks, 2 * electionTicks). @default 10 */
  electionTicks?: number
  /** The leader sends heartbeats every heartbeatTicks. Must be < electionTicks. @default 1 */
  heartbeatTicks?: number
  /**
   * Lease reads and the acting lease are valid until electionTicks - leaseMarginTicks ticks after
   * the heartbeat round that a majority acknowledged was sent. This relies on bounded clock drift:
   * a follower that acknowledged refuses other candidates for electionTicks of ITS clock, so the
   * lease is safe while every clock runs within a factor (electionTicks - margin) / (electionTicks - 1)
   * of the leader's, about 11% with the defaults. Raise the margin for worse clocks.
   * @default 2
   */
  leaseMarginTicks?: number
  /** Appends in flight to one follower in replicate state. @default 256 */
  maxInflightMsgs?: number
  /** Bytes of appends in flight to one follower. @default 64 MiB */
  maxInflightBytes?: number
  /** Entries per append message stop once they pass this size (at least one entry is sent). @default 1 MiB */
  maxMsgBytes?: number
  /** Committed entries handed out per Ready stop once they pass this size. @default 16 MiB */
  maxApplyBytes?: number
  /** Entries kept in the log behind the snapshot point, so slow followers catch up without a snapshot. @default 1000 */
  logTail?: number
}

/** Counters for observability and for the simulator's summary. */
export interface CoreStats {
  /** Messages dropped, by reason (malformed, stale term, unknown sender, out of range, ...). */
  readonly dropped: Record<string, number>
  electionsStarted: number
  preVotesStarted: number
  leadershipsWon: number
  /** Proposals rejected because another node leads or a transfer is in progress. */
  proposalsRefused: number
  /** Appends held because they arrived ahead of a gap (reordering). */
  bufferedAppends: number
  /** Times this node stepped down as leader because check-quorum found no active majority. */
  checkQuorumStepDowns: number
}

/** A peer's replication state as the leader sees it. */
export interface PeerProgress {
  readonly id: NodeId
  readonly voter: boolean
  readonly match: number
  readonly next: number
  readonly state: 'probe' | 'replicate' | 'snapshot'
  readonly recentActive: boolean
}

export interface CoreStatus {
  readonly id: NodeId
  readonly role: Role
  readonly term: number
  readonly vote: NodeId | null
  readonly leaderId: NodeId | null
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly firstIndex: number
  readonly lastIndex: number
  readonly membership: Membership
  readonly leadTransferee: NodeId | null
  /** The current leader's commit index as last heard (see RaftCore.leaderCommit). */
  readonly leaderCommit: number
  /** Only on the leader. */
  readonly progress: readonly PeerProgress[]
}

/** A proposal's place in the log; the driver resolves the caller when this entry applies with this term. */
export interface ProposalTicket {
  readonly index: number
  readonly term: number
}

interface PendingRead {
  readonly requestId: string
  readonly index: number
  /** The heartbeat round that confirms this read; 0 until that round is sent. */
  seq: number
}

interface Outstanding {
  readonly hardState: HardState | undefined
  readonly softState: SoftState
  readonly lastApplied: number
}

/**
 * The pure Raft consensus core. Deterministic: everything it does follows from the sequence of
 * tick/step/propose calls and the injected rand(). See Ready (types.ts) for the driver contract.
 *
 * Role behaviour is switched by swapping #stepRole and #tickRole on every role change.
 */
export class RaftCore {
  readonly id: NodeId
  readonly stats: CoreStats = { dropped: {}, electionsStarted: 0, preVotesStarted: 0, leadershipsWon: 0, proposalsRefused: 0, bufferedAppends: 0, checkQuorumStepDowns: 0 }

  readonly #rand: () => number
  readonly #electionTicks: number
  readonly #heartbeatTicks: number
  readonly #leaseMarginTicks: number
  readonly #maxInflightMsgs: number
  readonly #maxInflightBytes: number
  readonly #maxMsgBytes: number
  readonly #maxApplyBytes: number
  readonly #logTail: number

  readonly #log: RaftLog
  #term: number
  #vote: NodeId | null
  #leaderId: NodeId | null = null
  #role: Role = 'follower'
  /** Membership entries above the compaction point, oldest first; the last one is in force. */
  #membershipHistory: { index: number; membership: Membership }[]

  #progress = new Map<NodeId, Progress>()
  #votes = new Map<NodeId, boolean>()

  #ticks = 0
  #electionElapsed = 0
  #heartbeatElapsed = 0
  #randomizedElectionTimeout = 0
  /**
   * Ticks since this node last heard from a leader of its term (or was leader). It starts at 0 on
   * boot: a restarted node must not help elect a new leader while the old one may still hold a
   * lease that this node acknowledged before it crashed.
   */
  #ticksSinceLeaderContact = 0
  /** The highest commit index the leader of this term has told us (0 until it has). */
  #leaderCommit = 0

  #leadTransferee: NodeId | null = null
  /** Once a transfer has been attempted in this term, a lease can no longer be trusted. */
  #transferAttempted = false

  /**
   * Appends from the current leader that arrived ahead of a gap in our log (reordered), held until
   * the gap fills. Processing a message late is always safe; rejecting it would make the leader
   * resend its whole window per early arrival. Cleared whenever the term or the log base changes.
   */
  #reorderBuffer: Message[] = []
  /** Our last index when we last rejected an early append; one rejection per gap point suffices. */
  #gapReportedAt = -1
  #msgs: Message[] = []
  #readStates: ReadState[] = []
  #pendingReads: PendingRead[] = []
  #readsAwaitingCommit: { requestId: string; lease: boolean }[] = []
  #heartbeatSeq = 0
  #seqSentAt = new Map<number, number>()
  #needBroadcast = false
  #needReadHeartbeat = false

  #snapshotPoint = 0
  #prevHardState: HardState
  #prevSoftState: SoftState
  #outstanding: Outstanding | undefined

  #stepRole: (m: Message) => void = (m) => this.#stepFollower(m)
  #tickRole: () => void = () => this.#tickElection()

  constructor(options: RaftOptions) {
    this.id = options.id
    this.#rand = options.rand
    this.#electionTicks = options.electionTicks ?? DEFAULT_ELECTION_TICKS
    this.#heartbeatTicks = options.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS
    this.#leaseMarginTicks = options.leaseMarginTicks ?? DEFAULT_LEASE_MARGIN_TICKS
    this.#maxInflightMsgs = options.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS
    this.#maxInflightBytes = options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES
    this.#maxMsgBytes = options.maxMsgBytes ?? DEFAULT_MAX_MSG_BYTES
    this.#maxApplyBytes = options.maxApplyBytes ?? DEFAULT_MAX_APPLY_BYTES
    this.#logTail = options.logTail ?? DEFAULT_LOG_TAIL
    if (!(this.#heartbeatTicks >= 1 && this.#heartbeatTicks < this.#electionTicks)) {
      throw new HoldfastError('INVALID_ARGUMENT', `heartbeatTicks (${this.#heartbeatTicks}) must be >= 1 and < electionTicks (${this.#electionTicks})`)
    }
    if (!(this.#leaseMarginTicks >= 1 && this.#leaseMarginTicks < this.#electionTicks)) {
      throw new HoldfastError('INVALID_ARGUMENT', `leaseMarginTicks must be >= 1 and < electionTicks`)
    }

    const storage = options.storage
    const snap = storage.snapshotMeta()
    const applied = options.applied ?? snap.index
    if (applied < snap.index || applied > storage.lastIndex()) {
      throw new HoldfastError(
        'CONTRACT_VIOLATION',
        `applied index ${applied} is outside the stored log [${snap.index}, ${storage.lastIndex()}]: the state machine and the log disagree`,
      )
    }
    this.#log = new RaftLog(storage, applied)
    this.#snapshotPoint = applied
    const hs = storage.hardState()
    this.#term = hs.term
    this.#vote = hs.vote
    this.#membershipHistory = [{ index: snap.index, membership: snap.membership }]
    this.#scanMembership(snap.index + 1, storage.lastIndex())
    this.#prevHardState = this.#hardState()
    this.#prevSoftState = this.#softState()
    this.#resetElectionTimeout()
  }

  // ---------------------------------------------------------------- public API

  /** Advances logical time by one tick. */
  tick(): void {
    this.#assertNoOutstanding('tick')
    this.#ticks++
    this.#ticksSinceLeaderContact++
    this.#tickRole()
  }

  /**
   * Feeds a message from a peer. Never throws for bad input: a malformed, misaddressed or
   * impossible message is dropped and counted in stats.dropped.
   */
  step(m: Message): void {
    this.#assertNoOutstanding('step')
    const problem = validateMessage(m, this.id)
    if (problem !== undefined) return this.#drop(problem)

    if (m.term > this.#term) {
      if (m.type === 'preVote' || m.type === 'vote') {
        // While a leader is (or may be) in charge, ignore candidates: this is what keeps a node that
        // was partitioned away from deposing a healthy leader, and what makes leases safe.
        if (!m.transfer && this.#ticksSinceLeaderContact < this.#electionTicks) return this.#drop('inLease')
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // A pre-vote does not change terms: the candidate's term is the one it would campaign at.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot'
        this.#becomeFollower(m.term, fromLeader ? m.from : null)
      }
    } else if (m.term < this.#term) {
      if (m.type === 'append' || m.type === 'heartbeat') {
        // A stale leader: tell it our term so it steps down. This also frees a node whose term grew
        // during a partition and that pre-vote would otherwise keep out.
        this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: this.#log.lastIndex() })
      } else if (m.type === 'preVote') {
        this.#send({ type: 'preVoteResp', to: m.from, term: this.#term, reject: true })
      }
      return this.#drop('staleTerm')
    }

    switch (m.type) {
      case 'preVote':
      case 'vote':
        return this.#handleVoteRequest(m)
      default:
        return this.#stepRole(m)
    }
  }

  /**
   * Appends a command to the leader's log. It is replicated in the next Ready; all proposals made
   * before that Ready go out as one append (group commit). Throws NOT_LEADER or TRANSFER_IN_PROGRESS.
   */
  propose(data: Uint8Array): ProposalTicket {
    this.#assertNoOutstanding('propose')
    this.#assertCanPropose()
    return this.#appendAsLeader('normal', data)
  }

  /**
   * Proposes one single-server membership change. Refused with MEMBERSHIP_CHANGE_PENDING until the
   * leader has committed an entry of its own term and while another change is uncommitted: this
   * is the fix for the single-server change bug found after the Raft dissertation.
   */
  changeMembership(change: MembershipChange): ProposalTicket {
    this.#assertNoOutstanding('changeMembership')
    this.#assertCanPropose()
    if (!this.#committedInTerm()) {
      throw new HoldfastError('MEMBERSHIP_CHANGE_PENDING', 'the leader has not yet committed an entry of its term')
    }
    if (this.#lastMembershipIndex() > this.#log.committed) {
      throw new HoldfastError('MEMBERSHIP_CHANGE_PENDING', 'another membership change is not yet committed')
    }
    const next = applyChange(this.membership(), change)
    return this.#appendAsLeader('membership', encodeMembership(next))
  }

  /**
   * Requests a linearizable read point. The result arrives as a ReadState with this requestId in a
   * later Ready; serve the read once the state machine has applied its index. With `lease`, a leader
   * holding a valid lease answers without a heartbeat round (see RaftOptions.leaseMarginTicks).
   * Throws NOT_LEADER. Reads still pending when leadership is lost are dropped silently: the driver
   * fails them on the role change.
   */
  readIndex(requestId: string, options: { lease?: boolean } = {}): void {
    this.#assertNoOutstanding('readIndex')
    if (this.#role !== 'leader') {
      throw new HoldfastError('NOT_LEADER', `node ${this.id} is not the leader`, { leaderHint: this.#leaderId ?? undefined })
    }
    if (!this.#committedInTerm()) {
      // The commit index is not known to be current until an entry of this term commits.
      this.#readsAwaitingCommit.push({ requestId, lease: options.lease === true })
      return
    }
    this.#startRead(requestId, options.lease === true)
  }

  /**
   * Hands leadership to `to`: it is brought up to date, then told to campaign at once. Proposals
   * are refused until the transfer ends (success, or timeout after electionTicks).
   */
  transferLeadership(to: NodeId): void {
    this.#assertNoOutstanding('transferLeadership')
    if (this.#role !== 'leader') {
      throw new HoldfastError('NOT_LEADER', `node ${this.id} is not the leader`, { leaderHint: this.#leaderId ?? undefined })
    }
    if (to === this.id) return
    if (!isVoter(this.membership(), to)) {
      throw new HoldfastError('INVALID_ARGUMENT', `transfer target ${to} is not a voter`)
    }
    if (this.#leadTransferee === to) return
    this.#leadTransferee = to
    this.#transferAttempted = true
    this.#electionElapsed = 0
    const pr = this.#progress.get(to)!
    if (pr.match === this.#log.lastIndex()) this.#send({ type: 'timeoutNow', to, term: this.#term })
    else this.#sendAppend(to, true)
  }

  /**
   * Gives up leadership without naming a successor: the leader becomes a follower of its term that
   * knows no leader, and the cluster elects a leader once the followers' election timeouts pass
   * (they still honour this leader's lease until then). For a driver that must not lead, for
   * example because the service could not start acting. Does nothing on a non-leader.
   */
  stepDown(): void {
    this.#assertNoOutstanding('stepDown')
    if (this.#role !== 'leader') return
    this.#becomeFollower(this.#term, null)
  }

  /** Starts an election now (pre-vote first), as if the election timeout had passed. */
  campaign(): void {
    this.#assertNoOutstanding('campaign')
    if (this.#role === 'leader') return
    if (!this.#promotable()) return
    this.#campaign(false)
  }

  /**
   * Declares that the state machine's state at `index` is durable and can be sent as a snapshot.
   * The core may then compact the log up to index - logTail.
   */
  setSnapshotPoint(index: number): void {
    this.#snapshotPoint = Math.max(this.#snapshotPoint, Math.min(index, this.#log.applied))
  }

  /** The driver reports the end of a snapshot transfer started by a 'snapshot' message. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    this.#assertNoOutstanding('reportSnapshot')
    const pr = this.#progress.get(to)
    if (this.#role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return
    if (!ok) pr.pendingSnapshot = 0
    pr.becomeProbe()
    // Wait for the follower's append response (or a heartbeat) before probing again.
    pr.probeSent = true
  }

  /** The driver reports that messages to `to` could not be delivered. */
  reportUnreachable(to: NodeId): void {
    const pr = this.#progress.get(to)
    if (this.#role === 'leader' && pr !== undefined && pr.state === 'replicate') pr.becomeProbe()
  }

  hasReady(): boolean {
    if (this.#outstanding) return false
    return (
      this.#msgs.length > 0 ||
      this.#readStates.length > 0 ||
      this.#log.unstableEntries().length > 0 ||
      this.#log.pendingSnapshot() !== undefined ||
      this.#log.hasNextCommitted() ||
      (this.#role === 'leader' && (this.#needBroadcast || this.#needReadHeartbeat)) ||
      !sameHardState(this.#hardState(), this.#prevHardState) ||
      !sameSoftState(this.#softState(), this.#prevSoftState) ||
      this.#compactionPoint() !== undefined
    )
  }

  /** Everything the driver must do now; see the Ready contract. Call advance() when done. */
  ready(): Ready {
    this.#assertNoOutstanding('ready')
    if (this.#role === 'leader') {
      if (this.#needBroadcast) this.#broadcastAppend()
      if (this.#needReadHeartbeat) this.#broadcastHeartbeat()
    }
    this.#needBroadcast = false
    this.#needReadHeartbeat = false

    const hs = this.#hardState()
    const hardState = sameHardState(hs, this.#prevHardState) ? undefined : hs
    const ss = this.#softState()
    const softState = sameSoftState(ss, this.#prevSoftState) ? undefined : ss
    const entries = this.#log.unstableEntries().slice()
    const snapshot = this.#log.pendingSnapshot()
    const committedEntries = this.#log.nextCommitted(this.#maxApplyBytes)
    const compact = this.#compactionPoint()
    const mustSync =
      entries.length > 0 || snapshot !== undefined || hs.term !== this.#prevHardState.term || hs.vote !== this.#prevHardState.vote
    // A leader's appends and heartbeats need nothing of this Ready's write unless it changes term or
    // vote (a node that just stepped up or down sends nothing early).
    const early: Message[] = []
    const late: Message[] = []
    const settled = hs.term === this.#prevHardState.term && hs.vote === this.#prevHardState.vote
    for (const m of this.#msgs) {
      const mayGoEarly = settled && this.#role === 'leader' && m.term === this.#term && (m.type === 'append' || m.type === 'heartbeat')
      ;(mayGoEarly ? early : late).push(m)
    }
    const ready: Ready = {
      softState,
      hardState,
      snapshot,
      entries,
      mustSync,
      earlyMessages: early,
      messages: late,
      committedEntries,
      readStates: this.#readStates,
      compact,
    }
    this.#msgs = []
    this.#readStates = []
    const last = committedEntries[committedEntries.length - 1]
    this.#outstanding = { hardState, softState: ss, lastApplied: last ? last.index : this.#log.applied }
    if (compact) this.#pruneMembershipHistory(compact.index)
    return ready
  }

  /** The driver has done everything the last Ready asked. */
  advance(): void {
    const out = this.#outstanding
    if (!out) throw new HoldfastError('CONTRACT_VIOLATION', 'advance() without a preceding ready()')
    this.#outstanding = undefined
    if (out.hardState) this.#prevHardState = out.hardState
    this.#prevSoftState = out.softState
    this.#log.markStable()
    this.#log.applied = Math.max(this.#log.applied, out.lastApplied)
    if (this.#role === 'leader') {
      // The leader counts itself toward commit only once its own entries are durable.
      this.#progress.get(this.id)?.maybeUpdate(this.#log.lastIndex())
      this.#maybeCommit()
    }
  }

  /** The membership in force: the latest one in the log, committed or not. */
  membership(): Membership {
    return this.#membershipHistory[this.#membershipHistory.length - 1]!.membership
  }

  get role(): Role {
    return this.#role
  }

  get term(): number {
    return this.#term
  }

  get leaderId(): NodeId | null {
    return this.#leaderId
  }

  get commitIndex(): number {
    return this.#log.committed
  }

  get appliedIndex(): number {
    return this.#log.applied
  }

  /**
   * The current leader's commit index as last heard: on the leader its own commit index; on a
   * follower the highest commit index carried by the appends and heartbeats of the leader of its
   * term (0 when it knows no leader). A follower whose applied index has reached it is as current
   * as the leader was when it last spoke. Heartbeats cap `commit` (what a follower may commit) at
   * the follower's match, so they carry the whole commit index in `index`, for this alone.
   */
  get leaderCommit(): number {
    if (this.#role === 'leader') return this.#log.committed
    return this.#leaderId === null ? 0 : Math.max(this.#leaderCommit, this.#log.committed)
  }

  get lastIndex(): number {
    return this.#log.lastIndex()
  }

  /** The term of entry `index`, undefined if compacted or absent. For observers (tests, the simulator). */
  termAt(index: number): number | undefined {
    return this.#log.term(index)
  }

  /**
   * Whether this node is the leader and holds a valid lease: no other node can have been elected
   * since, given the clock-drift bound documented on RaftOptions.leaseMarginTicks.
   *
   * The core only knows the time it has been ticked. A driver asking between turns (or while a
   * Ready is in flight, when the core may not be ticked) must pass the whole ticks of real time
   * that have passed since its last tick() as `owedTicks`, rounded up, or it overstates the lease.
   */
  hasLease(owedTicks = 0): boolean {
    return this.leaseRemainingTicks(owedTicks) > 0
  }

  /** Ticks left on the lease after `owedTicks` more ticks (0 when there is none). See hasLease(). */
  leaseRemainingTicks(owedTicks = 0): number {
    if (this.#role !== 'leader' || this.#transferAttempted) return 0
    const voters = this.membership().voters
    if (!voters.includes(this.id)) return 0
    if (voters.length === 1) return Infinity
    const start = this.#seqSentAt.get(this.#quorumAckedSeq())
    if (start === undefined) return 0
    return Math.max(0, start + this.#electionTicks - this.#leaseMarginTicks - this.#ticks - owedTicks)
  }

  status(): CoreStatus {
    const m = this.membership()
    const progress: PeerProgress[] = []
    if (this.#role === 'leader') {
      for (const [id, pr] of this.#progress) {
        progress.push({ id, voter: isVoter(m, id), match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive })
      }
    }
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leaderId: this.#leaderId,
      commitIndex: this.#log.committed,
      appliedIndex: this.#log.applied,
      firstIndex: this.#log.firstIndex(),
      lastIndex: this.#log.lastIndex(),
      membership: m,
      leadTransferee: this.#leadTransferee,
      leaderCommit: this.leaderCommit,
      progress,
    }
  }

  // ---------------------------------------------------------------- roles

  #becomeFollower(term: number, leaderId: NodeId | null): void {
    this.#reset(term)
    this.#role = 'follower'
    this.#leaderId = leaderId
    this.#stepRole = (m) => this.#stepFollower(m)
    this.#tickRole = () => this.#tickElection()
  }

  #becomePreCandidate(): void {
    // A pre-candidate keeps its term and vote: a failed pre-vote must leave no trace.
    this.#role = 'preCandidate'
    this.#leaderId = null
    this.#votes.clear()
    this.#electionElapsed = 0
    this.#resetElectionTimeout()
    this.#stepRole = (m) => this.#stepCandidate(m)
    this.#tickRole = () => this.#tickElection()
  }

  #becomeCandidate(): void {
    this.#reset(this.#term + 1)
    this.#vote = this.id
    this.#role = 'candidate'
    this.#stepRole = (m) => this.#stepCandidate(m)
    this.#tickRole = () => this.#tickElection()
  }

  #becomeLeader(): void {
    this.#reset(this.#term)
    this.#role = 'leader'
    this.#leaderId = this.id
    this.#ticksSinceLeaderContact = 0
    this.stats.leadershipsWon++
    this.#stepRole = (m) => this.#stepLeader(m)
    this.#tickRole = () => this.#tickHeartbeat()
    this.#resetProgress()
    // A leader commits only entries of its own term by counting; the no-op gives it one at once.
    this.#appendAsLeader('normal', new Uint8Array(0))
  }

  #reset(term: number): void {
    if (term !== this.#term) {
      this.#term = term
      this.#vote = null
    }
    this.#leaderId = null
    this.#leaderCommit = 0
    this.#electionElapsed = 0
    this.#heartbeatElapsed = 0
    this.#resetElectionTimeout()
    this.#votes.clear()
    this.#progress.clear()
    this.#leadTransferee = null
    this.#transferAttempted = false
    this.#reorderBuffer = []
    this.#gapReportedAt = -1
    this.#pendingReads = []
    this.#readsAwaitingCommit = []
    this.#seqSentAt.clear()
    this.#needBroadcast = false
    this.#needReadHeartbeat = false
  }

  #resetProgress(): void {
    this.#progress.clear()
    const next = this.#log.lastIndex() + 1
    for (const id of allMembers(this.membership())) this.#addProgress(id, next)
    if (!this.#progress.has(this.id)) this.#addProgress(this.id, next)
    this.#progress.get(this.id)!.maybeUpdate(this.#log.stableLastIndex())
  }

  #addProgress(id: NodeId, next: number): void {
    const pr = new Progress(next, this.#maxInflightMsgs, this.#maxInflightBytes)
    pr.recentActive = true
    this.#progress.set(id, pr)
  }

  // ---------------------------------------------------------------- ticks

  #tickElection(): void {
    this.#electionElapsed++
    // The only voter has no one to wait for: no other node can win an election in its membership
    // (any other node's vote count needs this node), so it campaigns on its first tick.
    const voters = this.membership().voters
    const alone = voters.length === 1 && voters[0] === this.id
    if (this.#promotable() && (alone || this.#electionElapsed >= this.#randomizedElectionTimeout)) {
      this.#electionElapsed = 0
      this.#campaign(false)
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++
    this.#electionElapsed++
    this.#ticksSinceLeaderContact = 0
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0
      if (!this.#checkQuorum()) {
        this.stats.checkQuorumStepDowns++
        this.#becomeFollower(this.#term, null)
        return
      }
      // A transfer that has not completed within an election timeout is abandoned.
      this.#leadTransferee = null
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0
      this.#broadcastHeartbeat()
    }
  }

  /** Check-quorum: a leader that has not heard from a majority within an election timeout steps down. */
  #checkQuorum(): boolean {
    const voters = this.membership().voters
    let active = 0
    for (const v of voters) {
      const pr = this.#progress.get(v)
      if (v === this.id || pr?.recentActive) active++
    }
    for (const [id, pr] of this.#progress) if (id !== this.id) pr.recentActive = false
    return voters.length === 0 || active >= majority(voters.length)
  }

  // ---------------------------------------------------------------- elections

  /**
   * Whether this node may campaign: it is a voter in its latest membership, or that membership is an
   * uncommitted change that removed or demoted it from a previous one where it voted. In the second
   * case it may hold the only up-to-date log, so it must be able to win (counting the other voters of
   * its latest membership), commit the change and hand over; otherwise the cluster could deadlock.
   */
  #promotable(): boolean {
    if (isVoter(this.membership(), this.id)) return true
    const h = this.#membershipHistory
    return h.length >= 2 && h[h.length - 1]!.index > this.#log.committed && isVoter(h[h.length - 2]!.membership, this.id)
  }

  #campaign(transfer: boolean): void {
    if (transfer) {
      this.#becomeCandidate()
      this.stats.electionsStarted++
    } else {
      this.#becomePreCandidate()
      this.stats.preVotesStarted++
    }
    const type = this.#role === 'preCandidate' ? 'preVote' : 'vote'
    const term = this.#role === 'preCandidate' ? this.#term + 1 : this.#term
    this.#votes.set(this.id, true)
    if (this.#tallyVotes()) return
    for (const v of this.membership().voters) {
      if (v === this.id) continue
      this.#send({ type, to: v, term, index: this.#log.lastIndex(), logTerm: this.#log.lastTerm(), ...(transfer ? { transfer: true } : {}) })
    }
  }

  /** Counts votes; acts on a decided election. Returns whether the election is decided. */
  #tallyVotes(): boolean {
    const outcome = voteOutcome(this.membership().voters, this.#votes)
    if (outcome === 'won') {
      if (this.#role === 'preCandidate') {
        this.#becomeCandidate()
        this.stats.electionsStarted++
        this.#votes.set(this.id, true)
        if (this.#tallyVotes()) return true
        for (const v of this.membership().voters) {
          if (v === this.id) continue
          this.#send({ type: 'vote', to: v, term: this.#term, index: this.#log.lastIndex(), logTerm: this.#log.lastTerm() })
        }
        return false
      }
      this.#becomeLeader()
      return true
    }
    if (outcome === 'lost') {
      this.#becomeFollower(this.#term, null)
      return true
    }
    return false
  }

  #handleVoteRequest(m: Message): void {
    const pre = m.type === 'preVote'
    // We may vote for m.from if we already did in this term, or have not voted and know no leader,
    // or (pre-vote only) the candidate's prospective term is beyond ours.
    const canVote = this.#vote === m.from || (this.#vote === null && this.#leaderId === null) || (pre && m.term > this.#term)
    const grant = canVote && this.#log.isUpToDate(m.index!, m.logTerm!)
    const respType = pre ? 'preVoteResp' : 'voteResp'
    if (grant) {
      // A pre-vote response carries the candidate's term so it is not dropped as stale.
      this.#send({ type: respType, to: m.from, term: m.term })
      if (!pre) {
        this.#vote = m.from
        this.#electionElapsed = 0
      }
    } else {
      this.#send({ type: respType, to: m.from, term: this.#term, reject: true })
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader of our term exists (m.term === term here).
        this.#becomeFollower(this.#term, m.from)
        return this.#stepFollower(m)
      case 'preVoteResp':
      case 'voteResp': {
        const expected = this.#role === 'preCandidate' ? 'preVoteResp' : 'voteResp'
        if (m.type !== expected) return this.#drop('unexpectedVoteResp')
        if (!isVoter(this.membership(), m.from)) return this.#drop('unknownSender')
        if (!this.#votes.has(m.from)) this.#votes.set(m.from, !m.reject)
        this.#tallyVotes()
        return
      }
      case 'timeoutNow':
        return this.#drop('timeoutNowNotFollower')
      default:
        return this.#drop('unexpected')
    }
  }

  // ---------------------------------------------------------------- follower

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.#heardFromLeader(m.from, m.commit!)
        return this.#handleAppend(m)
      case 'heartbeat':
        this.#heardFromLeader(m.from, Math.max(m.commit!, m.index ?? 0))
        return this.#handleHeartbeat(m)
      case 'snapshot':
        this.#heardFromLeader(m.from, m.snapshot!.index)
        return this.#handleSnapshot(m)
      case 'timeoutNow':
        if (!this.#promotable()) return this.#drop('timeoutNowNotVoter')
        // The leader asked us to take over: campaign at once, skipping pre-vote and leases.
        this.#campaign(true)
        return
      default:
        return this.#drop('unexpected')
    }
  }

  #heardFromLeader(from: NodeId, commit: number): void {
    this.#electionElapsed = 0
    this.#ticksSinceLeaderContact = 0
    // One leader per term, so within a term its commit index only grows; a reordered message
    // carrying an older one changes nothing.
    if (this.#leaderId !== from) this.#leaderCommit = 0
    this.#leaderId = from
    if (commit > this.#leaderCommit) this.#leaderCommit = commit
  }

  #handleAppend(m: Message): void {
    const prevIndex = m.index!
    const prevTerm = m.logTerm!
    const entries = m.entries ?? []
    if (prevIndex < this.#log.committed) {
      // Everything up to our commit index already matches the leader; answer with what we know.
      this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: this.#log.committed })
      return
    }
    if (prevIndex > this.#log.lastIndex() && this.#bufferEarlyAppend(m)) return
    // (Not held, or held but the leader must hear where our log ends: the rejection below.)
    if (!this.#log.matchTerm(prevIndex, prevTerm)) {
      const hintIndex = this.#log.findConflictByTerm(Math.min(prevIndex, this.#log.lastIndex()), prevTerm)
      const hintTerm = this.#log.term(hintIndex) ?? 0
      this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: prevIndex, reject: true, rejectHint: hintIndex, logTerm: hintTerm })
      return
    }
    const conflict = this.#log.findConflict(entries)
    if (conflict !== undefined) {
      if (conflict.index <= this.#log.committed) {
        // Only a broken leader could ask us to overwrite a committed entry.
        return this.#drop('overwritesCommitted')
      }
      this.#appendToLog(entries.slice(conflict.index - entries[0]!.index))
    }
    const lastNew = prevIndex + entries.length
    this.#log.commitTo(Math.min(m.commit!, lastNew))
    this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: lastNew })
    this.#drainReorderBuffer()
  }

  /**
   * Holds an append that arrived ahead of a gap. Returns true when no answer is needed: the leader
   * has already been told where our log ends (one rejection per gap point), so this is reordering.
   * A resend of a held append, or a full buffer, is answered with a rejection: the leader is probing
   * or our answer was lost.
   */
  #bufferEarlyAppend(m: Message): boolean {
    if (this.#reorderBuffer.some((b) => b.index === m.index)) return false
    if (this.#reorderBuffer.length >= this.#maxInflightMsgs) return false
    this.#reorderBuffer.push(m)
    this.stats.bufferedAppends++
    const last = this.#log.lastIndex()
    if (this.#gapReportedAt === last) return true
    this.#gapReportedAt = last
    return false
  }

  /** Processes held appends that now connect to our log, in index order. */
  #drainReorderBuffer(): void {
    for (;;) {
      const last = this.#log.lastIndex()
      const i = this.#reorderBuffer.findIndex((b) => b.index! <= last)
      if (i < 0) return
      const [m] = this.#reorderBuffer.splice(i, 1)
      this.#handleAppend(m!)
    }
  }

  #handleHeartbeat(m: Message): void {
    // The leader caps the commit it sends at our known match, so our log holds it.
    this.#log.commitTo(Math.min(m.commit!, this.#log.lastIndex()))
    this.#send({ type: 'heartbeatResp', to: m.from, term: this.#term, readSeq: m.readSeq ?? 0 })
  }

  #handleSnapshot(m: Message): void {
    const snap = m.snapshot!
    if (snap.index <= this.#log.committed) {
      this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: this.#log.committed })
      return
    }
    if (this.#log.matchTerm(snap.index, snap.term)) {
      // Our log already holds the snapshot's last entry: keep it and just commit up to there.
      this.#log.commitTo(snap.index)
      this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: this.#log.committed })
      return
    }
    this.#log.restore(snap)
    this.#reorderBuffer = []
    this.#gapReportedAt = -1
    this.#membershipHistory = [{ index: snap.index, membership: snap.membership }]
    this.#send({ type: 'appendResp', to: m.from, term: this.#term, index: snap.index })
  }

  // ---------------------------------------------------------------- leader

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from)
    switch (m.type) {
      case 'appendResp':
        if (pr === undefined) return this.#drop('unknownSender')
        if (m.index! > this.#log.lastIndex()) return this.#drop('indexOutOfRange')
        pr.recentActive = true
        return m.reject ? this.#handleAppendReject(m, pr) : this.#handleAppendAck(m, pr)
      case 'heartbeatResp':
        if (pr === undefined) return this.#drop('unknownSender')
        if ((m.readSeq ?? 0) > this.#heartbeatSeq) return this.#drop('indexOutOfRange')
        pr.recentActive = true
        pr.probeSent = false
        pr.ackedSeq = Math.max(pr.ackedSeq, m.readSeq ?? 0)
        // Appends lost in replicate state are never acknowledged, and the follower holds (does not
        // reject) appends past the gap: a follower whose match has not moved while appends were
        // outstanding is probed again from its match.
        // A stall must last an election timeout (longer than any round trip Raft can work with)
        // before it counts: on a slow, reordering link match may not move between two heartbeats.
        if (pr.state !== 'replicate' || pr.match >= this.#log.lastIndex() || pr.inflightCount() === 0) {
          pr.progressTick = this.#ticks
        } else if (this.#ticks - pr.progressTick >= this.#electionTicks) {
          pr.becomeProbe()
          pr.progressTick = this.#ticks
        }
        this.#releaseReads()
        // A lagging follower gets an append even if it carries nothing new: appends lost in replicate
        // state are only noticed when the follower rejects one, which puts it back into probe.
        if (pr.match < this.#log.lastIndex()) this.#sendAppend(m.from, true)
        return
      default:
        return this.#drop('unexpected')
    }
  }

  #handleAppendReject(m: Message, pr: Progress): void {
    let probeFrom = m.rejectHint ?? m.index! - 1
    if ((m.logTerm ?? 0) > 0) probeFrom = this.#log.findConflictByTerm(probeFrom, m.logTerm!)
    if (pr.maybeDecrease(m.index!, probeFrom)) {
      if (pr.state === 'replicate') pr.becomeProbe()
      this.#sendAppend(m.from, false)
    }
  }

  #handleAppendAck(m: Message, pr: Progress): void {
    const oldPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index!)) {
      if (oldPaused && !pr.isPaused()) this.#sendAppend(m.from, false)
      return
    }
    pr.progressTick = this.#ticks
    if (pr.state === 'probe') pr.becomeReplicate()
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else pr.freeUpTo(m.index!)

    if (this.#maybeCommit()) {
      if (this.#role !== 'leader') return
    }
    // Keep the pipeline full.
    while (this.#sendAppend(m.from, false)) {
      /* sends until paused or caught up */
    }
    if (m.from === this.#leadTransferee && pr.match === this.#log.lastIndex()) {
      this.#send({ type: 'timeoutNow', to: m.from, term: this.#term })
    }
  }

  /** Advances the commit index if a majority matches an entry of this term. Returns whether it moved. */
  #maybeCommit(): boolean {
    const voters = this.membership().voters
    const idx = committedIndex(voters, (id) => this.#progress.get(id)?.match ?? 0)
    if (idx <= this.#log.committed || this.#log.term(idx) !== this.#term) return false
    const wasCommittedInTerm = this.#committedInTerm()
    this.#log.commitTo(idx)
    this.#needBroadcast = true
    if (!wasCommittedInTerm) {
      for (const r of this.#readsAwaitingCommit) this.#startRead(r.requestId, r.lease)
      this.#readsAwaitingCommit = []
    }
    if (this.#lastMembershipIndex() <= this.#log.committed && !isVoter(this.membership(), this.id)) {
      // We were removed or demoted and that change is committed: hand over and step down.
      this.#handOverAfterRemoval()
    }
    return true
  }

  #handOverAfterRemoval(): void {
    let best: NodeId | undefined
    let bestMatch = -1
    for (const v of this.membership().voters) {
      const match = this.#progress.get(v)?.match ?? 0
      if (match > bestMatch) {
        best = v
        bestMatch = match
      }
    }
    // Broadcast the commit first so the remaining voters learn the change.
    this.#broadcastAppend()
    if (best !== undefined && bestMatch === this.#log.lastIndex()) this.#send({ type: 'timeoutNow', to: best, term: this.#term })
    this.#becomeFollower(this.#term, null)
  }

  #committedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term
  }

  #assertCanPropose(): void {
    if (this.#role !== 'leader') {
      this.stats.proposalsRefused++
      throw new HoldfastError('NOT_LEADER', `node ${this.id} is not the leader`, { leaderHint: this.#leaderId ?? undefined })
    }
    if (this.#leadTransferee !== null) {
      this.stats.proposalsRefused++
      throw new HoldfastError('TRANSFER_IN_PROGRESS', `leadership is being transferred to ${this.#leadTransferee}`, { leaderHint: this.id })
    }
  }

  #appendAsLeader(type: Entry['type'], data: Uint8Array): ProposalTicket {
    const entry: Entry = { index: this.#log.lastIndex() + 1, term: this.#term, type, data }
    this.#appendToLog([entry])
    this.#needBroadcast = true
    if (type === 'membership') this.#syncProgressWithMembership()
    return { index: entry.index, term: entry.term }
  }

  /** Appends to the log, keeping the membership history in step with truncation and new entries. */
  #appendToLog(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const after = entries[0]!.index
    const h = this.#membershipHistory
    while (h.length > 1 && h[h.length - 1]!.index >= after) h.pop()
    this.#log.append(entries)
    for (const e of entries) this.#recordMembership(e)
  }

  #recordMembership(e: Entry): void {
    if (e.type !== 'membership') return
    const m = decodeMembership(e.data)
    if (m === undefined) {
      this.#drop('badMembershipEntry')
      return
    }
    this.#membershipHistory.push({ index: e.index, membership: m })
  }

  #scanMembership(lo: number, hi: number): void {
    for (let i = lo; i <= hi; ) {
      const batch = this.#log.storage.entries(i, hi + 1, 4 * 1024 * 1024)
      for (const e of batch) this.#recordMembership(e)
      i += batch.length
    }
  }

  #lastMembershipIndex(): number {
    return this.#membershipHistory[this.#membershipHistory.length - 1]!.index
  }

  #membershipAt(index: number): Membership {
    let m = this.#membershipHistory[0]!.membership
    for (const h of this.#membershipHistory) {
      if (h.index > index) break
      m = h.membership
    }
    return m
  }

  #pruneMembershipHistory(compactedTo: number): void {
    const h = this.#membershipHistory
    while (h.length > 1 && h[1]!.index <= compactedTo) h.shift()
  }

  #syncProgressWithMembership(): void {
    const members = allMembers(this.membership())
    const next = this.#log.lastIndex() + 1
    for (const id of members) if (!this.#progress.has(id)) this.#addProgress(id, next)
    for (const id of [...this.#progress.keys()]) {
      if (id !== this.id && !members.includes(id)) this.#progress.delete(id)
    }
  }

  #broadcastAppend(): void {
    for (const id of this.#progress.keys()) if (id !== this.id) this.#sendAppend(id, true)
  }

  /** Sends one append (or a snapshot) to `to` if its progress allows. Returns whether anything was sent. */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to)
    if (pr === undefined || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.#log.term(prevIndex)
    const last = this.#log.lastIndex()
    if (prevTerm === undefined || (pr.next <= last && pr.next < this.#log.firstIndex())) return this.#sendSnapshot(to, pr)
    const entries = pr.next <= last ? this.#log.entries(pr.next, last + 1, this.#maxMsgBytes) : []
    if (entries.length === 0 && !sendIfEmpty) return false
    this.#send({ type: 'append', to, term: this.#term, index: prevIndex, logTerm: prevTerm, entries, commit: this.#log.committed })
    if (entries.length > 0) {
      let bytes = 0
      for (const e of entries) bytes += entrySize(e)
      pr.sentEntries(entries[entries.length - 1]!.index, bytes)
    } else if (pr.state === 'probe') {
      pr.probeSent = true
    }
    return true
  }

  #sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false
    const index = this.#log.applied
    const term = this.#log.term(index)
    if (term === undefined) return false
    const snapshot: SnapshotMeta = { index, term, membership: this.#membershipAt(index) }
    pr.becomeSnapshot(index)
    this.#send({ type: 'snapshot', to, term: this.#term, snapshot })
    return true
  }

  #broadcastHeartbeat(): void {
    const seq = ++this.#heartbeatSeq
    this.#seqSentAt.set(seq, this.#ticks)
    for (const r of this.#pendingReads) if (r.seq === 0) r.seq = seq
    this.#needReadHeartbeat = false
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue
      // `index` carries the whole commit index for the follower's leaderCommit (never to commit by).
      this.#send({ type: 'heartbeat', to: id, term: this.#term, commit: Math.min(pr.match, this.#log.committed), index: this.#log.committed, readSeq: seq })
    }
    this.#releaseReads()
  }

  #startRead(requestId: string, lease: boolean): void {
    if (this.membership().voters.length <= 1 || (lease && this.hasLease())) {
      this.#readStates.push({ index: this.#log.committed, requestId })
      return
    }
    this.#pendingReads.push({ requestId, index: this.#log.committed, seq: 0 })
    this.#needReadHeartbeat = true
  }

  /** The highest heartbeat round acknowledged by a majority of voters (this leader acks its own). */
  #quorumAckedSeq(): number {
    return committedIndex(this.membership().voters, (id) => (id === this.id ? this.#heartbeatSeq : (this.#progress.get(id)?.ackedSeq ?? 0)))
  }

  #releaseReads(): void {
    const acked = this.#quorumAckedSeq()
    if (this.#pendingReads.length > 0) {
      let n = 0
      while (n < this.#pendingReads.length) {
        const r = this.#pendingReads[n]!
        if (r.seq === 0 || r.seq > acked) break
        this.#readStates.push({ index: r.index, requestId: r.requestId })
        n++
      }
      if (n > 0) this.#pendingReads.splice(0, n)
    }
    // A round's send time is kept while it could still grant a lease (sent less than an election
    // timeout ago), not only while the current majority has yet to acknowledge it: promoting a
    // learner can make the acknowledged round an earlier one, which the learner answered.
    // Forgetting it would drop the lease (and the acting instance) for no reason; a round older
    // than that grants no lease, so forgetting it changes nothing.
    for (const [seq, sentAt] of this.#seqSentAt) {
      if (seq < acked && sentAt + this.#electionTicks <= this.#ticks) this.#seqSentAt.delete(seq)
      else break
    }
  }

  // ---------------------------------------------------------------- helpers

  #compactionPoint(): SnapshotMeta | undefined {
    let to = Math.min(this.#snapshotPoint, this.#log.applied) - this.#logTail
    if (this.#role === 'leader') {
      // Keep the entries a live follower needs next: after the snapshot it is being sent, or after
      // its match. Otherwise a follower that just installed a snapshot (or lags a little) needs
      // another snapshot, and on a busy cluster another after that. The hold is bounded, so a
      // follower stuck in a transfer or far behind cannot make the log grow forever.
      for (const [id, pr] of this.#progress) {
        if (id === this.id) continue
        const needs = pr.state === 'snapshot' ? pr.pendingSnapshot : pr.recentActive ? pr.match : 0
        if (needs > 0) to = Math.max(Math.min(to, needs), to - SNAPSHOT_HOLD_TAILS * this.#logTail)
      }
    }
    const first = this.#log.firstIndex()
    const batch = Math.max(1, Math.floor(this.#logTail / 4))
    if (to < first + batch || this.#log.pendingSnapshot()) return undefined
    if (to > this.#log.stableLastIndex()) return undefined
    const term = this.#log.term(to)
    if (term === undefined) return undefined
    return { index: to, term, membership: this.#membershipAt(to) }
  }

  #resetElectionTimeout(): void {
    this.#randomizedElectionTimeout = this.#electionTicks + Math.floor(this.#rand() * this.#electionTicks)
  }

  #send(m: Omit<Message, 'from'>): void {
    this.#msgs.push({ ...m, from: this.id })
  }

  #drop(reason: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed }
  }

  #softState(): SoftState {
    return { role: this.#role, leaderId: this.#leaderId, term: this.#term, membership: this.membership() }
  }

  #assertNoOutstanding(what: string): void {
    if (this.#outstanding) {
      throw new HoldfastError('CONTRACT_VIOLATION', `${what}() between ready() and advance(): queue events until advance()`)
    }
  }
}

/** A bootstrap record for a new cluster: identical on every initial member. */
export function bootstrapLog(membership: Membership): { entries: Entry[]; hardState: HardState } {
  if (membership.voters.length === 0) throw new HoldfastError('INVALID_ARGUMENT', 'a cluster needs at least one voter')
  const m = applyChangesFrom(EMPTY_MEMBERSHIP, membership)
  return {
    entries: [{ index: 1, term: 1, type: 'membership', data: encodeMembership(m) }],
    hardState: { term: 1, vote: null, commit: 1 },
  }
}

function applyChangesFrom(base: Membership, target: Membership): Membership {
  let m = base
  for (const v of target.voters) m = applyChange(m, { type: 'addVoter', node: v })
  for (const l of target.learners) m = applyChange(m, { type: 'addLearner', node: l })
  return m
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId && a.term === b.term && sameMembership(a.membership, b.membership)
}

const MESSAGE_TYPES = new Set(['preVote', 'preVoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat', 'heartbeatResp', 'snapshot', 'timeoutNow'])

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/** Why a message is malformed, or undefined if it is well formed. Checks shape only, not protocol state. */
export function validateMessage(m: Message, self: NodeId): string | undefined {
  if (typeof m !== 'object' || m === null) return 'malformed'
  if (!MESSAGE_TYPES.has(m.type)) return 'malformed'
  if (typeof m.from !== 'string' || m.from.length === 0 || m.from === self) return 'malformed'
  if (m.to !== self) return 'misaddressed'
  if (!isIndex(m.term) || m.term === 0) return 'malformed'
  switch (m.type) {
    case 'preVote':
    case 'vote':
      if (!isIndex(m.index) || !isIndex(m.logTerm) || m.logTerm > m.term) return 'malformed'
      return undefined
    case 'append': {
      if (!isIndex(m.index) || !isIndex(m.logTerm) || !isIndex(m.commit) || m.logTerm > m.term) return 'malformed'
      const entries = m.entries ?? []
      if (!Array.isArray(entries)) return 'malformed'
      let prevTerm = m.logTerm
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!
        if (typeof e !== 'object' || e === null || e.index !== m.index + 1 + i) return 'malformed'
        if (!isIndex(e.term) || e.term < prevTerm || e.term > m.term) return 'malformed'
        if (e.type !== 'normal' && e.type !== 'membership') return 'malformed'
        if (!(e.data instanceof Uint8Array)) return 'malformed'
        prevTerm = e.term
      }
      return undefined
    }
    case 'appendResp':
      if (!isIndex(m.index)) return 'malformed'
      if (m.reject && (!isIndex(m.rejectHint ?? 0) || !isIndex(m.logTerm ?? 0))) return 'malformed'
      return undefined
    case 'heartbeat':
      if (!isIndex(m.commit) || !isIndex(m.readSeq ?? 0) || !isIndex(m.index ?? 0)) return 'malformed'
      return undefined
    case 'heartbeatResp':
      if (!isIndex(m.readSeq ?? 0)) return 'malformed'
      return undefined
    case 'snapshot': {
      const s = m.snapshot
      if (typeof s !== 'object' || s === null || !isIndex(s.index) || !isIndex(s.term) || s.term > m.term) return 'malformed'
      const mem = s.membership
      if (typeof mem !== 'object' || mem === null || !Array.isArray(mem.voters) || !Array.isArray(mem.learners)) return 'malformed'
      return undefined
    }
    default:
      return undefined
  }
}


