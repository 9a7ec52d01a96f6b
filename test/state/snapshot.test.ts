import t from 'tap'
import type { Test } from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import type { Command } from '../../src/state/commands.js'
import { KvStateMachine, RESTORE_COMMIT_BYTES } from '../../src/state/kv.js'
import type { KeyValue } from '../../src/state/tx.js'
import { applyCommands, applyOk, collect, freshKv, from, openEnv, tempDir, catchErr } from './helpers.js'

const BUCKETS = ['default', 'other', 'third']

/** Everything observable of a state machine's data, for comparison. */
function dump(kv: KvStateMachine): { applied: number; fence: number; data: Record<string, unknown[]> } {
  const data: Record<string, unknown[]> = {}
  const plain = (x: KeyValue): unknown[] => [x.key, x.value instanceof Uint8Array ? `bytes:${Buffer.from(x.value).toString('base64')}` : x.value, x.createRevision, x.modRevision, x.version]
  for (const b of BUCKETS) data[b] = kv.list({ bucket: b }).map(plain)
  return { applied: kv.appliedIndex(), fence: kv.fenceToken(), data }
}

function workload(n: number, offset = 0): Command[] {
  const out: Command[] = []
  for (let i = offset; i < offset + n; i++) {
    const bucket = BUCKETS[i % 3]!
    if (i % 9 === 4) out.push({ type: 'delete', bucket, key: `key/${(i * 7) % 50}` })
    else if (i === 10) out.push({ type: 'put', key: 'big', value: new Uint8Array(200_000).fill(7) })
    else if (i === 20) out.push({ type: 'setFence', token: 3 })
    else out.push({ type: 'put', bucket, key: `key/${(i * 7) % 50}`, value: i % 2 ? { i, s: 'x'.repeat(i % 40) } : new Uint8Array([i & 255, 1, 2]) })
  }
  return out
}

/** A state machine with some state of its own, to check a failed restore leaves it be. */
async function target(t: Test): Promise<KvStateMachine> {
  const { kv } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'mine', value: 'old state' }, { type: 'put', bucket: 'other', key: 'x', value: 1 })
  return kv
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (err: unknown) => err)
}

t.test('snapshot then restore into another environment gives identical state', async (t) => {
  const { kv: source } = await freshKv(t, { snapshotChunkSize: 512 })
  applyCommands(source, ...workload(300))
  const before = dump(source)
  const snap = source.snapshot()
  t.same(snap.meta, { appliedIndex: 300, fence: 3, generation: 0 })
  // Applies after the snapshot began must not leak into it: it is one read transaction.
  applyCommands(source, { type: 'put', key: 'later', value: 1 }, { type: 'delete', bucket: 'other', key: 'key/0' })
  const chunks = await collect(snap.chunks)
  t.ok(chunks.length > 10, `streamed in chunks (${chunks.length})`)
  t.ok(chunks.some((c) => c.byteLength > 200_000), 'a large value travels in one frame')

  const kv = await target(t)
  const meta = await kv.restore(from(chunks))
  t.same(meta, snap.meta, 'restore resolves with the snapshot meta')
  t.same(dump(kv), before, 'identical data, applied index and fence')
  t.equal(kv.get('later'), undefined)
  t.equal(kv.get('mine'), undefined, 'the old state is gone')
  t.equal(kv.changesSince(300).length, 0, 'the change history restarts at the snapshot')
  t.ok(isHoldfastError(catchErr(() => kv.changesSince(299)), 'COMPACTED'), 'older history is reported compacted')
  const [r] = applyCommands(kv, { type: 'put', key: 'key/1', value: 'next', fence: 3 })
  t.ok(r?.ok && r.index === 301, 'applying continues after the snapshot index')
  t.equal(kv.get('key/1')?.modRevision, 301)
  t.equal(kv.changesSince(300).length, 1)
  t.ok(isHoldfastError(await rejection(collect(snap.chunks)), 'CONTRACT_VIOLATION'), 'a snapshot is read once')
})

