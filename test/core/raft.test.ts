import t from 'tap'
import { RaftCore, bootstrapLog } from '../../src/core/raft.js'
import { applyChange, decodeMembership, encodeMembership } from '../../src/core/membership.js'
import { committedIndex, voteOutcome } from '../../src/core/quorum.js'
import type { Message } from '../../src/core/types.js'
import { isHoldfastError } from '../../src/errors.js'
import { MemoryStorage } from '../../src/storage/memory.js'
import { Harness, lcg } from './harness.js'

const ET = 10

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isHoldfastError(err) ? err.code : `non-holdfast: ${String(err)}`
  }
  return undefined
}

t.test('quorum math', async (t) => {
  const match: Record<string, number> = { a: 5, b: 3, c: 9, d: 1, e: 7 }
  t.equal(committedIndex(['a', 'b', 'c'], (id) => match[id]!), 5)
  t.equal(committedIndex(['a', 'b', 'c', 'd'], (id) => match[id]!), 3, 'even size needs 3 of 4')
  t.equal(committedIndex(['a', 'b', 'c', 'd', 'e'], (id) => match[id]!), 5)
  t.equal(committedIndex(['a'], (id) => match[id]!), 5)
  t.equal(committedIndex([], () => 9), 0, 'no voters commit nothing')
  t.equal(voteOutcome(['a', 'b', 'c'], new Map([['a', true], ['b', true]])), 'won')
  t.equal(voteOutcome(['a', 'b', 'c'], new Map([['a', true], ['b', false]])), 'pending')
  t.equal(voteOutcome(['a', 'b', 'c'], new Map([['a', true], ['b', false], ['c', false]])), 'lost')
  t.equal(voteOutcome(['a', 'b', 'c', 'd'], new Map([['a', true], ['b', true]])), 'pending', '2 of 4 is not a majority')
  t.equal(voteOutcome(['a', 'b'], new Map([['x', true], ['y', true]])), 'pending', 'votes from non-voters do not count')
})

t.test('membership changes are validated and round-trip', async (t) => {
  const m = { voters: ['a', 'b'], learners: ['c'] }
  t.same(applyChange(m, { type: 'promote', node: 'c' }), { voters: ['a', 'b', 'c'], learners: [] })
  t.same(applyChange(m, { type: 'demote', node: 'a' }), { voters: ['b'], learners: ['a', 'c'] })
  t.same(applyChange(m, { type: 'remove', node: 'c' }), { voters: ['a', 'b'], learners: [] })
  t.same(applyChange(m, { type: 'addLearner', node: 'd' }), { voters: ['a', 'b'], learners: ['c', 'd'] })
  for (const bad of [
    { type: 'promote', node: 'a' },
    { type: 'demote', node: 'c' },
    { type: 'addVoter', node: 'b' },
    { type: 'remove', node: 'zz' },
    { type: 'addLearner', node: '' },
    { type: 'bogus', node: 'q' },
  ] as const) {
    t.equal(codeOf(() => applyChange(m, bad as never)), 'INVALID_MEMBERSHIP_CHANGE', `${bad.type} ${bad.node} refused`)
  }
  t.equal(codeOf(() => applyChange({ voters: ['a'], learners: [] }, { type: 'remove', node: 'a' })), 'INVALID_MEMBERSHIP_CHANGE', 'the last voter stays')
  t.same(decodeMembership(encodeMembership(m)), m)
  t.equal(decodeMembership(new TextEncoder().encode('{"voters":[1]}')), undefined)
  t.equal(decodeMembership(new Uint8Array([0xff, 0x00])), undefined)
})

t.test('a single node elects itself and commits', async (t) => {
  const h = new Harness(['solo'])
  h.bootstrapLeader('solo')
  t.equal(h.core('solo').role, 'leader')
  h.propose('solo', 'v1')
  h.flush()
  t.same(h.appliedTexts('solo'), ['v1'])
  h.core('solo').readIndex('r')
  h.flush()
  t.same(h.node('solo').readStates, [{ index: h.core('solo').commitIndex, requestId: 'r' }], 'a single voter answers reads at once')
  t.ok(h.core('solo').hasLease())
})

