/**
 * The acting hooks on real in-process clusters (real Raft, real LMDB): handlers run in order, only
 * on the leader, only once it committed its fence; late registration, unregistering, timeouts and
 * failing handlers.
 */
import t from 'tap'
import type { HoldfastNode } from '../../src/node.js'
import { EventLog, TICK, actingNode, clock, cluster, sleep, until } from './helpers.js'

interface Call {
  node: string
  step: string
  token: number
  role: string
  term: number
  fence: number
  acting: boolean
  at: number
}

t.test('handlers run in order, only on the leader, only after its fence is committed; never on a follower', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'])
  const events = new EventLog()
  const calls: Call[] = []
  const record = (n: HoldfastNode, step: string, token: number): void => {
    const s = n.status()
    calls.push({ node: n.id, step, token, role: s.role, term: s.term, fence: n.fence(), acting: n.isActing(), at: clock() })
  }
  const checkAtStart: boolean[] = []
  for (const n of c.nodes.values()) {
    events.watch(n)
    n.on('event', (e: { type: string }) => {
      if (e.type === 'actingStart') checkAtStart.push(n.leaderCheck())
    })
    n.onActing(async ({ token }) => {
      record(n, 'first:start', token)
      await sleep(30) // a slow first handler: the second must still wait for it
      record(n, 'first:done', token)
    })
    n.onActing(({ token }) => record(n, 'second', token))
  }
  const acting = await actingNode(c)
  // The acting period's calls: from its node's last first:start (a stall longer than the lease on a
  // loaded machine may have aborted an earlier start, which is then begun again).
  const all = calls.filter((x) => x.node === acting.id)
  const mine = all.slice(all.map((x) => x.step).lastIndexOf('first:start'))
  t.same(mine.map((x) => x.step), ['first:start', 'first:done', 'second'], 'in registration order, each awaited')
  t.ok(mine.every((x) => x.role === 'leader'), 'every call ran on the leader')
  t.ok(mine.every((x) => x.token === x.term), 'the token is the leader term')
  t.ok(mine.every((x) => x.fence === x.token), 'the fence with its token was committed and applied before the first handler ran')
  t.ok(mine.every((x) => !x.acting), 'the node did not report itself acting while handlers were starting')
  const start = events.of(acting.id, 'actingStart')
  t.equal(start.length, 1, 'one actingStart')
  t.ok(start[0]!.at >= mine[mine.length - 1]!.at, 'actingStart came after every handler resolved')
  t.match(start[0], { token: mine[0]!.token, handlers: 2 })
  t.same(checkAtStart, [true], 'leaderCheck() holds on the acting node from its actingStart')
  t.equal(acting.fence(), mine[0]!.token, 'fence() is its token')

  // A follower never runs handlers, and reports no leaderCheck, while the leader keeps acting.
  await sleep(30 * TICK)
  for (const n of c.nodes.values()) {
    if (n === acting) continue
    await until(() => n.fence() >= mine[0]!.token, 2000, `${n.id} to apply the fence`)
    // (Should a stall on a loaded machine have moved leadership meanwhile, it moved by the rules below.)
    if (n.status().role === 'leader') continue
    t.same(calls.filter((x) => x.node === n.id), [], `${n.id} (a follower) ran nothing`)
    t.notOk(n.leaderCheck(), `${n.id}: leaderCheck() is false`)
    t.notOk(n.isActing(), `${n.id}: not acting`)
  }

  // Failover: the next leader acts with a larger token; the old one's handlers never run again.
  const before = calls.length
  await c.crash(acting.id)
  await actingNode(c)
  const after = calls.slice(before)
  t.ok(after.length >= 3 && after.every((x) => x.node !== acting.id && x.role === 'leader'), 'after failover only a leader ran handlers')
  t.ok(after[0]!.token > mine[0]!.token, `the new token ${after[0]!.token} is greater than ${mine[0]!.token}`)
  t.ok(after.every((x) => x.fence === x.token), 'and its fence was in force before its handlers ran')
  // A token belongs to one node; tokens never go back. (A leader whose lease lapsed during a stall
  // and was renewed in the same term acts again under the same token: no other node can have.)
  const starts = events.ofType('actingStart')
  const owner = new Map<number, string>()
  for (const e of starts) t.equal(owner.get(e.token) ?? (owner.set(e.token, e.node), e.node), e.node, `token ${e.token} belongs to ${owner.get(e.token)} alone`)
  t.ok(starts.every((e, i) => i === 0 || e.token >= starts[i - 1]!.token), `tokens never go back (${starts.map((e) => e.token).join(', ')})`)
})

