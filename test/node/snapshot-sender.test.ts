/**
 * SnapshotSender on its own (src/transfer/sender.ts): what it keeps after a broken transfer, when
 * it offers that snapshot again instead of a new one, and when it lets go of it. A real
 * SnapshotReceiver on a MemoryNetwork; the snapshots are synthetic byte streams whose sources
 * record whether they were read and released (a real one holds an LMDB read transaction).
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { NodeId, SnapshotMeta } from '../../src/core/types.js'
import { isHoldfastError } from '../../src/errors.js'
import { until } from '../../src/testing/index.js'
import { SNAPSHOT_METHOD, packr } from '../../src/transfer/protocol.js'
import { SnapshotReceiver } from '../../src/transfer/receiver.js'
import { SnapshotSender, sendStats, type SendStats, type SnapshotToSend } from '../../src/transfer/sender.js'
import { MemoryNetwork } from '../../src/transport/memory.js'
import { PeerRpc } from '../../src/transport/rpc.js'

const KiB = 1024
const SIZE = 1024 * KiB

interface Source extends SnapshotToSend {
  readonly bytes: Buffer
  /** Bytes handed out so far. */
  read: number
  released: boolean
}

/** A snapshot of SIZE bytes derived from its index, streamed in 16 KiB pieces; `onRead` sees the bytes handed out so far. */
function source(index: number, onRead?: (read: number) => void): Source {
  const bytes = Buffer.alloc(SIZE)
  for (let i = 0; i < SIZE; i += 32) createHash('sha256').update(`${index}:${i}`).digest().copy(bytes, i)
  const meta: SnapshotMeta = { index, term: 2, membership: { voters: ['s', 'r'], learners: [] } }
  const s: Source = {
    meta,
    bytes,
    read: 0,
    released: false,
    chunks: {
      async *[Symbol.asyncIterator]() {
        try {
          for (let at = 0; at < SIZE; at += 16 * KiB) {
            s.read = at + 16 * KiB
            onRead?.(s.read)
            yield bytes.subarray(at, at + 16 * KiB)
          }
        } finally {
          s.released = true
        }
      },
    },
    release: () => {
      s.released = true
    },
  }
  return s
}

async function setup(t: Test, lingerMs = 60_000) {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-sender-'))
  const network = new MemoryNetwork()
  const srpc = new PeerRpc(network.createTransport('s'))
  const rrpc = new PeerRpc(network.createTransport('r'))
  let applied = 0
  const delivered: { index: number; term: number }[] = []
  const receiver = new SnapshotReceiver({
    dir,
    appliedIndex: () => applied,
    checkMessage: (_from, message, index, term) => {
      const m = JSON.parse(Buffer.from(message).toString()) as SnapshotMeta
      if (m.index !== index || m.term !== term) throw new Error('message for another snapshot')
    },
    deliver: (_from, message) => delivered.push(JSON.parse(Buffer.from(message).toString()) as SnapshotMeta),
  })
  receiver.register(rrpc)
  // Chunks well below SIZE, so a transfer is cut mid-way (the defaults would send it as one chunk).
  const sender = new SnapshotSender({ rpc: srpc, timeoutMs: 5_000, lingerMs, chunkBytes: 64 * KiB, window: 4 })
  t.teardown(async () => {
    await sender.close()
    receiver.close()
    srpc.close()
    rrpc.close()
    await rm(dir, { recursive: true, force: true })
  })
  const send = async (snap: Source, firstIndex = 1): Promise<SendStats & { ok: boolean; code?: string }> => {
    const stats = sendStats(snap.meta)
    try {
      await sender.send({ to: 'r' as NodeId, snapshot: snap, firstIndex, message: (m) => Buffer.from(JSON.stringify(m)), stats })
      return { ...stats, ok: true }
    } catch (err) {
      return { ...stats, ok: false, code: isHoldfastError(err) ? err.code : String(err) }
    }
  }
  /** A source that cuts the link once `at` bytes of it were read. */
  const cutting = (index: number, at: number): Source =>
    source(index, (read) => {
      if (read === at) network.partition(['s'], ['r'])
    })
  /** The bytes the receiver completed for (index, term), once it has them. */
  const completed = async (index: number): Promise<Buffer | undefined> => {
    const c = receiver.takeCompleted(index, 2)
    return c && readFile(c.path)
  }
  return { network, receiver, sender, send, cutting, completed, delivered, setApplied: (n: number) => (applied = n) }
}

t.test('a broken transfer is resumed with the held snapshot when the core asks for a newer one', async (t) => {
  const s = await setup(t)
  const first = s.cutting(100, 512 * KiB)
  const broken = await s.send(first)
  t.equal(broken.ok, false, `the first attempt failed (${broken.code})`)
  t.equal(first.released, false, 'its snapshot is held, not released')
  t.ok(first.read < SIZE, 'and was not read to its end')
  const held = s.sender.held('r')!
  t.same([held.index, held.term], [100, 2], 'held for the peer')
  t.ok(held.resumableFrom > 0 && held.resumableFrom <= (s.receiver.partial()?.bytes ?? 0), `resumable from ${held.resumableFrom}, at or before what the receiver holds`)

  s.network.heal()
  const newer = source(110)
  const sent = await s.send(newer, 90)
  t.equal(sent.ok, true, 'the retry succeeded')
  t.same([sent.index, sent.requestedIndex, sent.reoffered], [100, 110, true], 'it sent the held snapshot at 100 instead of 110')
  t.ok(sent.startOffset >= held.resumableFrom && sent.startOffset > 0, `from ${sent.startOffset}`)
  t.equal(sent.sentBytes, SIZE - sent.startOffset, 'only the rest went on the wire')
  t.equal(newer.read, 0, 'the new snapshot was not read...')
  t.equal(newer.released, true, '...and was released')
  t.equal(first.released, true, 'the held one was released after it was sent')
  t.equal(s.sender.held('r'), undefined, 'nothing is held any more')
  t.same(s.delivered, [{ index: 100, term: 2, membership: first.meta.membership }], 'the receiver got the Raft message of the snapshot sent')
  t.ok((await s.completed(100))?.equals(first.bytes), 'and exactly its bytes')
})