t.test('followers refuse proposals with NOT_LEADER and a leader hint', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  let caught: unknown
  try {
    h.propose('b', 'x')
  } catch (err) {
    caught = err
  }
  t.ok(isHoldfastError(caught, 'NOT_LEADER'))
  t.equal((caught as { leaderHint?: string }).leaderHint, 'a')
  t.equal(codeOf(() => h.core('b').readIndex('r')), 'NOT_LEADER')
})

t.test('proposals made together go out as one append per follower', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.tick(undefined, 2)
  for (let i = 0; i < 50; i++) h.propose('a', `w${i}`)
  const rd = h.core('a').ready()
  const appends = rd.earlyMessages.filter((m) => m.type === 'append')
  t.equal(rd.messages.filter((m) => m.type === 'append').length, 0, 'a settled leader sends its appends early')
  t.equal(appends.length, 2, 'one append to each follower')
  for (const m of appends) t.equal(m.entries?.length, 50, `${m.to} gets all 50 entries in one message`)
  t.equal(rd.entries.length, 50, 'one durable write for the batch')
  h.node('a').storage.apply({ entries: rd.entries, hardState: rd.hardState })
  h.queue.push(...rd.earlyMessages, ...rd.messages)
  h.core('a').advance()
  h.deliverAll()
  t.equal(h.appliedTexts('b').length, 50)
})

t.test('in-flight appends per follower are bounded', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { maxInflightMsgs: 3, maxMsgBytes: 1 })
  h.bootstrapLeader('a')
  h.tick(undefined, 2)
  h.filters.push((m) => !(m.from === 'b' && m.to === 'a')) // b's acks are lost
  let appendsToB = 0
  h.filters.push((m) => {
    if (m.type === 'append' && m.to === 'b' && (m.entries?.length ?? 0) > 0) appendsToB++
    return true
  })
  for (let i = 0; i < 20; i++) {
    h.propose('a', `w${i}`)
    h.deliverAll()
  }
  t.equal(appendsToB, 3, 'no more than maxInflightMsgs appends carry entries to an unresponsive follower')
  t.equal(h.appliedTexts('c').length, 20, 'the responsive follower got everything')
})

t.test('fast backtracking repairs a long divergent log in a few round trips', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  // a, cut off, appends 100 entries nobody else gets.
  h.partition(['a'], ['b', 'c'])
  for (let i = 0; i < 100; i++) h.propose('a', `lost${i}`)
  h.flush()
  h.heal()
  h.crash('a')
  h.isolateAndTick(['b', 'c'], ET + 1)
  h.campaign('b')
  t.equal(h.leader(), 'b')
  for (let i = 0; i < 5; i++) h.propose('b', `kept${i}`)
  h.deliverAll()
  h.restart('a')
  let rejects = 0
  h.filters.push((m) => {
    if (m.type === 'appendResp' && m.reject && m.from === 'a') rejects++
    return true
  })
  h.tick(undefined, 3)
  t.ok(rejects <= 2, `conflict resolved with ${rejects} rejection(s), not one per entry`)
  t.same(h.appliedTexts('a'), ['kept0', 'kept1', 'kept2', 'kept3', 'kept4'])
  t.equal(h.core('a').lastIndex, h.core('b').lastIndex)
})

