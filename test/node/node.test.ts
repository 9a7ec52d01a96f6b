import t from 'tap'
import { createTestCluster as startCluster, until } from '../../src/testing/index.js'

t.test('three nodes: writes anywhere, linearizable reads anywhere', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const leader = await c.waitForLeader()
  const follower = [...c.nodes.values()].find((n) => n !== leader)!
  const r1 = await leader.put('k', { v: 1 })
  const r2 = await follower.put('k', { v: 2 })
  t.ok(r2.revision > r1.revision, 'revisions grow')
  for (const n of c.nodes.values()) {
    const kv = await n.get('k')
    t.same(kv?.value, { v: 2 }, `${n.id} reads the latest value`)
  }
})

import { checkKvHistory, formatViolation, type KvInput, type KvOutput, type Operation } from '../../src/testing/linearizability.js'
import { isHoldfastError } from '../../src/errors.js'
import type { HoldfastNode } from '../../src/node.js'

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return isHoldfastError(err) ? err.code : `non-holdfast: ${String(err)}`
  }
  return undefined
}

for (const size of [3, 5]) {
  t.test(`${size} nodes: concurrent writers through a leader crash; histories are linearizable and replicas agree`, async (t) => {
    const ids = Array.from({ length: size }, (_, i) => `n${i}`)
    const c = await startCluster(ids, { operationTimeoutMs: 3000 })
    t.teardown(() => c.close())
    const first = await c.waitForLeader()
    const history: Operation<KvInput, KvOutput>[] = []
    const started = performance.now()
    const now = (): number => performance.now() - started
    const alive = (): HoldfastNode[] => [...c.nodes.values()].filter((n) => n !== crashed)
    let crashed: HoldfastNode | undefined
    let acked = 0
    const keys = ['x', 'y', 'z']
    const client = async (cid: number): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        const nodes = alive()
        const node = nodes[(cid + i) % nodes.length]!
        const key = keys[(cid * 7 + i) % keys.length]!
        const call = now()
        if (i % 3 === 0) {
          try {
            const kv = await node.get(key)
            history.push({ client: cid, input: { kind: 'read', key }, output: { kind: 'read', value: (kv?.value as string | undefined) ?? null }, call, return: now() })
          } catch {
            /* a failed read has no effect: nothing to record */
          }
        } else {
          const value = `c${cid}-${i}`
          const input: KvInput = { kind: 'write', key, value }
          try {
            await node.put(key, value)
            acked++
            history.push({ client: cid, input, output: { kind: 'write' }, call, return: now() })
          } catch (err) {
            // Only a definite refusal is known not to have happened; anything else may have.
            if (!(isHoldfastError(err) && ['NOT_LEADER', 'LEADERSHIP_LOST', 'TRANSFER_IN_PROGRESS', 'UNAVAILABLE'].includes(err.code))) {
              history.push({ client: cid, input, output: undefined, call, return: Infinity })
            }
          }
        }
      }
    }
    const clients = Array.from({ length: 8 }, (_, i) => client(i))
    // Crash the leader while the clients run: cut it off, then stop it without a hand-over.
    await until(() => acked >= 40, 20_000, 'some writes before the crash')
    crashed = first
    c.network.isolate(first.id)
    await first.close()
    c.nodes.delete(first.id)
    await Promise.all(clients)
    const leader = await c.waitForLeader()
    t.not(leader.id, first.id, 'a new leader took over')
    t.ok(acked >= 150, `writes kept succeeding across the crash (${acked} acknowledged)`)
    const result = checkKvHistory(history)
    t.equal(result.status, 'ok', result.status === 'violation' ? formatViolation(result) : `checked ${history.length} operations`)
    // Every surviving replica converges on the same state.
    const target = leader.status().commitIndex
    await until(() => alive().every((n) => n.status().appliedIndex >= target), 10_000, 'replicas to catch up')
    const states = alive().map((n) => JSON.stringify(n.list()))
    t.equal(new Set(states).size, 1, 'every replica holds the same keys, values and revisions')
  })
}

