/**
 * The leader's view of one follower's log.
 *
 * - probe: we do not know where the follower's log matches ours; send one append at a time and
 *   wait for its answer (or the next heartbeat) before sending another.
 * - replicate: the follower is known to match up to `match`; stream appends optimistically,
 *   advancing `next` as they are sent, bounded by the in-flight window.
 * - snapshot: a snapshot is being sent; nothing else is sent until it is reported done.
 *
 * Invariant: match < next.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** In probe state: an append is outstanding; wait for its response or a heartbeat response. */
  probeSent = false
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0
  /** Heard from since the last check-quorum round. */
  recentActive = false
  /** The leader's tick when this follower last made progress (or had nothing outstanding). */
  progressTick = 0
  /** The highest heartbeat sequence this follower has acknowledged in the current term. */
  ackedSeq = 0
  /** Last index of each in-flight append, oldest first, with its size. */
  readonly #inflight: { index: number; bytes: number }[] = []
  #inflightBytes = 0

  constructor(
    next: number,
    readonly maxInflightMsgs: number,
    readonly maxInflightBytes: number,
  ) {
    this.next = next
  }

  /** Records an acknowledged match; returns whether it advanced. */
  maybeUpdate(index: number): boolean {
    let advanced = false
    if (index > this.match) {
      this.match = index
      advanced = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return advanced
  }

  /**
   * Handles a rejected append for `rejected` (the prev index we sent). Returns false when the
   * rejection is stale (it answers an older message) and must be ignored.
   */
  maybeDecrease(rejected: number, probeFrom: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1, 1)
    this.probeSent = false
    return true
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot
      this.#reset('probe')
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.#reset('probe')
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.#reset('replicate')
    this.next = this.match + 1
  }

  becomeSnapshot(index: number): void {
    this.#reset('snapshot')
    this.pendingSnapshot = index
  }

  #reset(state: ProgressState): void {
    this.state = state
    this.probeSent = false
    this.pendingSnapshot = 0
    this.#inflight.length = 0
    this.#inflightBytes = 0
  }

  /** Whether sending must wait: a probe outstanding, a snapshot in flight, or a full window. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'snapshot':
        return true
      case 'replicate':
        return this.#inflight.length >= this.maxInflightMsgs || this.#inflightBytes >= this.maxInflightBytes
    }
  }

  /** Records an append just sent whose last entry is `lastIndex`. */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1
      this.#inflight.push({ index: lastIndex, bytes })
      this.#inflightBytes += bytes
    } else if (this.state === 'probe') {
      this.probeSent = true
    }
  }

  /** Frees in-flight slots for appends up to and including `index`. */
  freeUpTo(index: number): void {
    let n = 0
    while (n < this.#inflight.length && this.#inflight[n]!.index <= index) {
      this.#inflightBytes -= this.#inflight[n]!.bytes
      n++
    }
    if (n > 0) this.#inflight.splice(0, n)
  }

  inflightCount(): number {
    return this.#inflight.length
  }
}
