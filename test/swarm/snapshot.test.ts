/**
 * Peers over hyperswarm, acceptance: snapshot catch-up across processes. With a 50-entry log tail,
 * a follower is stopped, the others take enough writes that the log is compacted past its
 * position, and when it restarts on its data directory the leader cannot send it log entries: it
 * is restored by a snapshot streamed over the swarm ('snapshotSent' on the leader,
 * 'snapshotInstalled' on the follower), after which it holds exactly the leader's state and keeps
 * replicating from the log.
 */
import t from 'tap'
import { SwarmCluster, missingAcks, type Ack, type ChildNode } from './harness.js'

const LOG_TAIL = 50
const WRITES_WHILE_DOWN = 6 * LOG_TAIL

async function putAll(via: ChildNode, keys: string[]): Promise<Ack[]> {
  return Promise.all(
    keys.map(async (key) => {
      const value = { key, pad: 's'.repeat(key.length * 3) }
      const issuedAt = performance.now()
      const { revision } = await via.put(key, value)
      return { key, value, revision, via: via.name, issuedAt, ackedAt: performance.now() }
    }),
  )
}

const keys = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`)

t.test('a follower behind the compacted log is restored by a snapshot over the swarm', async (t) => {
  const cluster = await SwarmCluster.create(t, { cluster: 'snapshot', logTail: LOG_TAIL })
  await cluster.startVoters(['a', 'b', 'c'])
  const leader = await cluster.leader()
  const follower = cluster.running().find((c) => c !== leader)!

  const acked = await putAll(leader, keys('s/early/', 20))
  const stoppedAt = await cluster.caughtUp()
  await follower.close()
  t.comment(`stopped follower ${follower.name} at applied index ${stoppedAt}`)

  // In batches, so the log is compacted repeatedly while the follower is down.
  for (let batch = 0; batch < WRITES_WHILE_DOWN / 50; batch++) acked.push(...(await putAll(leader, keys(`s/down${batch}/`, 50))))
  const { commitIndex } = await leader.status()
  t.ok(commitIndex - stoppedAt > 2 * LOG_TAIL, `the log moved on by ${commitIndex - stoppedAt} entries, well past the ${LOG_TAIL}-entry tail`)

  const back = await cluster.start(follower.name)
  const installed = await back.waitEvent('snapshotInstalled')
  const index = (installed.data as { index: number }).index
  t.ok(index > stoppedAt + LOG_TAIL, `${back.name} installed a snapshot at index ${index}, beyond its position ${stoppedAt} plus the log tail`)
  const sent = await leader.waitEvent('snapshotSent', (d: { to: string; ok: boolean }) => d.to === back.id && d.ok)
  t.ok(sent, `the leader ${leader.name} reports the snapshot sent to ${back.name}`)

  // After the snapshot, replication continues from the log.
  acked.push(...(await putAll(back, keys('s/after/', 20))))
  const commit = await cluster.caughtUp()
  const reference = await leader.list('s/')
  t.equal(reference.length, acked.length, 'the leader stores exactly the written keys')
  for (const n of cluster.running()) {
    t.same(await n.list('s/'), reference, `${n.name} (applied ≥ ${commit}) holds exactly the leader's state`)
    t.same(await missingAcks(n, acked, 's/'), [], `${n.name} stores every acknowledged write`)
  }
  t.equal(back.events.filter((e) => e.name === 'snapshotInstalled').length, 1, 'one snapshot was enough')
})
