/**
 * The core's small additions for the acting instance (src/acting/): the leader's commit index as
 * last heard (what HoldfastNode.ready() compares against), stepDown() (what a node that could not
 * start acting uses when no transfer is possible), and the check-quorum step-down counter (the
 * 'quorumLost' event).
 */
import t from 'tap'
import { Harness } from './harness.js'

const ET = 10

t.test('leaderCommit: a follower knows the leader commit index, even when its own log is behind', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.propose('a', 'x')
  h.tick(undefined, 2)
  const a = h.core('a')
  t.equal(a.leaderCommit, a.commitIndex, 'on the leader it is its own commit index')
  t.equal(h.core('b').leaderCommit, a.commitIndex, 'an up-to-date follower heard it')
  t.equal(h.core('b').status().leaderCommit, a.commitIndex, 'status() carries it')

  // c misses writes: it must learn the leader's commit from the first append that reaches it,
  // before its own log (and so its own commit index) has caught up.
  h.partition(['c'], ['a', 'b'])
  for (let i = 0; i < 5; i++) h.propose('a', `w${i}`)
  h.tick(['a', 'b'], 2)
  const leaderCommit = a.commitIndex
  t.ok(h.core('c').commitIndex < leaderCommit, 'c is behind')
  h.heal()
  // Deliver messages one at a time until c has heard the leader but not yet appended the gap.
  h.core('a').tick()
  h.deliverUntil(() => h.core('c').leaderCommit === leaderCommit)
  t.ok(h.core('c').commitIndex < leaderCommit, `c's own commit index (${h.core('c').commitIndex}) is still behind`)
  t.equal(h.core('c').leaderCommit, leaderCommit, 'but it knows how far the leader has committed')
  h.deliverAll()
  t.equal(h.core('c').commitIndex, leaderCommit, 'c catches up')

  // A follower that loses its leader (pre-vote after the election timeout) knows no leader commit.
  h.partition(['c'], ['a', 'b'])
  h.tick(['c'], 2 * ET + 1)
  t.equal(h.core('c').leaderId, null, 'c knows no leader')
  t.equal(h.core('c').leaderCommit, 0, 'and no leader commit index')
})

t.test('leaderCommit: a heartbeat alone tells a lagging follower the whole commit index, but commits nothing', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.partition(['c'], ['a', 'b'])
  for (let i = 0; i < 5; i++) h.propose('a', `w${i}`)
  h.tick(['a', 'b'], 2)
  const leaderCommit = h.core('a').commitIndex
  const cCommit = h.core('c').commitIndex
  h.heal()
  h.filters.push((m) => m.type === 'heartbeat' || m.to !== 'c') // c hears heartbeats only
  h.tick(['a'], 1)
  t.equal(h.core('c').leaderId, 'a')
  t.equal(h.core('c').leaderCommit, leaderCommit, 'c learned the leader commit index from a heartbeat')
  t.equal(h.core('c').commitIndex, cCommit, 'and committed nothing by it (its log lacks those entries)')
  t.ok(h.core('c').lastIndex < leaderCommit)
})

t.test('leaderCommit is per leader: a new leader starts from what it says', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.tick(undefined, 2)
  h.crash('a')
  h.tick(['b', 'c'], 3 * ET)
  const l = h.leader()!
  t.not(l, 'a')
  const f = l === 'b' ? 'c' : 'b'
  t.equal(h.core(f).leaderId, l)
  t.equal(h.core(f).leaderCommit, h.core(l).commitIndex, 'the follower tracks the new leader')
})

t.test('stepDown: the leader becomes a follower of its term; the cluster elects a leader after the timeout', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  const term = h.core('a').term
  h.core('b').stepDown()
  t.equal(h.core('b').role, 'follower', 'a follower stepping down does nothing')
  h.core('a').stepDown()
  t.equal(h.core('a').role, 'follower', 'the leader stepped down')
  t.equal(h.core('a').term, term, 'in the same term')
  t.equal(h.core('a').leaderId, null, 'knowing no leader')
  t.notOk(h.core('a').hasLease(), 'a follower holds no lease')
  h.deliverAll()
  t.equal(h.leader(), undefined, 'nobody leads at once: the followers still honour the lease')
  h.tick(undefined, 3 * ET)
  const l = h.leader()
  t.ok(l !== undefined, `a new leader is elected (${l})`)
  t.ok(h.core(l!).term > term, 'in a later term')
})

t.test('check-quorum step-downs are counted', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  t.equal(h.core('a').stats.checkQuorumStepDowns, 0)
  h.partition(['a'], ['b', 'c'])
  h.tick(['a'], 2 * ET)
  t.equal(h.core('a').role, 'follower')
  t.equal(h.core('a').stats.checkQuorumStepDowns, 1, 'the step-down is counted')
  h.core('b').stepDown()
  t.equal(h.core('b').stats.checkQuorumStepDowns, 0, 'other step-downs are not')
})
