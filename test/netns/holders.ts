/**
 * The judgement of the VIP test (vip.test.ts), separate so that it is unit-tested on made-up
 * timelines (holders.test.ts): given the samples of which namespaces held the VIP and what each
 * node process reported, list every sample that breaks a rule.
 *
 * Words:
 * - A namespace's address is *live* while the node process in that namespace runs and has done
 *   its start-up reconcile (`liveFrom`: the spawn for a first start, the 'removedStale' event for
 *   a restart on a namespace that kept an address); otherwise it is *orphaned*: left by a process
 *   that was SIGKILLed, which cannot remove its address, in a namespace (a host) that lives on.
 * - A node is *acting* from its 'actingStart' event to its 'actingStop' event (or its death).
 *   The VIP is added before 'actingStart' and removed after 'actingStop', so an acting node
 *   always holds it; a node that just stopped may still hold it while it removes it.
 *
 * Rules, at every sample from the first one with a holder:
 * 1. never two live holders;
 * 2. never two nodes acting;
 * 3. a node acting throughout the sample is the one live holder;
 * 4. an orphaned address only in the killed node's namespace, from the kill until its restarted
 *    process is live;
 * 5. (counted, not a rule) samples with no live holder: in the failover gap (from the kill until
 *    the new holder is first seen), or elsewhere, which rule 3 allows only while no node acts,
 *    for example after a lease expired under load (the node stops acting, by design, until it
 *    has a majority again).
 */

/** One look at the node namespaces: which held the VIP. Wall-clock ms. */
export interface Sample {
  start: number
  end: number
  holders: string[]
}

/** One node process's life, from what it reported. Wall-clock ms. */
export interface NodeLife {
  node: string
  /** From when an address in its namespace is this process's (see the header). */
  liveFrom: number
  /** When it was killed or exited; Infinity while running. */
  diedAt: number
  /** Its acting periods; `to` is Infinity while acting. */
  acting: Array<{ token: number; from: number; to: number }>
}

export interface HolderVerdict {
  violations: string[]
  /** Samples judged (from the first with a holder). */
  samples: number
  /** Samples with no live holder inside the failover gap. */
  failoverGap: number
  /** Samples with no live holder outside it (nobody acting then). */
  otherGaps: number
  /** Samples in which the killed node's orphaned address was seen. */
  orphaned: number
  /** Largest time between the starts of consecutive judged samples. */
  maxIntervalMs: number
}

export function judgeHolders(samples: readonly Sample[], lives: readonly NodeLife[], kill: { node: string; at: number }): HolderVerdict {
  const firstHeld = samples.findIndex((s) => s.holders.length > 0)
  const judged = firstHeld < 0 ? [] : samples.slice(firstHeld)
  const violations: string[] = []
  const verdict: HolderVerdict = { violations, samples: judged.length, failoverGap: 0, otherGaps: 0, orphaned: 0, maxIntervalMs: 0 }
  const live = (node: string, s: Sample): boolean => lives.some((l) => l.node === node && l.liveFrom <= s.start && s.end <= l.diedAt)
  const actingThroughout = (s: Sample): string[] => [...new Set(lives.filter((l) => l.acting.some((a) => a.from <= s.start && s.end <= Math.min(a.to, l.diedAt))).map((l) => l.node))]
  const killedLiveAgain = Math.min(...lives.filter((l) => l.node === kill.node && l.liveFrom > kill.at).map((l) => l.liveFrom))
  // The failover gap ends when a live holder other than the killed node is first seen.
  const newHolderSeen = judged.find((s) => s.start > kill.at && s.holders.some((h) => h !== kill.node && live(h, s)))?.start ?? Infinity

  for (const [i, s] of judged.entries()) {
    if (i > 0) verdict.maxIntervalMs = Math.max(verdict.maxIntervalMs, s.start - judged[i - 1]!.start)
    const at = `${Math.round(s.start - kill.at)} ms from the kill`
    const liveHolders = s.holders.filter((h) => live(h, s))
    const orphans = s.holders.filter((h) => !live(h, s))
    const acting = actingThroughout(s)
    if (liveHolders.length > 1) violations.push(`two live holders (${liveHolders.join(', ')}) at ${at}`)
    if (acting.length > 1) violations.push(`two nodes acting (${acting.join(', ')}) at ${at}`)
    if (acting.length === 1 && (liveHolders.length !== 1 || liveHolders[0] !== acting[0])) {
      violations.push(`${acting[0]} acts but the live holders are [${liveHolders.join(', ')}] at ${at}`)
    }
    for (const o of orphans) {
      if (o === kill.node && s.end > kill.at && s.start < killedLiveAgain) verdict.orphaned++
      else violations.push(`an orphaned address in ${o}'s namespace at ${at}`)
    }
    if (liveHolders.length === 0) {
      if (s.end > kill.at && s.start < newHolderSeen) verdict.failoverGap++
      else verdict.otherGaps++
    }
  }
  return verdict
}