t.test('compare-and-set, transactions, deletes and listing', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  const f = [...c.nodes.values()].find((n) => n !== l)!
  const { revision } = await f.put('cfg', 'v1', { ifRevision: 0 })
  t.equal(await codeOf(f.put('cfg', 'again', { ifRevision: 0 })), 'REVISION_MISMATCH', 'ifRevision 0 means must not exist')
  t.equal(await codeOf(l.put('cfg', 'stale', { ifRevision: revision - 1 })), 'REVISION_MISMATCH')
  await l.put('cfg', 'v2', { ifRevision: revision })
  t.equal((await f.get('cfg'))?.value, 'v2')
  const tx = await f.transaction({ compare: [{ key: 'cfg', revision: 12345 }], success: [{ type: 'put', key: 'a', value: 1 }], failure: [{ type: 'put', key: 'b', value: 2 }] })
  t.equal(tx.succeeded, false)
  t.equal((await l.get('b'))?.value, 2, 'the failure branch ran')
  t.equal((await l.get('a')), undefined)
  await l.put('p/1', 1)
  await l.put('p/2', 2, { bucket: 'other' })
  await l.put('p/3', 3)
  await f.get('p/3') // read barrier on f
  t.same(f.list({ prefix: 'p/' }).map((kv) => kv.key), ['p/1', 'p/3'], 'buckets separate keys')
  t.same(f.list({ prefix: 'p/', bucket: 'other' }).map((kv) => kv.value), [2])
  const d = await f.delete('p/1')
  t.equal(d.deleted, true)
  t.equal(await l.get('p/1'), undefined)
  t.equal(f.getLocal('p/3')?.value, 3, 'getLocal reads the local replica')
})

t.test('deterministic commands run on every replica; a throwing handler fails only its call', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  for (const n of c.nodes.values()) {
    n.command('incr', (tx, args) => {
      const key = (args as { key: string }).key
      const cur = (tx.get(key)?.value as number | undefined) ?? 0
      tx.put(key, cur + 1)
      return cur + 1
    })
    n.command('explode', (tx) => {
      tx.put('half', 'written')
      throw new Error('refused')
    })
  }
  const l = await c.waitForLeader()
  const f = [...c.nodes.values()].find((n) => n !== l)!
  t.equal(await f.call('incr', { key: 'n' }), 1)
  t.equal(await l.call('incr', { key: 'n' }), 2)
  t.equal(await codeOf(f.call('explode')), 'COMMAND_FAILED')
  t.equal(await l.get('half'), undefined, 'the failed command changed nothing')
  t.equal(await codeOf(f.call('nope')), 'UNKNOWN_COMMAND')
  for (const n of c.nodes.values()) t.equal((await n.get('n'))?.value, 2, `${n.id} applied both increments`)
})

t.test('bad input is refused before it reaches the log', async (t) => {
  const c = await startCluster(['a'], { maxValueSize: 1000 })
  t.teardown(() => c.close())
  const n = await c.waitForLeader()
  const before = n.status().commitIndex
  t.equal(await codeOf(n.put('big', 'x'.repeat(2000))), 'TOO_LARGE')
  t.equal(await codeOf(n.put('', 1)), 'INVALID_ARGUMENT')
  t.equal(await codeOf(n.put('k', { f: () => 1 } as never)), 'INVALID_ARGUMENT')
  t.equal(n.status().commitIndex, before, 'nothing was appended')
  await n.put('raw', new Uint8Array([1, 2, 3]))
  t.same([...((await n.get('raw'))!.value as Uint8Array)], [1, 2, 3], 'raw bytes round-trip')
})

t.test('without a quorum a write fails at its deadline or abort instead of hanging', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  for (const n of c.nodes.values()) if (n !== l) c.network.isolate(n.id)
  const started = Date.now()
  t.equal(await codeOf(l.put('k', 1, { timeoutMs: 300 })), 'TIMEOUT')
  t.ok(Date.now() - started < 3000, 'it failed near its deadline')
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 50)
  t.equal(await codeOf(l.put('k', 2, { signal: ac.signal, timeoutMs: 60_000 })), 'ABORTED')
  t.equal(await codeOf(l.get('k', { timeoutMs: 300 })), 'TIMEOUT', 'a linearizable read also needs the majority')
})