t.test('learners receive the log but never vote, campaign or count toward commit', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { learners: ['l'] })
  h.bootstrapLeader('a')
  h.propose('a', 'x')
  h.tick(undefined, 2)
  t.same(h.appliedTexts('l'), ['x'], 'the learner applied the entry')
  // With b and c gone, a and the learner cannot commit.
  h.partition(['a', 'l'], ['b', 'c'])
  const before = h.core('a').commitIndex
  h.propose('a', 'y')
  h.deliverAll()
  t.equal(h.core('a').commitIndex, before, 'the learner does not count toward a majority')
  // An isolated learner never campaigns.
  h.heal()
  h.isolateAndTick(['l'], 50 * ET)
  t.equal(h.core('l').role, 'follower')
  t.equal(h.core('l').stats.preVotesStarted + h.core('l').stats.electionsStarted, 0)
  t.notOk(h.core('l').status().membership.voters.includes('l'))
})

t.test('leadership transfer: the target catches up, then leads; proposals are refused meanwhile', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  // c falls behind.
  h.partition(['c'], ['a', 'b'])
  for (let i = 0; i < 10; i++) h.propose('a', `w${i}`)
  h.deliverAll()
  h.heal()
  const term = h.core('a').term
  h.core('a').transferLeadership('c')
  t.equal(codeOf(() => h.propose('a', 'during')), 'TRANSFER_IN_PROGRESS')
  t.notOk(h.core('a').hasLease(), 'no lease once a transfer is attempted')
  h.deliverAll()
  t.equal(h.leader(), 'c', 'c leads')
  t.equal(h.core('c').term, term + 1)
  t.equal(h.core('a').role, 'follower')
  h.propose('c', 'after')
  h.tick(undefined, 2)
  t.same(h.appliedTexts('b').slice(-1), ['after'])
  t.equal(h.appliedTexts('c').length, 11, 'the target had every entry before it campaigned')
})

t.test('a transfer to an unreachable target times out and proposals resume', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.partition(['c'], ['a', 'b'])
  h.core('a').transferLeadership('c')
  h.tick(['a', 'b'], ET + 1)
  t.equal(h.leader(), 'a')
  t.equal(codeOf(() => h.propose('a', 'x')), undefined, 'proposals are accepted again')
  t.equal(codeOf(() => h.core('a').transferLeadership('zz')), 'INVALID_ARGUMENT')
})

t.test('removing the current leader: it commits the change, hands over and stops campaigning', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.tick(undefined, 2)
  h.core('a').changeMembership({ type: 'remove', node: 'a' })
  h.deliverAll()
  h.tick(['b', 'c'], 2)
  const leader = h.leader()
  t.ok(leader === 'b' || leader === 'c', `a new leader from the remaining voters (${leader})`)
  t.same(h.core(leader!).membership().voters, ['b', 'c'])
  h.propose(leader!, 'after')
  h.tick(['b', 'c'], 2)
  t.same(h.appliedTexts('b'), ['after'])
  h.tick(['a'], 50 * ET)
  t.equal(h.core('a').role, 'follower', 'the removed node never campaigns')
})

t.test('adding a node: learner first, then promotion; one change at a time', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.addEmpty('d')
  h.bootstrapLeader('a')
  h.tick(undefined, 2)
  for (let i = 0; i < 5; i++) h.propose('a', `w${i}`)
  h.core('a').changeMembership({ type: 'addLearner', node: 'd' })
  t.equal(codeOf(() => h.core('a').changeMembership({ type: 'promote', node: 'd' })), 'MEMBERSHIP_CHANGE_PENDING')
  h.deliverAll()
  h.tick(undefined, 3)
  t.same(h.appliedTexts('d'), ['w0', 'w1', 'w2', 'w3', 'w4'], 'the new learner caught up from an empty log')
  h.core('a').changeMembership({ type: 'promote', node: 'd' })
  h.tick(undefined, 3)
  t.same(h.core('d').membership(), { voters: ['a', 'b', 'c', 'd'], learners: [] })
  // Now a majority is 3 of 4: with b and c gone, a and d cannot commit.
  h.partition(['a', 'd'], ['b', 'c'])
  const before = h.core('a').commitIndex
  h.propose('a', 'needs3')
  h.deliverAll()
  t.equal(h.core('a').commitIndex, before)
})

