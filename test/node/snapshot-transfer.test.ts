/**
 * Snapshot transfer at the node level (src/transfer/ wired into src/node.ts): real LMDB
 * data directories on a MemoryNetwork whose transports are wrapped by a tap that sees (and can
 * drop or alter) every snapshot chunk on the wire, so byte counts and resume offsets are measured
 * outside the code under test.
 */
import { createHash } from 'node:crypto'
import { readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Packr } from 'msgpackr'
import t from 'tap'
import type { Test } from 'tap'
import type { NodeId } from '../../src/core/types.js'
import { isHoldfastError, type HoldfastError } from '../../src/errors.js'
import { createNode, type HoldfastNode } from '../../src/node.js'
import type { NodeOptions } from '../../src/options.js'
import { DEFAULT_TRANSFER_CHUNK_BYTES, DEFAULT_TRANSFER_WINDOW, SNAPSHOT_METHOD, SNAPSHOT_SPOOL_DIR } from '../../src/transfer/protocol.js'
import { until } from '../../src/testing/index.js'
import { decodeEnvelope, encodeEnvelope, encodeRaftMessage } from '../../src/transport/codec.js'
import { MemoryNetwork, type MemoryTransport } from '../../src/transport/memory.js'
import { PeerRpc } from '../../src/transport/rpc.js'
import type { Transport } from '../../src/transport/types.js'

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false })
const KiB = 1024
const MiB = 1024 * KiB
const CHUNK = DEFAULT_TRANSFER_CHUNK_BYTES
const WINDOW = DEFAULT_TRANSFER_WINDOW
/** The state the lagging follower misses: 200 values of CHUNK / 16 bytes, a snapshot of about 12.5 chunks. */
const KEYS = 200
const VALUE_BYTES = CHUNK / 16

// ------------------------------------------------------------------------------ the wire tap

interface ChunkSeen {
  readonly from: NodeId
  readonly to: NodeId
  readonly session: number
  readonly offset: number
  readonly bytes: number
}

type ChunkBody = { session: number; offset: number; data: Uint8Array; prefix?: Uint8Array }

/** Sees every snapshot chunk request and its response on the wire. */
class Tap {
  readonly chunks: ChunkSeen[] = []
  /** Returns 'drop' to lose the frame in transit, a body to send instead, or nothing. */
  onChunk: ((c: ChunkSeen, body: ChunkBody) => 'drop' | ChunkBody | void) | undefined
  /** Chunk requests sent and not yet answered, per sender. */
  readonly #open = new Map<NodeId, Set<number>>()
  maxInFlight = 0

  outbound(from: NodeId, to: NodeId, frame: Uint8Array): Uint8Array | null {
    let msg
    try {
      msg = decodeEnvelope(frame)
    } catch {
      return frame
    }
    if (msg.kind === 'rpcResponse') {
      this.#open.get(to)?.delete(msg.body.id)
      return frame
    }
    if (msg.kind !== 'rpcRequest' || msg.body.method !== SNAPSHOT_METHOD.chunk) return frame
    const body = packr.unpack(msg.body.payload) as ChunkBody
    const seen: ChunkSeen = { from, to, session: body.session, offset: body.offset, bytes: body.data.byteLength }
    this.chunks.push(seen)
    const open = this.#open.get(from) ?? new Set<number>()
    this.#open.set(from, open)
    open.add(msg.body.id)
    this.maxInFlight = Math.max(this.maxInFlight, open.size)
    const r = this.onChunk?.(seen, body)
    if (r === 'drop') return null
    if (r) return encodeEnvelope({ kind: 'rpcRequest', body: { ...msg.body, payload: packr.pack(r) } })
    return frame
  }

  /** A lost connection answers nothing: forget what was open to `peer`. */
  forget(from: NodeId): void {
    this.#open.get(from)?.clear()
  }

