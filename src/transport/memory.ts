import { HoldfastError } from '../errors.js'
import type { NodeId } from '../core/types.js'
import type { Transport } from './types.js'

/** Fault settings of a MemoryNetwork. */
export interface MemoryNetworkFaults {
  /** Probability that a frame is lost. @default 0 */
  loss?: number
  /** Probability that a frame is delivered twice. @default 0 */
  duplicate?: number
  /** Delivery delay range in ms; frames with different delays overtake each other. @default [0, 0] */
  delayMs?: [number, number]
}

/**
 * An in-process network of transports, for tests of real clusters in one process. It can drop,
 * delay, duplicate and reorder frames and partition nodes, with randomness from an injected
 * source so a test can replay it. Exported from `holdfast/testing`.
 */
export class MemoryNetwork {
  readonly #endpoints = new Map<NodeId, MemoryTransport>()
  /** Directed links that are cut: "from->to". */
  readonly #blocked = new Set<string>()
  #faults: Required<MemoryNetworkFaults> = { loss: 0, duplicate: 0, delayMs: [0, 0] }
  readonly #rand: () => number
  /** Per pair "a|b" (a < b): bumped when the connection is reset, so frames in flight on the old one are lost. */
  readonly #generation = new Map<string, number>()

  constructor(options: { rand?: () => number; faults?: MemoryNetworkFaults } = {}) {
    this.#rand = options.rand ?? Math.random
    if (options.faults) this.setFaults(options.faults)
  }

  /** Creates the transport of node `id` and connects it to every reachable node. */
  createTransport(id: NodeId): MemoryTransport {
    if (this.#endpoints.has(id)) throw new HoldfastError('INVALID_ARGUMENT', `node ${id} is already on this network`)
    const t = new MemoryTransport(id, this)
    this.#endpoints.set(id, t)
    for (const other of this.#endpoints.values()) {
      if (other !== t && this.#connected(id, other.id)) this.#link(t, other, true)
    }
    return t
  }

  setFaults(faults: MemoryNetworkFaults): void {
    this.#faults = { ...this.#faults, ...faults }
  }

  /** Cuts every link between the groups, both ways. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) for (const y of b) this.cut(x, y), this.cut(y, x)
  }

  /** Isolates `id` from every other node. */
  isolate(id: NodeId): void {
    for (const other of this.#endpoints.keys()) if (other !== id) this.partition([id], [other])
  }

  /** Cuts the one-way link from -> to. A connection counts as down unless both directions work. */
  cut(from: NodeId, to: NodeId): void {
    const wasUp = this.#connected(from, to)
    this.#blocked.add(`${from}->${to}`)
    if (wasUp) this.#notify(from, to, false)
  }

  /** Restores every link and removes every fault. */
  heal(): void {
    const down: [NodeId, NodeId][] = []
    for (const a of this.#endpoints.keys()) for (const b of this.#endpoints.keys()) if (a < b && !this.#connected(a, b)) down.push([a, b])
    this.#blocked.clear()
    this.#faults = { loss: 0, duplicate: 0, delayMs: [0, 0] }
    for (const [a, b] of down) this.#notify(a, b, true)
  }

  #connected(a: NodeId, b: NodeId): boolean {
    const ea = this.#endpoints.get(a)
    const eb = this.#endpoints.get(b)
    return !!ea && !!eb && !ea.closed && !eb.closed && !this.#blocked.has(`${a}->${b}`) && !this.#blocked.has(`${b}->${a}`)
  }

  #notify(a: NodeId, b: NodeId, up: boolean): void {
    const ea = this.#endpoints.get(a)
    const eb = this.#endpoints.get(b)
    if (ea && eb) this.#link(ea, eb, up)
  }

  #link(a: MemoryTransport, b: MemoryTransport, up: boolean): void {
    a.peerChanged(b.id, up)
    b.peerChanged(a.id, up)
  }

  /**
   * Resets the connection between a and b, as a real transport does on a protocol violation: both
   * see it go down, frames in flight are lost, and it comes back up at once if the link works.
   */
  reset(a: NodeId, b: NodeId): void {
    if (!this.#connected(a, b)) return
    const key = pairKey(a, b)
    this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1)
    this.#notify(a, b, false)
    queueMicrotask(() => {
      if (this.#connected(a, b)) this.#notify(a, b, true)
    })
  }

  /** @internal */
  route(from: NodeId, to: NodeId, frame: Uint8Array): boolean {
    if (!this.#connected(from, to)) return false
    const generation = this.#generation.get(pairKey(from, to)) ?? 0
    const copies = this.#rand() < this.#faults.duplicate ? 2 : 1
    for (let i = 0; i < copies; i++) {
      if (this.#rand() < this.#faults.loss) continue
      // Receivers get their own copy: no sharing of buffers across "machines".
      const bytes = frame.slice()
      const [lo, hi] = this.#faults.delayMs
      const delay = lo + (hi - lo) * this.#rand()
      const deliver = (): void => {
        if (this.#connected(from, to) && (this.#generation.get(pairKey(from, to)) ?? 0) === generation) this.#endpoints.get(to)?.deliver(from, bytes)
      }
      if (delay <= 0) queueMicrotask(deliver)
      else setTimeout(deliver, delay)
    }
    return true
  }

  /** @internal */
  closed(id: NodeId): void {
    for (const other of this.#endpoints.values()) {
      if (other.id !== id && !other.closed && !this.#blocked.has(`${id}->${other.id}`) && !this.#blocked.has(`${other.id}->${id}`)) {
        other.peerChanged(id, false)
      }
    }
    this.#endpoints.delete(id)
  }

  /** @internal */
  peersOf(id: NodeId): NodeId[] {
    return [...this.#endpoints.keys()].filter((o) => o !== id && this.#connected(id, o))
  }
}

function pairKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`
}

/** One node's endpoint on a MemoryNetwork. */
export class MemoryTransport implements Transport {
  closed = false
  #onFrame: (from: NodeId, frame: Uint8Array) => void = () => {}
  #onPeer: (peer: NodeId, up: boolean) => void = () => {}

  constructor(
    readonly id: NodeId,
    readonly network: MemoryNetwork,
  ) {}

  send(to: NodeId, frame: Uint8Array): boolean {
    if (this.closed) return false
    return this.network.route(this.id, to, frame)
  }

  onFrame(handler: (from: NodeId, frame: Uint8Array) => void): void {
    this.#onFrame = handler
  }

  onPeer(handler: (peer: NodeId, up: boolean) => void): void {
    this.#onPeer = handler
  }

  connectedPeers(): NodeId[] {
    return this.closed ? [] : this.network.peersOf(this.id)
  }

  /** Resets the connection to `peer` (see MemoryNetwork.reset) and counts it. */
  disconnect(peer: NodeId, _reason: string): void {
    if (this.closed) return
    this.disconnects++
    this.network.reset(this.id, peer)
  }

  /** Connections this endpoint reset because a peer broke the protocol. */
  disconnects = 0

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.network.closed(this.id)
  }

  /** @internal */
  deliver(from: NodeId, frame: Uint8Array): void {
    if (!this.closed) this.#onFrame(from, frame)
  }

  /** @internal */
  peerChanged(peer: NodeId, up: boolean): void {
    if (!this.closed) this.#onPeer(peer, up)
  }
}
