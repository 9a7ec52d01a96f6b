/**
 * The simulator's event queue: a binary min-heap ordered by (time, seq). `seq` is the insertion
 * order, so events at the same virtual time run in the order they were scheduled: ties never
 * depend on heap layout, which keeps a seed's replay exact.
 */
export interface SimEvent {
  readonly time: number
  readonly seq: number
  readonly run: () => void
}

export class EventQueue {
  #heap: SimEvent[] = []
  #seq = 0

  get size(): number {
    return this.#heap.length
  }

  /** Schedules `run` at virtual time `time`. */
  push(time: number, run: () => void): void {
    const h = this.#heap
    const e: SimEvent = { time, seq: this.#seq++, run }
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = h[p]!
      if (!before(e, parent)) break
      h[i] = parent
      i = p
    }
    h[i] = e
  }

  /** Removes and returns the earliest event. */
  pop(): SimEvent | undefined {
    const h = this.#heap
    const top = h[0]
    if (top === undefined) return undefined
    const last = h.pop()!
    if (h.length > 0) {
      let i = 0
      const n = h.length
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && before(h[r]!, h[l]!) ? r : l
        if (!before(h[c]!, last)) break
        h[i] = h[c]!
        i = c
      }
      h[i] = last
    }
    return top
  }

  /** The time of the earliest event, or Infinity. */
  peekTime(): number {
    return this.#heap[0]?.time ?? Infinity
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
