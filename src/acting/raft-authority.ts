import type { NodeId } from '../core/types.js'
import { HoldfastError } from '../errors.js'
import type { ActingAuthority, AuthorityLoss, Relinquished } from './authority.js'
import { holdsActingLease, type LeaseView } from './lease.js'

/** What RaftAuthority needs from the node driver (src/node.ts builds it from its core and loop). */
export interface RaftDriverView {
  /** The core, read between turns (role, term, lease). */
  readonly core: LeaseView
  /** The whole ticks of real time the core has not been given yet, rounded up (see RaftCore.hasLease). */
  owedTicks(): number
  /**
   * Proposes setFence(token) on this node as the leader of term `token` and resolves with the fence
   * in force once the entry is committed and applied here. Rejects (NOT_LEADER, LEADERSHIP_LOST,
   * ABORTED, TIMEOUT) otherwise.
   */
  proposeFence(token: number, signal: AbortSignal): Promise<number>
  /** Voters that could take over now, best first (connected, most up to date). */
  transferTargets(): NodeId[]
  /** Hands leadership to `to`; resolves when `to` leads, rejects when that did not happen in time. */
  transfer(to: NodeId): Promise<void>
  /** Steps down as leader (RaftCore.stepDown) without naming a successor. */
  stepDown(): Promise<void>
  /** The fence in force in this node's state machine. */
  fence(): number
  /** Calls back after every driver turn (at least once per tick). */
  onTurn(listener: () => void): () => void
}

/**
 * The Raft majority decides who acts: the leader of term T acts under token T once it has
 * committed setFence(T), and while its lease holds (see holdsActingLease).
 *
 * Why the term is the token: Election Safety gives at most one leader per term and terms only grow,
 * so no two nodes ever act under one token and a later leader always has a larger one (a leader
 * whose lease lapsed and was renewed within its term acts again under the same token: no other
 * node can have acted meanwhile, as that needs a later term). setFence(T) is
 * an entry of term T, so committing it also commits every entry of earlier terms (this node then
 * has all committed state), and from its place in the log on every replica refuses operations
 * fenced with an older token.
 */
export class RaftAuthority implements ActingAuthority {
  readonly #view: RaftDriverView

  constructor(view: RaftDriverView) {
    this.#view = view
  }

  candidate(): number | undefined {
    const term = this.#view.core.term
    return this.holds(term) ? term : undefined
  }

  holds(token: number): boolean {
    return holdsActingLease(this.#view.core, token, this.#view.owedTicks())
  }

  lossReason(token: number): AuthorityLoss {
    const core = this.#view.core
    return core.role === 'leader' && core.term === token ? 'leaseExpired' : 'leadershipLost'
  }

  async establish(token: number, signal: AbortSignal): Promise<void> {
    const fence = await this.#view.proposeFence(token, signal)
    // A leader's log holds no entry of a later term, so nothing can have raised the fence past ours.
    if (fence !== token) throw new HoldfastError('STALE_FENCE', `the fence in force is ${fence}, not this leader's token ${token}`)
  }

  async relinquish(token: number): Promise<Relinquished> {
    const core = this.#view.core
    const leads = (): boolean => core.role === 'leader' && core.term === token
    if (!leads()) return { action: 'none' }
    const to = this.#view.transferTargets()[0]
    if (to !== undefined) {
      try {
        await this.#view.transfer(to)
        return { action: 'transfer', to }
      } catch {
        // A leader that attempted a transfer holds no lease for the rest of its term, so it must
        // not stay leader either (the driver's transfer already steps down when it fails).
      }
    }
    if (leads()) await this.#view.stepDown()
    return { action: 'stepDown' }
  }

  fence(): number {
    return this.#view.fence()
  }

  subscribe(listener: () => void): () => void {
    return this.#view.onTurn(listener)
  }
}
