/**
 * The campaign's judgements on made-up records (no namespaces): the mapping of recorded HTTP
 * operations to the linearizability checker, the revision premise of the CAS mapping, the
 * lease-overlap rule, how write answers are classed, and the summary's distribution.
 */
import t from 'tap'
import { distribution } from './campaign.js'
import { checkHistory, revisionConflicts, toCheckerOps } from './history.js'
import { judgeLeases } from './leases.js'
import type { LeaseSample, RecordedOp } from './protocol.js'
import { writeOutcome } from './workload.js'

const op = (o: Partial<RecordedOp> & Pick<RecordedOp, 'kind' | 'call'>): RecordedOp => ({ client: 0, key: 'k0', node: 'n1', ret: o.call + 5, outcome: 'ok', ...o })

t.test('a history of writes, reads and a CAS mapped from revisions is linearizable', async (t) => {
  const ops = [
    op({ kind: 'write', value: 'a', revision: 10, call: 0 }),
    op({ kind: 'read', readValue: 'a', revision: 10, call: 10 }),
    op({ kind: 'cas', value: 'b', ifRevision: 10, expect: 'a', revision: 12, call: 20 }),
    op({ kind: 'cas', client: 1, value: 'c', ifRevision: 10, expect: 'a', outcome: 'fail', call: 30 }),
    op({ kind: 'read', readValue: 'b', revision: 12, call: 40 }),
  ]
  const v = checkHistory(ops)
  t.equal(v.status, 'ok')
  t.same(v.violations, [])
  t.equal(v.checked, 5)
})

t.test('a lost acknowledged write is a violation', async (t) => {
  const ops = [
    op({ kind: 'write', value: 'a', revision: 10, call: 0 }),
    op({ kind: 'write', value: 'b', revision: 11, call: 10 }),
    op({ kind: 'read', readValue: 'a', revision: 10, call: 20 }),
  ]
  const v = checkHistory(ops)
  t.equal(v.status, 'violation')
  t.match(v.violations[0], /not linearizable/)
})

t.test('unknown writes may apply late or never; refused ones never', async (t) => {
  const late = [
    op({ kind: 'write', value: 'a', outcome: 'unknown', ret: null, call: 0 }),
    op({ kind: 'read', readValue: null, revision: 0, call: 10 }),
    op({ kind: 'read', readValue: 'a', revision: 7, call: 20 }),
  ]
  t.equal(checkHistory(late).status, 'ok', 'an unknown write seen later')
  const refused = [op({ kind: 'write', value: 'a', outcome: 'notApplied', code: 'NOT_LEADER', call: 0 }), op({ kind: 'read', readValue: 'a', revision: 7, call: 20 })]
  t.equal(checkHistory(refused).status, 'violation', 'a write the daemon said did not apply, seen applied')
  t.same(toCheckerOps([op({ kind: 'read', outcome: 'notApplied', ret: null, call: 0 })]), [], 'a failed read is left out')
  t.same(toCheckerOps([op({ kind: 'write', key: 'u/c0-1', value: 'x', call: 0 })]), [], 'write-once keys are checked elsewhere')
})

t.test('a CAS that applied against a value the key no longer held is a violation', async (t) => {
  const ops = [
    op({ kind: 'write', value: 'a', revision: 10, call: 0 }),
    op({ kind: 'write', value: 'b', revision: 11, call: 10 }),
    op({ kind: 'cas', value: 'c', ifRevision: 10, expect: 'a', revision: 12, call: 20 }),
  ]
  t.equal(checkHistory(ops).status, 'violation')
})

t.test('revision conflicts break the CAS mapping and are reported', async (t) => {
  t.same(revisionConflicts([op({ kind: 'write', value: 'a', revision: 10, call: 0 }), op({ kind: 'read', readValue: 'a', revision: 10, call: 5 })]), [])
  t.match(revisionConflicts([op({ kind: 'write', value: 'a', revision: 10, call: 0 }), op({ kind: 'read', readValue: 'b', revision: 10, call: 5 })]), [/revision 10 seen holding "a" and "b"/])
  t.match(revisionConflicts([op({ kind: 'write', value: 'a', revision: 10, call: 0 }), op({ kind: 'read', readValue: 'a', revision: 11, call: 5 })]), [/value "a" seen at revisions 10 and 11/])
})

t.test('write answers are classed by what they prove', async (t) => {
  t.equal(writeOutcome({ status: 200, text: '' }), 'ok')
  t.equal(writeOutcome({ status: 409, text: '', body: { error: { code: 'REVISION_MISMATCH' } } }), 'fail')
  t.equal(writeOutcome({ status: 503, text: '', body: { error: { code: 'NOT_LEADER' } } }), 'notApplied')
  t.equal(writeOutcome({ status: 503, text: '', body: { error: { code: 'CONNECTION_LOST' } } }), 'unknown')
  t.equal(writeOutcome({ status: 504, text: '', body: { error: { code: 'TIMEOUT' } } }), 'unknown')
  t.equal(writeOutcome({ status: 0, text: '', error: 'refused' }), 'notApplied', 'connection refused: never sent')
  t.equal(writeOutcome({ status: 0, text: '', error: 'timeout' }), 'unknown')
  t.equal(writeOutcome({ status: 0, text: '', error: 'ECONNRESET' }), 'unknown')
})

t.test('two nodes passing the leader check in overlapping windows is a violation', async (t) => {
  const s = (node: string, start: number, end: number, status = 200): LeaseSample => ({ node, start, end, status, id: `${node}id`, fence: 3 })
  t.same(judgeLeases([s('n1', 0, 5), s('n2', 6, 9), s('n1', 10, 12), s('n2', 11, 14, 503)]).violations, [], 'touching in sequence, or one 503')
  const v = judgeLeases([s('n1', 0, 10), s('n3', 3, 4), s('n2', 9, 12)])
  t.equal(v.violations.length, 2)
  t.match(v.violations[0], /n1 .* and n3 .* overlapping/)
  t.equal(v.passing, 3)
  t.same(judgeLeases([s('n1', 0, 10), s('n1', 5, 12)]).violations, [], 'one node overlapping itself is no conflict')
})

t.test('distribution', async (t) => {
  t.same(distribution([5, 1, 3, 2, 4, 6, 7, 8, 9, 10]), { n: 10, min: 1, median: 6, p90: 10, max: 10 })
  t.equal(distribution([]).n, 0)
})
