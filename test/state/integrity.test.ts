/**
 * Value and change records carry a version, a kind and a CRC-32 bound to their key (layout.ts):
 * a damaged record is CORRUPT_DATA, naming the key or revision and the data file, at every read
 * (get, list, changes, command tx reads, snapshot streaming, restore), never a wrong value.
 * Records are damaged through a raw lmdb-js handle on the same sub-database, or in the file.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { RootDatabase } from 'lmdb'
import { isHoldfastError } from '../../src/errors.js'
import { KvStateMachine } from '../../src/state/kv.js'
import { KV_LAYOUT_VERSION, RecordKind, changeKey, dataKey, encodeChange, encodeState, verifyRecord } from '../../src/state/layout.js'
import { writeSnapshot } from '../../src/state/snapshot.js'
import type { SnapshotRecord } from '../../src/state/snapshot.js'
import { applyCommands, collect, entry, freshKv, from, openEnv, tempDir, catchErr } from './helpers.js'

const bin = { encoding: 'binary', keyEncoding: 'binary' } as const

/** A raw handle on a sub-database of the state machine (slot 0 is live in a fresh one). */
function raw(env: RootDatabase, db: string): ReturnType<RootDatabase['openDB']> {
  return env.openDB<Uint8Array, Uint8Array>(db, bin)
}

function flip(bytes: Uint8Array, at: number, mask = 0x01): Buffer {
  const out = Buffer.from(bytes)
  out[at]! ^= mask
  return out
}


async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (err: unknown) => err)
}

/** `err` is CORRUPT_DATA whose message matches every pattern. */
function corrupt(t: Test, err: unknown, what: string, ...patterns: (string | RegExp)[]): void {
  t.ok(isHoldfastError(err, 'CORRUPT_DATA'), `${what}: CORRUPT_DATA`, { error: err })
  const message = err instanceof Error ? err.message : ''
  for (const p of patterns) t.match(message, p, `${what}: the message names ${String(p)}`)
}

t.test('a flipped byte in a stored value: get and list are CORRUPT_DATA; good records still read', async (t) => {
  const { kv, env, dir } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'a', value: 'alpha' }, { type: 'put', key: 'b', value: { n: 2, s: 'bravo' } }, { type: 'put', key: 'c', value: new Uint8Array([1, 2, 3]) })
  const data = raw(env, 'kv.data.0')
  const k = dataKey('default', 'b')
  const good = data.get(k) as Uint8Array
  const file = join(dir, 'holdfast.mdb')
  // Every single-bit error anywhere in the record (version, kind, body, checksum) is caught: CRC-32 detects them all.
  let wrong = 0
  let missed = 0
  for (let at = 0; at < good.byteLength; at++) {
    for (let bit = 0; bit < 8; bit++) {
      data.putSync(k, flip(good, at, 1 << bit))
      const err = catchErr(() => kv.get('b'))
      if (!isHoldfastError(err, 'CORRUPT_DATA')) {
        missed++
        if (err === undefined) wrong++
      }
    }
  }
  t.equal(missed, 0, `all ${good.byteLength * 8} single-bit flips are CORRUPT_DATA (${wrong} returned a value)`)
  data.putSync(k, flip(good, Math.floor(good.byteLength / 2)))
  corrupt(t, catchErr(() => kv.get('b')), 'get', "'default'/'b'", file, 'kv.data.0', /fails its checksum/)
  corrupt(t, catchErr(() => kv.list()), 'list', "'default'/'b'", file)
  corrupt(t, catchErr(() => kv.list({ reverse: true })), 'list reversed', "'default'/'b'")
  t.equal(kv.get('a')?.value, 'alpha', 'a good record still reads')
  t.same(kv.get('c')?.value, new Uint8Array([1, 2, 3]), 'and another')
  t.same(kv.list({ end: 'b' }).map((x) => x.key), ['a'], 'a range without the damaged key lists')
  t.same(kv.list({ start: 'c' }).map((x) => x.key), ['c'])
  t.same(kv.list({ bucket: 'other' }), [], 'other buckets are unaffected')
  // A write replaces the damaged record with a good one.
  data.putSync(k, good)
  t.same(kv.get('b')?.value, { n: 2, s: 'bravo' }, 'the original record reads again')
})

