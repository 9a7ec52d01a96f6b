import type { NodeId } from '../core/types.js'

/** Why an authority no longer holds (see ActingAuthority.holds). */
export type AuthorityLoss = 'leaseExpired' | 'leadershipLost'

/** How an authority gave itself up after a failed start (see ActingAuthority.relinquish). */
export type Relinquished = { action: 'transfer'; to: NodeId } | { action: 'stepDown' } | { action: 'none' }

/**
 * Who may act, decided behind one interface. The ActingController (controller.ts) runs handlers,
 * timeouts, aborts and grace periods the same way whatever decides; an authority only answers
 * "may this node act now, under which token, and does it still?".
 *
 * Today's implementation is RaftAuthority (raft-authority.ts): the Raft leader with a valid lease,
 * token = term. A two-node active/standby pair with a shared-directory witness (ROADMAP.md) can
 * implement the same interface with a lease file on the share: candidate() when the lease file is
 * ours, token = the lease epoch written in it, holds() until our local deadline minus the drift
 * margin, relinquish() releases the file.
 *
 * Contract:
 * - Tokens strictly increase across holders and never repeat: a holder's token is greater than
 *   every token any earlier holder acted under.
 * - holds(token) must turn false before any other node can obtain a larger token (a lease shorter
 *   than the time another node needs to take over, with a documented drift margin). The controller
 *   checks it whenever `subscribe` calls back, and at least once per tick.
 * - establish(token) resolves only once `token` is the fence in force, so that every operation
 *   fenced with an older token is refused from then on, and this node has all state committed by
 *   earlier holders.
 */
export interface ActingAuthority {
  /** The token this node may start acting under now, or undefined. Synchronous and cheap. */
  candidate(): number | undefined
  /** Whether this node may still act under `token` at this very instant. Synchronous and cheap. */
  holds(token: number): boolean
  /** Why holds(token) is false: the lease ran out, or leadership itself was lost. */
  lossReason(token: number): AuthorityLoss
  /**
   * Makes `token` the fence in force (see the contract). Rejects if authority is lost meanwhile or
   * `signal` aborts.
   */
  establish(token: number, signal: AbortSignal): Promise<void>
  /** Gives authority up after a failed start, so that another node can act. */
  relinquish(token: number): Promise<Relinquished>
  /** The fence token in force as this node knows it (0 before any). */
  fence(): number
  /** Calls `listener` whenever candidate() or holds() may have changed, and at least once per tick. Returns an unsubscribe function. */
  subscribe(listener: () => void): () => void
}
