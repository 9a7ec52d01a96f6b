/**
 * Every replica's snapshot stream of one applied index is the same bytes, whatever the replica's
 * own history (how often it restored a snapshot), so a transfer broken off can be resumed from a
 * different peer: the receiver's held prefix matches the new sender's (src/transfer/protocol.ts).
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { NodeId, SnapshotMeta } from '../../src/core/types.js'
import type { Command } from '../../src/state/commands.js'
import type { KvStateMachine } from '../../src/state/kv.js'
import { SnapshotReceiver } from '../../src/transfer/receiver.js'
import { SnapshotSender, sendStats } from '../../src/transfer/sender.js'
import { MemoryNetwork } from '../../src/transport/memory.js'
import { PeerRpc } from '../../src/transport/rpc.js'
import { applyCommands, collect, freshKv, from } from '../state/helpers.js'

const KiB = 1024

function commands(n: number, offset = 0): Command[] {
  const out: Command[] = []
  for (let i = offset; i < offset + n; i++) {
    if (i % 7 === 3) out.push({ type: 'delete', key: `k/${(i * 5) % 40}` })
    else if (i % 50 === 10) out.push({ type: 'put', bucket: 'blobs', key: `b/${i}`, value: new Uint8Array(100 * KiB).fill(i & 255) })
    else if (i === 20) out.push({ type: 'setFence', token: 4 })
    else out.push({ type: 'put', key: `k/${(i * 5) % 40}`, value: i % 2 ? { i, s: 'x'.repeat(i % 30), nested: { a: [i, 'y'] } } : `v${i}` })
  }
  return out
}

async function restoreFrom(target: KvStateMachine, source: KvStateMachine): Promise<void> {
  await target.restore(from(await collect(source.snapshot().chunks)))
}

async function bytes(kv: KvStateMachine): Promise<Buffer> {
  return Buffer.concat(await collect(kv.snapshot().chunks))
}

/** Three replicas at one applied index: a applied everything, b restored once, c twice (from b). */
async function replicas(t: Test): Promise<[KvStateMachine, KvStateMachine, KvStateMachine]> {
  const { kv: a } = await freshKv(t)
  const { kv: b } = await freshKv(t)
  const { kv: c } = await freshKv(t)
  applyCommands(a, ...commands(200))
  applyCommands(c, ...commands(20))
  await restoreFrom(b, a)
  await restoreFrom(c, b)
  applyCommands(a, ...commands(100, 200))
  await restoreFrom(c, a)
  applyCommands(b, ...commands(100, 200))
  for (const kv of [a, b, c]) applyCommands(kv, ...commands(100, 300))
  return [a, b, c]
}

t.test('replicas with different histories stream one applied index as the same bytes', async (t) => {
  const [a, b, c] = await replicas(t)
  t.same([a, b, c].map((kv) => kv.appliedIndex()), [400, 400, 400])
  t.same(
    [a, b, c].map((kv) => kv.snapshot().meta.generation),
    [0, 1, 2],
    'their data generations differ (each counts its own restores)',
  )
  const [x, y, z] = [await bytes(a), await bytes(b), await bytes(c)]
  t.ok(x.byteLength > 500 * KiB, `a stream of ${x.byteLength} bytes`)
  t.ok(x.equals(y), 'b streams the same bytes as a')
  t.ok(x.equals(z), 'c streams the same bytes as a')
})

t.test('a transfer broken off from one peer is resumed from another', async (t) => {
  const [a, b] = await replicas(t)
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-identity-'))
  const network = new MemoryNetwork()
  const rpcs = ['p', 'q', 'r'].map((id) => new PeerRpc(network.createTransport(id)))
  const [p, q, r] = rpcs as [PeerRpc, PeerRpc, PeerRpc]
  const delivered: NodeId[] = []
  const receiver = new SnapshotReceiver({ dir, appliedIndex: () => 0, checkMessage: () => {}, deliver: (from) => delivered.push(from) })
  receiver.register(r)
  const senders = [p, q].map((rpc) => new SnapshotSender({ rpc, timeoutMs: 5_000, chunkBytes: 16 * KiB }))
  t.teardown(async () => {
    for (const s of senders) await s.close()
    receiver.close()
    for (const rpc of rpcs) rpc.close()
    await rm(dir, { recursive: true, force: true })
  })
  const meta: SnapshotMeta = { index: 400, term: 3, membership: { voters: ['p', 'q', 'r'], learners: [] } }
  const send = async (i: 0 | 1, kv: KvStateMachine, cutAfter?: number) => {
    const snap = kv.snapshot()
    let read = 0
    const chunks = {
      async *[Symbol.asyncIterator]() {
        for await (const c of snap.chunks) {
          read += c.byteLength
          if (cutAfter !== undefined && read >= cutAfter) network.partition(['p'], ['r'])
          yield c
        }
      },
    }
    const stats = sendStats(meta)
    const ok = await senders[i]!.send({ to: 'r', snapshot: { meta, chunks, release: snap.release }, firstIndex: 1, message: () => new Uint8Array([1]), stats }).then(
      () => true,
      () => false,
    )
    return { ok, ...stats }
  }
  const broken = await send(0, a, 256 * KiB)
  t.equal(broken.ok, false, 'the transfer from p broke')
  const held = receiver.partial()!.bytes
  t.ok(held > 0, `the receiver holds ${held} bytes from p`)
  const resumed = await send(1, b)
  t.equal(resumed.ok, true, 'q completed it')
  t.ok(resumed.startOffset >= held, `from where p left off (${resumed.startOffset})`)
  t.equal(resumed.sentBytes, resumed.totalBytes! - resumed.startOffset, 'q sent only the rest')
  t.same(delivered, ['q'])
  const done = receiver.takeCompleted(400, 3)!
  t.ok((await readFile(done.path)).equals(await bytes(a)), "the received bytes are a's stream")
  const { kv: d } = await freshKv(t)
  await d.restore(done.read())
  t.same(d.list({ bucket: 'blobs' }).length, a.list({ bucket: 'blobs' }).length)
  t.same(d.list(), a.list(), 'and restore to the same state')
})
