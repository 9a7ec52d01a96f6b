import t from 'tap'
import type { Test } from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import type { Entry } from '../../src/core/types.js'
import { LmdbStorage } from '../../src/storage/lmdb.js'
import { KvStateMachine } from '../../src/state/kv.js'
import type { ApplyResult, TxnResult } from '../../src/state/kv.js'
import { applyCommands, applyOk, entry, freshKv, openEnv, tempDir, catchErr } from './helpers.js'

function failed(r: ApplyResult | undefined): string | undefined {
  return r && !r.ok ? r.error.code : undefined
}

t.test('put, get and delete carry revisions', async (t) => {
  const { kv } = await freshKv(t)
  t.equal(kv.appliedIndex(), 0)
  t.same(applyOk(kv, { type: 'put', key: 'a', value: { n: 1 } }), { revision: 1, createRevision: 1, version: 1, prevRevision: 0 })
  t.same(kv.get('a'), { bucket: 'default', key: 'a', value: { n: 1 }, createRevision: 1, modRevision: 1, version: 1 })
  applyOk(kv, { type: 'put', key: 'b', value: 'other' })
  t.same(applyOk(kv, { type: 'put', key: 'a', value: new Uint8Array([7, 8]) }), { revision: 3, createRevision: 1, version: 2, prevRevision: 1 })
  const a = kv.get('a')
  t.same(a && { ...a, value: [...(a.value as Uint8Array)] }, { bucket: 'default', key: 'a', value: [7, 8], createRevision: 1, modRevision: 3, version: 2 })
  t.ok(a?.value instanceof Uint8Array, 'bytes read back as bytes')
  t.same(applyOk(kv, { type: 'delete', key: 'a' }), { revision: 4, deleted: true, prevRevision: 3 })
  t.equal(kv.get('a'), undefined)
  t.same(applyOk(kv, { type: 'delete', key: 'a' }), { revision: 5, deleted: false, prevRevision: 0 }, 'deleting a missing key is a no-op')
  t.same(applyOk(kv, { type: 'put', key: 'a', value: null }), { revision: 6, createRevision: 6, version: 1, prevRevision: 0 }, 'recreated: new createRevision and version')
  t.equal(kv.get('a')?.value, null, 'null is a value')
  t.equal(kv.appliedIndex(), 6)
  t.equal(isHoldfastError(catchErr(() => kv.get('')), 'INVALID_ARGUMENT'), true, 'invalid key on read')
})

t.test('buckets isolate keys', async (t) => {
  const { kv } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'k', value: 1 }, { type: 'put', bucket: 'b1', key: 'k', value: 2 }, { type: 'put', bucket: 'b1x', key: 'k', value: 3 })
  t.equal(kv.get('k')?.value, 1)
  t.equal(kv.get('k', { bucket: 'b1' })?.value, 2)
  t.equal(kv.get('k', { bucket: 'b1x' })?.value, 3)
  t.equal(kv.get('k', { bucket: 'b2' }), undefined)
  t.same(kv.list({ bucket: 'b1' }).map((x) => x.value), [2], 'a bucket lists only its keys, not those of a bucket sharing its prefix')
  applyOk(kv, { type: 'delete', bucket: 'b1', key: 'k' })
  t.equal(kv.get('k')?.value, 1, 'delete in one bucket leaves the others')
})

t.test('compare-and-set on revision', async (t) => {
  const { kv } = await freshKv(t)
  t.same(applyOk(kv, { type: 'put', key: 'x', value: 1, ifRevision: 0 }), { revision: 1, createRevision: 1, version: 1, prevRevision: 0 }, 'ifRevision 0 creates')
  const [again] = applyCommands(kv, { type: 'put', key: 'x', value: 2, ifRevision: 0 })
  t.equal(failed(again), 'REVISION_MISMATCH', 'ifRevision 0 fails when the key exists')
  t.match(again && !again.ok ? again.error.message : '', /expected revision 0 \(absent\), found 1/)
  t.equal(kv.get('x')?.value, 1, 'nothing changed')
  t.equal(failed(applyCommands(kv, { type: 'put', key: 'x', value: 2, ifRevision: 5 })[0]), 'REVISION_MISMATCH', 'a wrong revision fails')
  applyOk(kv, { type: 'put', key: 'x', value: 3, ifRevision: 1 })
  t.equal(kv.get('x')?.value, 3, 'the right revision succeeds')
  t.equal(failed(applyCommands(kv, { type: 'delete', key: 'x', ifRevision: 1 })[0]), 'REVISION_MISMATCH', 'delete with a stale revision fails')
  t.equal(kv.get('x')?.value, 3)
  applyOk(kv, { type: 'delete', key: 'x', ifRevision: 4 })
  t.equal(kv.get('x'), undefined, 'delete with the current revision succeeds')
  t.equal(kv.appliedIndex(), 6, 'failed entries are applied too (as failures)')
})

