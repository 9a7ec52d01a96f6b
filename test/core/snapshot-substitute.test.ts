/**
 * The driver may send a follower an older snapshot than the one the core asked for (the snapshot
 * of a broken transfer, held to resume it: src/transfer/sender.ts). The core must then continue
 * from whatever index the follower answers with: replicate from the log when the log still holds
 * the entries after it, send a new snapshot when it does not. These tests pin that down, in both
 * orders in which the transfer's report and the follower's answer can reach the leader.
 */
import t from 'tap'
import type { Message, SnapshotMeta } from '../../src/core/types.js'
import { Harness } from './harness.js'

/**
 * Three nodes; c was down while a and b committed 40 entries and compacted their logs (tail 20),
 * so c, restarted, needs a snapshot. The first snapshot message to c is rewritten to carry an older
 * snapshot (at `olderBy` entries before the one the core asked for), as the driver does when it
 * re-offers a held snapshot; c's answers are held back for the test to deliver.
 */
function setup(olderBy: number) {
  const h = new Harness(['a', 'b', 'c'], { logTail: 20 })
  h.bootstrapLeader('a')
  h.crash('c')
  for (let i = 0; i < 40; i++) {
    h.propose('a', `w${i}`)
    h.tick(['a', 'b'])
    for (const id of ['a', 'b']) h.core(id).setSnapshotPoint(h.core(id).appliedIndex)
  }
  h.tick(['a', 'b'], 2)
  const snapshots: SnapshotMeta[] = []
  let asked: SnapshotMeta | undefined
  h.rewrites.push((m) => {
    if (m.type !== 'snapshot' || m.to !== 'c') return m
    if (asked !== undefined) {
      snapshots.push(m.snapshot!)
      return m
    }
    asked = m.snapshot!
    const index = asked.index - olderBy
    const older: SnapshotMeta = { index, term: h.core('a').termAt(index)!, membership: asked.membership }
    snapshots.push(older)
    return { ...m, snapshot: older }
  })
  const answers: Message[] = []
  let holdAnswers = true
  h.filters.push((m) => {
    if (holdAnswers && m.from === 'c' && m.to === 'a' && m.type === 'appendResp') {
      answers.push(m)
      return false
    }
    return true
  })
  h.restart('c')
  for (let i = 0; i < 20 && answers.length === 0; i++) h.tick()
  return {
    h,
    snapshots,
    answers,
    asked: () => asked!,
    release() {
      holdAnswers = false
    },
    progressOfC: () => h.core('a').status().progress.find((p) => p.id === 'c')!,
  }
}

function catchUp(h: Harness): void {
  for (let i = 0; i < 20 && h.core('c').appliedIndex < h.core('a').appliedIndex; i++) h.tick()
}

t.test('the follower installs an older snapshot and answers before the transfer is reported: the leader continues from the log', async (t) => {
  const s = setup(5)
  const { h } = s
  const older = s.snapshots[0]!
  t.ok(older.index >= h.core('a').status().firstIndex - 1, `the leader's log still holds the entries after ${older.index}`)
  t.equal(h.core('c').status().firstIndex, older.index + 1, `c installed the snapshot at ${older.index}`)
  t.equal(s.asked().index, older.index + 5, `the core had asked for ${s.asked().index}`)
  t.equal(s.progressOfC().state, 'snapshot')
  t.same(s.answers.map((m) => m.index), [older.index], 'c answered with the older index')

  s.release()
  h.deliver(s.answers.shift()!)
  h.flush()
  t.equal(s.progressOfC().match, older.index, 'the leader took the older index as the match of c')
  h.core('a').reportSnapshot('c', true)
  catchUp(h)
  t.equal(s.snapshots.length, 1, 'no other snapshot was sent')
  t.equal(h.core('c').appliedIndex, h.core('a').appliedIndex, 'c caught up from the log')
  t.same(h.appliedTexts('c'), h.appliedTexts('a'), 'c holds exactly the leader state')
  h.propose('a', 'after')
  h.tick(undefined, 3)
  t.same(h.appliedTexts('c').slice(-1), ['after'], 'and follows the log')
  t.equal(s.progressOfC().state, 'replicate')
})

t.test('the transfer is reported before the follower answers with the older index: the leader continues from the log', async (t) => {
  const s = setup(5)
  const { h } = s
  const older = s.snapshots[0]!
  // ok: the core assumes c has its snapshot and will probe after it; the answer corrects that.
  h.core('a').reportSnapshot('c', true)
  t.equal(s.progressOfC().state, 'probe')
  s.release()
  h.deliver(s.answers.shift()!)
  h.flush()
  t.equal(s.progressOfC().match, older.index, 'the answer set the match of c to the older index')
  t.equal(s.progressOfC().state, 'replicate', 'and c is replicated to from there')
  catchUp(h)
  t.equal(s.snapshots.length, 1, 'no other snapshot was sent')
  t.same(h.appliedTexts('c'), h.appliedTexts('a'), 'c holds exactly the leader state')
})

t.test('an older snapshot whose entries the leader compacted meanwhile: the leader sends a new one', async (t) => {
  const s = setup(5)
  const { h } = s
  const older = s.snapshots[0]!
  // a and b go on and compact far past the older snapshot before c's answer arrives.
  for (let i = 0; i < 40; i++) {
    h.propose('a', `x${i}`)
    h.tick(['a', 'b'])
    for (const id of ['a', 'b']) h.core(id).setSnapshotPoint(h.core(id).appliedIndex)
  }
  t.ok(h.core('a').status().firstIndex - 1 > older.index, `the leader's log now starts after ${older.index}`)
  h.core('a').reportSnapshot('c', true)
  s.release()
  h.deliver(s.answers.shift()!)
  h.flush()
  for (let i = 0; i < 20 && s.snapshots.length < 2; i++) h.tick()
  t.equal(s.snapshots.length, 2, 'the leader sent a second snapshot')
  t.ok(s.snapshots[1]!.index > older.index, `a newer one, at ${s.snapshots[1]!.index}`)
  h.core('a').reportSnapshot('c', true)
  catchUp(h)
  t.same(h.appliedTexts('c'), h.appliedTexts('a'), 'c holds exactly the leader state')
})