t.test('truncated, empty, moved and mis-kinded records are CORRUPT_DATA', async (t) => {
  const { kv, env } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'a', value: 'alpha' }, { type: 'put', key: 'b', value: 'bravo' })
  const data = raw(env, 'kv.data.0')
  const a = data.get(dataKey('default', 'a')) as Uint8Array
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['cut to 6 bytes', a.subarray(0, 6)],
    ['last byte missing', a.subarray(0, a.byteLength - 1)],
    ['a byte appended', Buffer.concat([a, Buffer.of(0)])],
    // The checksum covers the key: a record that is valid under 'a' is not valid under 'b'.
    ["a's record under b", a],
    // Valid checksum for its key, but a change record.
    [
      'a change record',
      encodeChange(dataKey('default', 'b'), { revision: 2, seq: 0, type: 'put', bucket: 'default', key: 'b', value: 'bravo', createRevision: 2, version: 1, prevRevision: 0 }),
    ],
  ]
  const bKey = dataKey('default', 'b')
  const good = data.get(bKey) as Uint8Array
  for (const [what, bytes] of cases) {
    data.putSync(bKey, bytes)
    corrupt(t, catchErr(() => kv.get('b')), what, "'default'/'b'")
    t.equal(kv.get('a')?.value, 'alpha', `${what}: the neighbour still reads`)
  }
  data.putSync(bKey, cases[5]![1])
  corrupt(t, catchErr(() => kv.get('b')), 'kind', /record kind 2 where a value record/)
  data.putSync(bKey, good)
  t.equal(kv.get('b')?.value, 'bravo')
})

t.test('a flipped byte in a change record: changesSince, changesPage and watch are CORRUPT_DATA naming the revision', async (t) => {
  const { kv, env, dir } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'a', value: 1 }, { type: 'put', key: 'b', value: 2 }, { type: 'put', key: 'c', value: 3 })
  const changes = raw(env, 'kv.changes.0')
  const ck = changeKey(2, 0)
  const good = changes.get(ck) as Uint8Array
  changes.putSync(ck, flip(good, good.byteLength - 7))
  const file = join(dir, 'holdfast.mdb')
  corrupt(t, catchErr(() => kv.changesSince(0)), 'changesSince', 'revision 2 change 0', file, 'kv.changes.0')
  corrupt(t, catchErr(() => kv.changesPage({ revision: 1 }, { limit: 1 })), 'changesPage')
  t.same(kv.changesSince(2).map((c) => c.key), ['c'], 'changes after the damaged one still read')
  t.same(kv.changesPage({ revision: 0 }, { limit: 1 }).changes.map((c) => c.key), ['a'], 'and before it')
  // One change per page, so the watch delivers what precedes the damage before it meets it.
  const w = kv.watch({ fromRevision: 1, batchSize: 1 })
  t.equal((await w.next()).value?.key, 'a')
  corrupt(t, await rejection(w.next()), 'watch', 'revision 2')
  // A change record moved to another revision fails too (the key is checksummed).
  changes.putSync(ck, changes.get(changeKey(3, 0)) as Uint8Array)
  corrupt(t, catchErr(() => kv.changesSince(1)), 'moved change record', 'revision 2')
})

t.test('a damaged record met while applying aborts the batch; a handler cannot hide it', async (t) => {
  const { kv, env } = await freshKv(t)
  kv.register('swallow', (tx) => {
    try {
      return tx.get('b')
    } catch {
      return 'hidden'
    }
  })
  kv.register('list', (tx) => tx.list().length)
  applyCommands(kv, { type: 'put', key: 'b', value: 'bravo' })
  const data = raw(env, 'kv.data.0')
  const bKey = dataKey('default', 'b')
  const good = data.get(bKey) as Uint8Array
  data.putSync(bKey, flip(good, 3))
  // Failing only this replica's entry would make its state diverge from the others': the apply must throw.
  const cases: [string, Parameters<typeof applyCommands>[1]][] = [
    ['a put over it', { type: 'put', key: 'b', value: 'new' }],
    ['a delete of it', { type: 'delete', key: 'b' }],
    ['a txn comparing it', { type: 'txn', compare: [{ key: 'b', revision: 1 }], success: [{ type: 'put', key: 'x', value: 1 }] }],
    ['a handler catching the error', { type: 'call', name: 'swallow' }],
    ['a handler listing it', { type: 'call', name: 'list' }],
  ]
  for (const [what, cmd] of cases) {
    const err = catchErr(() => kv.apply([entry(2, { type: 'put', key: 'first', value: 1 }), entry(3, cmd)]))
    corrupt(t, err, what, "'default'/'b'")
    t.equal(kv.appliedIndex(), 1, `${what}: nothing applied`)
    t.equal(kv.get('first'), undefined, `${what}: not even the entry before it`)
  }
  data.putSync(bKey, good)
  const [r] = applyCommands(kv, { type: 'call', name: 'swallow' })
  t.ok(r?.ok && (r.result as { value: { value: unknown } }).value.value === 'bravo', 'with the record intact the same entry applies')
})