t.test('txn: compares pick the branch; ops apply all or nothing', async (t) => {
  const { kv } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'a', value: 1 }, { type: 'put', key: 'b', value: 1 })
  const ok = applyOk(kv, {
    type: 'txn',
    compare: [{ key: 'a', revision: 1 }, { key: 'new', revision: 0 }],
    success: [
      { type: 'put', key: 'a', value: 2 },
      { type: 'put', key: 'new', value: 'n', ifRevision: 0 },
      { type: 'delete', key: 'b' },
      { type: 'put', key: 'a', value: 3, ifRevision: 3 },
    ],
    failure: [{ type: 'put', key: 'fail', value: true }],
  }) as TxnResult
  t.equal(ok.succeeded, true)
  t.equal(ok.results.length, 4, 'a result per op')
  t.same(ok.results[3], { revision: 3, createRevision: 1, version: 3, prevRevision: 3 }, 'later ops see earlier writes of the same txn')
  t.equal(kv.get('a')?.value, 3)
  t.equal(kv.get('new')?.value, 'n')
  t.equal(kv.get('b'), undefined)
  t.equal(kv.get('fail'), undefined)

  const other = applyOk(kv, { type: 'txn', compare: [{ key: 'a', revision: 1 }], success: [{ type: 'put', key: 'a', value: 99 }], failure: [{ type: 'put', key: 'fail', value: true }] }) as TxnResult
  t.equal(other.succeeded, false, 'a failed compare runs the failure branch')
  t.equal(kv.get('a')?.value, 3)
  t.equal(kv.get('fail')?.value, true)

  const [r] = applyCommands(kv, {
    type: 'txn',
    success: [
      { type: 'put', key: 'a', value: 'lost' },
      { type: 'delete', key: 'new' },
      { type: 'put', key: 'z', value: 'lost', ifRevision: 12345 },
    ],
  })
  t.equal(failed(r), 'REVISION_MISMATCH', 'an op whose ifRevision fails fails the txn')
  t.equal(kv.get('a')?.value, 3, 'the ops before it are rolled back')
  t.equal(kv.get('new')?.value, 'n')
  t.equal(kv.get('z'), undefined)
  t.same(kv.changesSince(3).map((c) => c.key), ['fail'], 'and left no change record')
})

t.test('range and prefix listing in key order, with limit and reverse', async (t) => {
  const { kv } = await freshKv(t)
  const keys = ['b', 'a', 'ab', 'abc', 'b/1', 'b/2', 'b/10', 'c', 'é', 'z', '\u{1F600}', '\uff5e']
  applyCommands(kv, ...keys.map((key, i) => ({ type: 'put' as const, key, value: i })), { type: 'put', bucket: 'other', key: 'b/3', value: 0 })
  const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  t.same(kv.list().map((x) => x.key), sorted, 'all keys in UTF-8 byte order')
  t.same(kv.list({ prefix: 'b/' }).map((x) => x.key), ['b/1', 'b/10', 'b/2'])
  t.same(kv.list({ prefix: 'ab' }).map((x) => x.key), ['ab', 'abc'])
  t.same(kv.list({ prefix: 'b/', limit: 2 }).map((x) => x.key), ['b/1', 'b/10'])
  t.same(kv.list({ prefix: 'b/', reverse: true }).map((x) => x.key), ['b/2', 'b/10', 'b/1'])
  t.same(kv.list({ prefix: 'b/', reverse: true, limit: 1 }).map((x) => x.key), ['b/2'])
  t.same(kv.list({ start: 'ab', end: 'b/10' }).map((x) => x.key), ['ab', 'abc', 'b', 'b/1'], 'start inclusive, end exclusive')
  t.same(kv.list({ start: 'ab', end: 'b/10', reverse: true }).map((x) => x.key), ['b/1', 'b', 'abc', 'ab'], 'the same range reversed')
  t.same(kv.list({ prefix: 'b', start: 'b/2' }).map((x) => x.key), ['b/2'], 'prefix and range intersect')
  t.same(kv.list({ start: 'z' }).map((x) => x.key), ['z', 'é', '\uff5e', '\u{1F600}'], 'code point order, not UTF-16 order')
  t.same(kv.list({ start: 'c', end: 'b' }), [], 'an empty range')
  t.same(kv.list({ prefix: 'nope' }), [])
  t.same(kv.list({ limit: 0 }), [])
  t.same(kv.list({ bucket: 'other' }).map((x) => x.key), ['b/3'])
  t.same(kv.list({ prefix: 'é' })[0]?.value, keys.indexOf('é'), 'values come along')
})