  /** The chunks sent to `to`, by session in the order the sessions started. */
  sessionsTo(to: NodeId): ChunkSeen[][] {
    const by = new Map<number, ChunkSeen[]>()
    for (const c of this.chunks) if (c.to === to) by.set(c.session, [...(by.get(c.session) ?? []), c])
    return [...by.values()]
  }
}

class TapTransport implements Transport {
  constructor(
    readonly inner: MemoryTransport,
    readonly tap: Tap,
  ) {}

  get id(): NodeId {
    return this.inner.id
  }

  send(to: NodeId, frame: Uint8Array): boolean {
    const out = this.tap.outbound(this.id, to, frame)
    if (out === null) return this.inner.connectedPeers().includes(to)
    return this.inner.send(to, out)
  }

  onFrame(handler: (from: NodeId, frame: Uint8Array) => void): void {
    this.inner.onFrame(handler)
  }

  onPeer(handler: (peer: NodeId, up: boolean) => void): void {
    this.inner.onPeer((peer, up) => {
      if (!up) this.tap.forget(this.id)
      handler(peer, up)
    })
  }

  connectedPeers(): NodeId[] {
    return this.inner.connectedPeers()
  }

  disconnect(peer: NodeId, reason: string): void {
    ;(this.inner as { disconnect?: (p: NodeId, r: string) => void }).disconnect?.(peer, reason)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

// ------------------------------------------------------------------------------ a cluster

interface Cluster {
  readonly network: MemoryNetwork
  readonly tap: Tap
  readonly nodes: Map<NodeId, HoldfastNode>
  dir(id: NodeId): string
  start(id: NodeId): Promise<HoldfastNode>
  crash(id: NodeId): Promise<void>
  waitForLeader(): Promise<HoldfastNode>
}

async function cluster(t: Test, ids: readonly NodeId[], extra: Partial<NodeOptions> = {}): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), 'holdfast-snapshot-'))
  const network = new MemoryNetwork()
  const tap = new Tap()
  const nodes = new Map<NodeId, HoldfastNode>()
  const c: Cluster = {
    network,
    tap,
    nodes,
    dir: (id) => join(root, id),
    async start(id) {
      const node = await createNode({
        id,
        dataDir: join(root, id),
        transport: new TapTransport(network.createTransport(id), tap),
        bootstrap: { voters: [...ids], learners: [] },
        tickMs: 10,
        logTail: 5,
        ...extra,
      })
      nodes.set(id, node)
      return node
    },
    async crash(id) {
      const node = nodes.get(id)!
      network.isolate(id)
      nodes.delete(id)
      await node.close()
      network.heal()
    },
    async waitForLeader() {
      await until(() => [...nodes.values()].some((n) => n.status().role === 'leader'), 10_000, 'a leader')
      return [...nodes.values()].find((n) => n.status().role === 'leader')!
    },
  }
  t.teardown(async () => {
    for (const n of nodes.values()) await n.close().catch(() => {})
    await rm(root, { recursive: true, force: true })
  })
  for (const id of ids) await c.start(id)
  return c
}

function value(i: number): Uint8Array {
  return Buffer.alloc(VALUE_BYTES).fill(`value-${i}-`)
}

interface Sent {
  ok: boolean
  /** The snapshot sent, and the one the core asked for (older when a held snapshot was re-offered). */
  index: number
  requestedIndex: number
  reoffered: boolean
  startOffset: number
  sentBytes: number
  totalBytes?: number
  error?: HoldfastError
}

/**
 * A three-node cluster whose follower `lag` missed KEYS large writes (and `small` small ones)
 * while down, so the leader's log is compacted past it. Returns before `lag` is started again.
 */
