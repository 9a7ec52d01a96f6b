/**
 * Scripted regressions for the classic Raft bugs. Each scenario drives the cores message by
 * message into the situation where a known-broken implementation loses data or elects two leaders,
 * and asserts that ours does not.
 */
import t, { type Test } from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import type { Message, NodeId } from '../../src/core/types.js'
import { Harness } from './harness.js'

const ET = 10

/** Asserts that `fn` throws a HoldfastError with `code`. */
function throwsCode(t: Test, fn: () => unknown, code: string, message: string): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  t.ok(isHoldfastError(caught) && caught.code === code, `${message} (threw ${isHoldfastError(caught) ? caught.code : String(caught)})`)
}

/** Every pair of nodes agrees on every entry both have committed. */
function assertCommittedPrefixesAgree(t: Test, h: Harness): void {
  const nodes = [...h.nodes.values()]
  for (const a of nodes) {
    for (const b of nodes) {
      if (a.id >= b.id) continue
      const upTo = Math.min(a.core.commitIndex, b.core.commitIndex)
      for (let i = Math.max(a.core.status().firstIndex, b.core.status().firstIndex); i <= upTo; i++) {
        t.equal(a.core.termAt(i), b.core.termAt(i), `${a.id} and ${b.id} agree on committed entry ${i}`)
      }
    }
  }
}

/** Per index, every node that applied it applied the same entry. */
function assertAppliedAgree(t: Test, h: Harness): void {
  const seen = new Map<number, string>()
  let conflicts = 0
  for (const n of h.nodes.values()) {
    for (const e of n.applied) {
      const key = `${e.term}:${new TextDecoder().decode(e.data)}`
      const prev = seen.get(e.index)
      if (prev !== undefined && prev !== key) conflicts++
      seen.set(e.index, key)
    }
  }
  t.equal(conflicts, 0, 'no two nodes applied different entries at the same index')
}

const onlyBetween =
  (group: NodeId[]) =>
  (m: Message): boolean =>
    group.includes(m.from) && group.includes(m.to)

t.test('Figure 8: an entry of a previous term is never committed by counting replicas', async (t) => {
  const h = new Harness(['a', 'b', 'c', 'd', 'e'])
  h.bootstrapLeader('a')
  t.equal(h.leader(), 'a')
  const t2 = h.core('a').term

  // (a) a replicates X (index 3, term t2) to b only.
  h.filters.push(onlyBetween(['a', 'b']))
  const x = h.propose('a', 'X')
  h.deliverAll()
  t.equal(h.core('b').termAt(x.index), t2, 'b holds X')
  t.equal(h.core('a').commitIndex, x.index - 1, 'X is not committed with 2 of 5')
  h.heal()

  // (b) a crashes; e wins with c, d and appends its no-op at index 3 in term t2+1, then crashes at once.
  h.crash('a')
  h.isolateAndTick(['b', 'c', 'd', 'e'], ET + 1)
  h.filters.push(onlyBetween(['c', 'd', 'e']))
  h.node('e').held = true
  h.core('e').campaign()
  h.deliverUntil(() => h.core('e').role === 'leader' || (h.queue.length === 0 && h.core('e').hasReady()))
  while (h.core('e').role !== 'leader') {
    h.processReady('e')
    h.deliverUntil(() => h.core('e').role === 'leader' || h.core('e').hasReady())
  }
  const t3 = h.core('e').term
  h.processReady('e', { send: false }) // e's no-op is durable on e alone
  t.equal(h.core('e').termAt(x.index), t3, 'e holds its own entry at index 3')
  h.crash('e')
  h.node('e').held = false
  h.heal()

  // (c) a restarts and wins term t3+1 with b and c; it replicates X (index 3) to b and c, but its
  // no-op of the new term (index 4) reaches nobody. X now sits on a majority: a buggy leader would commit it.
  h.restart('a')
  h.isolateAndTick(['a', 'b', 'c', 'd'], ET + 1)
  // Appends reach b and c with nothing beyond X, so they acknowledge X but never see index 4.
  h.rewrites.push((m) => (m.type === 'append' ? { ...m, entries: (m.entries ?? []).filter((e) => e.index <= x.index) } : m))
  h.filters.push(onlyBetween(['a', 'b', 'c']))
  // c is in e's term: its first refusal teaches a that term, and a's second campaign succeeds.
  for (let attempt = 0; attempt < 3 && h.leader() !== 'a'; attempt++) {
    h.isolateAndTick(['a', 'b', 'c'], ET + 1)
    h.campaign('a')
  }
  t.equal(h.leader(), 'a', 'a leads again')
  const t4 = h.core('a').term
  t.ok(t4 > t3)
  h.tick(['a', 'b', 'c'], 3)
  for (const id of ['a', 'b', 'c']) t.equal(h.core(id).termAt(x.index), t2, `${id} holds X`)
  t.equal(h.core('a').status().progress.filter((p) => p.match >= x.index).length, 3, 'a knows X is on a majority (a, b, c)')
  t.ok(h.core('a').commitIndex < x.index, 'a does not commit X, an entry of an older term, by counting')

  // (d) a crashes; e restarts and wins with b and d because its last entry (term t3) beats X's term.
  h.crash('a')
  h.heal()
  h.restart('e')
  h.isolateAndTick(['b', 'c', 'd', 'e'], ET + 1)
  h.filters.push((m) => m.from !== 'c' && m.to !== 'c')
  for (let attempt = 0; attempt < 3 && h.leader() !== 'e'; attempt++) {
    h.isolateAndTick(['b', 'd', 'e'], ET + 1)
    h.campaign('e')
  }
  t.equal(h.leader(), 'e', 'e is elected: X was never committed, so this is legal')
  h.heal()
  h.restart('a')
  h.tick(undefined, 5)
  for (const id of ['a', 'b', 'c', 'd', 'e']) {
    t.equal(h.core(id).termAt(x.index), t3, `${id} now holds e's entry at index 3`)
    t.notOk(h.appliedTexts(id).includes('X'), `${id} never applied X`)
  }
  assertCommittedPrefixesAgree(t, h)
  assertAppliedAgree(t, h)
})

