/**
 * Shared pieces of the acting tests: a cluster torn down with the test, an event log per node,
 * a shared monotonic clock, and a sampler of "how many nodes pass leaderCheck() right now".
 */
import type { Test } from 'tap'
import type { HoldfastEvent } from '../../src/acting/events.js'
import { isHoldfastError } from '../../src/errors.js'
import type { HoldfastNode } from '../../src/node.js'
import type { NodeOptions } from '../../src/options.js'
import { createTestCluster, until, type TestCluster } from '../../src/testing/index.js'

export { until }

/** One clock for every node of an in-process cluster, so timestamps compare. */
export const clock = (): number => performance.now()

/**
 * Milliseconds per tick in these tests: 30 rather than createTestCluster's 10, so the lease (8
 * ticks, 240 ms) outlasts the event-loop stalls of a loaded machine running several test files at
 * once (about 100 ms measured here). A stall longer than the lease legitimately ends an acting
 * period; assertions below look at the period they are about (its token), not at the first event.
 */
export const TICK = 30

export async function cluster(t: Test, ids: readonly string[], options: Partial<NodeOptions> = {}): Promise<TestCluster> {
  const c = await createTestCluster(ids, { tickMs: TICK, ...options })
  t.teardown(() => c.close())
  return c
}

/** Every HoldfastEvent of every node (present and restarted), stamped with the shared clock. */
export class EventLog {
  readonly all: (HoldfastEvent & { at: number })[] = []

  watch(node: HoldfastNode): this {
    node.on('event', (e: HoldfastEvent) => this.all.push({ ...e, at: clock() }))
    return this
  }

  of(node: string, type?: string): (HoldfastEvent & { at: number })[] {
    return this.all.filter((e) => e.node === node && (type === undefined || e.type === type))
  }

  ofType<T extends HoldfastEvent['type']>(type: T): (Extract<HoldfastEvent, { type: T }> & { at: number })[] {
    return this.all.filter((e) => e.type === type) as (Extract<HoldfastEvent, { type: T }> & { at: number })[]
  }
}

export async function actingNode(c: TestCluster, ms = 10_000, except?: string): Promise<HoldfastNode> {
  const find = (): HoldfastNode | undefined => [...c.nodes.values()].find((n) => n.isActing() && n.id !== except)
  await until(() => find() !== undefined, ms, except ? `a node other than ${except} to act` : 'a node to act')
  return find()!
}

/**
 * Samples every node's leaderCheck() on every turn of the event loop (setImmediate), recording the
 * largest number of nodes that passed it at one moment.
 */
export function sampleLeaderChecks(nodes: () => Iterable<HoldfastNode>): { stop(): void; samples: number; maxTrue: number; overlaps: string[] } {
  const s = { samples: 0, maxTrue: 0, overlaps: [] as string[], stop: () => {} }
  let stopped = false
  const sample = (): void => {
    if (stopped) return
    const passing = [...nodes()].filter((n) => n.leaderCheck()).map((n) => n.id)
    s.samples++
    s.maxTrue = Math.max(s.maxTrue, passing.length)
    if (passing.length > 1) s.overlaps.push(`${clock().toFixed(1)}: ${passing.join(', ')}`)
    setImmediate(sample)
  }
  s.stop = () => {
    stopped = true
  }
  setImmediate(sample)
  return s
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return isHoldfastError(err) ? err.code : `non-holdfast: ${String(err)}`
  }
  return undefined
}