t.test('the restored state survives reopening, and repeated restores alternate slots', async (t) => {
  const dir = await tempDir(t)
  let env = openEnv(t, dir)
  let kv = KvStateMachine.open(env)
  const { kv: source } = await freshKv(t)
  for (let round = 0; round < 3; round++) {
    applyCommands(source, ...workload(40, round * 40))
    await kv.restore(source.snapshot().chunks)
    t.same(dump(kv), dump(source), `round ${round}: identical`)
  }
  kv.close()
  await env.close()
  env = openEnv(t, dir)
  kv = KvStateMachine.open(env)
  t.teardown(() => kv.close())
  t.same(dump(kv), dump(source), 'identical after reopening')
  for (const slot of [0, 1]) {
    const n = env.openDB(`kv.data.${slot}`, { encoding: 'binary', keyEncoding: 'binary' }).getKeysCount()
    t.ok(n === 0 || n === kv.list({ bucket: 'default' }).length + kv.list({ bucket: 'other' }).length + kv.list({ bucket: 'third' }).length, `slot ${slot} is either live or empty`)
  }
})

t.test('a truncated or corrupted stream is refused and the old state stays', async (t) => {
  const { kv: source } = await freshKv(t, { snapshotChunkSize: 2048 })
  applyCommands(source, ...workload(120))
  const chunks = await collect(source.snapshot().chunks)
  const whole = Buffer.concat(chunks)
  const flipped = Buffer.from(whole)
  flipped[Math.floor(flipped.byteLength / 2)]! ^= 0x20
  const cases: [string, Uint8Array[]][] = [
    ['missing last chunk', chunks.slice(0, -1)],
    ['cut inside the trailer', [whole.subarray(0, whole.byteLength - 5)]],
    ['cut at a chunk boundary mid-stream', chunks.slice(0, Math.floor(chunks.length / 2))],
    ['one flipped bit', [flipped]],
    ['data after the trailer', [...chunks, new Uint8Array([1])]],
    ['bad magic', [Buffer.from('nope'), ...chunks]],
    ['empty', []],
    ['a bad frame length', [whole.subarray(0, 4), Buffer.from([2, 0xff, 0xff, 0xff, 0xff]), whole.subarray(4)]],
  ]
  const kv = await target(t)
  const before = dump(kv)
  for (const [what, stream] of cases) {
    const err = await rejection(kv.restore(from(stream)))
    t.ok(isHoldfastError(err, 'CORRUPT_DATA'), `${what}: CORRUPT_DATA`, { error: err })
    t.same(dump(kv), before, `${what}: old state intact`)
  }
  // The flipped byte lands in a record, whose own checksum fails before the stream's digest is reached.
  t.match((await rejection(kv.restore(from([flipped])))) as Error, { message: /checksum/ })
  t.match((await rejection(kv.restore(from(chunks.slice(0, -1))))) as Error, { message: /truncated/ })
  applyOk(kv, { type: 'put', key: 'mine', value: 'still usable' })
  t.equal(kv.get('mine')?.value, 'still usable', 'and it keeps applying')
  await kv.restore(from(chunks))
  t.same(dump(kv), dump(source), 'a good stream still restores afterwards')
})

t.test('a source failing mid-restore leaves the old state intact and usable', async (t) => {
  const { kv: source } = await freshKv(t, { snapshotChunkSize: 1024 })
  applyCommands(source, ...workload(200))
  const chunks = await collect(source.snapshot().chunks)
  const kv = await target(t)
  const before = dump(kv)
  const failing = async function* (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < chunks.length / 2; i++) yield chunks[i]!
    throw new Error('connection lost')
  }
  const err = await rejection(kv.restore(failing()))
  t.match(err, { message: 'connection lost' }, "the source's error propagates")
  t.same(dump(kv), before, 'old state intact')
  t.equal(kv.snapshot().meta.appliedIndex, 2, 'and snapshots of it still work')
  const [r] = applyCommands(kv, { type: 'put', key: 'k', value: 1 })
  t.equal(r?.index, 3, 'apply continues from the old applied index')
})

