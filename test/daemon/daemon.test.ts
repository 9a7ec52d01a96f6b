/**
 * The daemon as real processes: `holdfast dht` plus `holdfast start` daemons on loopback. Joining
 * and promotion up to --voters, learners beyond that, leader-check on exactly one node, SIGTERM
 * hand-over with exit 0, a full restart from the data directories alone keeping every
 * acknowledged write, membership changes through the API, and invalid configuration refused
 * with one line and exit 2.
 */
import { spawn } from 'node:child_process'
import t from 'tap'
import { join } from 'node:path'
import { DaemonCluster, FAST_ARGS, HoldfastProcess, MAIN, waitFor } from './harness.js'

t.test('joining, promotion up to --voters, learners beyond, leader-check on exactly one node', async (t) => {
  const c = await DaemonCluster.start(t, { size: 3, voters: 3 })
  const leader = await c.leader()
  const ls = (await leader.status())!
  t.equal(ls.members.length, 3, 'three members')
  t.ok(ls.members.every((m) => m.voter && m.reachable && m.url !== null), 'all voters, reachable, with their URLs')
  t.equal(ls.targetVoters, 3)
  t.equal(ls.actingId, ls.id, 'the leader acts')
  // A follower's /v1/events includes the leader's events: its election and acting start.
  const follower = c.live().find((d) => d !== leader)!
  const events = (await follower.http('GET', '/v1/events')).body.events as Array<{ type: string; node: string }>
  t.ok(events.some((e) => e.type === 'actingStart' && e.node === leader.id), "a follower lists the leader's actingStart")
  t.ok(events.some((e) => e.type === 'x-member' && e.node === leader.id), "and the leader's membership events")

  // A fourth node joins as a learner and stays one: the cluster already has its three voters.
  const extra = await c.add()
  const learner = await waitFor(async () => {
    const s = await leader.status()
    const m = s?.members.find((m) => m.id === extra.id)
    return m && m.reachable && m.lag === 0 ? m : undefined
  }, 'the fourth node to join and catch up')
  t.equal(learner.voter, false, 'a fourth node stays a learner with --voters 3')
  t.equal(learner.role, 'learner')

  // leader-check answers 200 on exactly one node, sampled repeatedly.
  let samples = 0
  for (let i = 0; i < 20; i++) {
    const codes = await Promise.all(c.live().map((d) => d.http('GET', '/v1/leader-check').then((a) => a.status)))
    t.equal(codes.filter((s) => s === 200).length, 1, `sample ${i}: exactly one node answers 200`)
    t.ok(codes.every((s) => s === 200 || s === 503), 'the others answer 503')
    samples++
  }
  t.equal(samples, 20)

  // The learner's own view names the leader and serves stale reads of replicated data.
  const put = await extra.http('PUT', '/v1/kv/joined', { body: JSON.stringify({ by: 'learner' }) })
  t.equal(put.status, 200, 'a write through a learner is forwarded to the leader')
  // A stale read is served from the learner's own copy, which has the write once it applied it.
  const read = await waitFor(async () => {
    const a = await extra.http('GET', '/v1/kv/joined?consistency=stale')
    return a.status === 200 ? a : undefined
  }, 'the learner to apply the write')
  t.same(read.body.value, { by: 'learner' }, 'a stale read on the learner serves the replicated value')
  const linear = await extra.http('GET', '/v1/kv/joined')
  t.equal(linear.status, 200, 'a linearizable read through the learner')
  t.same(linear.body.value, { by: 'learner' })

  // A second --init on a fresh data directory (or the first node wiped and restarted with its
  // original command line) finds the running cluster and refuses instead of creating another.
  const again = new HoldfastProcess('second-init', ['start', '--data-dir', join(c.dir, 'second-init'), '--cluster', c.name, '--secret-file', c.secretFile, '--http', '127.0.0.1:0', '--bootstrap', c.bootstrap, '--init', ...FAST_ARGS])
  const refused = await again.exited
  t.equal(refused.code, 2, `a second --init exits 2\n${again.output}`)
  t.match(again.output, `invalid configuration: --init: cluster "${c.name}" is already running`)
  t.equal((await leader.status())!.members.length, 4, 'the cluster is unchanged')

  // A SIGKILLed member is shown unreachable although its connection lingers until keep-alive fails.
  await extra.kill()
  await waitFor(async () => (await leader.status())?.members.find((m) => m.id === extra.id)?.reachable === false, 'the killed learner shown unreachable')
  t.pass('the killed learner is shown unreachable')
})