t.test('an oversized value is refused at encode and never written', async (t) => {
  const { kv } = await freshKv(t, { maxValueSize: 1000 })
  const err = catchErr(() => kv.encode({ type: 'put', key: 'big', value: new Uint8Array(1001) }))
  t.ok(isHoldfastError(err, 'TOO_LARGE'), 'TOO_LARGE')
  t.equal(kv.get('big'), undefined)
  t.equal(kv.appliedIndex(), 0, 'nothing reached the state machine')
  t.ok(kv.encode({ type: 'put', key: 'big', value: new Uint8Array(1000) }), 'at the limit is fine')
})

t.test('user commands run deterministically inside the apply transaction', async (t) => {
  const { kv } = await freshKv(t)
  kv.register('transfer', (tx, args) => {
    const { from, to, amount } = args as { from: string; to: string; amount: number }
    const a = (tx.get(from)?.value as number | undefined) ?? 0
    const b = (tx.get(to)?.value as number | undefined) ?? 0
    tx.put(from, a - amount)
    tx.put(to, b + amount)
    if (a - amount < 0) throw new Error(`insufficient funds in ${from}`)
    return { balance: (tx.get(from)?.value as number) ?? 0, revision: tx.revision, listed: tx.list({ prefix: 'acct/' }).length }
  })
  kv.register('async', async () => 1)
  kv.register('typed', (tx) => tx.put('acct/1', 0, { ifRevision: 0 }))
  t.equal(catchErr(() => kv.register('transfer', () => 1)) instanceof Error, true, 'a name registers once')

  applyOk(kv, { type: 'put', key: 'acct/1', value: 100 })
  const results = applyCommands(
    kv,
    { type: 'call', name: 'transfer', args: { from: 'acct/1', to: 'acct/2', amount: 30 } },
    { type: 'call', name: 'transfer', args: { from: 'acct/1', to: 'acct/2', amount: 500 } },
    { type: 'put', key: 'after', value: 'still applied' },
    { type: 'call', name: 'missing' },
    { type: 'call', name: 'async' },
    { type: 'call', name: 'typed' },
    { type: 'call', name: 'transfer', args: { from: 'acct/2', to: 'acct/3', amount: 10 } },
  )
  t.same(results[0], { index: 2, ok: true, result: { revision: 2, value: { balance: 70, revision: 2, listed: 2 } } }, 'handler result, reads see its own writes')
  t.equal(failed(results[1]), 'COMMAND_FAILED', 'a throwing handler fails its entry')
  t.match(results[1] && !results[1].ok ? results[1].error.message : '', /insufficient funds in acct\/1/, 'with its message')
  t.ok(results[2]?.ok, 'the next entry of the same batch succeeds')
  t.equal(failed(results[3]), 'UNKNOWN_COMMAND')
  t.equal(failed(results[4]), 'COMMAND_FAILED', 'an async handler is refused')
  t.equal(failed(results[5]), 'REVISION_MISMATCH', 'a HoldfastError from tx keeps its code')
  t.ok(results[6]?.ok)
  t.equal(kv.get('acct/1')?.value, 70, 'the failed transfer changed nothing')
  t.equal(kv.get('acct/2')?.value, 20)
  t.equal(kv.get('acct/3')?.value, 10)
  t.equal(kv.get('after')?.value, 'still applied')
  t.same(
    kv.changesSince(2).map((c) => `${c.revision}:${c.key}`),
    ['4:after', '8:acct/2', '8:acct/3'],
    'failed entries left no change records',
  )
  t.equal(kv.appliedIndex(), 8)
})