t.test('Figure 8, other branch: once the new term commits, X is committed and an outdated node cannot win', async (t) => {
  const h = new Harness(['a', 'b', 'c', 'd', 'e'])
  h.bootstrapLeader('a')
  h.filters.push(onlyBetween(['a', 'b']))
  const x = h.propose('a', 'X')
  h.deliverAll()
  h.heal()
  h.crash('a')
  h.restart('a')
  h.isolateAndTick(['a', 'b', 'c', 'd', 'e'], ET + 1)
  h.filters.push(onlyBetween(['a', 'b', 'c']))
  h.campaign('a')
  t.equal(h.leader(), 'a')
  h.tick(['a', 'b', 'c'], 2)
  t.ok(h.core('a').commitIndex > x.index, 'the new term entry commits, and X with it')
  t.same(h.appliedTexts('a'), ['X'])
  h.crash('a')
  h.heal()
  h.isolateAndTick(['b', 'c', 'd', 'e'], ET + 1)
  h.filters.push(onlyBetween(['d', 'e', 'b']))
  h.campaign('e')
  t.not(h.core('e').role, 'leader', 'e, missing committed X, cannot win with b (who has it)')
  h.heal()
  h.tick(['b', 'c', 'd', 'e'], 60)
  const leader = h.leader()
  t.ok(leader === 'b' || leader === 'c', `a node holding X leads (${leader})`)
  for (const id of ['b', 'c', 'd', 'e']) t.same(h.appliedTexts(id), ['X'], `${id} applied X`)
  assertAppliedAgree(t, h)
})

t.test('single-server membership changes racing a leader change (the dissertation bug)', async (t) => {
  const h = new Harness(['a', 'b', 'c', 'd'])
  h.addEmpty('e')
  h.bootstrapLeader('a')
  t.equal(h.leader(), 'a')

  // a adds e as a voter, but the change reaches nobody: C1 = {a,b,c,d,e} lives on a alone.
  h.filters.push(() => false)
  const addE = h.core('a').changeMembership({ type: 'addVoter', node: 'e' })
  h.flush()
  t.same(h.core('a').membership().voters, ['a', 'b', 'c', 'd', 'e'])
  h.heal()
  h.queue = []

  // c takes over with b and d, under the old membership.
  h.isolateAndTick(['b', 'c', 'd'], ET + 1)
  h.filters.push(onlyBetween(['b', 'c', 'd']))
  h.core('c').campaign()
  h.deliverUntil(() => h.core('c').role === 'leader')
  t.equal(h.core('c').commitIndex < h.core('c').lastIndex, true, "c's no-op is not yet committed")
  throwsCode(
    t,
    () => h.core('c').changeMembership({ type: 'remove', node: 'b' }),
    'MEMBERSHIP_CHANGE_PENDING',
    'a new leader may not change membership before committing an entry of its term',
  )
  h.deliverAll()
  t.equal(h.core('c').termAt(h.core('c').commitIndex), h.core('c').term, "c's no-op committed")
  // Now c removes b; the change reaches d only, which with c is a majority of {a,c,d}.
  h.heal()
  h.filters.push(onlyBetween(['c', 'd']))
  const removeB = h.core('c').changeMembership({ type: 'remove', node: 'b' })
  throwsCode(t, () => h.core('c').changeMembership({ type: 'remove', node: 'a' }), 'MEMBERSHIP_CHANGE_PENDING', 'one change at a time')
  h.deliverAll()
  t.equal(h.core('c').commitIndex, removeB.index, 'removal of b committed by c and d')
  t.equal(h.core('a').termAt(addE.index), addE.term, 'a still holds its own, conflicting, change')

  // a, with C1, tries to win with b and e. b holds c's term entry, so only e can vote for a: 2 of 5.
  // (a is still the unaware leader of its old term until its check-quorum fires: two rounds at most.)
  h.heal()
  const cTerm = h.core('c').term
  h.isolateAndTick(['a', 'b', 'e'], 2 * ET + 1)
  h.filters.push(onlyBetween(['a', 'b', 'e']))
  for (let attempt = 0; attempt < 3; attempt++) {
    h.campaign('a')
    h.isolateAndTick(['a', 'b', 'e'], ET + 1)
  }
  t.notOk(h.core('a').role === 'leader' && h.core('a').term >= cTerm, 'a cannot win a term: its majority would exclude committed state')
  h.heal()
  h.tick(undefined, 60)
  const leader = h.leader()
  t.ok(leader === 'c' || leader === 'd', `the leader is from the committed membership (${leader})`)
  t.same(h.core(leader!).membership().voters, ['a', 'c', 'd'])
  t.equal(h.core('a').termAt(removeB.index), removeB.term, "a's log was repaired to hold the committed change")
  assertCommittedPrefixesAgree(t, h)
})