t.test('compaction and snapshots: a follower behind the compaction point catches up by snapshot', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { logTail: 4 })
  h.bootstrapLeader('a')
  h.crash('c')
  for (let i = 0; i < 40; i++) {
    h.propose('a', `w${i}`)
    h.tick(['a', 'b'])
    for (const id of ['a', 'b']) h.core(id).setSnapshotPoint(h.core(id).appliedIndex)
  }
  h.tick(['a', 'b'], 2)
  t.ok(h.core('a').status().firstIndex > 10, `a compacted its log (first index ${h.core('a').status().firstIndex})`)
  let snapshots = 0
  h.filters.push((m) => {
    if (m.type === 'snapshot') snapshots++
    return true
  })
  h.restart('c')
  for (let i = 0; i < 10; i++) {
    h.tick()
    if (h.core('c').appliedIndex === h.core('a').appliedIndex) break
  }
  // Report the snapshot transfer done, as the driver would after streaming it.
  t.ok(snapshots >= 1, 'the leader sent a snapshot')
  t.equal(h.core('c').appliedIndex >= h.core('c').status().firstIndex - 1, true)
  h.core('a').reportSnapshot('c', true)
  h.propose('a', 'last')
  h.tick(undefined, 3)
  t.same(h.appliedTexts('c').slice(-1), ['last'], 'c follows the log again after the snapshot')
  t.same(h.appliedTexts('c'), h.appliedTexts('a'), 'c has exactly the leader state')
})

t.test('check-quorum: an isolated leader steps down within two election timeouts', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.partition(['a'], ['b', 'c'])
  h.tick(['a'], 2 * ET)
  t.equal(h.core('a').role, 'follower')
})

t.test('restart keeps term, vote, log and membership; the core replays unapplied entries', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.propose('a', 'x')
  h.tick(undefined, 2)
  const s = h.node('b').storage
  const core = new RaftCore({ id: 'b', storage: s, rand: lcg(3), applied: 1 })
  t.equal(core.term, h.core('b').term)
  t.same(core.membership(), { voters: ['a', 'b', 'c'], learners: [] })
  const rd = core.ready()
  t.same(
    rd.committedEntries.filter((e) => e.data.length > 0).map((e) => new TextDecoder().decode(e.data)),
    ['x'],
    'entries after the applied index are handed out again',
  )
  t.equal(codeOf(() => new RaftCore({ id: 'b', storage: s, rand: lcg(1), applied: 999 })), 'CONTRACT_VIOLATION', 'an applied index past the log is refused')
})

t.test('the Ready contract is enforced', async (t) => {
  const s = new MemoryStorage()
  const boot = bootstrapLog({ voters: ['a'], learners: [] })
  s.apply({ entries: boot.entries, hardState: boot.hardState })
  const core = new RaftCore({ id: 'a', storage: s, rand: lcg(1) })
  t.equal(codeOf(() => core.advance()), 'CONTRACT_VIOLATION', 'advance without ready')
  core.ready()
  t.equal(codeOf(() => core.tick()), 'CONTRACT_VIOLATION', 'tick between ready and advance')
  t.equal(codeOf(() => core.step({ type: 'heartbeat', from: 'b', to: 'a', term: 5, commit: 0 })), 'CONTRACT_VIOLATION')
  core.advance()
  t.equal(codeOf(() => new RaftCore({ id: 'a', storage: s, rand: lcg(1), heartbeatTicks: 10, electionTicks: 10 })), 'INVALID_ARGUMENT')
  t.equal(codeOf(() => bootstrapLog({ voters: [], learners: [] })), 'INVALID_ARGUMENT')
})

