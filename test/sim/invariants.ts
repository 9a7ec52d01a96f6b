/**
 * The Raft safety properties, checked incrementally as the simulation runs. Every check is O(1) or
 * O(entries just written) per event, except Leader Completeness, which runs once per new leadership.
 * A broken property throws a SimViolation; the runner attaches the seed.
 */
import { holdsActingLease } from '../../src/acting/lease.js'
import type { RaftCore } from '../../src/core/raft.js'
import type { Entry, HardState, NodeId, Ready } from '../../src/core/types.js'
import { entryHash } from './kv.js'

/** A broken invariant. `kind` is a short stable name ('election-safety', 'liveness', ...). */
export class SimViolation extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(`${kind}: ${message}`)
    this.name = 'SimViolation'
  }
}

interface Leadership {
  readonly term: number
  /** The leader's first entry of its term (its no-op); it never writes below this in its term. */
  readonly floor: number
  /** The last index the leader has handed out for persisting in its term. */
  written: number
  /** The highest lastIndex observed while leading in this term: it must never shrink. */
  maxLast: number
}

interface LoggedEntry {
  readonly term: number
  readonly hash: number
  readonly prevTerm: number
}

export class Checker {
  /** Election Safety: term -> the one node that led it. */
  readonly #leaderOfTerm = new Map<number, NodeId>()
  /** Nodes observed leading right now. */
  readonly #leaders = new Map<NodeId, Leadership>()
  /** term -> the highest commit index any node knew while at that term. */
  readonly #commitByTerm = new Map<number, number>()
  /** index -> term of the entry known committed there (at observed commit points). */
  readonly #committedTerm = new Map<number, number>()
  /** Log Matching: index -> each distinct (term) entry persisted there, with its predecessor's term. */
  readonly #logged = new Map<number, LoggedEntry[]>()
  /** State Machine Safety: index -> hash of the entry applied there and the digest after it. */
  readonly #applied = new Map<number, { hash: number; digest: number }>()
  readonly #lastCommit = new Map<NodeId, number>()
  leadershipsObserved = 0
  maxCommit = 0

  /** Election Safety: record that `id` leads `term`. Exposed so a test can feed it a fake leader. */
  leaderSeen(id: NodeId, term: number): void {
    const prev = this.#leaderOfTerm.get(term)
    if (prev !== undefined && prev !== id) {
      throw new SimViolation('election-safety', `two leaders in term ${term}: ${prev} and ${id}`)
    }
    this.#leaderOfTerm.set(term, id)
  }