t.test('pre-vote with check-quorum under partial connectivity: a bridge node keeps the leader', async (t) => {
  const h = new Harness(['a', 'b', 'c', 'd', 'e'])
  h.bootstrapLeader('a')
  const term = h.core('a').term
  // Halves {a,b} and {d,e}; c sees everyone (the 2020 partial-partition outage).
  h.partition(['a', 'b'], ['d', 'e'])
  for (let i = 0; i < 20 * ET; i++) {
    h.tick()
    if (i % 7 === 0) h.propose('a', `w${i}`)
  }
  h.deliverAll()
  t.equal(h.leader(), 'a', 'a still leads')
  t.equal(h.core('a').term, term, 'no term change anywhere in the leader half')
  t.equal(h.core('c').term, term, 'the bridge node c was never pulled into a new term')
  t.ok(h.core('a').commitIndex >= h.core('a').lastIndex - 1, 'writes keep committing through the bridge')
  t.ok((h.core('c').stats.dropped.inLease ?? 0) > 0, 'c ignored pre-votes from d/e while hearing from the leader')
  for (const id of ['d', 'e']) t.equal(h.core(id).term, term, `${id} never bumped its term (pre-vote failed)`)
})

t.test('pre-vote with check-quorum: one-way link loss to a follower does not depose the leader', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  const term = h.core('a').term
  h.filters.push((m) => !(m.from === 'a' && m.to === 'b')) // b never hears a; a hears b
  h.tick(undefined, 30 * ET)
  t.equal(h.leader(), 'a')
  t.equal(h.core('a').term, term)
  t.equal(h.core('c').term, term)
})

t.test('a node partitioned away and back does not depose a healthy leader', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  const term = h.core('a').term
  h.partition(['c'], ['a', 'b'])
  h.tick(undefined, 50 * ET)
  t.equal(h.core('c').term, term, "c's pre-votes fail, so its term stays")
  h.heal()
  h.tick(undefined, 3)
  t.equal(h.leader(), 'a')
  t.equal(h.core('a').term, term)
  t.equal(h.core('c').leaderId, 'a', 'c follows a again')
})

