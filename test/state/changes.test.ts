import t from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import type { Command } from '../../src/state/commands.js'
import { KvStateMachine } from '../../src/state/kv.js'
import type { Change } from '../../src/state/layout.js'
import { applyCommands, freshKv, openEnv, catchErr } from './helpers.js'

const tag = (c: Change): string => `${c.revision}.${c.seq} ${c.type} ${c.bucket}/${c.key}=${JSON.stringify(c.value ?? null)}`

/** A deterministic mix of puts, deletes and multi-change txns over a few buckets. */
function workload(n: number): Command[] {
  const out: Command[] = []
  for (let i = 0; i < n; i++) {
    const key = `k${i % 17}`
    const bucket = i % 5 === 0 ? 'other' : 'default'
    if (i % 7 === 3) out.push({ type: 'delete', bucket, key })
    else if (i % 11 === 5) out.push({ type: 'txn', success: [{ type: 'put', key: `t/${i}/a`, value: i }, { type: 'put', key: `t/${i}/b`, value: i }, { type: 'delete', key: 'k1' }] })
    else out.push({ type: 'put', bucket, key, value: i })
  }
  return out
}

t.test('changesSince returns every change after a revision, in order', async (t) => {
  const { kv } = await freshKv(t)
  const all: Change[] = []
  kv.subscribe((e) => {
    if (e.type === 'apply') all.push(...e.changes)
  })
  const cmds = workload(400)
  for (let i = 0; i < cmds.length; i += 37) applyCommands(kv, ...cmds.slice(i, i + 37))
  t.equal(kv.appliedIndex(), 400)
  t.ok(all.length > 400, 'txns make several changes at one revision')
  const history = kv.changesSince(0, { bucket: null })
  t.same(history.map(tag), all.map(tag), 'the stored history equals what the apply events announced')
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1]!
    const b = history[i]!
    if (!(a.revision < b.revision || (a.revision === b.revision && b.seq === a.seq + 1))) t.fail(`out of order at ${i}`)
  }
  t.same(kv.changesSince(250, { bucket: null }).map(tag), all.filter((c) => c.revision > 250).map(tag), 'a suffix from any revision')
  t.same(kv.changesSince(400, { bucket: null }), [], 'nothing after the applied index')
  t.same(kv.changesSince(0, { bucket: 'other' }).map(tag), all.filter((c) => c.bucket === 'other').map(tag), 'by bucket')
  t.same(kv.changesSince(0, { prefix: 't/1' }).map(tag), all.filter((c) => c.bucket === 'default' && c.key.startsWith('t/1')).map(tag), 'by prefix (default bucket)')
  const del = all.find((c) => c.type === 'delete')!
  t.equal(del.value, undefined, 'a delete carries no value')
  t.ok(del.prevRevision > 0, 'but the revision it deleted')

  // Paging with a small limit splits revisions and still reassembles the exact history.
  const paged: Change[] = []
  let pos = { revision: 0 } as { revision: number; seq?: number | undefined }
  for (;;) {
    const page = kv.changesPage(pos, { bucket: null, limit: 2 })
    paged.push(...page.changes)
    pos = page.next
    if (page.changes.length < 2) break
  }
  t.same(paged.map(tag), all.map(tag), 'paging neither skips nor repeats')
  t.same(pos, { revision: 400 }, 'the last page ends at the applied index')
})