t.test('removing a voter lets a caught-up learner be promoted; demoted and --learner nodes stay learners', async (t) => {
  const c = await DaemonCluster.start(t, { size: 3, voters: 3 })
  const stay = await c.add({ learner: true })
  const spare = await c.add()
  const leader = await c.leader()
  await waitFor(async () => {
    const s = await leader.status()
    return s && s.members.length === 5 && s.members.filter((m) => !m.voter).every((m) => m.reachable && m.lag === 0)
  }, 'two learners caught up')
  const before = (await leader.status())!
  t.equal(before.members.find((m) => m.id === stay.id)?.learnerOnly, true, '--learner is recorded')

  // Remove a follower voter: the leader promotes the eligible learner, never the --learner one.
  const victim = c.live().find((d) => d !== leader && before.members.find((m) => m.id === d.id)?.voter)!
  const removed = await leader.http('DELETE', `/v1/members/${victim.id}`)
  t.equal(removed.status, 200, 'DELETE /v1/members/{id}')
  const after = await waitFor(async () => {
    const s = await leader.status()
    return s && !s.members.some((m) => m.id === victim.id) && s.members.filter((m) => m.voter).length === 3 ? s : undefined
  }, 'the spare learner promoted to replace the removed voter')
  t.equal(after.members.find((m) => m.id === spare.id)?.voter, true, 'the caught-up learner was promoted')
  t.equal(after.members.find((m) => m.id === stay.id)?.voter, false, 'the --learner node was not')

  // Demote the promoted node: it stays a learner although voters are below target again.
  // Through the learner: forwarded to the leader. (Not through the removed node: once the leader
  // stops talking to it, it may know no leader to forward to.)
  const demoted = await stay.http('POST', `/v1/members/${spare.id}/demote`)
  t.equal(demoted.status, 200, 'demote forwarded to the leader')
  await waitFor(async () => (await leader.status())?.members.find((m) => m.id === spare.id)?.voter === false, 'the demotion')
  // Several maintenance passes later it is still a learner.
  const passes = Date.now() + 2_000
  await waitFor(() => Date.now() > passes, 'a few promotion passes', 5_000)
  const later = (await leader.status())!
  t.equal(later.members.find((m) => m.id === spare.id)?.voter, false, 'a demoted node is not promoted again')
  t.equal(later.members.find((m) => m.id === spare.id)?.learnerOnly, true)
  t.ok(victim.running, 'the removed node is still running and asking to join')
  t.notOk(later.members.some((m) => m.id === victim.id), 'a removed node is not re-admitted')

  // Promote it explicitly: allowed again.
  const promoted = await leader.http('POST', `/v1/members/${spare.id}/promote`)
  t.equal(promoted.status, 200)
  await waitFor(async () => (await leader.status())?.members.find((m) => m.id === spare.id)?.voter === true, 'the promotion')
})

t.test('SIGTERM on the leader hands leadership over and exits 0', async (t) => {
  const c = await DaemonCluster.start(t, { size: 3, voters: 3 })
  const leader = await c.leader()
  const term = (await leader.status())!.term
  const stoppedAt = Date.now()
  leader.signal('SIGTERM')
  const exit = await leader.exited
  t.same(exit, { code: 0, signal: null }, 'exit code 0')
  t.match(leader.output, /stopped/, 'said it stopped')
  const next = await c.leader()
  const s = (await next.status())!
  t.not(s.id, leader.id, 'another node leads')
  t.equal(s.term, term + 1, 'one new term: a hand-over, not a string of elections')
  // Handed over, the new leader is elected without waiting out an election timeout (500-1000 ms).
  t.ok(Date.now() - stoppedAt < 10_000, `new leader after ${Date.now() - stoppedAt} ms`)
})

t.test('a restart from the data directories alone keeps every acknowledged write', async (t) => {
  const c = await DaemonCluster.start(t, { size: 3, voters: 3 })
  const written = new Map<string, unknown>()
  for (let i = 0; i < 40; i++) {
    const d = c.daemons[i % 3]!
    const value = { i, text: `value ${i}` }
    const a = await d.http('PUT', `/v1/kv/k${i}`, { body: JSON.stringify(value) })
    t.equal(a.status, 200, `write ${i} acknowledged`)
    written.set(`k${i}`, value)
  }
  const ids = c.daemons.map((d) => d.id)
  // SIGKILL every daemon: nothing gets a chance to flush beyond what it acknowledged.
  await Promise.all(c.daemons.map((d) => d.kill()))
  for (const d of c.daemons) d.restart(['start', '--data-dir', d.dataDir])
  await Promise.all(c.daemons.map((d) => d.waitUp()))
  t.same(c.daemons.map((d) => d.id), ids, 'same identities')
  await c.waitFormed(3)
  for (const d of c.daemons) {
    const list = await d.http('GET', '/v1/kv?limit=1000')
    t.equal(list.status, 200)
    const got = new Map((list.body.items as Array<{ key: string; value: unknown }>).map((kv) => [kv.key, kv.value]))
    t.same(got, written, `${d.name}: every acknowledged write, nothing else`)
  }
})

t.test('invalid configuration: one line on stderr and exit code 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['start'], /--data-dir is required/],
    [['start', '--data-dir', '/tmp/holdfast-never-created', '--cluster', 'x'], /--secret-file is required/],
    [['start', '--data-dir', '/tmp/holdfast-never-created', '--nonsense'], /unknown option --nonsense/],
    [['dht', '--port', 'many'], /--port/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ]
  for (const [args, pattern] of cases) {
    const r = await run(args)
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, 'one line')
    t.match(lines[0], pattern)
  }
  for (const args of [['--help'], ['start', '--help'], ['dht', '--help'], ['get', '--help'], ['members', '--help']]) {
    const r = await run(args)
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`)
    t.match(r.stdout, /Usage: holdfast/)
  }
})

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => p.on('exit', resolve))
  return { code, stdout, stderr }
}