t.test('a held snapshot the log no longer follows is dropped for the new one', async (t) => {
  const s = await setup(t)
  const first = s.cutting(100, 512 * KiB)
  t.equal((await s.send(first)).ok, false)
  s.network.heal()
  const newer = source(110)
  // The log starts at 102: a follower at 100 could not continue from it.
  const sent = await s.send(newer, 102)
  t.same([sent.ok, sent.index, sent.reoffered, sent.startOffset], [true, 110, false, 0], 'the new snapshot was sent from 0')
  t.equal(first.released, true, 'the held one was released')
  t.ok((await s.completed(110))?.equals(newer.bytes))
})

t.test('a held snapshot the receiver no longer has a copy of, or refuses, is dropped for the new one in the same attempt', async (t) => {
  const s = await setup(t)
  const first = s.cutting(100, 512 * KiB)
  t.equal((await s.send(first)).ok, false)
  s.network.heal()
  // The receiver loses its partial copy: another peer begins another snapshot, which replaces it.
  const x = new PeerRpc(s.network.createTransport('x'))
  t.teardown(() => x.close())
  await x.request('r', SNAPSHOT_METHOD.begin, packr.pack({ index: 50, term: 2 }))
  t.equal(s.receiver.partial()?.index, 50, 'the partial of 100 is gone')
  const newer = source(110)
  const sent = await s.send(newer, 90)
  t.same([sent.ok, sent.index, sent.reoffered, sent.startOffset], [true, 110, false, 0], 'the new snapshot was sent, from 0')
  t.equal(first.released, true, 'the held one was released')
  t.ok((await s.completed(110))?.equals(newer.bytes))

  const second = s.cutting(111, 512 * KiB)
  t.equal((await s.send(second)).ok, false)
  s.network.heal()
  t.equal(s.sender.held('r')?.index, 111, 'the broken 111 is held')
  // Now the receiver applied past it (it caught up some other way): it refuses a begin for 111.
  s.setApplied(115)
  const newest = source(120)
  const again = await s.send(newest, 90)
  t.same([again.ok, again.index, again.reoffered, again.startOffset], [true, 120, false, 0], 'the new snapshot was sent, from 0')
  t.equal(second.released, true)
  t.ok((await s.completed(120))?.equals(newest.bytes))
})

t.test('a held snapshot is released after the linger time, on releaseAll and on close', async (t) => {
  const s = await setup(t, 200)
  const first = s.cutting(100, 512 * KiB)
  t.equal((await s.send(first)).ok, false)
  t.equal(first.released, false, 'held after the failure')
  await until(() => first.released, 5_000, 'the linger to end')
  t.equal(s.sender.held('r'), undefined, 'released after lingering without a retry')

  s.network.heal()
  const second = s.cutting(101, 512 * KiB)
  t.equal((await s.send(second)).ok, false)
  t.equal(s.sender.held('r')?.index, 101)
  await s.sender.releaseAll()
  t.equal(s.sender.held('r'), undefined)
  t.equal(second.released, true, 'releaseAll (the node stopped leading) releases it')

  s.network.heal()
  const third = s.cutting(102, 512 * KiB)
  t.equal((await s.send(third)).ok, false)
  await s.sender.close()
  t.equal(s.sender.held('r'), undefined)
  t.equal(third.released, true, 'close releases it')
  s.network.heal()
  const late = source(103)
  const r = await s.send(late)
  t.same([r.ok, r.code, late.released], [false, 'CLOSED', true], 'a send after close fails and releases its snapshot')
})

t.test('a newer send to the same peer supersedes a running one: only the newest is held', async (t) => {
  const s = await setup(t)
  let gate: (() => void) | undefined
  // A source that stalls after 256 KiB until the test lets it go.
  const slow = source(100)
  const inner = slow.chunks
  const stalled: Source = {
    ...slow,
    chunks: {
      async *[Symbol.asyncIterator]() {
        for await (const c of inner) {
          yield c
          if (slow.read === 256 * KiB) await new Promise<void>((r) => (gate = r))
        }
      },
    },
    release: () => slow.release(),
  }
  const older = s.send(stalled)
  await until(() => gate !== undefined, 5_000, 'the first send to stall')
  const newer = s.cutting(110, 512 * KiB)
  const r2 = await s.send(newer)
  t.equal(r2.ok, false, 'the newer send broke')
  s.network.heal()
  gate!()
  const r1 = await older
  t.equal(r1.ok, false, `the older one failed too: its session was replaced (${r1.code})`)
  t.equal(s.sender.held('r')?.index, 110, 'the newer snapshot is the one held')
  t.equal(slow.released, true, 'the older one was released')
})