t.test('malformed and impossible messages are dropped and counted, never thrown', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.propose('a', 'x')
  h.tick(undefined, 2)
  const rand = lcg(12345)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const weird = [undefined, null, -1, 0, 1, 2, 7, 1e9, 2 ** 60, NaN, Infinity, 1.5, 'x', {}, [], true]
  const types = ['preVote', 'preVoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat', 'heartbeatResp', 'snapshot', 'timeoutNow', 'bogus', 7]
  const applied = h.appliedTexts('a')
  let thrown = 0
  for (let i = 0; i < 5000; i++) {
    const to = pick(['a', 'b', 'c'])
    const m = {
      type: pick(types),
      from: pick(['a', 'b', 'c', 'zz', '', 5]),
      to: rand() < 0.9 ? to : pick(['a', 'nobody']),
      term: pick(weird),
      index: pick(weird),
      logTerm: pick(weird),
      commit: pick(weird),
      reject: pick([true, false, undefined]),
      rejectHint: pick(weird),
      readSeq: pick(weird),
      entries: pick([undefined, [], [{ index: pick(weird), term: pick(weird), type: pick(['normal', 'membership', 'x']), data: pick([new Uint8Array(1), 'str', null]) }]]),
      snapshot: pick([undefined, null, { index: pick(weird), term: pick(weird), membership: pick([null, { voters: [], learners: [] }]) }]),
    } as unknown as Message
    try {
      h.core(to).step(m)
      h.flush()
      h.queue = []
    } catch {
      thrown++
    }
  }
  t.equal(thrown, 0, 'step() never threw')
  const dropped = ['a', 'b', 'c'].reduce((n, id) => n + Object.values(h.core(id).stats.dropped).reduce((x, y) => x + y, 0), 0)
  t.ok(dropped > 4000, `garbage was dropped and counted (${dropped})`)
  t.same(h.appliedTexts('a'), applied, 'nothing was applied from garbage')
  // Well-formed messages with a higher term may legitimately depose the leader; the cluster must recover.
  h.heal()
  h.tick(undefined, 3 * ET)
  const leader = h.electLeader()
  h.propose(leader, 'y')
  h.tick(undefined, 3)
  for (const id of ['a', 'b', 'c']) t.same(h.appliedTexts(id).slice(-1), ['y'], `${id} still replicates`)
})

t.test('a leader that cannot reach an entry-carrying quorum steps down and a proposal on it fails fast later', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  const ticket = h.propose('a', 'orphan')
  h.flush()
  h.queue = []
  h.partition(['a'], ['b', 'c'])
  h.tick(undefined, 4 * ET)
  const other = h.leader()
  t.ok(other === 'b' || other === 'c')
  h.propose(other!, 'winner')
  h.heal()
  h.tick(undefined, 3)
  t.not(h.core('a').termAt(ticket.index), ticket.term, "the orphan's slot now holds another term: the driver can fail its caller")
  t.notOk(h.appliedTexts('a').includes('orphan'))
})

t.test('regression (sim finding 1): a follower whose whole in-flight window was lost is resynchronised', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { maxInflightMsgs: 1, seed: 1 })
  const l = h.electLeader()
  const f = ['a', 'b', 'c'].find((x) => x !== l)!
  h.tick(undefined, 3)
  h.filters.push((m) => !(m.type === 'append' && m.from === l && m.to === f))
  h.propose(l, 'x=1')
  h.deliverAll()
  h.heal()
  h.propose(l, 'x=2')
  h.deliverAll()
  h.tick(undefined, 10)
  t.same(h.appliedTexts(f), ['x=1', 'x=2'], 'the follower caught up after its lost appends')
})

