import { HoldfastError } from '../errors.js'
import type { Membership, MembershipChange, NodeId } from './types.js'

/** The empty membership of a node that has not yet joined a cluster. */
export const EMPTY_MEMBERSHIP: Membership = Object.freeze({ voters: Object.freeze([]), learners: Object.freeze([]) })

export function isVoter(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id)
}

export function isLearner(m: Membership, id: NodeId): boolean {
  return m.learners.includes(id)
}

export function isMember(m: Membership, id: NodeId): boolean {
  return isVoter(m, id) || isLearner(m, id)
}

/** Every member, voters first. */
export function allMembers(m: Membership): NodeId[] {
  return [...m.voters, ...m.learners]
}

/**
 * The membership after a single-server change. Throws INVALID_MEMBERSHIP_CHANGE for a change that
 * does not apply (adding a member twice, promoting a non-learner, removing the last voter, ...).
 * A single-server change alters the voter set by at most one node, so any majority of the old
 * voters intersects any majority of the new ones: that is why one change at a time is safe.
 */
export function applyChange(m: Membership, change: MembershipChange): Membership {
  const { node } = change
  const bad = (why: string): never => {
    throw new HoldfastError('INVALID_MEMBERSHIP_CHANGE', `${change.type} ${node}: ${why}`)
  }
  if (typeof node !== 'string' || node.length === 0) bad('node id must be a non-empty string')
  const voters = m.voters.filter((v) => v !== node)
  const learners = m.learners.filter((v) => v !== node)
  switch (change.type) {
    case 'addLearner':
      if (isMember(m, node)) bad('already a member')
      return normalize({ voters: m.voters, learners: [...learners, node] })
    case 'addVoter':
      if (isMember(m, node)) bad('already a member')
      return normalize({ voters: [...voters, node], learners })
    case 'promote':
      if (!isLearner(m, node)) bad('not a learner')
      return normalize({ voters: [...voters, node], learners })
    case 'demote':
      if (!isVoter(m, node)) bad('not a voter')
      if (voters.length === 0) bad('cannot demote the last voter')
      return normalize({ voters, learners: [...learners, node] })
    case 'remove':
      if (!isMember(m, node)) bad('not a member')
      if (isVoter(m, node) && voters.length === 0) bad('cannot remove the last voter')
      return normalize({ voters, learners })
    default:
      return bad('unknown change type')
  }
}

function normalize(m: Membership): Membership {
  return { voters: [...m.voters].sort(), learners: [...m.learners].sort() }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Membership entries carry the whole resulting membership, so replaying one needs no history. */
export function encodeMembership(m: Membership): Uint8Array {
  return encoder.encode(JSON.stringify({ voters: m.voters, learners: m.learners }))
}

/** Decodes a membership entry; undefined if the bytes are not a valid membership. */
export function decodeMembership(data: Uint8Array): Membership | undefined {
  try {
    const v: unknown = JSON.parse(decoder.decode(data))
    if (typeof v !== 'object' || v === null) return undefined
    const { voters, learners } = v as { voters?: unknown; learners?: unknown }
    if (!isIdList(voters) || !isIdList(learners)) return undefined
    return normalize({ voters, learners })
  } catch {
    return undefined
  }
}

function isIdList(v: unknown): v is NodeId[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0)
}

export function sameMembership(a: Membership, b: Membership): boolean {
  // The core hands out the same objects until membership changes: identity settles most calls.
  if (a === b) return true
  return a.voters.join('\0') === b.voters.join('\0') && a.learners.join('\0') === b.learners.join('\0')
}
