/**
 * ready(): a known leader, and this node has applied up to that leader's commit index as last
 * heard. A follower restarted far behind (it needs a snapshot) is not ready until it caught up.
 */
import t from 'tap'
import { actingNode, cluster, until } from './helpers.js'

t.test('ready() is false on a lagging follower and true once it caught up', async (t) => {
  // A short log tail: the restarted follower is behind the compaction point and needs a snapshot,
  // so it hears the leader well before it can apply what the leader committed.
  const c = await cluster(t, ['a', 'b', 'c'], { logTail: 5 })
  const leader = await actingNode(c)
  const lag = [...c.nodes.keys()].find((id) => id !== leader.id)!
  await until(() => [...c.nodes.values()].every((n) => n.ready()), 5000, 'every node to be ready')
  t.ok(leader.ready(), 'the leader is ready')

  await c.crash(lag)
  for (let i = 0; i < 60; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => leader.put(`k${i + k}`, i + k)))
  const back = await c.start(lag)
  t.notOk(back.ready(), 'a restarted node that knows no leader yet is not ready')
  const atFirstContact: { ready: boolean; applied: number; leaderCommit: number }[] = []
  back.on('leader', (id: string | null) => {
    if (id !== null && atFirstContact.length === 0) atFirstContact.push({ ready: back.ready(), applied: back.status().appliedIndex, leaderCommit: leader.status().commitIndex })
  })
  const installed: number[] = []
  back.on('snapshotInstalled', (e: { index: number }) => installed.push(e.index))
  await until(() => back.ready(), 10_000, 'the follower to become ready')
  t.equal(atFirstContact.length, 1, 'it heard the leader')
  t.notOk(atFirstContact[0]!.ready, `when it first heard the leader it was behind (applied ${atFirstContact[0]!.applied} of ${atFirstContact[0]!.leaderCommit}) and not ready`)
  t.ok(installed.length >= 1, 'it caught up by snapshot')
  t.ok(back.status().appliedIndex >= 60, `ready once it applied the writes (applied ${back.status().appliedIndex})`)
  t.equal(back.getLocal('k59')?.value, 59, 'and its local state has them')

  // A follower cut off from the leader loses its leader after the election timeout: not ready.
  c.network.isolate(lag)
  await until(() => !back.ready(), 5000, 'the isolated follower to stop being ready')
  t.equal(back.status().leaderId, null, 'it knows no leader')
  c.network.heal()
  await until(() => back.ready(), 5000, 'ready again after the heal')
  t.pass('ready again after the heal')
})
