import t from 'tap'
import { startCluster, until } from './cluster.js'

t.test('three nodes: writes anywhere, linearizable reads anywhere', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const leader = await c.waitForLeader()
  const follower = [...c.nodes.values()].find((n) => n !== leader)!
  const r1 = await leader.put('k', { v: 1 })
  const r2 = await follower.put('k', { v: 2 })
  t.ok(r2.revision > r1.revision, 'revisions grow')
  for (const n of c.nodes.values()) {
    const kv = await n.get('k')
    t.same(kv?.value, { v: 2 }, `${n.id} reads the latest value`)
  }
})