t.test('snapshot streaming verifies records: a damaged one fails the stream, not the restore of a digest-valid copy', async (t) => {
  const { kv, env } = await freshKv(t, { snapshotChunkSize: 256 })
  for (let i = 0; i < 50; i++) applyCommands(kv, { type: 'put', key: `k${String(i).padStart(2, '0')}`, value: `value ${i}` })
  const data = raw(env, 'kv.data.0')
  const k = dataKey('default', 'k30')
  const good = data.get(k) as Uint8Array
  data.putSync(k, flip(good, 5))
  corrupt(t, await rejection(collect(kv.snapshot().chunks)), 'snapshot', "'default'/'k30'", 'kv.data.0')
  data.putSync(k, good)
  const chunks = await collect(kv.snapshot().chunks)
  t.ok(chunks.length > 1, 'a good state streams')
})

t.test('restore verifies each record before writing it; restored records are checksummed', async (t) => {
  const { kv: source, env: sourceEnv } = await freshKv(t)
  for (let i = 0; i < 30; i++) applyCommands(source, { type: 'put', key: `k${String(i).padStart(2, '0')}`, value: { i } })
  const records: SnapshotRecord[] = [...raw(sourceEnv, 'kv.data.0').getRange()].map(({ key, value }) => ({ key: Buffer.from(key as Uint8Array), value: Buffer.from(value as Uint8Array) }))
  const meta = { appliedIndex: source.appliedIndex(), fence: 0, generation: 0 }
  // A stream whose digest is valid (written over the damaged bytes) but with a damaged record.
  const bad = records.map((r, i) => (i === 17 ? { key: r.key, value: flip(r.value, 4) } : r))
  const { kv, env } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'mine', value: 'old state' })
  corrupt(t, await rejection(kv.restore(writeSnapshot(meta, bad, 512))), 'restore', 'snapshot stream', "'default'/'k17'", /fails its checksum/)
  t.equal(kv.get('mine')?.value, 'old state', 'the old state stays')
  t.equal(kv.appliedIndex(), 1)

  await kv.restore(writeSnapshot(meta, records, 512))
  t.same(
    kv.list().map((x) => x.value),
    Array.from({ length: 30 }, (_, i) => ({ i })),
    'a good stream restores',
  )
  // The restored slot (1) holds the records in the checksummed form reads verify.
  const restored = [...raw(env, 'kv.data.1').getRange()]
  t.equal(restored.length, 30)
  t.ok(
    restored.every(({ key, value }) => verifyRecord(key as Uint8Array, value as Uint8Array, RecordKind.value, 'test') === undefined),
    'every restored record verifies',
  )
  const k = dataKey('default', 'k05')
  raw(env, 'kv.data.1').putSync(k, flip(raw(env, 'kv.data.1').get(k) as Uint8Array, 6))
  corrupt(t, catchErr(() => kv.get('k05')), 'a damaged restored record', "'default'/'k05'", 'kv.data.1')
})

t.test('a flipped byte in the data file: CORRUPT_DATA after reopening, naming the key and file', async (t) => {
  const dir = await tempDir(t)
  let env = openEnv(t, dir)
  let kv = KvStateMachine.open(env)
  const marker = 'integrity-marker-0042'
  for (let i = 0; i < 40; i++) applyCommands(kv, { type: 'put', key: `k${i}`, value: { m: i === 7 ? marker : `plain-${i}`, pad: 'p'.repeat(100) } })
  kv.close()
  await env.close()
  const file = join(dir, 'holdfast.mdb')
  const intact = await readFile(file)
  const bytes = Buffer.from(intact)
  let hits = 0
  // Copy-on-write may leave stale copies in free pages: flip every copy so the live one is hit.
  for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1), hits++) bytes[at + 5]! ^= 0x01
  t.ok(hits >= 1, `the value is in the file (${hits} copies)`)
  await writeFile(file, bytes)
  env = openEnv(t, dir)
  kv = KvStateMachine.open(env)
  corrupt(t, catchErr(() => kv.get('k7')), 'get', "'default'/'k7'", file)
  corrupt(t, catchErr(() => kv.list()), 'list', file)
  t.equal((kv.get('k8')?.value as { m: string }).m, 'plain-8', 'other keys read')
  kv.close()
  await env.close()
  await writeFile(file, intact)
  env = openEnv(t, dir)
  kv = KvStateMachine.open(env)
  t.teardown(() => kv.close())
  t.equal((kv.get('k7')?.value as { m: string }).m, marker, 'the intact file reads')
})

t.test('state of an older layout (records without checksums) is refused at open', async (t) => {
  const dir = await tempDir(t)
  const env = openEnv(t, dir)
  KvStateMachine.open(env).close()
  const meta = env.openDB<Uint8Array, string>('kv.meta', { encoding: 'binary' })
  const current = Buffer.from(encodeState({ slot: 0, generation: 0, applied: 0, fence: 0, retained: 1 }))
  t.equal(current[0], KV_LAYOUT_VERSION)
  current[0] = KV_LAYOUT_VERSION - 1
  await meta.put('state', current)
  corrupt(t, catchErr(() => KvStateMachine.open(env)), 'layout 1', /layout version 1 is not supported/, /older holdfast/, join(dir, 'holdfast.mdb'))
})
