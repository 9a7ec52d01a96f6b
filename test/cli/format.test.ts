/**
 * Human-readable output: aligned tables without trailing blanks, short ids, values on one line,
 * the status summary, and member ids given as unique prefixes.
 */
import t from 'tap'
import type { ClusterMember, ClusterStatus } from '../../src/daemon/types.js'
import { formatChange, formatGet, formatList, formatMembers, formatStatus, formatTable, formatValue, resolveMemberId, shortId } from '../../src/cli/format.js'

const A = 'aaaa1111'.repeat(8)
const B = 'bbbb2222'.repeat(8)
const C = 'cccc3333'.repeat(8)

function member(id: string, over: Partial<ClusterMember> = {}): ClusterMember {
  return { id, url: null, role: 'follower', voter: true, reachable: true, matchIndex: null, lag: null, learnerOnly: false, ...over }
}

t.test('tables: columns aligned two spaces apart, the last one unpadded', async (t) => {
  t.equal(formatTable(['A', 'LONGER', 'C'], [['xyz', '1', ''], ['x', '22', 'last']]), ['A    LONGER  C', 'xyz  1', 'x    22      last'].join('\n'))
})

t.test('short ids and values', async (t) => {
  t.equal(shortId(A), 'aaaa1111')
  t.equal(shortId('abc'), 'abc')
  t.equal(shortId(null), '-')
  t.equal(formatValue('plain'), 'plain')
  t.equal(formatValue({ a: 1 }), '{"a":1}')
  t.equal(formatValue(null), 'null')
  t.equal(formatValue('line1\nline2', 20), 'line1\\nline2', 'newlines escaped in a cell')
  t.equal(formatValue('x'.repeat(30), 10), 'xxxxxxxxx…')
  t.equal(formatGet({ key: 'k', value: 'hello', revision: 3 }), 'hello')
  t.equal(formatGet({ key: 'k', value: 12.5, revision: 3 }), '12.5')
  t.equal(formatGet({ key: 'k', value: 'AAE=', revision: 3, encoding: 'base64' }), 'AAE=\n(base64-encoded bytes)')
})

t.test('list and watch lines', async (t) => {
  t.equal(formatList({ items: [], count: 0 }), '(no keys)')
  t.equal(
    formatList({ items: [{ key: 'app/a', value: 'v', revision: 5 }, { key: 'b', value: { n: 1 }, revision: 12 }], count: 2, more: true, next: 'c' }),
    ['KEY    REVISION  VALUE', 'app/a  5         v', 'b      12        {"n":1}', '(more keys follow, from c: raise --limit)'].join('\n'),
  )
  t.equal(formatChange({ revision: 9, seq: 0, type: 'put', key: 'k', value: [1] }), '9  PUT  k = [1]')
  t.equal(formatChange({ revision: 9, seq: 2, type: 'delete', key: 'k' }), '9.2  DEL  k')
})

t.test('members table and status summary', async (t) => {
  const members = [
    member(A, { role: 'leader', url: 'http://127.0.0.1:8080', matchIndex: 40, lag: 0 }),
    member(B, { url: 'http://127.0.0.1:8081', matchIndex: 38, lag: 2, reachable: false }),
    member(C, { role: 'learner', voter: false, learnerOnly: true }),
  ]
  t.equal(
    formatMembers(members, A),
    [
      'ID        ROLE             VOTER  REACHABLE  MATCH  LAG  URL',
      'aaaa1111  leader*          yes    yes        40     0    http://127.0.0.1:8080',
      'bbbb2222  follower         yes    no         38     2    http://127.0.0.1:8081',
      'cccc3333  learner (fixed)  no     yes        -      -    -',
      '* acting',
    ].join('\n'),
  )
  const status: ClusterStatus = {
    id: B,
    url: 'http://127.0.0.1:8081',
    cluster: 'demo',
    role: 'follower',
    term: 4,
    leader: A,
    leaderUrl: 'http://127.0.0.1:8080',
    commitIndex: 40,
    appliedIndex: 39,
    acting: false,
    leaderCheck: false,
    ready: true,
    fence: 4,
    actingId: A,
    targetVoters: 3,
    view: 'leader',
    members,
  }
  const text = formatStatus(status)
  t.match(text, /^cluster {2}demo {2}term 4 {2}commit 40 {2}applied 39\n/)
  t.match(text, /\nnode {5}bbbb2222 {2}follower {2}http:\/\/127\.0\.0\.1:8081\n/)
  t.match(text, /\nleader {3}aaaa1111 {2}http:\/\/127\.0\.0\.1:8080\n/)
  t.match(text, /\nacting {3}aaaa1111 {2}\(fence 4\)\n/)
  t.match(text, /\nvoters {3}2 of 3 wanted, 1 learner\n/)
  t.notMatch(text, /could not be asked/)
  const lonely = formatStatus({ ...status, leader: null, leaderUrl: null, actingId: null, view: 'local', ready: false })
  t.match(lonely, /leader {3}none known/)
  t.match(lonely, /acting {3}none/)
  t.match(lonely, /\(not ready\)/)
  t.match(lonely, /the leader could not be asked\)$/)
})

t.test('member ids: exact, unique prefix, unknown passed on, ambiguous refused', async (t) => {
  const ms = [{ id: A }, { id: B }, { id: 'aaaa9999' }]
  t.same(resolveMemberId(ms, B), { id: B })
  t.same(resolveMemberId(ms, 'bbbb'), { id: B })
  t.same(resolveMemberId(ms, 'aaaa1'), { id: A })
  t.same(resolveMemberId(ms, 'ffff'), { id: 'ffff' })
  t.match(resolveMemberId(ms, 'aaaa'), { error: /ambiguous.*aaaa1111, aaaa9999/ })
})