  /** Called after every core call on a node: roles, leadership starts, commit progress. */
  observe(id: NodeId, core: RaftCore): void {
    if (core.role === 'leader') {
      const term = core.term
      const cur = this.#leaders.get(id)
      if (cur === undefined || cur.term !== term) this.#newLeadership(id, core)
      else {
        if (core.lastIndex < cur.maxLast) {
          throw new SimViolation('leader-append-only', `leader ${id} term ${term}: lastIndex shrank from ${cur.maxLast} to ${core.lastIndex}`)
        }
        cur.maxLast = core.lastIndex
      }
    } else this.#leaders.delete(id)

    const commit = core.commitIndex
    if (commit > (this.#lastCommit.get(id) ?? 0)) {
      this.#lastCommit.set(id, commit)
      const term = core.termAt(commit)
      if (term === undefined) throw new SimViolation('commit', `${id} commit ${commit} has no term in its log`)
      const known = this.#committedTerm.get(commit)
      if (known !== undefined && known !== term) {
        throw new SimViolation('state-machine-safety', `index ${commit} committed with term ${known} and, on ${id}, term ${term}`)
      }
      this.#committedTerm.set(commit, term)
      if (commit > (this.#commitByTerm.get(core.term) ?? 0)) this.#commitByTerm.set(core.term, commit)
      if (commit > this.maxCommit) this.maxCommit = commit
    }
  }

  #newLeadership(id: NodeId, core: RaftCore): void {
    const term = core.term
    this.leaderSeen(id, term)
    this.leadershipsObserved++
    // Leader Completeness: every entry known committed at an earlier term is in this leader's log.
    // Checking the highest such point suffices, given Log Matching (checked separately).
    let cm = 0
    for (const [t, c] of this.#commitByTerm) if (t < term && c > cm) cm = c
    if (cm > 0) {
      const want = this.#committedTerm.get(cm)!
      const have = core.termAt(cm)
      const snapIndex = core.status().firstIndex - 1
      if (core.lastIndex < cm || (have === undefined && cm > snapIndex) || (have !== undefined && have !== want)) {
        throw new SimViolation(
          'leader-completeness',
          `leader ${id} of term ${term} lacks committed entry ${cm} (term ${want}): its lastIndex ${core.lastIndex}, term there ${have}`,
        )
      }
    }
    let floor = core.lastIndex
    while (floor > 1 && core.termAt(floor - 1) === term) floor--
    this.#leaders.set(id, { term, floor, written: floor - 1, maxLast: core.lastIndex })
  }

  /** Leader Append-Only, on each Ready a leader hands out: only contiguous appends of its own term. */
  onReady(id: NodeId, core: RaftCore, rd: Ready): void {
    const l = this.#leaders.get(id)
    if (l === undefined || l.term !== core.term) return
    for (const e of rd.entries) {
      if (e.index < l.floor && e.term < l.term) continue // written before it led (first Ready only)
      if (e.term !== l.term || e.index !== l.written + 1) {
        throw new SimViolation('leader-append-only', `leader ${id} term ${l.term} writes ${e.index}/${e.term} after ${l.written} (floor ${l.floor})`)
      }
      l.written = e.index
    }
    const t = core.termAt(l.floor) // undefined once compacted; a truncation shows as a shrinking lastIndex
    if (t !== undefined && t !== l.term) {
      throw new SimViolation('leader-append-only', `leader ${id} term ${l.term} lost its no-op at ${l.floor}`)
    }
  }

  /**
   * Log Matching, as entries become durable on a node: an (index, term) pair always carries the same
   * data and follows the same predecessor term, so equal (index, term) means equal prefixes.
   * Also: a node never overwrites an entry it has already applied.
   */
  onPersist(id: NodeId, entries: readonly Entry[], prevTermOfFirst: number, applied: number): void {
    let prevTerm = prevTermOfFirst
    for (const e of entries) {
      const hash = entryHash(e)
      let list = this.#logged.get(e.index)
      if (list === undefined) this.#logged.set(e.index, (list = []))
      const same = list.find((x) => x.term === e.term)
      if (same === undefined) list.push({ term: e.term, hash, prevTerm })
      else if (same.hash !== hash || same.prevTerm !== prevTerm) {
        throw new SimViolation(
          'log-matching',
          `${id} persisted ${e.index}/${e.term} (prev term ${prevTerm}) unlike an earlier copy (prev term ${same.prevTerm}, same data: ${same.hash === hash})`,
        )
      }
      if (e.index <= applied) {
        const a = this.#applied.get(e.index)
        if (a !== undefined && a.hash !== hash) {
          throw new SimViolation('state-machine-safety', `${id} overwrote applied entry ${e.index} with ${e.index}/${e.term}`)
        }
      }
      prevTerm = e.term
    }
  }

  /** Durable term and vote: the term never goes back and a vote, once cast in a term, never changes. */
  onHardState(id: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) throw new SimViolation('hard-state', `${id} persisted term ${next.term} over ${prev.term}`)
    if (next.term === prev.term && prev.vote !== null && next.vote !== prev.vote) {
      throw new SimViolation('hard-state', `${id} changed its vote in term ${next.term} from ${prev.vote} to ${next.vote}`)
    }
  }

  /** State Machine Safety: every node applies the same entry at each index, after the same prefix. */
  onApply(id: NodeId, e: Entry, digest: number): void {
    const hash = entryHash(e)
    const prev = this.#applied.get(e.index)
    if (prev === undefined) this.#applied.set(e.index, { hash, digest })
    else if (prev.hash !== hash || prev.digest !== digest) {
      throw new SimViolation(
        'state-machine-safety',
        `${id} applied ${e.index}/${e.term} ${prev.hash !== hash ? 'unlike another node' : 'after a different prefix'}`,
      )
    }
  }

  /** A snapshot install must carry the same applied prefix every node applied up to its index. */
  onInstall(id: NodeId, index: number, digest: number): void {
    const prev = this.#applied.get(index)
    if (prev === undefined) throw new SimViolation('snapshot', `${id} installed a snapshot at ${index} that no node applied`)
    if (prev.digest !== digest) throw new SimViolation('state-machine-safety', `${id} installed a snapshot at ${index} with a different state`)
  }

  /** The node lost its volatile state. */
  nodeDown(id: NodeId): void {
    this.#leaders.delete(id)
    this.#lastCommit.delete(id)
  }

  /**
   * Lease safety, sampled after every event: a leader reporting a lease at term t coexists with no
   * leader of a later term. `owedTicks` is what a driver must pass to hasLease(): the whole ticks of
   * real time since the core's last tick(), rounded up (its clock stands still while a Ready is in flight).
   *
   * The lease is asked through holdsActingLease(), the predicate HoldfastNode.leaderCheck() and the
   * acting controller's abort use (src/acting/lease.ts). Since two lease holders would lead different
   * terms (Election Safety), this also checks that at no sampled moment do two nodes both hold the
   * acting lease, so that at most one node can pass leaderCheck().
   */
  checkLeases(nodeOf: (id: NodeId) => { core: RaftCore | undefined; owedTicks: number } | undefined): void {
    if (this.#leaders.size < 2) return
    for (const [id, l] of this.#leaders) {
      const n = nodeOf(id)
      if (n?.core === undefined || !holdsActingLease(n.core, n.core.term, n.owedTicks)) continue
      for (const [other, o] of this.#leaders) {
        if (o.term <= l.term) continue
        throw new SimViolation(
          'lease',
          `${id} holds a lease at term ${l.term} (${n.core.leaseRemainingTicks(n.owedTicks)} ticks left, ${n.owedTicks} owed) while ${other} leads term ${o.term}`,
        )
      }
    }
  }

  /** The node currently observed leading at the highest term, if any. */
  currentLeader(): { id: NodeId; term: number } | undefined {
    let best: { id: NodeId; term: number } | undefined
    for (const [id, l] of this.#leaders) if (best === undefined || l.term > best.term) best = { id, term: l.term }
    return best
  }
}