async function laggingFollower(
  t: Test,
  o: { extra?: Partial<NodeOptions>; small?: number } = {},
): Promise<{ c: Cluster; leader: HoldfastNode; lag: NodeId; sent: (Sent & { by: NodeId })[] }> {
  // A longer election timeout than the default: three nodes share one event loop with multi-MB transfers.
  const c = await cluster(t, ['a', 'b', 'c'], { electionTicks: 30, ...o.extra })
  const leader = await c.waitForLeader()
  const lag = [...c.nodes.keys()].find((id) => id !== leader.id)!
  await leader.put('early', 'e')
  await c.crash(lag)
  for (let i = 0; i < KEYS; i += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, k) => leader.put(`key-${String(i + k).padStart(4, '0')}`, value(i + k))))
  }
  const small = o.small ?? 0
  for (let i = 0; i < small; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, small - i) }, (_, k) => leader.put(`small-${i + k}`, i + k)))
  }
  // From every node: should leadership move, the new leader's transfers count too.
  const sent: (Sent & { by: NodeId })[] = []
  for (const n of c.nodes.values()) {
    n.on('snapshotSent', (e: Sent & { to: NodeId }) => {
      if (e.to === lag) sent.push({ ...e, by: n.id })
    })
  }
  return { c, leader, lag, sent }
}

/** Waits until `back` applied everything any node knows committed. */
async function caughtUp(c: Cluster, back: HoldfastNode): Promise<void> {
  const committed = (): number => Math.max(...[...c.nodes.values()].map((n) => n.status().commitIndex))
  await until(() => back.status().appliedIndex >= committed(), 20_000, 'the follower to catch up')
}

/** A digest of a node's whole key-value state (comparing MBs of values with t.same is slow). */
function fingerprint(n: HoldfastNode): string {
  const all = n.list()
  const h = createHash('sha256')
  for (const kv of all) h.update(packr.pack(kv))
  return `${all.length} keys, sha256 ${h.digest('hex').slice(0, 16)}`
}

function spoolFiles(c: Cluster, id: NodeId): string[] {
  return readdirSync(join(c.dir(id), SNAPSHOT_SPOOL_DIR))
}

// ------------------------------------------------------------------------------ tests

t.test('a follower behind the compaction point is restored by a multi-chunk snapshot, with a bounded window', async (t) => {
  const { c, leader, lag, sent } = await laggingFollower(t)
  const back = await c.start(lag)
  const installed: { from: NodeId; bytes: number }[] = []
  back.on('snapshotInstalled', (e: { from: NodeId; bytes: number }) => installed.push(e))
  const progress: { bytes: number }[] = []
  back.on('snapshotProgress', (p: { bytes: number }) => progress.push(p))
  await caughtUp(c, back)
  const ok = sent.filter((s) => s.ok)
  t.equal(ok.length, 1, 'one successful transfer')
  const total = ok[0]!.totalBytes!
  t.ok(total > 12 * CHUNK, `the snapshot is over 12 chunks (${total} bytes)`)
  const chunks = c.tap.chunks.filter((x) => x.to === lag)
  t.ok(chunks.length >= Math.floor(total / CHUNK), `it went as ${chunks.length} chunks`)
  t.ok(chunks.every((x) => x.bytes <= CHUNK), `no chunk is over ${CHUNK} bytes`)
  t.equal(chunks.reduce((n, x) => n + x.bytes, 0), total, 'each byte was sent once')
  t.ok(c.tap.maxInFlight >= 2 && c.tap.maxInFlight <= WINDOW, `chunks are pipelined within the window of ${WINDOW} (at most ${c.tap.maxInFlight} unanswered)`)
  t.same(installed.map((e) => [e.from, e.bytes]), [[ok[0]!.by, total]], 'the follower installed it once, from the sender')
  t.ok(progress.length >= 2 && progress.length < chunks.length, `progress was reported at a modest rate (${progress.length} events for ${chunks.length} chunks)`)
  t.equal(fingerprint(back), fingerprint(leader), 'the follower holds exactly the leader state')
  t.equal(back.list({ limit: KEYS + 10 }).length, KEYS + 1, 'every key')
  await leader.put('after', 'a')
  t.equal((await back.get('after'))?.value, 'a', 'it follows the log again')
})