t.test('readBarrier makes the following local reads linearizable, and needs the leader', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  const f = [...c.nodes.values()].find((n) => n !== l)!
  for (let i = 0; i < 20; i++) {
    await l.put(`rb/${i}`, i)
    await f.readBarrier()
    t.equal(f.getLocal(`rb/${i}`)?.value, i, `after the barrier the follower sees write ${i}`)
    t.equal(f.list({ prefix: 'rb/' }).length, i + 1)
  }
  c.network.isolate(f.id)
  t.equal(await codeOf(f.readBarrier({ timeoutMs: 300 })), 'TIMEOUT', 'cut off from the leader, the barrier does not pass')
})

t.test('a restarted node keeps its data and catches up', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  await l.put('before', 1)
  const victim = [...c.nodes.values()].find((n) => n !== l)!
  await victim.close()
  c.nodes.delete(victim.id)
  await l.put('during', 2)
  const back = await c.start(victim.id)
  t.equal(back.getLocal('before')?.value, 1, 'local data survived the restart')
  t.equal((await back.get('during'))?.value, 2, 'it caught up with what it missed')
})

t.test('a follower behind the compaction point is restored by snapshot and follows again', async (t) => {
  const c = await startCluster(['a', 'b', 'c'], { logTail: 5 })
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  const lagging = [...c.nodes.values()].find((n) => n !== l)!
  await l.put('early', 'e')
  await c.crash(lagging.id)
  for (let i = 0; i < 60; i++) await l.put(`k${i % 7}`, i)
  await until(() => c.nodes.size === 2)
  let installed = 0
  const sent: boolean[] = []
  // Whoever leads by then sends it: a check-quorum election during the writes may have moved leadership.
  for (const n of c.nodes.values()) n.on('snapshotSent', (e: { ok: boolean }) => sent.push(e.ok))
  const back = await c.start(lagging.id)
  back.on('snapshotInstalled', () => installed++)
  const commit = (): number => Math.max(...[...c.nodes.values()].filter((n) => n !== back).map((n) => n.status().commitIndex))
  await until(() => back.status().appliedIndex >= commit(), 10_000, 'the restarted follower to catch up')
  t.ok(sent.includes(true), 'a leader streamed a snapshot')
  t.equal(installed, 1, 'the follower installed it')
  t.same(back.list(), l.list(), 'the snapshot gave it exactly the leader state')
  await l.put('after', 'a')
  t.equal((await back.get('after'))?.value, 'a', 'it follows the log again after the snapshot')
})

t.test('watch delivers every change after a revision, in order, history then live', async (t) => {
  const c = await startCluster(['a', 'b', 'c'])
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  const f = [...c.nodes.values()].find((n) => n !== l)!
  const r0 = await l.put('w/0', 0)
  await l.put('w/1', 1)
  await l.put('other', 'x')
  const ac = new AbortController()
  const seen: string[] = []
  const done = (async () => {
    for await (const ch of f.watch({ prefix: 'w/', fromRevision: r0.revision - 1, signal: ac.signal })) {
      seen.push(`${ch.type}:${ch.key}:${JSON.stringify(ch.value ?? null)}`)
      if (seen.length === 4) ac.abort()
    }
  })()
  await l.put('w/2', 2)
  await l.delete('w/0')
  await done.catch(() => {})
  t.same(seen, ['put:w/0:0', 'put:w/1:1', 'put:w/2:2', 'delete:w/0:null'])
})

t.test('a crash between restoring a snapshot and resetting the log is finished at the next open', async (t) => {
  const c = await startCluster(['a', 'b', 'c'], { logTail: 5 })
  t.teardown(() => c.close())
  const l = await c.waitForLeader()
  const lagging = [...c.nodes.values()].find((n) => n !== l)!
  await c.crash(lagging.id)
  for (let i = 0; i < 40; i++) await l.put(`k${i % 5}`, i)
  let crashed = false
  const broken = await c.start(lagging.id, {
    faultPoints: {
      afterSnapshotRestore: () => {
        crashed = true
        throw new Error('injected crash after the state machine switched')
      },
    },
  })
  broken.on('error', () => {})
  await until(() => crashed, 10_000, 'the injected crash')
  await c.crash(lagging.id)
  const back = await c.start(lagging.id)
  await until(() => back.status().appliedIndex >= l.status().commitIndex, 10_000, 'catch-up after the interrupted install')
  t.same(back.list(), l.list(), 'the reopened node holds the leader state')
  await l.put('after', 1)
  t.equal((await back.get('after'))?.value, 1, 'and follows the log')
})
