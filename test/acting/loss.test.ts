/**
 * Losing the acting role: the abort comes before any other node can lead, at most one node passes
 * leaderCheck() at any sampled moment, and a deposed leader cannot write with its old token.
 */
import t from 'tap'
import type { HoldfastNode } from '../../src/node.js'
import { EventLog, TICK, actingNode, clock, cluster, codeOf, sampleLeaderChecks, until } from './helpers.js'

t.test('an isolated acting leader is aborted before any other node becomes leader; never two pass leaderCheck()', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'])
  const events = new EventLog()
  const aborts = new Map<string, { at: number; token: number }>()
  const stops = new Map<string, number>()
  const leaderAt = new Map<string, number[]>()
  for (const n of c.nodes.values()) {
    events.watch(n)
    n.on('role', (role: string) => {
      if (role === 'leader') leaderAt.set(n.id, [...(leaderAt.get(n.id) ?? []), clock()])
    })
    n.onActing(({ token, signal }) => {
      signal.addEventListener('abort', () => aborts.set(n.id, { at: clock(), token }))
      return () => void stops.set(n.id, clock())
    })
  }
  const sampler = sampleLeaderChecks(() => c.nodes.values())
  t.teardown(() => sampler.stop())
  const old = await actingNode(c)
  const isolatedAt = clock()
  c.network.isolate(old.id)
  const next = await actingNode(c, 10_000, old.id)
  sampler.stop()

  const abort = aborts.get(old.id)
  t.ok(abort !== undefined, 'the isolated leader was aborted')
  const firstNewLeader = Math.min(...[...leaderAt].filter(([id]) => id !== old.id).flatMap(([, at]) => at.filter((x) => x > isolatedAt)))
  t.ok(abort!.at < firstNewLeader, `the abort (${(abort!.at - isolatedAt).toFixed(0)} ms after isolation) came before another node led (${(firstNewLeader - isolatedAt).toFixed(0)} ms)`)
  t.ok(stops.get(old.id)! >= abort!.at, 'its stop function ran after the abort')
  const stopEvents = events.of(old.id, 'actingStop').filter((e) => e.at >= isolatedAt)
  t.match(stopEvents, [{ reason: 'leaseExpired', wasActing: true, token: abort!.token }], 'actingStop: the lease expired')
  await until(() => old.status().role !== 'leader', 5000, 'the isolated leader to step down (check-quorum)')
  t.match(events.of(old.id, 'quorumLost').filter((e) => e.at >= isolatedAt).map((e) => (e as { reason: string }).reason), ['leaseExpired', 'checkQuorum'], 'quorumLost for the lease, then for the check-quorum step-down')
  t.notOk(old.leaderCheck(), 'the old leader fails leaderCheck()')
  t.ok(next.fence() > abort!.token, 'the new acting node has a greater token')
  t.equal(sampler.maxTrue, 1, `at most one node passed leaderCheck() in each of ${sampler.samples} samples`)
  t.same(sampler.overlaps, [])
  t.ok(sampler.samples > 100, 'sampled often')
})

t.test('a paused acting leader fails leaderCheck() the moment it resumes, before its driver runs', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'])
  const acting = await actingNode(c)
  t.ok(acting.leaderCheck(), 'acting, with a valid lease')
  // Freeze the whole process (as SIGSTOP or a long GC pause would) for longer than the lease.
  const resumeAt = performance.now() + 12 * TICK
  while (performance.now() < resumeAt) {
    /* no timer, no message, no tick runs meanwhile */
  }
  t.ok(acting.isActing(), 'nothing has told the node yet')
  t.notOk(acting.leaderCheck(), 'but leaderCheck() counts the time that passed, so it fails at once')
  t.notOk(acting.hasLease(), 'the lease is gone')
})