t.test('a handler registered while acting runs at once, after those running; unregistering aborts it and runs its stop', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'])
  const order: string[] = []
  let releaseSlow = (): void => {}
  const offs = new Map<string, () => void>()
  for (const n of c.nodes.values()) n.onActing(() => void order.push(`${n.id}:base`))
  const acting = await actingNode(c)
  const token = acting.fence()
  // Two late registrations: the first is slow, the second must wait for it.
  let lateToken = 0
  let lateSignal: AbortSignal | undefined
  let stopped = 0
  offs.set(
    'late',
    acting.onActing(async ({ token: tk, signal }) => {
      order.push(`${acting.id}:late:start`)
      lateToken = tk
      lateSignal = signal
      await new Promise<void>((r) => (releaseSlow = r))
      order.push(`${acting.id}:late:done`)
      return () => void stopped++
    }),
  )
  acting.onActing(() => void order.push(`${acting.id}:later`))
  await until(() => order.includes(`${acting.id}:late:start`), 2000, 'the late handler to start')
  t.equal(lateToken, token, 'a late handler gets the current token')
  t.ok(acting.isActing(), 'the node stays acting while a late handler starts')
  await sleep(30)
  t.notOk(order.includes(`${acting.id}:later`), 'the next late handler waits for the one running')
  releaseSlow()
  await until(() => order.includes(`${acting.id}:later`), 2000, 'the second late handler')
  t.same(order.filter((x) => x.startsWith(acting.id)), [`${acting.id}:base`, `${acting.id}:late:start`, `${acting.id}:late:done`, `${acting.id}:later`])

  // Unregister: its signal aborts and its stop function runs; the node keeps acting.
  offs.get('late')!()
  t.ok(lateSignal!.aborted, 'the unregistered handler was aborted')
  await until(() => stopped === 1, 2000, 'its stop function')
  t.ok(acting.isActing() && acting.leaderCheck(), 'the node still acts')

  // Registering on a follower runs nothing there.
  const follower = [...c.nodes.values()].find((n) => n !== acting)!
  let ranOnFollower = false
  follower.onActing(() => void (ranOnFollower = true))
  await sleep(100)
  t.notOk(ranOnFollower, 'a handler registered on a follower does not run')

  // After a failover the unregistered handler is gone everywhere it was.
  const countLate = (): number => order.filter((x) => x.endsWith(':late:start')).length
  await c.crash(acting.id)
  await actingNode(c)
  t.equal(countLate(), 1, 'the unregistered handler did not run again')
})

t.test('a handler that throws makes the leader give up; another node becomes leader and acts', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'])
  const events = new EventLog()
  let thrower: string | undefined
  const stops: string[] = []
  const aborted: string[] = []
  for (const n of c.nodes.values()) {
    events.watch(n)
    n.onActing(({ signal }) => {
      signal.addEventListener('abort', () => aborted.push(n.id))
      return () => void stops.push(n.id)
    })
    n.onActing(() => {
      if (thrower === undefined) {
        thrower = n.id
        throw new Error('cannot open the device')
      }
    })
  }
  const next = await actingNode(c)
  t.ok(thrower !== undefined, `${thrower} threw`)
  const failed = events.of(thrower!, 'actingFailed')
  t.equal(failed.length, 1, 'actingFailed was emitted')
  const badToken = (failed[0] as { token: number }).token
  t.match(failed[0], { handler: 'handler-2', code: 'Error', message: 'cannot open the device', action: 'transfer' })
  t.equal(next.fence(), events.ofType('actingStart')[0]?.token, `another node acts (${next.id})`)
  t.ok(next.fence() > badToken, 'under a greater token')
  t.same(events.of(thrower!, 'actingStart').filter((e) => (e as { token: number }).token === badToken), [], 'the failing node never reported itself acting under its token')
  const ofBadToken = <T extends { token?: number }>(list: T[]): T[] => list.filter((e) => e.token === badToken)
  t.match(ofBadToken(events.of(thrower!, 'actingStop') as { token?: number }[]), [{ reason: 'handlerFailed', wasActing: false }])
  t.ok(aborted.includes(thrower!) && stops.includes(thrower!), 'the handler that had started was aborted and stopped')
  t.equal(events.ofType('actingStart')[0]?.node, (failed[0] as { transferredTo?: string }).transferredTo, 'the node it handed over to acted first')
  const stopped = ofBadToken(events.of(thrower!, 'actingStopped') as ({ token?: number; at: number })[])
  t.ok(stopped.length === 1 && stopped[0]!.at <= failed[0]!.at, 'it gave up leadership after its handlers had stopped')
})

