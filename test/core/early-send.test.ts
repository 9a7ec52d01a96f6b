/**
 * Ready.earlyMessages: a settled leader's appends and heartbeats may leave before its own disk
 * write. Only those: anything that depends on the write (votes, acknowledgements, a new term) waits.
 * And a leader that crashes before its write loses nothing that was acknowledged.
 */
import t from 'tap'
import type { Message } from '../../src/core/types.js'
import { Harness } from './harness.js'

const types = (ms: readonly Message[]): string[] => ms.map((m) => `${m.type}>${m.to}`).sort()

/** Three voters with a settled as leader. */
function leaderA(): Harness {
  const h = new Harness(['a', 'b', 'c'])
  h.bootstrapLeader('a')
  h.deliverAll()
  return h
}

t.test('a settled leader sends its appends and heartbeats early, and nothing else', async (t) => {
  const h = leaderA()
  h.propose('a', 'x')
  let rd = h.core('a').ready()
  t.same(types(rd.earlyMessages), ['append>b', 'append>c'], 'the appends of the new entry are early')
  t.equal(rd.messages.length, 0, 'nothing waits for the write')
  t.equal(rd.entries.length, 1, 'the entry still has to be written')
  t.ok(rd.mustSync)
  h.node('a').storage.apply({ entries: rd.entries, hardState: rd.hardState })
  h.queue.push(...rd.earlyMessages, ...rd.messages)
  h.core('a').advance()
  h.deliverAll()
  h.core('a').tick()
  rd = h.core('a').ready()
  t.ok(rd.earlyMessages.length > 0 && rd.earlyMessages.every((m) => m.type === 'heartbeat' || m.type === 'append'), 'heartbeats are early')
  t.equal(rd.messages.length, 0)
  h.core('a').advance()
})

t.test('a follower acknowledges only after its write', async (t) => {
  const h = leaderA()
  h.propose('a', 'x')
  h.processReady('a')
  const toB = h.queue.filter((m) => m.to === 'b')
  h.queue = []
  for (const m of toB) h.deliver(m)
  const rd = h.core('b').ready()
  t.equal(rd.earlyMessages.length, 0, 'nothing early on a follower')
  t.same(types(rd.messages), ['appendResp>a'], 'the acknowledgement is sent after the write')
  h.core('b').advance()
})

t.test('a Ready that changes term or vote sends nothing early', async (t) => {
  const h = leaderA()
  // b campaigns: its vote requests need its new term and vote on disk first.
  h.isolateAndTick(['b'], 30)
  h.core('b').campaign()
  let rd = h.core('b').ready()
  t.equal(rd.earlyMessages.length, 0, 'a candidate sends nothing early')
  t.ok(rd.messages.some((m) => m.type === 'vote' || m.type === 'preVote'), 'its requests wait for the write')
  h.core('b').advance()
  // A leader that proposes, then steps down in the same turn (a higher term arrives): its appends
  // were made in the old term and the Ready changes the term, so nothing goes early.
  const h2 = leaderA()
  h2.propose('a', 'y')
  h2.core('a').step({ type: 'append', from: 'c', to: 'a', term: h2.core('a').term + 5, index: 0, logTerm: 0, entries: [], commit: 0 })
  rd = h2.core('a').ready()
  t.not(h2.core('a').role, 'leader', 'a stepped down')
  t.equal(rd.earlyMessages.length, 0, 'nothing early when the term changes')
  h2.core('a').advance()
})

t.test('a leader whose Ready also carries its new term sends nothing early', async (t) => {
  // A lone voter with a learner wins its election within one turn: the Ready that makes it leader
  // holds the new term and vote and already the appends to the learner. They wait for the write.
  const h = new Harness(['a'], { learners: ['l'] })
  h.core('a').tick()
  const rd = h.core('a').ready()
  t.equal(h.core('a').role, 'leader', 'a leads at once')
  t.ok(rd.hardState && rd.mustSync, 'the Ready persists the new term and vote')
  t.ok(rd.messages.some((m) => m.type === 'append' && m.to === 'l'), 'the appends to the learner wait for the write')
  t.equal(rd.earlyMessages.length, 0, 'nothing early')
  h.core('a').advance()
})

t.test('a leader that crashes before its write: followers keep the entry, nothing acknowledged is lost', async (t) => {
  const h = leaderA()
  h.propose('a', 'before')
  h.deliverAll()
  t.same(h.appliedTexts('a'), ['before'])
  const { index } = h.propose('a', 'x')
  // The appends leave, then the leader's write is lost in a crash.
  h.processReady('a', { persist: false })
  const inFlight = h.queue
  h.queue = []
  t.ok(h.core('a').commitIndex < index, 'the leader has not committed x')
  h.crash('a')
  t.notOk(h.node('a').storage.term(index), "x is not in the crashed leader's log")
  for (const m of inFlight) h.deliver(m)
  h.deliverAll()
  // b and c hold x; one of them leads and commits it (under an entry of its own term).
  h.tick(['b', 'c'], 40)
  const leader = h.electLeader()
  t.not(leader, 'a')
  h.propose(leader, 'after')
  h.deliverAll()
  h.restart('a')
  h.tick(undefined, 5)
  h.deliverAll()
  for (const id of ['a', 'b', 'c']) t.same(h.appliedTexts(id), ['before', 'x', 'after'], `${id} applied x once, in order`)
})
