/** Helpers to run real holdfast nodes (LMDB in temp dirs) on an in-memory network. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode, type HoldfastNode } from '../../src/node.js'
import type { NodeOptions } from '../../src/options.js'
import { MemoryNetwork } from '../../src/transport/memory.js'

export interface TestCluster {
  network: MemoryNetwork
  nodes: Map<string, HoldfastNode>
  dirs: Map<string, string>
  start(id: string, extra?: Partial<NodeOptions>): Promise<HoldfastNode>
  leader(): HoldfastNode | undefined
  waitForLeader(ms?: number): Promise<HoldfastNode>
  close(): Promise<void>
}

export async function until(pred: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

export async function startCluster(ids: string[], options: Partial<NodeOptions> = {}): Promise<TestCluster> {
  const root = await mkdtemp(join(tmpdir(), 'holdfast-node-'))
  const network = new MemoryNetwork()
  const nodes = new Map<string, HoldfastNode>()
  const dirs = new Map<string, string>()
  const cluster: TestCluster = {
    network,
    nodes,
    dirs,
    async start(id, extra = {}) {
      const dataDir = dirs.get(id) ?? join(root, id)
      dirs.set(id, dataDir)
      const node = await createNode({
        id,
        dataDir,
        transport: network.createTransport(id),
        bootstrap: { voters: ids, learners: [] },
        tickMs: 10,
        ...options,
        ...extra,
      })
      nodes.set(id, node)
      return node
    },
    leader() {
      return [...nodes.values()].find((n) => n.status().role === 'leader')
    },
    async waitForLeader(ms = 10_000) {
      await until(() => cluster.leader() !== undefined, ms, 'a leader')
      return cluster.leader()!
    },
    async close() {
      // Leaders last: each hands over to a connected voter before it stops.
      const order = [...nodes.values()].sort((x, y) => Number(x.status().role === 'leader') - Number(y.status().role === 'leader'))
      for (const n of order) await n.close().catch(() => {})
      await rm(root, { recursive: true, force: true })
    },
  }
  for (const id of ids) await cluster.start(id)
  return cluster
}
