/**
 * The acting instance, on real processes: the acting leader is paused with SIGSTOP until another
 * node acts, then resumed with SIGCONT. Its first operations after waking — queued while it was
 * stopped, so they run before it hears from anyone — are a leaderCheck() and a write fenced with
 * its old token. leaderCheck() fails at once, the write does not take effect, and at every sample
 * at most one process passes leaderCheck().
 */
import t from 'tap'
import { SwarmCluster, waitUntil, type ChildNode } from './harness.js'

t.test('a leader paused by SIGSTOP cannot act or write with its old token after SIGCONT', async (t) => {
  const cluster = await SwarmCluster.create(t, { cluster: 'pause' })
  await cluster.startVoters(['a', 'b', 'c'])
  await cluster.mesh()
  const old: ChildNode = await cluster.leader()
  await waitUntil(async () => (await old.call('acting', {})).leaderCheck, 'the leader to act')
  const before = await old.call('acting', {})
  await old.put('owner', old.name, undefined)
  await old.call('put', { key: 'owner', value: `${old.name}-fenced`, fence: before.fence })
  const others = cluster.running().filter((n) => n !== old)

  old.signal('SIGSTOP')
  let samples = 0
  let next: ChildNode | undefined
  await waitUntil(async () => {
    const states = await Promise.all(others.map((n) => n.call('acting', {})))
    samples++
    if (states.filter((s) => s.leaderCheck).length > 1) throw new Error('two processes passed leaderCheck() at once')
    const i = states.findIndex((s) => s.leaderCheck)
    if (i >= 0) next = others[i]
    return next !== undefined
  }, 'another node to act while the leader is stopped')
  const nextToken = (await next!.call('acting', {})).fence
  t.ok(nextToken > before.fence, `the new acting node's token ${nextToken} is greater than the paused one's ${before.fence}`)

  // Queued while stopped: they run first thing after SIGCONT, before the node hears from its peers.
  const check = old.call('acting', {})
  const write = old.call('put', { key: 'owner', value: 'written-after-pause', fence: before.fence, timeoutMs: 5000 }).then(
    () => 'acknowledged',
    (err: Error & { code?: string }) => err.code ?? err.message,
  )
  old.signal('SIGCONT')
  const woke = await check
  t.notOk(woke.leaderCheck, 'leaderCheck() fails the moment the paused leader resumes')
  const outcome = await write
  t.not(outcome, 'acknowledged', `the write with the old token failed (${outcome})`)
  t.ok(['STALE_FENCE', 'LEADERSHIP_LOST', 'NOT_LEADER', 'TIMEOUT'].includes(outcome), `a typed error: ${outcome}`)
  const stored = await next!.get('owner', 'linearizable')
  t.equal(stored?.value, `${old.name}-fenced`, 'the stored value is the last write made while it was acting')

  // A write with the current token through the resumed node (forwarded) works; with the old one it never does.
  await waitUntil(async () => (await old.status()).leaderId === next!.id, 'the resumed node to follow the new leader')
  await t.rejects(old.call('put', { key: 'owner', value: 'stale-again', fence: before.fence }), { code: 'STALE_FENCE' }, 'forwarded, the old token is refused by the state machine')
  await old.call('put', { key: 'owner', value: 'fresh', fence: nextToken })
  t.equal((await next!.get('owner', 'linearizable'))?.value, 'fresh')
  t.ok(samples > 3, `sampled leaderCheck() on the live processes ${samples} times`)
})