t.test('a handler cannot keep its tx, nor re-enter apply', async (t) => {
  const { kv } = await freshKv(t)
  let kept: { put(k: string, v: null): unknown } | undefined
  kv.register('keep', (tx) => {
    kept = tx
    return null
  })
  kv.register('reenter', () => kv.apply([entry(kv.appliedIndex() + 1, { type: 'put', key: 'x', value: 1 })]))
  applyOk(kv, { type: 'call', name: 'keep' })
  t.ok(isHoldfastError(catchErr(() => kept?.put('x', null)), 'CONTRACT_VIOLATION'), 'a kept tx is dead')
  t.equal(failed(applyCommands(kv, { type: 'call', name: 'reenter' })[0]), 'CONTRACT_VIOLATION')
  t.equal(kv.get('x'), undefined)
})

t.test('fencing: a stale token is refused and changes nothing', async (t) => {
  const { kv } = await freshKv(t)
  t.equal(kv.fenceToken(), 0)
  applyOk(kv, { type: 'put', key: 'k', value: 'v0', fence: 0 })
  t.same(applyOk(kv, { type: 'setFence', token: 5 }), { fence: 5 })
  t.same(applyOk(kv, { type: 'setFence', token: 3 }), { fence: 5 }, 'a lower token is ignored')
  t.equal(kv.fenceToken(), 5)
  const results = applyCommands(
    kv,
    { type: 'put', key: 'k', value: 'stale', fence: 4 },
    { type: 'delete', key: 'k', fence: 1 },
    { type: 'txn', success: [{ type: 'put', key: 'k', value: 'stale' }], fence: 4 },
    { type: 'call', name: 'whatever', fence: 2 },
    { type: 'put', key: 'k', value: 'current', fence: 5 },
    { type: 'put', key: 'k2', value: 'unfenced' },
    { type: 'put', key: 'k3', value: 'newer', fence: 9 },
  )
  t.same(results.map(failed), ['STALE_FENCE', 'STALE_FENCE', 'STALE_FENCE', 'STALE_FENCE', undefined, undefined, undefined])
  t.equal(kv.get('k')?.value, 'current')
  t.equal(kv.get('k2')?.value, 'unfenced')
  t.equal(kv.fenceToken(), 5, 'a newer token in an operation does not raise the current token')
})

t.test('membership, no-op and malformed entries only advance the applied index', async (t) => {
  const { kv } = await freshKv(t)
  const entries: Entry[] = [
    { index: 1, term: 1, type: 'normal', data: new Uint8Array(0) },
    { index: 2, term: 1, type: 'membership', data: new Uint8Array([1, 2, 3]) },
    { index: 3, term: 1, type: 'normal', data: new Uint8Array([1, 0xc1]) },
    entry(4, { type: 'put', key: 'k', value: 1 }),
  ]
  const results = kv.apply(entries)
  t.same(results.slice(0, 2), [{ index: 1, ok: true, result: undefined }, { index: 2, ok: true, result: undefined }])
  t.equal(failed(results[2]), 'DECODE_ERROR', 'a malformed command fails its entry')
  t.same(results[3], { index: 4, ok: true, result: { revision: 4, createRevision: 4, version: 1, prevRevision: 0 } })
  t.equal(kv.appliedIndex(), 4)
})