t.test('compaction: older revisions get COMPACTED, newer ones still work', async (t) => {
  const { kv, dir, env } = await freshKv(t, { changeRetention: 50 })
  applyCommands(kv, ...workload(200))
  const below100 = kv.changesSince(0, { bucket: null }).filter((c) => c.revision < 100).length
  t.equal(kv.compactChanges(100), below100, 'returns how many it deleted')
  t.equal(kv.firstRetainedRevision(), 100)
  const err = catchErr(() => kv.changesSince(98))
  t.ok(isHoldfastError(err, 'COMPACTED'), 'COMPACTED for a revision whose successors are gone')
  t.match(err instanceof Error ? err.message : '', /compacted.*history starts at revision 100/)
  t.ok(kv.changesSince(99, { bucket: null }).every((c) => c.revision >= 100), 'the first retained revision is complete')
  t.equal(kv.changesSince(99, { bucket: null })[0]?.revision, 100)
  t.equal(kv.compactChanges(50), 0, 'compaction never moves back')
  kv.compactChanges()
  t.equal(kv.firstRetainedRevision(), 151, 'without an argument, keeps changeRetention revisions')
  t.ok(isHoldfastError(catchErr(() => kv.changesSince(149)), 'COMPACTED'))
  t.equal(kv.changesSince(150, { bucket: null })[0]?.revision, 151)
  kv.close()
  await env.close()
  const env2 = openEnv(t, dir)
  const kv2 = KvStateMachine.open(env2)
  t.teardown(() => kv2.close())
  t.equal(kv2.firstRetainedRevision(), 151, 'the compaction point persists')
  t.ok(isHoldfastError(catchErr(() => kv2.changesSince(10)), 'COMPACTED'))
})

t.test('watch: history first, then live changes, never skipping or repeating', async (t) => {
  const { kv } = await freshKv(t)
  const cmds = workload(300)
  applyCommands(kv, ...cmds.slice(0, 150))
  const expected = (): string[] => kv.changesSince(0, { bucket: null }).map(tag)
  const seen: string[] = []
  const ac = new AbortController()
  const it = kv.watch({ fromRevision: 1, bucket: null, batchSize: 3, signal: ac.signal })
  // The producer applies the rest in small batches, interleaved with the consumer.
  const producer = (async () => {
    for (let i = 150; i < cmds.length; i += 10) {
      await new Promise((r) => setImmediate(r))
      applyCommands(kv, ...cmds.slice(i, i + 10))
    }
  })()
  let total = Infinity
  for await (const c of it) {
    seen.push(tag(c))
    if (kv.appliedIndex() === 300) total = expected().length
    if (seen.length >= total) ac.abort()
  }
  await producer
  t.same(seen, expected(), 'every change exactly once, in order')
  t.equal(seen.length, total)
})

t.test('watch: a far-behind watcher, filters, abort and close', async (t) => {
  const { kv } = await freshKv(t)
  const ac = new AbortController()
  const it = kv.watch({ prefix: 'k1', signal: ac.signal })
  applyCommands(kv, ...workload(1000))
  const want = kv.changesSince(0, { prefix: 'k1' }).map(tag)
  t.ok(want.length > 100)
  const got: string[] = []
  for await (const c of it) {
    got.push(tag(c))
    if (got.length === want.length) break
  }
  t.same(got, want, 'a watcher far behind gets every matching change')

  const waiting = kv.watch({ signal: ac.signal })
  const next = waiting.next()
  ac.abort()
  t.same(await next, { done: true, value: undefined }, 'abort ends a waiting watch')

  const closing = kv.watch({})
  const pending = closing.next()
  kv.close()
  const closed = await pending.then(() => undefined, (err: unknown) => err)
  t.ok(isHoldfastError(closed, 'CLOSED'), 'close ends a watch with CLOSED')
})

t.test('watch from a compacted revision throws COMPACTED', async (t) => {
  const { kv } = await freshKv(t)
  applyCommands(kv, ...workload(20))
  kv.compactChanges(10)
  const it = kv.watch({ fromRevision: 5 })
  const err = await it.next().then(() => undefined, (e: unknown) => e)
  t.ok(isHoldfastError(err, 'COMPACTED'))
  const ok = kv.watch({ fromRevision: 10, bucket: null })
  const first = await ok.next()
  t.equal(first.done ? -1 : first.value.revision, kv.changesSince(9, { bucket: null })[0]?.revision, 'the first retained revision can still be watched')
  await ok.return?.()
})