t.test('during a restore, reads see the old state and apply is refused', async (t) => {
  const { kv: source } = await freshKv(t, { snapshotChunkSize: 1024 })
  applyCommands(source, ...workload(100))
  const chunks = await collect(source.snapshot().chunks)
  const kv = await target(t)
  const before = dump(kv)
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let reached!: () => void
  const halfway = new Promise<void>((r) => (reached = r))
  const slow = async function* (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < chunks.length; i++) {
      if (i === Math.floor(chunks.length / 2)) {
        reached()
        await gate
      }
      yield chunks[i]!
    }
  }
  const restoring = kv.restore(slow())
  await halfway
  t.same(dump(kv), before, 'reads see the old state mid-restore')
  t.ok(isHoldfastError(catchErr(() => applyCommands(kv, { type: 'put', key: 'x', value: 1 })), 'CONTRACT_VIOLATION'), 'apply is refused')
  t.ok(isHoldfastError(await rejection(kv.restore(from(chunks))), 'CONTRACT_VIOLATION'), 'so is a second restore')
  const watcher = kv.watch({ fromRevision: 3 })
  const watched = rejection(watcher.next())
  release()
  await restoring
  t.same(dump(kv), dump(source))
  t.ok(isHoldfastError(await watched, 'COMPACTED'), 'a watcher behind the restored snapshot gets COMPACTED')
})

t.test('a restore writes its records in a few transactions of about RESTORE_COMMIT_BYTES each, before the stream ends', async (t) => {
  const { kv: source } = await freshKv(t)
  // About 2.5 times the bound, in frames of about 64 KiB.
  const valueBytes = 64 * 1024
  const count = Math.ceil((2.5 * RESTORE_COMMIT_BYTES) / valueBytes)
  for (let i = 0; i < count; i += 20) {
    applyCommands(source, ...Array.from({ length: Math.min(20, count - i) }, (_, j): Command => ({ type: 'put', key: `k/${String(i + j).padStart(5, '0')}`, value: new Uint8Array(valueBytes).fill((i + j) & 255) })))
  }
  const chunks = await collect(source.snapshot().chunks)
  const { kv, env } = await freshKv(t)
  const idle = env.openDB<Uint8Array, Uint8Array>('kv.data.1', { encoding: 'binary', keyEncoding: 'binary' })
  /** Records committed to the idle slot when each chunk is handed out. */
  const seen: number[] = []
  async function* observed(): AsyncGenerator<Uint8Array> {
    for (const c of chunks) {
      seen.push(idle.getKeysCount())
      yield c
    }
  }
  await kv.restore(observed())
  t.same(dump(kv), dump(source), 'identical state')
  const steps = [...new Set(seen.filter((n) => n > 0))]
  t.ok(steps.length >= 2, `records were committed while the stream was read (${steps.join(', ')}), so memory stays bounded`)
  const perCommit = steps[0]!
  t.ok(Math.abs(perCommit * valueBytes - RESTORE_COMMIT_BYTES) <= valueBytes, `a commit holds about RESTORE_COMMIT_BYTES of records (${perCommit} of ${valueBytes} bytes), not one frame`)
  t.ok(
    steps.every((n, i) => n === perCommit * (i + 1)),
    'every commit holds as many',
  )
})

t.test('leftovers of a restore that crashed before its switch are cleared at open', async (t) => {
  const dir = await tempDir(t)
  let env = openEnv(t, dir)
  let kv = KvStateMachine.open(env)
  applyCommands(kv, { type: 'put', key: 'k', value: 'live' })
  kv.close()
  // What a crash mid-restore leaves: records in the idle slot, the state record unchanged.
  const idle = env.openDB<Uint8Array, Uint8Array>('kv.data.1', { encoding: 'binary', keyEncoding: 'binary' })
  await idle.put(Buffer.from('default\0k'), Buffer.from([0x94, 1, 1, 1, 0xa4, 0x6a, 0x75, 0x6e, 0x6b]))
  await env.close()
  env = openEnv(t, dir)
  kv = KvStateMachine.open(env)
  t.teardown(() => kv.close())
  t.equal(kv.get('k')?.value, 'live', 'the live state is the old one')
  t.equal(env.openDB('kv.data.1', { encoding: 'binary', keyEncoding: 'binary' }).getKeysCount(), 0, 'the idle slot was cleared')
})

t.test('release ends an unread snapshot', async (t) => {
  const { kv } = await freshKv(t)
  applyCommands(kv, { type: 'put', key: 'k', value: 1 })
  const snap = kv.snapshot()
  snap.release()
  snap.release()
  t.ok(isHoldfastError(await rejection(collect(snap.chunks)), 'CONTRACT_VIOLATION'), 'cannot be read after release')
  const early = kv.snapshot()
  for await (const chunk of early.chunks) {
    t.ok(chunk.byteLength > 0)
    break
  }
  t.ok(isHoldfastError(await rejection(collect(early.chunks)), 'CONTRACT_VIOLATION'), 'breaking out of the iteration released it')
})