t.test('apply refuses gaps and out-of-order batches, applying nothing', async (t) => {
  const { kv } = await freshKv(t)
  applyOk(kv, { type: 'put', key: 'k', value: 1 })
  t.ok(isHoldfastError(catchErr(() => kv.apply([entry(3, { type: 'put', key: 'k', value: 2 })])), 'CONTRACT_VIOLATION'), 'a gap')
  t.ok(isHoldfastError(catchErr(() => kv.apply([entry(2, { type: 'put', key: 'k', value: 2 }), entry(4, { type: 'put', key: 'k', value: 3 })])), 'CONTRACT_VIOLATION'), 'a hole in the batch')
  t.equal(kv.get('k')?.value, 1)
  t.equal(kv.appliedIndex(), 1)
  t.same(kv.apply([]), [])
})

t.test('exactly-once: entries at or below the applied index are skipped, across reopen', async (t) => {
  const dir = await tempDir(t)
  let env = openEnv(t, dir)
  let kv = KvStateMachine.open(env)
  const batch = [
    entry(1, { type: 'put', key: 'n', value: 1 }),
    entry(2, { type: 'txn', compare: [{ key: 'n', revision: 1 }], success: [{ type: 'put', key: 'n', value: 2 }] }),
    entry(3, { type: 'setFence', token: 4 }),
  ]
  kv.apply(batch)
  kv.close()
  await env.close()

  env = openEnv(t, dir)
  kv = KvStateMachine.open(env)
  t.teardown(() => kv.close())
  t.equal(kv.appliedIndex(), 3, 'the applied index survived')
  t.equal(kv.fenceToken(), 4, 'so did the fence')
  const again = kv.apply([...batch, entry(4, { type: 'put', key: 'n', value: 3, ifRevision: 2 })])
  t.same(again.slice(0, 3), batch.map((e) => ({ index: e.index, ok: true, result: undefined, skipped: true })), 'replayed entries are skipped')
  t.ok(again[3]?.ok, 'the new one applies')
  t.same(kv.get('n'), { bucket: 'default', key: 'n', value: 3, createRevision: 1, modRevision: 4, version: 3 }, 'nothing applied twice')
  t.same(kv.apply(batch).map((r) => r.ok && r.skipped), [true, true, true], 'a fully replayed batch is all skipped')
})

/** Log storage in `dir` and a state machine sharing its environment (as the node opens them); closed at teardown. */
async function openWithStorage(t: Test, dir: string): Promise<{ storage: LmdbStorage; kv: KvStateMachine }> {
  const storage = await LmdbStorage.open(dir)
  t.teardown(() => storage.close())
  const kv = KvStateMachine.open(storage.env)
  t.teardown(() => kv.close())
  return { storage, kv }
}

t.test('shares the environment of LmdbStorage', async (t) => {
  const dir = await tempDir(t)
  const { storage, kv } = await openWithStorage(t, dir)
  const entries = [entry(1, { type: 'put', key: 'k', value: 'v' }), entry(2, { type: 'put', bucket: 'b', key: 'k', value: 'w' })]
  await storage.save({ entries, hardState: { term: 1, vote: null, commit: 2 } }, true)
  kv.apply(storage.entries(1, 3))
  t.equal(kv.get('k')?.value, 'v')
  t.equal(kv.get('k', { bucket: 'b' })?.value, 'w')
  t.equal(storage.lastIndex(), 2, 'the log is untouched')
  kv.close()
  await storage.close()

  const { storage: reopened, kv: kv2 } = await openWithStorage(t, dir)
  t.equal(kv2.appliedIndex(), 2)
  t.equal(kv2.get('k')?.value, 'v')
})

t.test('applyWithin: applied in the log write\'s transaction, visible only once published', async (t) => {
  const dir = await tempDir(t)
  const { storage, kv } = await openWithStorage(t, dir)
  const events: number[] = []
  kv.subscribe((e) => e.type === 'apply' && events.push(e.appliedIndex))
  const first = [entry(1, { type: 'put', key: 'k', value: 'v1' })]
  await storage.save({ entries: first, hardState: { term: 1, vote: null, commit: 1 } }, true)
  // Entry 2 is written and entry 1 applied in one transaction.
  let within: ReturnType<KvStateMachine['applyWithin']> | undefined
  await storage.save({ entries: [entry(2, { type: 'put', key: 'k', value: 'v2' })] }, true, () => (within = kv.applyWithin(first)))
  t.ok(within, 'ran inside the save')
  t.same(within!.results.map((r) => r.ok), [true])
  t.equal(kv.appliedIndex(), 0, 'not published yet: the view has not moved')
  t.same(events, [], 'no apply event before publish')
  t.ok(isHoldfastError(catchErr(() => kv.apply(storage.entries(2, 3))), 'CONTRACT_VIOLATION'), 'another apply before publish is refused')
  within!.publish()
  t.equal(kv.appliedIndex(), 1)
  t.same(events, [1])
  t.equal(kv.get('k')?.value, 'v1')
  within!.publish()
  t.same(events, [1], 'publishing twice changes nothing')
  kv.close()
  await storage.close()
  const { storage: reopened, kv: kv2 } = await openWithStorage(t, dir)
  t.equal(kv2.appliedIndex(), 1, 'the apply committed with the log write')
  t.equal(reopened.lastIndex(), 2)
})

