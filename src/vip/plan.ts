/**
 * What to do about the VIP, decided from what is wanted and what is seen. Pure: no commands, no
 * clock, so every case is a unit test (test/vip/plan.test.ts). VipManager (manager.ts) observes,
 * calls planVip(), runs the steps and feeds the results back.
 */

/** The inputs of one decision. */
export interface VipPlanInput {
  /** Whether this node should hold the VIP: it is acting. */
  desired: boolean
  /**
   * What the check command saw: present, absent, or undefined when it could not tell (no check
   * command, or the check failed).
   */
  observed: boolean | undefined
  /**
   * What this manager's own commands last left: true after a successful add (or adopting an
   * address found present while acting), false after a successful remove, undefined before either.
   */
  believed: boolean | undefined
  /** Whether the VIP was announced since this node last started holding it. */
  announced: boolean
  /** Whether an announce command is configured. */
  canAnnounce: boolean
  /** Milliseconds since the last announcement, undefined if none. */
  sinceAnnounceMs: number | undefined
  /** Re-announce this often while holding; 0 only announces when starting to hold. */
  announceEveryMs: number
  /**
   * Whether the address is a lease that must be refreshed while held: a lifetime is configured and
   * a refresh command exists. False: the address stays until removed (no refresh steps).
   */
  canRefresh: boolean
  /** Milliseconds since the lifetime was last set (by an add or a refresh), undefined if never while holding. */
  sinceRefreshMs: number | undefined
  /** Refresh the lifetime this often while holding (lifetime / 4). */
  refreshEveryMs: number
}

/** One step of a plan; run in order, a failed add or remove ends the plan. */
export type VipStep =
  /** Add the address: to start holding it ('acquire'), or because it vanished while held ('restore'). */
  | { op: 'add'; why: 'acquire' | 'restore' }
  /** Remove the address: this node stopped holding it ('release'), or it is here without being held ('stale'). */
  | { op: 'remove'; why: 'release' | 'stale' }
  /** The address is already present while acting: hold it without adding (no command). */
  | { op: 'adopt' }
  /**
   * Extend the address's lifetime (`ip addr change ... valid_lft`): while holding, when it is due, and
   * at once when adopting an address found present (whatever lifetime it had).
   */
  | { op: 'refresh' }
  /** Send the announcement (gratuitous ARP), after starting to hold, or as the periodic refresh. */
  | { op: 'announce'; why: 'hold' | 'refresh' }

/**
 * The steps that bring the host from what is seen to what is wanted.
 *
 * - Wanted and seen: nothing, but announce once per holding (an address found already present,
 *   for instance left by this node's previous process, is adopted and announced) and when the
 *   refresh interval is due. With a lifetime, refresh it when due (and when adopting): an address
 *   held by a node that can no longer refresh it (SIGKILLed) expires by itself in the kernel.
 * - Wanted, not seen: add ('restore' if this manager had added it, 'acquire' otherwise), then announce.
 * - Not wanted, seen: remove ('release' if this manager held it, 'stale' otherwise).
 * - Not seen, not wanted: nothing.
 * - Cannot tell (no check, or it failed): act on what the own commands left. Wanted: add unless
 *   already added. Not wanted: remove only what this manager added; an address it never added is
 *   left alone, because blindly removing it could take it from the node that holds it (a cloud
 *   floating IP is one address for the whole cluster).
 */
export function planVip(s: VipPlanInput): VipStep[] {
  const present = s.observed ?? s.believed === true
  if (s.desired) {
    if (!present) return withAnnounce([{ op: 'add', why: s.believed === true ? 'restore' : 'acquire' }], s, true)
    const adopting = s.believed !== true
    const steps: VipStep[] = adopting ? [{ op: 'adopt' }] : []
    if (s.canRefresh && (adopting || s.sinceRefreshMs === undefined || s.sinceRefreshMs >= s.refreshEveryMs)) steps.push({ op: 'refresh' })
    return withAnnounce(steps, s, adopting)
  }
  // Unobserved, `present` is what the own commands left: an address never added here is left alone.
  if (!present) return []
  return [{ op: 'remove', why: s.believed === true ? 'release' : 'stale' }]
}

function withAnnounce(steps: VipStep[], s: VipPlanInput, startsHolding: boolean): VipStep[] {
  if (!s.canAnnounce) return steps
  if (startsHolding || !s.announced) return [...steps, { op: 'announce', why: 'hold' }]
  if (s.announceEveryMs > 0 && (s.sinceAnnounceMs === undefined || s.sinceAnnounceMs >= s.announceEveryMs)) return [...steps, { op: 'announce', why: 'refresh' }]
  return steps
}