t.test('a deposed leader cannot write with its old token, locally or through forwarding', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'], { operationTimeoutMs: 5000 })
  const events = new EventLog()
  for (const n of c.nodes.values()) events.watch(n)
  const old = await actingNode(c)
  const oldToken = old.fence()
  await old.put('owner', old.id, { fence: oldToken })
  t.equal((await old.get('owner'))?.value, old.id, 'with its own token, the acting node writes')

  // Cut the leader off: the others elect a new one, which acts (and fences) under a greater token.
  c.network.isolate(old.id)
  // While still believing it leads, the old leader proposes with its token; it cannot commit now.
  const stuck = old.put('owner', `${old.id}-late`, { fence: oldToken })
  const next = await actingNode(c, 10_000, old.id)
  const newToken = next.fence()
  t.ok(newToken > oldToken, `the new token ${newToken} is greater than the old ${oldToken}`)
  t.equal(await codeOf(next.put('owner', 'stale', { fence: oldToken })), 'STALE_FENCE', 'the old token is refused on the new leader')

  // Heal: the old leader's uncommitted proposal is replaced, retried through forwarding, and refused.
  c.network.heal()
  t.equal(await codeOf(stuck), 'STALE_FENCE', 'its write from before the heal fails with STALE_FENCE')
  await until(() => old.status().leaderId === next.id, 5000, 'the old leader to follow the new one')
  t.equal(await codeOf(old.put('owner', 'again', { fence: oldToken })), 'STALE_FENCE', 'a forwarded put with the old token fails')
  t.equal(await codeOf(old.delete('owner', { fence: oldToken })), 'STALE_FENCE', 'a forwarded delete too')
  t.equal(await codeOf(old.transaction([{ type: 'put', key: 'x', value: 1 }], { fence: oldToken })), 'STALE_FENCE', 'a forwarded transaction too')
  for (const n of c.nodes.values()) n.command('touch', (tx) => void tx.put('touched', true))
  t.equal(await codeOf(old.call('touch', undefined, { fence: oldToken })), 'STALE_FENCE', 'a forwarded command too')
  t.equal((await old.get('owner'))?.value, old.id, 'nothing the old token carried changed the state')
  t.equal(old.getLocal('touched'), undefined)
  await old.put('owner', next.id, { fence: newToken })
  t.equal((await old.get('owner'))?.value, next.id, 'the current token writes, from any node')

  await until(() => events.ofType('staleFence').filter((e) => e.node === next.id).length >= 6, 2000, 'staleFence events')
  const rejections = events.ofType('staleFence').filter((e) => e.node === next.id)
  t.ok(rejections.every((e) => e.token === oldToken && e.fence === newToken), 'each rejection is an event with the tokens')
  t.same([...new Set(rejections.map((e) => e.operation))].sort(), ['call', 'delete', 'put', 'txn'], 'one per kind of operation')
  t.match(rejections.find((e) => e.operation === 'call'), { command: 'touch' })
})

t.test('an acting leader that hands over stops acting first; close() stops acting', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'])
  const events = new EventLog()
  const stopped: { id: string; at: number }[] = []
  for (const n of c.nodes.values()) {
    events.watch(n)
    n.onActing(() => () => void stopped.push({ id: n.id, at: clock() }))
  }
  const first = await actingNode(c)
  const to = [...c.nodes.values()].find((n) => n !== first)!
  await first.transferLeadership(to.id)
  const second = await actingNode(c)
  t.equal(second.id, to.id, 'the target acts')
  const stop = stopped.find((s) => s.id === first.id)!
  const leading = events.of(to.id, 'role').find((e) => (e as { role: string }).role === 'leader')!
  t.ok(stop.at <= leading.at, 'the old leader stopped acting before the target led')
  t.match(events.of(first.id, 'actingStop'), [{ reason: 'transfer' }])

  const secondToken = second.fence()
  await second.close()
  c.nodes.delete(second.id)
  t.match(events.of(second.id, 'actingStop'), [{ reason: 'close', wasActing: true }], 'close() stops acting')
  t.ok(stopped.some((s) => s.id === second.id), 'its handler was stopped')
  const third: HoldfastNode = await actingNode(c)
  t.ok(third.fence() > secondToken, 'the next node acts with a greater token')
})
