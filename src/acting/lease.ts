/**
 * The one predicate that says whether a Raft node may act under `token` right now. leaderCheck(),
 * the ActingController's abort check and the simulator's "at most one node acting with a valid
 * lease" invariant (test/sim/invariants.ts) all use it. Pure, so the simulator can import it.
 */

/** What the predicate reads from a RaftCore. */
export interface LeaseView {
  readonly role: string
  readonly term: number
  hasLease(owedTicks?: number): boolean
}

/**
 * True while `core` leads the term `token` and holds a valid lease, counting `owedTicks` (the whole
 * ticks of real time since the core's last tick, rounded up). The lease ends electionTicks -
 * leaseMarginTicks ticks after the heartbeat round a majority acknowledged was sent; followers
 * that acknowledged refuse other candidates for electionTicks of their own clocks, so it ends
 * before any other node can be elected while clocks drift apart by less than
 * (electionTicks - leaseMarginTicks) / (electionTicks - 1) (11% with the defaults).
 */
export function holdsActingLease(core: LeaseView, token: number, owedTicks: number): boolean {
  return core.role === 'leader' && core.term === token && core.hasLease(owedTicks)
}
