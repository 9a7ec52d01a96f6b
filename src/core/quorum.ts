import type { NodeId } from './types.js'

/** The number of votes that make a majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1
}

/**
 * The highest index that a majority of `voters` have matched: sort the match indexes descending
 * and take the one at position majority-1. With no voters nothing can commit (returns 0).
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0
  const matches = voters.map(matchOf).sort((a, b) => b - a)
  return matches[majority(voters.length) - 1]!
}

export type VoteOutcome = 'won' | 'lost' | 'pending'

/** Whether the granted votes already form a majority, or the rejections already make one impossible. */
export function voteOutcome(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  let granted = 0
  let rejected = 0
  for (const v of voters) {
    const vote = votes.get(v)
    if (vote === true) granted++
    else if (vote === false) rejected++
  }
  const need = majority(voters.length)
  if (granted >= need) return 'won'
  if (voters.length - rejected < need) return 'lost'
  return 'pending'
}

/** Whether `ids` include a majority of `voters`. */
export function hasMajority(voters: readonly NodeId[], ids: ReadonlySet<NodeId>): boolean {
  let n = 0
  for (const v of voters) if (ids.has(v)) n++
  return voters.length > 0 && n >= majority(voters.length)
}
