import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode, type HoldfastNode } from '../node.js'
import type { NodeOptions } from '../options.js'
import { MemoryNetwork } from '../transport/memory.js'

/** A cluster of real holdfast nodes (real LMDB files) on one in-process MemoryNetwork. */
export interface TestCluster {
  readonly network: MemoryNetwork
  /** The running nodes by id (a node removed with stop() or crash() is gone from here). */
  readonly nodes: Map<string, HoldfastNode>
  /** Starts (or restarts, on its old data directory) node `id`. */
  start(id: string, extra?: Partial<NodeOptions>): Promise<HoldfastNode>
  /** Stops `id` abruptly: it is cut off from the network first, so it cannot hand over. */
  crash(id: string): Promise<void>
  /** The node that currently leads, if any. */
  leader(): HoldfastNode | undefined
  /** Waits for a leader, up to `ms`. */
  waitForLeader(ms?: number): Promise<HoldfastNode>
  /** Closes every node and removes the data directories. */
  close(): Promise<void>
}

/** Polls `pred` until it holds; rejects after `ms`. */
export async function until(pred: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * Starts `ids` as the voters of a new cluster, each with its own data directory under the OS temp
 * directory. For testing services that embed holdfast: every write really goes through Raft and LMDB.
 * @example
 * const cluster = await createTestCluster(['a', 'b', 'c'])
 * const leader = await cluster.waitForLeader()
 * await leader.put('k', 1)
 * await cluster.close()
 */
export async function createTestCluster(ids: readonly string[], options: Partial<NodeOptions> = {}): Promise<TestCluster> {
  const root = await mkdtemp(join(tmpdir(), 'holdfast-test-'))
  const network = new MemoryNetwork()
  const nodes = new Map<string, HoldfastNode>()
  const cluster: TestCluster = {
    network,
    nodes,
    async start(id, extra = {}) {
      const old = nodes.get(id)
      if (old) await old.close()
      const node = await createNode({
        id,
        dataDir: join(root, id),
        transport: network.createTransport(id),
        bootstrap: { voters: [...ids], learners: [] },
        tickMs: 10,
        ...options,
        ...extra,
      })
      nodes.set(id, node)
      return node
    },
    async crash(id) {
      const node = nodes.get(id)
      if (!node) return
      network.isolate(id)
      nodes.delete(id)
      await node.close()
      network.heal()
    },
    leader() {
      return [...nodes.values()].find((n) => n.status().role === 'leader')
    },
    async waitForLeader(ms = 10_000) {
      await until(() => cluster.leader() !== undefined, ms, 'a leader')
      return cluster.leader()!
    },
    async close() {
      // Followers first; each leader then hands over to a connected voter before it stops.
      const order = [...nodes.values()].sort((x, y) => Number(x.status().role === 'leader') - Number(y.status().role === 'leader'))
      for (const n of order) await n.close().catch(() => {})
      nodes.clear()
      await rm(root, { recursive: true, force: true })
    },
  }
  for (const id of ids) await cluster.start(id)
  return cluster
}
