/**
 * Peers over hyperswarm, acceptance: failover. Three nodes in three OS processes take an
 * open-loop write load (a put every few ms, round robin over the running nodes, followers
 * forwarding to the leader). The leader is SIGKILLed mid-load: a new leader takes over and writes
 * continue; the failover time (kill → first acknowledged write issued after the kill) is printed.
 * The killed node restarts on its data directory (without a bootstrap membership: its log has
 * one), catches up from the log, and the round repeats with the next leader. At the end every node
 * stores every acknowledged write with its value and revision, and all hold the same state.
 */
import t from 'tap'
import { SwarmCluster, Writer, missingAcks, waitUntil, type ChildNode } from './harness.js'

const ROUNDS = 2
/** Acknowledged writes before each kill, and after the failover before the restart. */
const BEFORE_KILL = 25
const AFTER_FAILOVER = 25

t.test('SIGKILL of the leader under a write load: failover, restart, catch-up, nothing acknowledged lost', async (t) => {
  const cluster = await SwarmCluster.create(t, { cluster: 'failover' })
  const names = ['a', 'b', 'c']
  await cluster.startVoters(names)

  const writer = new Writer('w/', () => cluster.running(), { intervalMs: 15, timeoutMs: 15_000 })
  t.teardown(() => writer.stop())
  writer.start()

  const failovers: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    // The survivors must reach each other to elect: failover is measured on a connected cluster
    // (the mesh can take seconds to form, see the note at the top of harness.ts).
    await cluster.mesh()
    const before = writer.acked.size
    await waitUntil(() => writer.acked.size >= before + BEFORE_KILL, `${BEFORE_KILL} acknowledged writes before the kill`)

    const victim: ChildNode = await cluster.leader()
    const killedAt = performance.now()
    await victim.kill()
    t.comment(`round ${round}: SIGKILLed the leader ${victim.name} after ${writer.acked.size} acknowledged writes`)

    // A write issued after the kill is acknowledged: the cluster has a working leader again.
    await waitUntil(() => writer.firstAckIssuedAfter(killedAt) !== undefined, 'a write issued after the kill to be acknowledged')
    const first = writer.firstAckIssuedAfter(killedAt)!
    const failoverMs = Math.round(first.ackedAt - killedAt)
    failovers.push(failoverMs)
    const leader = await cluster.leader()
    t.not(leader.id, victim.id, `round ${round}: ${leader.name} leads after the kill`)
    t.comment(`round ${round}: failover took ${failoverMs} ms (kill → next acknowledged write, via ${first.via})`)

    const afterFailover = writer.acked.size
    await waitUntil(() => writer.acked.size >= afterFailover + AFTER_FAILOVER, 'writes to continue after the failover')

    // The restarted node has no bootstrap: its identity and log are in its data directory.
    const restartedAt = performance.now()
    const restarted = await cluster.start(victim.name)
    t.equal(restarted.id, victim.id, `round ${round}: ${victim.name} restarted with its identity`)
    const openedAt = performance.now()
    const target = (await leader.status()).commitIndex
    await restarted.waitApplied(target)
    t.comment(`round ${round}: ${victim.name} opened ${Math.round(openedAt - restartedAt)} ms after the restart and caught up to ${target} ${Math.round(performance.now() - openedAt)} ms later`)
    t.notOk(restarted.events.some((e) => e.name === 'snapshotInstalled'), `round ${round}: ${victim.name} caught up to the leader's commit index ${target} from the log (no snapshot), under load`)
    // It rejoined as a follower of the current leader.
    await restarted.waitFor(() => restarted.leaderId !== null, 'the restarted node to know the leader')
  }

  await writer.stop()
  const acked = [...writer.acked.values()]
  const failures = Object.fromEntries(writer.failures)
  t.comment(`${acked.length} acknowledged writes; failed or unknown outcome: ${JSON.stringify(failures)}`)
  t.comment(`failover times: ${failovers.map((ms) => `${ms} ms`).join(', ')}`)
  t.ok(acked.length >= ROUNDS * (BEFORE_KILL + AFTER_FAILOVER), 'writes were acknowledged throughout')

  const nodes = cluster.running()
  t.equal(nodes.length, names.length, 'every node runs again')
  const commit = await cluster.caughtUp(nodes)
  const reference = await nodes[0]!.list('w/')
  for (const n of nodes) {
    t.same(await missingAcks(n, acked, 'w/'), [], `${n.name} (applied ≥ ${commit}) stores every acknowledged write with its value and revision`)
    t.same(await n.list('w/'), reference, `${n.name} holds the same state as ${nodes[0]!.name}`)
  }
  // A fresh linearizable read through each node agrees too (spot check of the last writes).
  const last = acked.sort((x, y) => x.revision - y.revision).slice(-5)
  for (const n of nodes) {
    const reads = await Promise.all(last.map((a) => n.get(a.key, 'linearizable')))
    t.same(reads.map((r) => r?.value), last.map((a) => a.value), `${n.name}: linearizable reads return the last acknowledged writes`)
  }
})
