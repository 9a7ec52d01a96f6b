/**
 * The daemon's Prometheus metrics on three real in-process nodes: node state read at scrape
 * time, per-peer series from the cluster view (and the local fallback), proposal latency, and the
 * counters fed by real events: a stale fenced write, acting starts and stops on a transfer, and
 * a snapshot sent to a follower that fell behind the compacted log and installed there.
 */
import t from 'tap'
import { register as globalRegister } from 'prom-client'
import { createMetrics, type Metrics } from '../../src/daemon/metrics.js'
import type { HoldfastNode } from '../../src/node.js'
import { createTestCluster, until } from '../../src/testing/cluster.js'
import { testContext, type TestContext } from './test-context.js'

const IDS = ['a', 'b', 'c']

/** The value of one series (`name` or `name{labels}` exactly as exposed), undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return undefined
}

t.test('metrics of a three-node cluster', async (t) => {
  const cluster = await createTestCluster(IDS, { tickMs: 50, electionTicks: 10, logTail: 5 })
  const metrics = new Map<string, { ctx: TestContext; metrics: Metrics }>()
  const leaderNode = (): HoldfastNode => {
    const l = cluster.leader()
    if (!l) throw new Error('no leader')
    return l
  }
  const attach = (node: HoldfastNode): void => {
    metrics.get(node.id)?.metrics.close()
    const ctx = testContext(node, { url: () => `http://${node.id}`, memberUrl: (id) => `http://${id}`, leader: leaderNode })
    metrics.set(node.id, { ctx, metrics: createMetrics(ctx) })
  }
  t.teardown(async () => {
    for (const m of metrics.values()) m.metrics.close()
    await cluster.close()
  })
  for (const node of cluster.nodes.values()) attach(node)
  const scrape = (id: string): Promise<string> => metrics.get(id)!.metrics.text()

  await t.test('each daemon has its own registry, with the process defaults', async (t) => {
    t.equal(new Set([...metrics.values()].map((m) => m.metrics.registry)).size, 3, 'three registries')
    t.notOk((await globalRegister.metrics()).includes('holdfast_'), 'nothing in the global registry')
    const text = await scrape('a')
    t.match(text, /^process_resident_memory_bytes \d+/m, 'process default metrics')
    t.match(text, /^nodejs_eventloop_lag_seconds /m)
    t.match(metrics.get('a')!.metrics.contentType, /^text\/plain/)
  })

  await t.test('node state is read at scrape time', async (t) => {
    const leader = await cluster.waitForLeader()
    await until(() => leader.isActing(), 10_000, 'the leader to act')
    for (let i = 0; i < 3; i++) await leader.put(`k${i}`, i)
    const text = await scrape(leader.id)
    const s = leader.status()
    t.equal(sample(text, 'holdfast_role{role="leader"}'), 1)
    for (const r of ['follower', 'preCandidate', 'candidate']) t.equal(sample(text, `holdfast_role{role="${r}"}`), 0, `role ${r}: 0`)
    t.equal(sample(text, 'holdfast_voter'), 1)
    t.equal(sample(text, 'holdfast_term'), s.term)
    t.ok(sample(text, 'holdfast_commit_index')! >= 4, 'commit index')
    t.ok(sample(text, 'holdfast_applied_index')! >= 4, 'applied index')
    t.equal(sample(text, 'holdfast_apply_lag'), sample(text, 'holdfast_commit_index')! - sample(text, 'holdfast_applied_index')!, 'apply lag = commit - applied')
    t.equal(sample(text, 'holdfast_leader_known'), 1)
    t.equal(sample(text, 'holdfast_fence_token'), leader.fence())
    t.equal(sample(text, 'holdfast_ready'), 1)
    t.ok(sample(text, 'holdfast_leader_changes_total')! >= 1, 'leader changes')
    const follower = IDS.find((id) => id !== leader.id)!
    const ft = await scrape(follower)
    t.equal(sample(ft, 'holdfast_role{role="follower"}'), 1)
    t.equal(sample(ft, 'holdfast_acting'), 0)
    t.equal(sample(ft, 'holdfast_leader_check'), 0)
  })

  await t.test('per-peer series: the leader\'s view, the local fallback, members that left', async (t) => {
    const leader = leaderNode()
    const others = IDS.filter((id) => id !== leader.id)
    await until(() => leader.status().members.every((m) => m.matchIndex === leader.status().commitIndex), 10_000, 'followers to catch up')
    const text = await scrape(leader.id)
    t.equal(sample(text, 'holdfast_cluster_view_from_leader'), 1)
    for (const id of others) {
      t.equal(sample(text, `holdfast_peer_reachable{peer="${id}"}`), 1, `${id} reachable`)
      t.ok(sample(text, `holdfast_peer_match_index{peer="${id}"}`)! > 0, `${id} match index`)
      t.type(sample(text, `holdfast_peer_replication_lag{peer="${id}"}`), 'number', `${id} lag`)
    }
    t.equal(sample(text, `holdfast_peer_reachable{peer="${leader.id}"}`), undefined, 'no series for the node itself')

    // The cluster view fails (the leader unreachable over RPC, say): this node's own connections.
    const follower = metrics.get(others[0]!)!
    follower.ctx.statusOverride = () => Promise.reject(new Error('the leader did not answer'))
    const local = await follower.metrics.text()
    follower.ctx.statusOverride = undefined
    t.equal(sample(local, 'holdfast_cluster_view_from_leader'), 0)
    t.equal(sample(local, `holdfast_peer_reachable{peer="${leader.id}"}`), 1, 'reachability from the local view')
    t.equal(sample(local, `holdfast_peer_match_index{peer="${leader.id}"}`), undefined, 'no match index without the leader\'s view')

    // A view without a member: its series disappear.
    const lm = metrics.get(leader.id)!
    const full = await lm.ctx.clusterStatus()
    lm.ctx.statusOverride = async () => ({ ...full, members: full.members.filter((m) => m.id !== others[1]) })
    const fewer = await lm.metrics.text()
    lm.ctx.statusOverride = undefined
    t.equal(sample(fewer, `holdfast_peer_reachable{peer="${others[1]}"}`), undefined, 'a member that left has no series')
    t.equal(sample(fewer, `holdfast_peer_reachable{peer="${others[0]}"}`), 1)
  })

  await t.test('proposal latency histogram', async (t) => {
    const m = metrics.get('a')!.metrics
    m.observeProposal(0.003, 'ok')
    m.observeProposal(0.2, 'ok')
    m.observeProposal(7, 'TIMEOUT')
    const text = await m.text()
    t.equal(sample(text, 'holdfast_proposal_duration_seconds_count{outcome="ok"}'), 2)
    t.equal(sample(text, 'holdfast_proposal_duration_seconds_bucket{le="0.005",outcome="ok"}'), 1)
    t.equal(sample(text, 'holdfast_proposal_duration_seconds_bucket{le="0.25",outcome="ok"}'), 2)
    t.equal(sample(text, 'holdfast_proposal_duration_seconds_sum{outcome="ok"}'), 0.203)
    t.equal(sample(text, 'holdfast_proposal_duration_seconds_count{outcome="TIMEOUT"}'), 1)
    m.observeRequest('/v1/kv/{key}', 'GET', 404, 0.001)
    m.badRequest('/v1/kv/{key}', 'INVALID_KEY')
    const after = await m.text()
    t.equal(sample(after, 'holdfast_http_requests_total{route="/v1/kv/{key}",method="GET",status="404"}'), 1)
    t.equal(sample(after, 'holdfast_http_bad_requests_total{route="/v1/kv/{key}",code="INVALID_KEY"}'), 1)
    m.watchOpened()
    t.equal(sample(await m.text(), 'holdfast_http_watches_active'), 1)
    m.watchClosed()
    t.equal(sample(await m.text(), 'holdfast_http_watches_active'), 0)
  })

  await t.test('fencing: a stale fenced write is counted on every replica', async (t) => {
    const leader = leaderNode()
    const fence = leader.fence()
    await t.rejects(leader.put('fenced', 1, { fence: fence - 1 }), { code: 'STALE_FENCE' })
    for (const id of IDS) {
      await until(() => metrics.get(id)!.ctx.recentEvents().some((e) => e.type === 'staleFence'), 10_000, `${id} to apply the refused write`)
      t.equal(sample(await scrape(id), 'holdfast_stale_fence_total'), 1, `${id} counted it`)
    }
  })

  await t.test('acting starts and stops on a leadership transfer', async (t) => {
    const from = leaderNode()
    const to = IDS.find((id) => id !== from.id)!
    const before = sample(await scrape(from.id), 'holdfast_acting_starts_total')!
    t.ok(before >= 1, 'the leader started acting')
    await from.transferLeadership(to)
    await until(() => cluster.nodes.get(to)!.isActing(), 10_000, 'the new leader to act')
    const old = await scrape(from.id)
    t.ok(sample(old, 'holdfast_acting_stops_total{reason="transfer"}')! >= 1, 'the former leader stopped acting for the transfer')
    t.equal(sample(old, 'holdfast_acting'), 0)
    const now = await scrape(to)
    t.ok(sample(now, 'holdfast_acting_starts_total')! >= 1, 'the new leader started acting')
    t.equal(sample(now, 'holdfast_acting'), 1)
  })

  await t.test('snapshots: sent by the leader, installed by a follower behind the compacted log', async (t) => {
    const leader = leaderNode()
    const lagging = IDS.find((id) => id !== leader.id)!
    await cluster.crash(lagging)
    for (let i = 0; i < 40; i++) await leader.put(`s${i}`, i)
    const restarted = await cluster.start(lagging)
    attach(restarted)
    await until(() => restarted.getLocal('s39') !== undefined, 20_000, 'the restarted follower to catch up')
    const sent = await scrape(leader.id)
    t.ok(sample(sent, 'holdfast_snapshots_sent_total{outcome="ok"}')! >= 1, 'the leader counted a snapshot sent')
    t.equal(sample(sent, 'holdfast_snapshots_sent_total{outcome="failed"}'), 0)
    const installed = await scrape(lagging)
    t.ok(sample(installed, 'holdfast_snapshots_installed_total')! >= 1, 'the follower counted the snapshot installed')
    t.equal(sample(installed, 'holdfast_snapshot_receive_failures_total'), 0)
  })

  await t.test('close() stops counting events', async (t) => {
    const leader = leaderNode()
    const m = metrics.get(leader.id)!
    m.metrics.close()
    await t.rejects(leader.put('fenced-again', 1, { fence: 1 }), { code: 'STALE_FENCE' })
    t.equal(sample(await m.metrics.text(), 'holdfast_stale_fence_total'), 1, 'not counted after close')
  })
})
