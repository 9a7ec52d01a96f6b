/**
 * Simulated clients. Each issues one operation at a time (read, write or compare-and-set on a
 * small key set; every written value is unique) to the node it believes leads, or a random one,
 * and records what it observed in the linearizability checker's format:
 *
 * - ok: call and return times and the output the state machine produced;
 * - definite failure (refused, or the entry at its index applied with another term): not recorded,
 *   as it certainly had no effect;
 * - unknown (node crashed, client timed out): return = Infinity, output undefined.
 */
import type { NodeId } from '../../src/core/types.js'
import type { KvInput, KvOutput, Operation } from '../../src/testing/linearizability.js'
import type { Command } from './kv.js'
import type { Prng } from './prng.js'
import type { Outcome, Request, World } from './world.js'

export interface ClientOptions {
  readonly count: number
  readonly keys: readonly string[]
  readonly timeoutMs: number
  readonly thinkMs: readonly [number, number]
  readonly latencyMs: readonly [number, number]
  readonly leaseReadChance: number
  readonly mix: Readonly<Record<'read' | 'write' | 'cas', number>>
}

interface ClientState {
  readonly id: number
  seq: number
  leaderGuess: NodeId | undefined
  /** The last value this client saw per key: a plausible CAS expectation. */
  readonly seen: Map<string, string | null>
}

export interface ClientStats {
  issued: number
  ok: number
  failed: number
  unknown: number
}

export class Clients {
  readonly history: Operation<KvInput, KvOutput>[] = []
  readonly stats: ClientStats = { issued: 0, ok: 0, failed: 0, unknown: 0 }
  readonly #world: World
  readonly #rng: Prng
  readonly #opts: ClientOptions
  #stopAt = Infinity
  /** Values written recently by anyone: CAS expectations that may or may not hold. */
  readonly #recent: string[] = []

  constructor(world: World, rng: Prng, opts: ClientOptions) {
    this.#world = world
    this.#rng = rng
    this.#opts = opts
  }

  /** Starts every client at a random moment after `at`. */
  start(at: number): void {
    for (let id = 0; id < this.#opts.count; id++) {
      const c: ClientState = { id, seq: 0, leaderGuess: undefined, seen: new Map() }
      this.#world.queue.push(at + this.#rng.range(...this.#opts.thinkMs), () => this.#issue(c))
    }
  }

  /** No operation is issued at or after `at`; those in flight still complete or time out. */
  stopAt(at: number): void {
    this.#stopAt = at
  }

  #issue(c: ClientState): void {
    const w = this.#world
    if (w.now >= this.#stopAt) return
    const rng = this.#rng
    const key = rng.pick(this.#opts.keys)!
    const kind = rng.weighted(this.#opts.mix)
    const value = `c${c.id}.${c.seq++}`
    let input: KvInput
    let req: Request
    if (kind === 'read') {
      input = { kind: 'read', key }
      req = { kind: 'read', key, lease: rng.chance(this.#opts.leaseReadChance) }
    } else if (kind === 'write') {
      input = { kind: 'write', key, value }
      req = { kind: 'command', command: { t: 'w', key, value } satisfies Command }
    } else {
      const r = rng.next()
      const expect = r < 0.6 ? (c.seen.get(key) ?? null) : r < 0.8 ? null : (rng.pick(this.#recent) ?? null)
      input = { kind: 'cas', key, expect, value }
      req = { kind: 'command', command: { t: 'c', key, expect, value } satisfies Command }
    }
    const nodes = [...w.nodes.keys()]
    const target = c.leaderGuess !== undefined && rng.chance(0.85) ? c.leaderGuess : rng.pick(nodes)!
    const call = w.now
    let done = false
    this.stats.issued++
    if (w.tracing) w.trace(`client ${c.id} -> ${target} ${JSON.stringify(input)}`)

    const finish = (o: Outcome): void => {
      if (done) return
      done = true
      let next = rng.range(...this.#opts.thinkMs)
      switch (o.status) {
        case 'ok': {
          if (o.output === undefined) throw new Error(`client op ${JSON.stringify(input)} completed without output`)
          this.stats.ok++
          this.history.push({ client: c.id, input, output: o.output, call, return: w.now })
          c.leaderGuess = target
          if (o.output.kind === 'read') c.seen.set(key, o.output.value)
          else if (o.output.kind === 'write' || o.output.ok) this.#wrote(c, key, value)
          break
        }
        case 'failed':
          this.stats.failed++
          c.leaderGuess = o.leaderHint !== undefined && o.leaderHint !== target ? o.leaderHint : undefined
          next = rng.range(0, this.#opts.thinkMs[0] + 1)
          break
        case 'unknown':
          this.stats.unknown++
          c.leaderGuess = undefined
          if (input.kind !== 'read') {
            this.history.push({ client: c.id, input, output: undefined, call, return: Infinity })
            this.#wrote(c, key, value)
          }
          break
      }
      if (w.tracing) w.trace(`client ${c.id} <- ${o.status}${o.status === 'ok' ? ` ${JSON.stringify(o.output)}` : ''}`)
      w.queue.push(w.now + next, () => this.#issue(c))
    }
    w.request(target, req, rng.range(...this.#opts.latencyMs), finish)
    w.queue.push(call + this.#opts.timeoutMs, () => finish({ status: 'unknown' }))
  }

  #wrote(c: ClientState, key: string, value: string): void {
    c.seen.set(key, value)
    this.#recent.push(value)
    if (this.#recent.length > 8) this.#recent.shift()
  }
}