for (const change of ['remove', 'demote'] as const) {
  t.test(`regression (sim finding 2): a leader that ${change}s itself and loses leadership before commit does not deadlock`, async (t) => {
    const h = new Harness(['a', 'b'], { seed: 3 })
    const l = h.electLeader()
    const f = l === 'a' ? 'b' : 'a'
    h.tick(undefined, 3)
    h.partition([l], [f])
    h.core(l).changeMembership({ type: change, node: l })
    h.deliverAll()
    h.tick(undefined, 30)
    t.not(h.core(l).role, 'leader', 'the old leader stepped down by check-quorum')
    h.heal()
    h.tick(undefined, 200)
    const leader = h.leader()
    t.equal(leader, f, 'the remaining voter leads')
    t.same(h.core(f).membership().voters, [f], 'the change was committed')
    h.propose(f, 'after')
    h.tick(undefined, 3)
    t.same(h.appliedTexts(f), ['after'])
  })
}

t.test('regression (sim finding 3): a lease query counts the ticks a driver owes while a Ready is in flight', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { seed: 1 })
  const l = h.electLeader()
  const others = ['a', 'b', 'c'].filter((x) => x !== l)
  h.tick(undefined, 3)
  t.ok(h.core(l).hasLease())
  const remaining = h.core(l).leaseRemainingTicks()
  h.propose(l, 'x')
  h.core(l).ready() // a slow disk write: the core may not be ticked until advance()
  h.partition([l], others)
  h.tick(others, 40)
  t.ok(h.leader() !== l && h.core(h.leader()!).term > h.core(l).term, 'another node leads a later term')
  t.notOk(h.core(l).hasLease(40), 'with the 40 owed ticks counted, the old leader has no lease')
  t.equal(h.core(l).leaseRemainingTicks(remaining - 1), 1, 'owed ticks shorten the lease tick for tick')
})

t.test('regression (sim finding 4): reordered appends do not make the leader resend its window per arrival', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { seed: 2, maxMsgBytes: 1 }) // one entry per append
  const l = h.electLeader()
  const f = ['a', 'b', 'c'].find((x) => x !== l)!
  h.tick(undefined, 3)
  h.partition([l], [f])
  for (let i = 0; i < 100; i++) (h.propose(l, `x${i}`), h.deliverAll())
  h.heal()
  const rand = lcg(7)
  let appends = 0
  let rounds = 0
  while (h.core(f).lastIndex < h.core(l).lastIndex && rounds < 40) {
    rounds++
    h.core(l).tick()
    h.flush()
    const batch = h.queue
    h.queue = []
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[batch[i], batch[j]] = [batch[j]!, batch[i]!]
    }
    for (const m of batch) {
      if (m.type === 'append' && m.to === f) appends++
      h.deliver(m)
    }
  }
  t.equal(h.core(f).lastIndex, h.core(l).lastIndex, `caught up in ${rounds} rounds`)
  t.ok(appends < 300, `with ${appends} appends for a gap of about 100 entries, every round shuffled`)
  t.ok(h.core(f).stats.bufferedAppends > 0, 'early appends were held, not rejected')
})

t.test('regression (daemon finding): promoting a learner does not cost the leader its lease', async (t) => {
  // A lone voter leads with a learner that acknowledges every heartbeat round. The learner's
  // answer to the latest round is still in flight when the leader promotes it: the new majority
  // (both) has acknowledged only the previous round, whose send time the leader must still know,
  // or its lease (and so its acting instance, and the VIP) drops until the next round returns.
  // With three voters, b's answer is held back too: a and c acknowledged the latest round, which
  // was a majority of three but is not one of four.
  for (const [voters, learner, slow] of [[['a'], 'z', []], [['a', 'b', 'c'], 'z', ['b']]] as const) {
    const h = new Harness([...voters], { learners: [learner] })
    h.bootstrapLeader('a')
    h.tick(undefined, 5)
    t.ok(h.core('a').hasLease(), `${voters.length} voter(s): the leader holds a lease`)
    let held = 0
    const late: readonly string[] = [learner, ...slow]
    const hold = (m: { type: string; from: string }): boolean => !(m.type === 'heartbeatResp' && late.includes(m.from) && held++ >= 0)
    h.filters.push(hold)
    h.tick(['a'], 1) // a new round goes out; the learner's answer is held back
    h.core('a').changeMembership({ type: 'promote', node: learner })
    t.ok(h.core('a').membership().voters.includes(learner), 'the promotion is in the log')
    t.ok(held > 0, 'the learner answered the new round, and the answer is held back')
    t.ok(h.core('a').hasLease(), `${voters.length} voter(s): the lease survives the promotion`)
    h.filters = h.filters.filter((f) => f !== hold)
    h.tick(undefined, 3)
    t.ok(h.core('a').hasLease(), 'and once the answers arrive')
  }
})