t.test('a transfer cut mid-way resumes from the offset the follower holds', async (t) => {
  const { c, leader, lag, sent } = await laggingFollower(t)
  let cutAt = -1
  c.tap.onChunk = (x) => {
    if (x.to !== lag || cutAt >= 0 || x.offset < 4 * CHUNK) return
    // Cut the leader-follower link with this chunk and the window before it in flight.
    cutAt = x.offset
    queueMicrotask(() => c.network.partition([x.from], [lag]))
    return 'drop'
  }
  leader.on('snapshotSent', (e: { ok: boolean }) => {
    if (!e.ok && cutAt >= 0) setImmediate(() => c.network.heal())
  })
  const back = await c.start(lag)
  const starts: number[] = []
  back.on('snapshotProgress', (p: { startOffset: number; bytes: number; totalBytes?: number }) => {
    if (p.bytes === p.startOffset) starts.push(p.startOffset)
  })
  await caughtUp(c, back)
  t.ok(cutAt >= 4 * CHUNK, `the link was cut with the chunk at ${cutAt}`)
  const failed = sent.filter((s) => !s.ok && s.sentBytes > 0)
  t.equal(failed.length, 1, 'the first attempt failed with the cut')
  const ok = sent.filter((s) => s.ok)
  t.equal(ok.length, 1, 'a later attempt succeeded')
  const total = ok[0]!.totalBytes!
  const sessions = c.tap.sessionsTo(lag)
  t.ok(sessions.length >= 2, `${sessions.length} attempts put chunks on the wire`)
  t.equal(sessions[0]![0]!.offset, 0, 'the first attempt started at 0')
  const resumed = sessions[sessions.length - 1]![0]!.offset
  t.ok(resumed >= cutAt - WINDOW * CHUNK && resumed <= cutAt, `the resumed attempt started at ${resumed}, near the cut at ${cutAt}`)
  t.equal(ok[0]!.startOffset, resumed, 'the sender was told to start there')
  t.ok(starts.includes(resumed), 'the follower reported the resumed start')
  const onWire = c.tap.chunks.filter((x) => x.to === lag).reduce((n, x) => n + x.bytes, 0)
  t.ok(onWire <= total + WINDOW * CHUNK, `${onWire} bytes were sent in all for a ${total}-byte snapshot (at most the window twice)`)
  t.ok(onWire >= total, 'every byte was sent at least once')
  t.equal(fingerprint(back), fingerprint(leader), 'the follower holds exactly the leader state')
})

/** Keeps committing small writes through `via`, one every few ms (a steady load, not a sync), until stopped. */
function writer(via: HoldfastNode): { count(): number; stop(): Promise<void> } {
  let running = true
  let n = 0
  const loop = (async () => {
    while (running) {
      try {
        await via.put(`w-${n}`, n)
        n++
      } catch {
        // A write that timed out during a leadership hiccup; the load goes on.
      }
      await new Promise((r) => setTimeout(r, 4))
    }
  })()
  return {
    count: () => n,
    async stop() {
      running = false
      await loop
    },
  }
}

