/**
 * Peers over hyperswarm, acceptance: three, then five, holdfast nodes, each in its own OS process,
 * find each other on a loopback DHT testnet, elect a leader and replicate writes. Writes go to every
 * node (followers forward them to the leader); at the end every node reads back every acknowledged
 * write: through linearizable reads on the leader and on a follower (a read-index round trip over
 * the swarm), and from each node's local state once it has applied the leader's commit index.
 */
import t, { type Test } from 'tap'
import { SwarmCluster, type Ack } from './harness.js'

const WRITES = 60

async function formAndReplicate(t: Test, size: number): Promise<void> {
  const cluster = await SwarmCluster.create(t, { cluster: `cluster-${size}` })
  const names = Array.from({ length: size }, (_, i) => `n${i}`)
  const started = performance.now()
  const nodes = await cluster.startVoters(names)
  const leader = await cluster.leader()
  t.comment(`${size} processes formed a cluster in ${Math.round(performance.now() - started)} ms; leader ${leader.name}`)

  const members = new Set(nodes.map((n) => n.id))
  const leaderStatus = await leader.status()
  t.same(new Set(leaderStatus.membership.voters), members, 'the membership is the bootstrap voters')

  // Writes sent to every node, concurrently: followers forward theirs to the leader.
  const acked: Ack[] = await Promise.all(
    Array.from({ length: WRITES }, async (_, i) => {
      const via = nodes[i % size]!
      const key = `k/${String(i).padStart(3, '0')}`
      const value = { i, from: via.name }
      const issuedAt = performance.now()
      const { revision } = await via.put(key, value)
      return { key, value, revision, via: via.name, issuedAt, ackedAt: performance.now() }
    }),
  )
  t.equal(new Set(acked.map((a) => a.revision)).size, WRITES, 'every write got its own revision')

  // Linearizable reads: on the leader, and on a follower (read index fetched from the leader).
  const follower = nodes.find((n) => n !== leader)!
  for (const reader of [leader, follower]) {
    const reads = await Promise.all(acked.map((a) => reader.get(a.key, 'linearizable')))
    const wrong = acked.filter((a, i) => JSON.stringify(reads[i]?.value) !== JSON.stringify(a.value) || reads[i]?.modRevision !== a.revision)
    t.same(wrong.map((a) => a.key), [], `linearizable reads on ${reader === leader ? 'the leader' : 'a follower'} (${reader.name}) return every acknowledged write`)
  }

  // Local (stale) reads on every node, once it has applied what the leader committed.
  const commit = await cluster.caughtUp(nodes)
  const leaderList = await leader.list('k/')
  t.equal(leaderList.length, WRITES, 'the leader stores exactly the written keys')
  for (const n of nodes) {
    const local = await Promise.all(acked.map((a) => n.get(a.key, 'local')))
    const wrong = acked.filter((a, i) => JSON.stringify(local[i]?.value) !== JSON.stringify(a.value) || local[i]?.modRevision !== a.revision)
    t.same(wrong.map((a) => a.key), [], `${n.name} (${n === leader ? 'leader' : 'follower'}, applied ≥ ${commit}) reads every acknowledged write locally`)
    t.same(await n.list('k/'), leaderList, `${n.name} holds the same state as the leader`)
  }

  if (size === 3) {
    // Leadership moves on request; a write through the former leader is forwarded to the new one.
    const next = nodes.find((n) => n !== leader)!
    await leader.call('transferLeadership', { to: next.id })
    t.equal((await cluster.leader()).id, next.id, `leadership moved from ${leader.name} to ${next.name} on request`)
    const { revision } = await leader.put('k/after-transfer', 'moved')
    t.equal((await next.get('k/after-transfer', 'linearizable'))?.modRevision, revision, 'a write through the former leader is acknowledged and readable on the new one')
  }

  // Every member dials every other: the mesh completes (Raft needs only the leader's links, but a
  // follower forwards writes and reads to whoever leads next). No refusals, no bad frames.
  await cluster.mesh(nodes)
  t.comment(`full mesh of ${size} after ${Math.round(performance.now() - started)} ms`)
  for (const n of nodes) {
    const { stats, connectedPeers } = await n.status()
    t.same(new Set(connectedPeers), new Set(nodes.filter((m) => m !== n).map((m) => m.id)), `${n.name} is connected to exactly the other members`)
    t.match(stats, { authFailures: 0, refusedByPeers: 0, frameErrors: 0, protocolErrors: 0 }, `${n.name}: no refusals or bad frames`)
  }
}

t.test('three processes form a cluster over hyperswarm and replicate writes', (t) => formAndReplicate(t, 3))
t.test('five processes form a cluster over hyperswarm and replicate writes', (t) => formAndReplicate(t, 5))