t.test('the only voter campaigns on its first tick; with others it waits out an election timeout', async (t) => {
  const solo = new Harness(['solo'])
  solo.tick(['solo'], 1)
  t.equal(solo.core('solo').role, 'leader', 'a lone voter leads after one tick')
  const withLearner = new Harness(['a'], { learners: ['l'] })
  withLearner.tick(undefined, 1)
  t.equal(withLearner.core('a').role, 'leader', 'learners do not count: still the only voter')
  t.equal(withLearner.core('l').role, 'follower')
  const pair = new Harness(['a', 'b'])
  pair.tick(undefined, 5)
  t.notOk(pair.leader(), 'two voters: nobody campaigns before the election timeout (10 ticks)')
})

t.test('the leader keeps the entries after a snapshot it is sending (within a bound), so the follower needs only one', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { logTail: 4 })
  h.bootstrapLeader('a')
  h.crash('c')
  const compactAll = (): void => {
    for (const id of ['a', 'b']) h.core(id).setSnapshotPoint(h.core(id).appliedIndex)
  }
  for (let i = 0; i < 40; i++) {
    h.propose('a', `w${i}`)
    h.tick(['a', 'b'])
    compactAll()
  }
  let snapshots = 0
  let inFlight: Parameters<typeof h.deliver>[0] | undefined
  // The driver streams a snapshot, which takes a while: hold the message back meanwhile.
  const streaming = (m: Parameters<typeof h.deliver>[0]): boolean => {
    if (m.type !== 'snapshot') return true
    snapshots++
    inFlight = m
    return false
  }
  h.filters.push(streaming)
  h.restart('c')
  for (let i = 0; i < 10 && snapshots === 0; i++) h.tick()
  t.equal(snapshots, 1, 'the leader sends a snapshot')
  const sentAt = inFlight!.snapshot!.index
  // Meanwhile the cluster keeps committing and compacting.
  for (let i = 0; i < 12; i++) {
    h.propose('a', `during${i}`)
    h.tick(['a', 'b'])
    compactAll()
  }
  t.ok(h.core('a').status().firstIndex <= sentAt + 1, `the leader kept the log after the snapshot's index ${sentAt} (first index ${h.core('a').status().firstIndex})`)
  h.filters = h.filters.filter((f) => f !== streaming)
  h.deliver(inFlight!)
  h.core('a').reportSnapshot('c', true)
  h.filters.push((m) => {
    if (m.type === 'snapshot') snapshots++
    return true
  })
  h.tick(undefined, 5)
  t.equal(snapshots, 1, 'no second snapshot: c continues from the log')
  t.same(h.appliedTexts('c'), h.appliedTexts('a'), 'c has exactly the leader state')
  // The hold is bounded: with the follower stuck in a transfer, the log is compacted again past 4 tails.
  h.crash('c')
  h.restart('c')
  h.filters.push((m) => !(m.to === 'c' || m.from === 'c'))
  for (let i = 0; i < 100; i++) {
    h.propose('a', `more${i}`)
    h.tick(['a', 'b'])
    compactAll()
  }
  const st = h.core('a').status()
  t.ok(st.lastIndex - st.firstIndex <= 4 * 5 + 4, `the log stays bounded (${st.firstIndex}..${st.lastIndex})`)
})