t.test('changes committed by applyWithin but not yet published are not read: a watch neither skips nor repeats them', async (t) => {
  const dir = await tempDir(t)
  const { storage, kv } = await openWithStorage(t, dir)
  const es = [entry(1, { type: 'put', key: 'a', value: 1 }), entry(2, { type: 'put', key: 'b', value: 2 })]
  await storage.save({ entries: es, hardState: { term: 1, vote: null, commit: 2 } }, true)
  kv.apply(es.slice(0, 1))
  let within: ReturnType<KvStateMachine['applyWithin']> | undefined
  await storage.save({ entries: [entry(3, { type: 'put', key: 'c', value: 3 })] }, true, () => (within = kv.applyWithin(es.slice(1))))
  // Entry 2 is committed in LMDB, not published.
  const before = kv.changesPage({ revision: 0 })
  t.same(before.changes.map((c) => c.key), ['a'], 'only the published change')
  t.same(before.next, { revision: 1 }, 'the position stops at the published index')
  within!.publish()
  const after = kv.changesPage(before.next)
  t.same(after.changes.map((c) => c.key), ['b'], 'the rest after publish, once')
  t.same(after.next, { revision: 2 })
  t.same(kv.changesPage(after.next).changes, [], 'nothing repeats')
})

t.test('applyWithin: when the enclosing save fails, nothing of the apply or the save remains', async (t) => {
  const dir = await tempDir(t)
  const { storage, kv } = await openWithStorage(t, dir)
  const first = [entry(1, { type: 'put', key: 'k', value: 'v1' })]
  await storage.save({ entries: first, hardState: { term: 1, vote: null, commit: 1 } }, true)
  const err = await storage
    .save({ entries: [entry(2, { type: 'put', key: 'k', value: 'v2' })] }, true, () => {
      kv.applyWithin(first)
      throw new Error('disk on fire')
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    )
  t.ok(isHoldfastError(err, 'CLOSED'), 'the save failed, and the storage with it')
  t.equal(kv.get('k'), undefined, 'the apply was rolled back')
  t.equal(storage.lastIndex(), 1, 'the log write was rolled back')
  kv.close()
  await storage.close()
  const { storage: reopened, kv: kv2 } = await openWithStorage(t, dir)
  t.equal(kv2.appliedIndex(), 0, 'nothing applied on disk')
  t.equal(kv2.get('k'), undefined)
  t.equal(reopened.lastIndex(), 1)
})

t.test('a damaged state record is refused at open', async (t) => {
  const dir = await tempDir(t)
  const env = openEnv(t, dir)
  KvStateMachine.open(env).close()
  const meta = env.openDB<Uint8Array, string>('kv.meta', { encoding: 'binary' })
  const good = meta.get('state')!
  const bad = Buffer.from(good)
  bad[bad.length - 1]! ^= 0xff
  await meta.put('state', bad)
  t.ok(isHoldfastError(catchErr(() => KvStateMachine.open(env)), 'CORRUPT_DATA'), 'checksum mismatch')
  await meta.put('state', Buffer.concat([Buffer.of(99), good.subarray(1)]))
  const err = catchErr(() => KvStateMachine.open(env))
  t.ok(isHoldfastError(err, 'CORRUPT_DATA'), 'unknown layout version')
  t.match(err instanceof Error ? err.message : '', /layout version 99/)
})