t.test('a transfer cut while the leader keeps committing resumes the same, older snapshot; the follower then catches up from the log', async (t) => {
  // The default log tail: the writer cannot outrun it during the test, so the older snapshot is
  // still followed by the log (with a tail of 5 it is not: see the next test). The small writes
  // put the lagging follower behind the compaction point of that tail.
  const { c, leader, lag, sent } = await laggingFollower(t, { extra: { logTail: 1000 }, small: 1200 })
  const w = writer(leader)
  let cut: { offset: number; at: number } | undefined
  c.tap.onChunk = (x) => {
    if (x.to !== lag || cut || x.offset < 6 * CHUNK) return
    // Cut the leader-follower link with this chunk and the window before it in flight.
    cut = { offset: x.offset, at: w.count() }
    queueMicrotask(() => c.network.partition([x.from], [lag]))
    return 'drop'
  }
  let healing = false
  leader.on('snapshotSent', (e: Sent) => {
    if (e.ok || !cut || healing) return
    healing = true
    // Heal once the cluster has committed well past the snapshot that broke, so the core's retry
    // asks for a newer one.
    void until(() => leader.status().commitIndex >= e.index + 50, 20_000, 'writes during the cut').then(
      () => c.network.heal(),
      (err: unknown) => t.fail(String(err)),
    )
  })
  const back = await c.start(lag)
  const installed: { index: number }[] = []
  back.on('snapshotInstalled', (e: { index: number }) => installed.push(e))
  await until(() => sent.some((s) => s.ok), 30_000, 'a successful transfer')
  const okIndex = sent.find((s) => s.ok)!.index
  // The follower keeps up with the writer from the log for a while, then the load stops.
  await until(() => back.status().appliedIndex > okIndex + 100, 20_000, 'the follower to follow the log')
  const writes = w.count()
  await w.stop()
  await caughtUp(c, back)

  t.ok(cut && cut.offset >= 6 * CHUNK, `the link was cut with the chunk at ${cut?.offset}`)
  t.ok(writes - cut!.at >= 50, `${writes - cut!.at} writes were committed from the cut on (${writes} in all)`)
  const failed = sent.filter((s) => !s.ok && s.sentBytes > 0)
  t.equal(failed.length, 1, 'the first attempt failed with the cut')
  const broken = failed[0]!.index
  const ok = sent.filter((s) => s.ok)
  t.equal(ok.length, 1, 'one successful transfer: no other snapshot was needed')
  const done = ok[0]!
  t.ok(done.requestedIndex >= broken + 50, `the core asked for a newer snapshot (at ${done.requestedIndex})...`)
  t.equal(done.index, broken, `...and the sender resumed the held one at ${broken} instead`)
  t.equal(done.reoffered, true, 'reported as re-offered')
  const total = done.totalBytes!
  t.ok(total > 12 * CHUNK, `the snapshot is over 12 chunks (${total} bytes)`)
  t.ok(done.startOffset > 0, `the resumed attempt started at ${done.startOffset}`)
  t.ok(done.startOffset >= cut!.offset - WINDOW * CHUNK && done.startOffset <= cut!.offset, `near the cut at ${cut!.offset}`)
  const sessions = c.tap.sessionsTo(lag)
  t.equal(sessions[sessions.length - 1]![0]!.offset, done.startOffset, 'its first chunk on the wire started there')
  const onWire = c.tap.chunks.filter((x) => x.to === lag).reduce((n, x) => n + x.bytes, 0)
  t.ok(onWire <= total + WINDOW * CHUNK, `${onWire} bytes were sent in all for a ${total}-byte snapshot (at most the window twice)`)
  t.ok(onWire >= total, 'every byte was sent at least once')
  t.same(
    installed.map((e) => e.index),
    [broken],
    'the follower installed the older snapshot once',
  )
  // At least every write from the cut on (the cut may come before the writer's first write).
  t.ok(back.status().appliedIndex >= broken + writes - cut!.at, 'and caught up from the log past everything written meanwhile')
  t.equal(fingerprint(back), fingerprint(leader), 'the follower holds exactly the leader state')
})