t.test('a deposed leader never serves a stale read', async (t) => {
  // Part 1: a is paused (its clock stops, so it never notices) while b and c elect b and write.
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.propose('a', 'x=1')
  h.tick(undefined, 2)
  t.ok(h.core('a').hasLease(), 'a holds a lease while a majority acknowledges it')
  h.partition(['a'], ['b', 'c'])
  h.isolateAndTick(['b', 'c'], ET + 1)
  h.filters.push((m) => m.from !== 'a' && m.to !== 'a')
  h.campaign('b')
  t.equal(h.core('b').role, 'leader')
  h.propose('b', 'x=2')
  h.deliverAll()
  t.same(h.appliedTexts('b'), ['x=1', 'x=2'], 'the new leader committed x=2')
  t.equal(h.core('a').role, 'leader', 'a still believes it leads')
  // A ReadIndex read needs a heartbeat round acknowledged by a majority: it never comes.
  h.core('a').readIndex('r1')
  h.flush()
  h.deliverAll()
  t.same(h.node('a').readStates, [], 'no read point is granted while the majority has moved on')
  h.heal()
  h.tick(undefined, 3)
  t.equal(h.core('a').role, 'follower', 'a learns the new term and steps down')
  t.same(h.node('a').readStates, [], 'the pending read was dropped, never answered with stale data')
  throwsCode(t, () => h.core('a').readIndex('r3'), 'NOT_LEADER', 'a deposed leader refuses reads')

  // Part 2: clocks run (within the drift bound). Lease reads on a stop before b or c can win.
  const h2 = new Harness(['a', 'b', 'c'])
  h2.bootstrapLeader('a')
  h2.tick(undefined, 2)
  h2.partition(['a'], ['b', 'c'])
  let served = 0
  for (let i = 0; i < 5 * ET && h2.core('b').role !== 'leader' && h2.core('c').role !== 'leader'; i++) {
    if (h2.core('a').role === 'leader') h2.core('a').readIndex(`lease-${i}`, { lease: true })
    h2.tick()
    const otherLeads = h2.core('b').role === 'leader' || h2.core('c').role === 'leader'
    if (h2.node('a').readStates.length > served) {
      t.notOk(otherLeads, `lease read ${h2.node('a').readStates.length} served while no other leader exists`)
      served = h2.node('a').readStates.length
    }
  }
  t.ok(served > 0, 'lease reads were served while the lease held')
  t.ok(h2.core('b').role === 'leader' || h2.core('c').role === 'leader', 'a new leader was elected')
})

t.test("a lease never outlives the followers' promise not to elect another leader", async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.tick(undefined, 2)
  t.ok(h.core('a').hasLease())
  h.partition(['a'], ['b', 'c'])
  let leaseEnded = -1
  let otherElected = -1
  for (let i = 0; i < 5 * ET && otherElected < 0; i++) {
    h.tick()
    if (leaseEnded < 0 && !h.core('a').hasLease()) leaseEnded = i
    if (h.core('b').role === 'leader' || h.core('c').role === 'leader') otherElected = i
  }
  t.ok(leaseEnded >= 0 && otherElected >= 0, 'the lease ended and a new leader was elected')
  t.ok(leaseEnded < otherElected, `lease ended at tick ${leaseEnded}, before the new leader at tick ${otherElected}`)
})

t.test('crash between persisting the term and persisting the vote', async (t) => {
  // Term and vote are one HardState record, written atomically: a crash either keeps both or neither.
  for (const persisted of [false, true]) {
    const h = new Harness(['a', 'b', 'c'])
    h.bootstrapLeader('a')
    h.isolateAndTick(['a', 'b', 'c'], ET + 1)
    const voteTerm = h.core('b').term + 1

    // b campaigns; c is asked for its vote and grants it, then crashes before (or right after) the write.
    h.filters.push((m) => m.from !== 'a' && m.to !== 'a')
    h.core('b').campaign()
    h.deliverUntil(() => h.core('b').role === 'candidate')
    h.node('c').held = true
    h.deliverUntil(() => h.core('c').term === voteTerm)
    const sent = h.processReady('c', { persist: persisted, send: false })
    t.ok(
      sent.some((m) => m.type === 'voteResp' && !m.reject),
      'c had granted its vote in the lost Ready',
    )
    h.crash('c')
    h.node('c').held = false
    h.restart('c')
    const hs = h.node('c').storage.hardState()
    if (persisted) {
      t.same([hs.term, hs.vote], [voteTerm, 'b'], 'after restart c remembers both its term and its vote')
    } else {
      t.ok(hs.term < voteTerm && hs.vote !== 'b', 'after restart c remembers neither (the response was never sent)')
    }
    // a now campaigns in the same term as b, with c's help only: c must refuse if it voted for b.
    h.heal()
    h.filters.push((m) => m.from !== 'b' && m.to !== 'b')
    h.isolateAndTick(['c', 'a'], ET + 1)
    h.filters.push((m) => m.from !== 'b' && m.to !== 'b')
    h.core('a').campaign()
    h.deliverAll()
    const leadersByTerm = new Map<number, string[]>()
    for (const n of h.nodes.values()) {
      if (n.core.role === 'leader') leadersByTerm.set(n.core.term, [...(leadersByTerm.get(n.core.term) ?? []), n.id])
    }
    for (const [term, ids] of leadersByTerm) t.equal(ids.length, 1, `one leader in term ${term} (${ids.join(',')})`)
    if (persisted) {
      t.not(h.core('a').term === voteTerm && h.core('a').role === 'leader' && h.core('b').role === 'leader', true)
      t.equal(h.node('c').storage.hardState().vote === 'a' && h.node('c').storage.hardState().term === voteTerm, false, 'c never votes twice in one term')
    }
  }
})
