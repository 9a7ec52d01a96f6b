/**
 * attachVip() on a real in-process cluster (createTestCluster: real Raft, real LMDB, the memory
 * network), each node with its own simulated host (fake-host.ts): the VIP follows the acting node,
 * leaves a deposed one before another node adds it, a failed add makes the node give up, close()
 * releases it. The real commands in real namespaces are test/netns/vip.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { HoldfastEvent } from '../../src/acting/events.js'
import type { HoldfastNode } from '../../src/node.js'
import { createSwarmNode } from '../../src/swarm-node.js'
import { createTestCluster, until, type TestCluster } from '../../src/testing/index.js'
import { attachVip } from '../../src/vip/attach.js'
import type { VipManager } from '../../src/vip/manager.js'
import { FakeHost, fail } from './fake-host.js'

const VIP = '10.0.0.100/24'
/** 20 ms ticks: the lease (8 ticks) outlasts the event-loop stalls of a loaded machine. */
const TICK = 20
const IDS = ['a', 'b', 'c']

interface Rig {
  cluster: TestCluster
  hosts: Map<string, FakeHost>
  vips: Map<string, VipManager>
  /** Every event of every node, stamped with one clock. */
  events: Array<HoldfastEvent & { at: number }>
  start(id: string): Promise<HoldfastNode>
}

async function rig(t: Test): Promise<Rig> {
  const cluster = await createTestCluster([], { tickMs: TICK })
  const hosts = new Map(IDS.map((id) => [id, new FakeHost()]))
  const vips = new Map<string, VipManager>()
  const events: Array<HoldfastEvent & { at: number }> = []
  const start = async (id: string): Promise<HoldfastNode> => {
    const node = await cluster.start(id, { bootstrap: { voters: IDS, learners: [] } })
    node.on('event', (e: HoldfastEvent) => events.push({ ...e, at: performance.now() }))
    vips.set(id, attachVip(node, { address: VIP, device: 'eth0', reconcileMs: 50 }, {}, { run: hosts.get(id)!.run }))
    return node
  }
  for (const id of IDS) await start(id)
  t.teardown(() => cluster.close())
  return { cluster, hosts, vips, events, start }
}

const holders = (r: Rig): string[] => IDS.filter((id) => r.hosts.get(id)!.addrs.has(VIP))
const acting = (r: Rig): HoldfastNode | undefined => [...r.cluster.nodes.values()].find((n) => n.isActing())
const vipEvents = (r: Rig, node: string, action?: string): Array<Record<string, unknown>> =>
  r.events.filter((e) => e.type === 'vip' && e.node === node && (action === undefined || (e as Record<string, unknown>).action === action)) as Array<Record<string, unknown>>

t.test('the acting node holds the VIP, and only it; its events are the node events', async (t) => {
  const r = await rig(t)
  await until(() => acting(r) !== undefined, 10_000, 'a node acting')
  const a = acting(r)!
  t.same(holders(r), [a.id])
  const added = vipEvents(r, a.id, 'added')[0]!
  t.match(added, { type: 'vip', action: 'added', node: a.id, token: a.fence(), address: VIP, device: 'eth0', command: ['ip', 'addr', 'add', VIP, 'dev', 'eth0'] })
  t.type(added.time, 'number')
  const start = r.events.find((e) => e.type === 'actingStart' && e.node === a.id)!
  t.ok((added.at as number) <= start.at, 'the VIP is up before the node reports itself acting')
  t.ok(r.vips.get(a.id)!.holding)
})

t.test('a deposed node removes the VIP before another node adds it', async (t) => {
  const r = await rig(t)
  await until(() => acting(r) !== undefined, 10_000, 'a node acting')
  const old = acting(r)!
  r.cluster.network.isolate(old.id) // it keeps running, cut off: its lease runs out
  await until(() => acting(r) !== undefined && acting(r)!.id !== old.id, 10_000, 'another node acting')
  const next = acting(r)!
  await until(() => !r.hosts.get(old.id)!.addrs.has(VIP), 5_000, 'the VIP gone from the old node')
  t.same(holders(r), [next.id])
  const removed = vipEvents(r, old.id, 'removed')[0]!
  const added = vipEvents(r, next.id, 'added')[0]!
  const stop = r.events.find((e) => e.type === 'actingStop' && e.node === old.id)!
  t.match(stop, { reason: 'leaseExpired' })
  t.ok((removed.at as number) < (added.at as number), `removed on ${old.id} ${((added.at as number) - (removed.at as number)).toFixed(1)} ms before ${next.id} added it`)
  t.ok((added.token as number) > (removed.token as number), 'under a greater token')
  r.cluster.network.heal()
})

t.test('a node that cannot add the VIP gives up acting, and another node takes it', async (t) => {
  const r = await rig(t)
  // Every host refuses, so whoever wins first fails; then one host is fixed.
  for (const h of r.hosts.values()) h.force.set('ip addr add', fail(2, 'RTNETLINK answers: Operation not permitted\n'))
  await until(() => r.events.some((e) => e.type === 'actingFailed'), 10_000, 'a failed start')
  const failed = r.events.find((e) => e.type === 'actingFailed')!
  t.match(failed, { handler: 'vip', code: 'COMMAND_FAILED', message: /Operation not permitted/ })
  t.match(vipEvents(r, failed.node, 'commandFailed')[0], { step: 'add', exitCode: 2, stderr: /Operation not permitted/ })
  const fixed = IDS.find((id) => id !== failed.node)!
  r.hosts.get(fixed)!.force.clear()
  await until(() => acting(r)?.id === fixed, 15_000, `${fixed} acting`)
  t.same(holders(r), [fixed])
})

t.test('close() releases the VIP; the manager stops with the node', async (t) => {
  const r = await rig(t)
  await until(() => acting(r) !== undefined, 10_000, 'a node acting')
  const a = acting(r)!
  const host = r.hosts.get(a.id)!
  await a.close()
  t.notOk(host.addrs.has(VIP), 'removed on close')
  t.match(vipEvents(r, a.id, 'removed'), [{ why: 'release' }])
  const calls = host.calls.length
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(host.calls.length, calls, 'no reconcile after close')
})

t.test('a VIP left on a host is removed when its node starts, before it could act', async (t) => {
  const r = await rig(t)
  await until(() => acting(r) !== undefined, 10_000, 'a node acting')
  const follower = IDS.find((id) => id !== acting(r)!.id)!
  await r.cluster.crash(follower)
  r.hosts.get(follower)!.addrs.add(VIP) // as if its previous process had been killed while holding it
  await r.start(follower)
  await until(() => !r.hosts.get(follower)!.addrs.has(VIP), 5_000, 'the stale VIP removed')
  t.match(vipEvents(r, follower, 'removedStale'), [{ why: 'stale' }])
  t.same(holders(r), [acting(r)!.id])
})

t.test('createSwarmNode refuses bad vip options before opening anything', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'holdfast-vip-opt-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  await t.rejects(createSwarmNode({ dataDir, cluster: 'x', secret: 'a long enough secret for this test', vip: { address: '10.0.0.300/24', device: 'eth0' } }), { code: 'INVALID_ARGUMENT' })
})