t.test('a held snapshot the log has moved past is not re-offered: the retry sends the new one from 0', async (t) => {
  // The cluster's log tail is 5 entries: 50 writes during the cut compact the log far past the
  // broken snapshot, so a follower that installed it could not continue from the log.
  const { c, leader, lag, sent } = await laggingFollower(t)
  const w = writer(leader)
  let cut = -1
  c.tap.onChunk = (x) => {
    if (x.to !== lag || cut >= 0 || x.offset < 4 * CHUNK) return
    cut = x.offset
    queueMicrotask(() => c.network.partition([x.from], [lag]))
    return 'drop'
  }
  let healing = false
  leader.on('snapshotSent', (e: Sent) => {
    if (e.ok || cut < 0 || healing) return
    healing = true
    void until(() => leader.status().commitIndex >= e.index + 50, 20_000, 'writes during the cut')
      // With a tail this short a writer would outrun every snapshot: stop it before healing.
      .then(() => w.stop())
      .then(
        () => c.network.heal(),
        (err: unknown) => t.fail(String(err)),
      )
  })
  const back = await c.start(lag)
  await caughtUp(c, back)
  await w.stop()
  await caughtUp(c, back)
  const failed = sent.filter((s) => !s.ok && s.sentBytes > 0)
  t.equal(failed.length, 1, 'the first attempt failed with the cut')
  const broken = failed[0]!.index
  const ok = sent.filter((s) => s.ok)
  t.ok(ok.length >= 1, 'a later attempt succeeded')
  t.ok(ok[0]!.index >= broken + 50, `it sent the new snapshot at ${ok[0]!.index}, not the held one at ${broken}`)
  t.equal(ok[0]!.reoffered, false)
  t.equal(ok[0]!.startOffset, 0, 'from 0')
  t.equal(fingerprint(back), fingerprint(leader), 'the follower holds exactly the leader state')
})

t.test('a chunk corrupted in transit fails the checksum, installs nothing, and a clean retry succeeds', async (t) => {
  const { c, leader, lag, sent } = await laggingFollower(t)
  let flipped = -1
  c.tap.onChunk = (x, body) => {
    if (x.to !== lag || flipped >= 0 || x.offset < CHUNK) return
    flipped = x.offset
    const data = Buffer.from(body.data)
    data[data.byteLength >> 1]! ^= 0x5a
    return { ...body, data }
  }
  const back = await c.start(lag)
  const before = back.status().appliedIndex
  const failures: { code: string; appliedIndex: number; installed: number }[] = []
  let installed = 0
  back.on('snapshotInstalled', () => installed++)
  back.on('snapshotFailed', (e: { error: HoldfastError }) => {
    failures.push({ code: e.error.code, appliedIndex: back.status().appliedIndex, installed })
  })
  await until(() => failures.length > 0, 20_000, 'the checksum failure')
  await until(() => spoolFiles(c, lag).length === 0, 5_000, 'the partial to be discarded')
  t.ok(flipped >= CHUNK, `a byte of the chunk at ${flipped} was flipped`)
  t.equal(failures[0]!.code, 'CORRUPT_DATA', 'the follower reported a checksum failure')
  t.equal(failures[0]!.appliedIndex, before, 'nothing was installed')
  t.equal(failures[0]!.installed, 0)
  await caughtUp(c, back)
  const bad = sent.find((s) => !s.ok && s.sentBytes > 0)
  t.equal(bad?.error?.code, 'CORRUPT_DATA', 'the leader saw the transfer fail with CORRUPT_DATA')
  const ok = sent.filter((s) => s.ok)
  t.equal(ok.length, 1, 'a later attempt succeeded')
  t.equal(ok[0]!.startOffset, 0, 'the retry started over: the corrupt partial was not kept')
  t.equal(installed, 1, 'installed once')
  t.equal(fingerprint(back), fingerprint(leader), 'the follower holds exactly the leader state')
})

t.test('the receiver spools to a file under the data directory and removes it after install', async (t) => {
  const { c, leader, lag, sent } = await laggingFollower(t)
  let during: { files: string[]; size: number; offset: number } | undefined
  c.tap.onChunk = (x) => {
    if (x.to !== lag || during || x.offset < 6 * CHUNK) return
    const files = spoolFiles(c, lag)
    during = { files, size: files.length === 1 ? statSync(join(c.dir(lag), SNAPSHOT_SPOOL_DIR, files[0]!)).size : -1, offset: x.offset }
  }
  const back = await c.start(lag)
  await caughtUp(c, back)
  const total = sent.find((s) => s.ok)!.totalBytes!
  t.ok(during, 'the spool was looked at mid-transfer')
  t.equal(during!.files.length, 1, 'one spool file during the transfer')
  t.match(during!.files[0], /^\d+-\d+-\d+\.partial$/, 'named <index>-<term>-<n>.partial')
  t.ok(during!.size >= during!.offset - WINDOW * CHUNK && during!.size <= during!.offset, `it held the ${during!.size} bytes received before the chunk at ${during!.offset}, on disk`)
  t.ok(during!.size < total, 'a partial file, not the whole snapshot')
  await until(() => spoolFiles(c, lag).length === 0, 5_000, 'the spool file to go')
  t.same(spoolFiles(c, lag), [], 'the spool file is removed after the install')
})