t.test('with no voter to hand over to, a failed start steps down; the next term acts', async (t) => {
  const c = await cluster(t, ['solo'])
  const n = c.nodes.get('solo')!
  const events = new EventLog().watch(n)
  let failures = 0
  n.onActing(() => {
    if (failures++ === 0) throw new Error('not yet')
  })
  await actingNode(c)
  const failed = events.ofType('actingFailed')
  t.match(failed, [{ action: 'stepDown', message: 'not yet' }], 'it stepped down')
  t.ok(n.fence() > failed[0]!.token, `and acts in a later term (token ${n.fence()} > ${failed[0]!.token})`)
})

t.test('handler timeouts are enforced: a handler that never resolves fails the start', async (t) => {
  const c = await cluster(t, ['a', 'b', 'c'], { actingGraceMs: 200 })
  const events = new EventLog()
  const sawAbort = new Set<string>()
  // The handler hangs until a start has failed for it (should a stall on a loaded machine end a
  // hanging start some other way first, the next start hangs again).
  const timedOut = (): boolean => events.ofType('actingFailed').length > 0
  for (const n of c.nodes.values()) {
    events.watch(n)
    n.onActing(
      ({ signal }) => {
        if (timedOut()) return
        // Never resolves on its own; it only learns from the signal that it was given up on.
        signal.addEventListener('abort', () => void sawAbort.add(n.id))
        return new Promise<void>(() => {})
      },
      { timeoutMs: 100, name: 'hangs' },
    )
  }
  await until(timedOut, 10_000, 'a start to time out')
  const fail = events.ofType('actingFailed')[0]!
  t.match(fail, { handler: 'hangs', code: 'TIMEOUT' }, 'the start failed with TIMEOUT')
  const next = await actingNode(c)
  t.ok(next.fence() > fail.token, `a node acts under a greater token (${next.id})`)
  // The failed start's own stop: the last one of its node and token before the failure (a stall may
  // have ended an earlier start under the same token).
  const stop = events.ofType('actingStop').filter((e) => e.node === fail.node && e.token === fail.token && e.at <= fail.at).pop()!
  t.equal(stop.reason, 'handlerFailed')
  t.ok(fail.at - stop.at >= 190, `the node waited the grace period before giving up (${(fail.at - stop.at).toFixed(0)} ms)`)
  t.ok(sawAbort.has(fail.node), 'the hung handler saw its signal abort')
  const stopped = events.ofType('actingStopped').filter((e) => e.node === fail.node && e.token === fail.token && e.at >= stop.at)
  t.same(stopped[0]?.late, ['hangs'], 'it is reported late after the grace period')
  t.same(events.ofType('actingStart').filter((e) => e.node === fail.node && e.token === fail.token), [], 'it never acted under that token')
})

t.test('onActing refuses bad input', async (t) => {
  const c = await cluster(t, ['solo'])
  const n = c.nodes.get('solo')!
  t.throws(() => n.onActing('nope' as never), { code: 'INVALID_ARGUMENT' })
  t.throws(() => n.onActing(() => {}, { timeoutMs: 0 }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => n.reportEvent({ type: 'role' } as never), { code: 'INVALID_ARGUMENT' })
  const got: unknown[] = []
  n.on('event', (e) => got.push(e))
  n.reportEvent({ type: 'vip', address: '10.0.0.100/24', change: 'added' })
  t.match(got, [{ type: 'vip', node: 'solo', address: '10.0.0.100/24', time: Number }])
})
