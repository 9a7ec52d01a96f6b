/**
 * A peer may speak only for itself: a Raft message whose claimed sender is not the connection's
 * authenticated peer is dropped by the node, and peer RPC handlers learn the authenticated sender.
 */
import t from 'tap'
import { createTestCluster, until } from '../../src/testing/cluster.js'
import { encodeEnvelopeRaw, encodeRaftMessage } from '../../src/transport/codec.js'

t.test('a raft message claiming another sender is dropped', async (t) => {
  const cluster = await createTestCluster(['n1', 'n2', 'n3'], { tickMs: 20 })
  t.teardown(() => cluster.close())
  const leader = await cluster.waitForLeader()
  await leader.put('k', 1)
  const victim = [...cluster.nodes.values()].find((n) => n !== leader)!
  const impersonated = [...cluster.nodes.keys()].find((id) => id !== leader.id && id !== victim.id)!
  const termBefore = victim.status().term
  // 'mallory' is connected and authenticated as herself, but claims to be a member with a huge term.
  const mallory = cluster.network.createTransport('mallory')
  // A heartbeat of a higher term: taken from its real sender, it makes the receiver follow that sender.
  const forged = encodeRaftMessage({ type: 'heartbeat', from: impersonated, to: victim.id, term: termBefore + 1000, commit: 0 })
  for (let i = 0; i < 10; i++) t.ok(mallory.send(victim.id, encodeEnvelopeRaw('raft', forged)), 'sent')
  await new Promise((r) => setTimeout(r, 200))
  await victim.settled()
  t.ok(victim.status().term < termBefore + 1000, `the victim's term stayed at ${victim.status().term}`)
  t.equal(victim.status().leaderId, leader.id, 'the victim still follows the leader')
  t.equal(victim.spoofedMessages, 10, 'each forgery counted')
  await mallory.close()
})

t.test('peer RPC: handlers get the authenticated sender; reserved method names are refused', async (t) => {
  const cluster = await createTestCluster(['n1', 'n2'], { tickMs: 20 })
  t.teardown(() => cluster.close())
  const [a, b] = [cluster.nodes.get('n1')!, cluster.nodes.get('n2')!]
  b.handle('echo', (payload, from) => Buffer.concat([Buffer.from(`${from}:`), payload]))
  const reply = await a.request('n2', 'echo', Buffer.from('hi'))
  t.equal(Buffer.from(reply).toString(), 'n1:hi')
  t.throws(() => b.handle('holdfast.propose', () => new Uint8Array()), { code: 'INVALID_ARGUMENT' })
  await t.rejects(a.request('n2', 'nope', new Uint8Array()), { code: 'UNKNOWN_METHOD' })
  b.handle('fail', () => {
    throw new Error('boom')
  })
  await t.rejects(a.request('n2', 'fail', new Uint8Array()), { code: 'REMOTE_ERROR', message: /boom/ })
})

t.test('a bare raft snapshot message (no transfer behind it) is refused and does not stop the node', async (t) => {
  const cluster = await createTestCluster(['n1', 'n2', 'n3'], { tickMs: 20 })
  t.teardown(() => cluster.close())
  const leader = await cluster.waitForLeader()
  await leader.put('k', 1)
  const [victim, gone] = [...cluster.nodes.values()].filter((n) => n !== leader)
  const term = leader.status().term
  // A member's id, taken over after that member crashed: the sender is authentic, the message is not.
  await cluster.crash(gone!.id)
  const impostor = cluster.network.createTransport(gone!.id)
  const bare = encodeRaftMessage({ type: 'snapshot', from: gone!.id, to: victim!.id, term: term + 1, snapshot: { index: 10_000, term: term + 1, membership: { voters: ['n1', 'n2', 'n3'], learners: [] } } })
  t.ok(impostor.send(victim!.id, encodeEnvelopeRaw('raft', bare)))
  await until(() => victim!.malformedMessages === 1, 5000, 'refused')
  await impostor.close()
  await victim!.settled()
  t.ok(victim!.status().term <= term + 1, 'the message was not stepped into the core')
  t.ok(victim!.status().appliedIndex < 10_000)
  await leader.put('k', 2)
  await until(() => victim!.getLocal('k')?.value === 2, 5000, 'the victim keeps applying')
  t.equal(victim!.getLocal('k')?.value, 2, 'and is still running')
})