t.test('malformed snapshot RPCs from a peer get typed errors and change nothing', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'holdfast-snapshot-bad-'))
  const network = new MemoryNetwork()
  const node = await createNode({ id: 'a', dataDir: root, transport: network.createTransport('a'), bootstrap: { voters: ['a'], learners: [] }, tickMs: 10 })
  t.teardown(async () => {
    await node.close()
    await rm(root, { recursive: true, force: true })
  })
  await until(() => node.status().role === 'leader', 5_000, 'a leader')
  for (let i = 0; i < 5; i++) await node.put(`k${i}`, i)
  const failed: string[] = []
  node.on('snapshotFailed', (e: { error: HoldfastError }) => failed.push(e.error.code))
  const before = { status: node.status(), list: node.list() }
  const x = new PeerRpc(network.createTransport('x'))
  const y = new PeerRpc(network.createTransport('y'))
  const ask = async (rpc: PeerRpc, method: string, body: unknown): Promise<Record<string, unknown>> => {
    const payload = body instanceof Uint8Array ? body : packr.pack(body)
    return packr.unpack(await rpc.request('a', method, payload, { timeoutMs: 5_000 })) as Record<string, unknown>
  }
  const refusal = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p
    } catch (err) {
      return isHoldfastError(err) ? `${err.code}: ${err.message}` : `untyped: ${String(err)}`
    }
    return 'accepted'
  }
  const { begin, chunk, done } = SNAPSHOT_METHOD
  const bytes = (n: number, fill = 7): Buffer => Buffer.alloc(n, fill)
  const snapshotMessage = (from: NodeId): Uint8Array =>
    encodeRaftMessage({ type: 'snapshot', from, to: 'a', term: 7, snapshot: { index: 1000, term: 7, membership: { voters: [from], learners: [] } } })

  t.match(await refusal(ask(x, begin, new Uint8Array([0x85, 0xa1]))), /^DECODE_ERROR/, 'begin: undecodable payload')
  t.match(await refusal(ask(x, begin, { index: 'ten', term: 1 })), /^INVALID_ARGUMENT/, 'begin: a non-integer index')
  t.match(await refusal(ask(x, begin, [1, 2])), /^INVALID_ARGUMENT/, 'begin: not a map')
  t.match(await refusal(ask(x, begin, { index: 1, term: 1 })), /^INVALID_ARGUMENT: a: .*not newer than the applied index/, 'begin: a snapshot older than the applied state')
  t.match(await refusal(ask(x, chunk, { session: 12345, offset: 0, data: bytes(10) })), /^INVALID_ARGUMENT: a: unknown snapshot transfer/, 'chunk: an unknown transfer')
  t.match(await refusal(ask(x, done, { session: 12345, bytes: 0, sha256: bytes(32), message: snapshotMessage('x') })), /^INVALID_ARGUMENT: a: unknown snapshot transfer/, 'done: an unknown transfer')

  const started = await ask(x, begin, { index: 1000, term: 7 })
  t.equal(started.offset, 0, 'a new snapshot starts at 0')
  const session = started.session
  t.same(await ask(x, chunk, { session, offset: 0, data: bytes(10) }), { next: 10 }, 'an in-order chunk is taken')
  t.same(await ask(x, chunk, { session, offset: 0, data: bytes(10) }), { next: 10 }, 'a duplicate is acknowledged and ignored')
  t.match(await refusal(ask(x, chunk, { session, offset: 50, data: bytes(10) })), /^INVALID_ARGUMENT: .*beyond the 10 bytes held/, 'chunk: an offset beyond what is held')
  t.match(await refusal(ask(x, chunk, { session, offset: 5, data: bytes(10) })), /^INVALID_ARGUMENT: .*overlaps/, 'chunk: overlapping what is held')
  t.match(await refusal(ask(x, chunk, { session, offset: 10, data: bytes(2 * MiB) })), /^TOO_LARGE/, 'chunk: oversized')
  t.match(await refusal(ask(x, chunk, { session, offset: 10, data: 'text' })), /^INVALID_ARGUMENT/, 'chunk: data that is not bytes')
  t.match(await refusal(ask(x, chunk, { session, offset: -1, data: bytes(1) })), /^INVALID_ARGUMENT/, 'chunk: a negative offset')
  t.match(await refusal(ask(y, chunk, { session, offset: 10, data: bytes(10) })), /^INVALID_ARGUMENT: a: unknown snapshot transfer/, "chunk: another peer's transfer")
  t.match(await refusal(ask(x, done, { session, bytes: 10, sha256: bytes(32), message: bytes(5) })), /^DECODE_ERROR/, 'done: an undecodable Raft message')
  t.match(await refusal(ask(x, done, { session, bytes: 10, sha256: bytes(32), message: snapshotMessage('y') })), /^INVALID_ARGUMENT: a: not a snapshot message from x/, 'done: a message claiming another sender')
  t.match(await refusal(ask(x, done, { session, bytes: 20, sha256: bytes(32), message: snapshotMessage('x') })), /^INVALID_ARGUMENT: a: done at 20 bytes, but 10/, 'done: before every byte arrived')
  t.match(await refusal(ask(x, done, { session, bytes: 10, sha256: bytes(31), message: snapshotMessage('x') })), /^INVALID_ARGUMENT/, 'done: a malformed digest')

  const again = await ask(x, begin, { index: 1000, term: 7 })
  t.equal(again.offset, 10, 'after all that, the partial transfer still holds its 10 bytes')
  t.match(await refusal(ask(x, chunk, { session: again.session, offset: 10, data: bytes(10) })), /^INVALID_ARGUMENT: .*prefix/, 'a resumed transfer must prove its prefix')
  t.same(failed, [], 'no transfer failed so far')
  t.match(await refusal(ask(x, chunk, { session: again.session, offset: 10, data: bytes(10), prefix: bytes(32) })), /^CORRUPT_DATA/, 'a differing prefix is refused...')
  t.equal((await ask(x, begin, { index: 1000, term: 7 })).offset, 0, '...and the partial it condemns is discarded')
  const third = await ask(x, begin, { index: 1000, term: 7 })
  await ask(x, chunk, { session: third.session, offset: 0, data: bytes(10) })
  t.match(await refusal(ask(x, done, { session: third.session, bytes: 10, sha256: bytes(32), message: snapshotMessage('x') })), /^CORRUPT_DATA: a: .*checksum/, 'done: a wrong digest fails the checksum')
  t.same(failed, ['CORRUPT_DATA', 'CORRUPT_DATA'], 'the node reported both failed transfers')
  await until(() => readdirSync(join(root, SNAPSHOT_SPOOL_DIR)).length === 0, 5_000, 'the spool to be emptied')

  const now = node.status()
  t.equal(now.role, 'leader', 'the node still leads')
  t.equal(now.term, before.status.term, 'in the same term')
  t.equal(now.appliedIndex, before.status.appliedIndex, 'its applied index did not move')
  t.same(node.list(), before.list, 'its state did not change')
  await node.put('still', 'writable')
  t.equal((await node.get('still'))?.value, 'writable', 'and it keeps serving writes')
})
