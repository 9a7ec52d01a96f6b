import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import {
  ENVELOPE_FIELDS,
  FrameDecoder,
  MAX_ELEMENTS,
  MAX_FRAME_BYTES,
  decodeEnvelope,
  decodeRaftMessage,
  encodeEnvelope,
  encodeEnvelopeRaw,
  encodeFrame,
  encodeRaftMessage,
  openEnvelope,
  type WireMessage,
} from '../../src/transport/codec.js'
import { isHoldfastError } from '../../src/errors.js'
import { validateMessage } from '../../src/core/raft.js'
import type { Entry, Message, MessageType } from '../../src/core/types.js'
import { MemoryNetwork } from '../../src/transport/memory.js'
import { PeerRpc } from '../../src/transport/rpc.js'
import { until } from './compliance.js'
import { ENVELOPE_KINDS, Gen, MESSAGE_TYPES, prng, randomEnvelope, randomRaft } from '../fuzz/generators.js'
import { bytes, concat, ld, varint, vi } from '../fuzz/wire.js'

// The random and mutated frames (the fuzz) are in fuzz.test.ts; its engine and these generators in test/fuzz/.

// ---------------------------------------------------------------------------------------------
// Helpers

/** The error `fn` throws (undefined when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

function isDecodeError(err: unknown): boolean {
  return isHoldfastError(err, 'DECODE_ERROR')
}

// ---------------------------------------------------------------------------------------------
// Round trips

const A = 'a1b2'
const B = 'c3d4'
const ENTRIES: Entry[] = [
  { index: 8, term: 3, type: 'normal', data: new Uint8Array(0) },
  { index: 9, term: 4, type: 'membership', data: bytes(1, 2, 3) },
  { index: 10, term: 4, type: 'normal', data: new TextEncoder().encode('{"put":"k"}') },
]
/** One message of every type, shaped as the core builds them (see Message in src/core/types.ts). */
const CORE_MESSAGES: Message[] = [
  { type: 'preVote', from: A, to: B, term: 5, index: 10, logTerm: 4 },
  { type: 'preVote', from: A, to: B, term: 5, index: 10, logTerm: 4, transfer: true },
  { type: 'preVoteResp', from: A, to: B, term: 5, reject: false },
  { type: 'vote', from: A, to: B, term: 5, index: 0, logTerm: 0 },
  { type: 'voteResp', from: A, to: B, term: 5, reject: true },
  { type: 'append', from: A, to: B, term: 4, index: 7, logTerm: 3, entries: ENTRIES, commit: 6 },
  { type: 'append', from: A, to: B, term: 4, index: 7, logTerm: 3, entries: [], commit: 6 },
  { type: 'append', from: A, to: B, term: Number.MAX_SAFE_INTEGER, index: Number.MAX_SAFE_INTEGER - 1, logTerm: 2 ** 32, commit: 2 ** 40 },
  { type: 'appendResp', from: A, to: B, term: 4, index: 10 },
  { type: 'appendResp', from: A, to: B, term: 4, index: 7, reject: true, rejectHint: 5, logTerm: 2 },
  { type: 'heartbeat', from: A, to: B, term: 4, commit: 9, readSeq: 12 },
  { type: 'heartbeat', from: A, to: B, term: 4, commit: 0 },
  { type: 'heartbeatResp', from: A, to: B, term: 4, readSeq: 12 },
  { type: 'snapshot', from: A, to: B, term: 4, snapshot: { index: 100, term: 3, membership: { voters: [A, B, 'e5'], learners: ['f6'] } } },
  { type: 'snapshot', from: A, to: B, term: 4, snapshot: { index: 0, term: 0, membership: { voters: [], learners: [] } } },
  { type: 'timeoutNow', from: A, to: B, term: 4 },
]

t.test('every Raft message type round-trips deep-equal, undefined fields staying absent', async (t) => {
  t.same(new Set(CORE_MESSAGES.map((m) => m.type)), new Set(MESSAGE_TYPES), 'the fixture covers every type')
  for (const m of CORE_MESSAGES) {
    const decoded = decodeRaftMessage(encodeRaftMessage(m))
    t.strictSame(decoded, m, `${m.type} ${JSON.stringify(Object.keys(m))}`)
    t.same(Object.keys(decoded).sort(), Object.keys(m).sort(), `${m.type}: no extra keys`)
  }
  const seed = 0x5eed
  const g = new Gen(prng(seed))
  const mismatches: unknown[] = []
  for (let i = 0; i < 5000 && mismatches.length < 3; i++) {
    const m = randomRaft(g)
    const decoded = decodeRaftMessage(encodeRaftMessage(m))
    if (!isDeepStrictEqual(decoded, m)) mismatches.push({ i, m, decoded })
  }
  t.strictSame(mismatches, [], `5000 random messages with random optional fields (seed ${seed})`)
})

t.test('a string field with malformed UTF-8 is a DECODE_ERROR, not an id that changes on re-encoding', async (t) => {
  // Found by the fuzz (seed 1367175928 of its earlier mulberry32 generator): a lone surrogate decoded from bad UTF-8 re-encoded differently.
  const good = encodeRaftMessage({ type: 'heartbeat', from: 'aa', to: 'bb', term: 1, commit: 0 })
  const at = Buffer.from(good).indexOf(Buffer.from('aa'))
  t.ok(at > 0, 'found the sender id in the frame')
  for (const bad of [[0xed, 0xa0], [0xff, 0xfe], [0xc3, 0x28]]) {
    const frame = Uint8Array.from(good)
    frame[at] = bad[0]!
    frame[at + 1] = bad[1]!
    let caught: unknown
    try {
      decodeRaftMessage(frame)
    } catch (err) {
      caught = err
    }
    t.ok(isHoldfastError(caught, 'DECODE_ERROR'), `bytes ${bad.map((b) => b.toString(16)).join(' ')} refused`)
  }
  t.equal(decodeRaftMessage(good).from, 'aa', 'the intact frame decodes')
})

t.test('decoded bytes are plain Uint8Arrays that own their memory', async (t) => {
  const wire = encodeRaftMessage(CORE_MESSAGES[5]!)
  const decoded = decodeRaftMessage(wire)
  const data = decoded.entries![1]!.data
  t.equal(Object.getPrototypeOf(data), Uint8Array.prototype, 'not a Buffer')
  t.equal(data.byteLength, data.buffer.byteLength, 'not a view into the frame')
  wire.fill(0)
  t.strictSame(data, bytes(1, 2, 3), 'unaffected by reuse of the input buffer')
  const encoded = encodeRaftMessage(CORE_MESSAGES[0]!)
  t.equal(encoded.byteLength, encoded.buffer.byteLength, 'encoded output does not share a pooled slab')
})

t.test('every envelope kind round-trips', async (t) => {
  const g = new Gen(prng(42))
  for (const kind of ENVELOPE_KINDS) {
    const mismatches: unknown[] = []
    for (let i = 0; i < 500 && mismatches.length < 3; i++) {
      const message = randomEnvelope(g, kind)
      const decoded = decodeEnvelope(encodeEnvelope(message))
      if (!isDeepStrictEqual(decoded, message)) mismatches.push({ i, message, decoded })
    }
    t.strictSame(mismatches, [], `${kind}: 500 random messages`)
  }
  // Both sides of each oneof and each optional error, explicitly.
  const fixed: WireMessage[] = [
    { kind: 'rpcResponse', body: { id: 7, outcome: { ok: true, payload: new Uint8Array(0) } } },
    { kind: 'rpcResponse', body: { id: 7, outcome: { ok: false, error: { code: 'UNKNOWN_METHOD', message: 'no handler' } } } },
    { kind: 'forwardResponse', body: { id: 1, outcome: { ok: true, index: 0, revision: 0, result: new Uint8Array(0) } } },
    { kind: 'forwardResponse', body: { id: 1, outcome: { ok: false, error: { code: 'NOT_LEADER', message: 'x', leaderHint: B } } } },
    { kind: 'snapshotAck', body: { snapshotId: 's', nextOffset: 4096, done: false } },
    { kind: 'snapshotAck', body: { snapshotId: 's', nextOffset: 0, done: false, error: { code: 'CORRUPT_DATA', message: 'checksum' } } },
    { kind: 'joinResult', body: { accepted: true, proof: bytes(9) } },
    { kind: 'joinResult', body: { accepted: false, proof: new Uint8Array(0), error: { code: 'UNAUTHORIZED', message: 'bad proof' } } },
    { kind: 'gossip', body: { kind: 'ping', seq: 0, target: '', updates: [] } },
  ]
  for (const m of fixed) t.strictSame(decodeEnvelope(encodeEnvelope(m)), m, `${m.kind} fixed`)
})

t.test('envelope field numbers match the generated code; raw wrapping equals full encoding', async (t) => {
  const g = new Gen(prng(7))
  for (const kind of ENVELOPE_KINDS) {
    const encoded = encodeEnvelope(randomEnvelope(g, kind))
    const opened = openEnvelope(encoded)
    t.equal(opened.kind, kind, `${kind} is field ${ENVELOPE_FIELDS[kind]}`)
    t.strictSame(encodeEnvelopeRaw(kind, opened.body), encoded, `${kind}: raw wrap is byte-identical`)
  }
  for (const m of CORE_MESSAGES) {
    t.strictSame(encodeEnvelopeRaw('raft', encodeRaftMessage(m)), encodeEnvelope({ kind: 'raft', body: m }))
  }
  t.ok(isDecodeError(thrown(() => openEnvelope(concat(ld(1, bytes()), ld(7, bytes()))))), 'two bodies refused by openEnvelope')
})

// ---------------------------------------------------------------------------------------------
// Numbers, enums, oneofs

t.test('numbers: safe integers only, both ways', async (t) => {
  const base = concat(vi(1, 10), ld(2, bytes(0x61)), ld(3, bytes(0x62)))
  const big = (v: bigint): Uint8Array => {
    const out: number[] = [4 << 3]
    while (v > 0x7fn) {
      out.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    out.push(Number(v))
    return concat(base, Uint8Array.from(out))
  }
  t.equal(decodeRaftMessage(big(2n ** 53n - 1n)).term, Number.MAX_SAFE_INTEGER, '2^53 - 1 decodes')
  for (const v of [2n ** 53n, 2n ** 64n - 1n]) {
    const err = thrown(() => decodeRaftMessage(big(v)))
    t.ok(isDecodeError(err), `${v} is a DECODE_ERROR`)
    t.match((err as Error).message, /MAX_SAFE_INTEGER/)
  }
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(concat(big(1n), bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01))))), 'an 11-byte varint')
  for (const bad of [-1, 1.5, 2 ** 53, Number.NaN, Infinity]) {
    const err = thrown(() => encodeRaftMessage({ type: 'heartbeat', from: A, to: B, term: 1, commit: bad }))
    t.ok(isHoldfastError(err, 'INVALID_ARGUMENT'), `encoding commit=${bad} is INVALID_ARGUMENT`)
  }
  t.ok(isHoldfastError(thrown(() => encodeEnvelope({ kind: 'rpcRequest', body: { id: 2 ** 32, method: 'm', payload: bytes() } })), 'INVALID_ARGUMENT'), 'a request id over 32 bits')
  t.ok(isHoldfastError(thrown(() => encodeRaftMessage({ type: 'bogus' as MessageType, from: A, to: B, term: 1 })), 'INVALID_ARGUMENT'), 'an unknown type')
})

t.test('enums, oneofs and required nested messages are checked', async (t) => {
  const head = concat(ld(2, bytes(0x61)), ld(3, bytes(0x62)), vi(4, 1))
  const cases: [string, () => unknown][] = [
    ['raft type missing (0)', () => decodeRaftMessage(head)],
    ['raft type 99', () => decodeRaftMessage(concat(vi(1, 99), head))],
    ['entry type 7', () => decodeRaftMessage(concat(vi(1, 5), head, ld(7, ld(1, concat(vi(1, 1), vi(3, 7))))))],
    ['snapshot meta without membership', () => decodeRaftMessage(concat(vi(1, 9), head, ld(11, vi(1, 5))))],
    ['empty envelope', () => decodeEnvelope(new Uint8Array(0))],
    ['two envelope bodies', () => decodeEnvelope(concat(ld(9, vi(1, 1)), ld(7, vi(1, 1))))],
    ['rpc response with ok and error', () => decodeEnvelope(ld(8, concat(vi(1, 1), ld(2, bytes()), ld(3, bytes()))))],
    ['rpc response with neither', () => decodeEnvelope(ld(8, vi(1, 1)))],
    ['gossip kind 0', () => decodeEnvelope(ld(9, vi(2, 1)))],
    ['member state 9', () => decodeEnvelope(ld(9, concat(vi(1, 1), ld(4, vi(3, 9)))))],
    ['wire type mismatch: term as bytes', () => decodeRaftMessage(concat(vi(1, 7), ld(4, bytes(1))))],
    ['wire type mismatch: entries as varint', () => decodeRaftMessage(concat(vi(1, 5), head, vi(7, 1)))],
    ['field number 0', () => decodeEnvelope(bytes(0x02, 0x00))],
    ['wire type 7', () => decodeEnvelope(bytes(0x0f))],
    ['length past the end', () => decodeEnvelope(bytes(0x0a, 0x05, 0x08))],
    ['truncated fixed64', () => decodeEnvelope(bytes(0x79, 1, 2))],
    ['not a Uint8Array', () => decodeEnvelope('hello' as unknown as Uint8Array)],
    ['null', () => decodeRaftMessage(null as unknown as Uint8Array)],
  ]
  for (const [name, fn] of cases) {
    const err = thrown(fn)
    t.ok(isDecodeError(err), `${name}: ${err instanceof Error ? err.message : String(err)}`)
  }
  // Unknown fields from a newer peer are skipped, in the envelope and inside known messages.
  const m = CORE_MESSAGES[10]!
  const withUnknown = concat(encodeRaftMessage(m), vi(99, 5), ld(100, bytes(1, 2, 3)), bytes(0x85, 0x06, 1, 2, 3, 4))
  t.strictSame(decodeRaftMessage(withUnknown), m, 'unknown fields are ignored')
})

t.test('wire strings cannot reach Object.prototype', async (t) => {
  const message: WireMessage = {
    kind: 'gossip',
    body: {
      kind: 'ack',
      seq: 1,
      target: '__proto__',
      updates: [{ nodeId: '__proto__', incarnation: 1, state: 'alive', softState: [{ key: '__proto__', value: bytes(1) }, { key: 'constructor', value: bytes(2) }] }],
    },
  }
  const decoded = decodeEnvelope(encodeEnvelope(message))
  t.strictSame(decoded, message)
  t.equal(Object.getPrototypeOf({}), Object.prototype)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.ok(isDecodeError(thrown(() => decodeEnvelope(ld(9, vi(1, 0))))), 'gossip kind "__proto__"-like index lookups fail closed')
})

// ---------------------------------------------------------------------------------------------
// Frames

t.test('frames split at every byte boundary reassemble', async (t) => {
  const g = new Gen(prng(99))
  const payloads = [new Uint8Array(0), ...ENVELOPE_KINDS.map((k) => encodeEnvelope(randomEnvelope(g, k))), encodeRaftMessage(CORE_MESSAGES[5]!)]
  const stream = concat(...payloads.map((p) => encodeFrame(p)))
  const reassemble = (chunks: Uint8Array[]): boolean => {
    const fd = new FrameDecoder()
    const out: Uint8Array[] = []
    for (const c of chunks) out.push(...fd.push(c))
    return fd.buffered === 0 && isDeepStrictEqual(out, payloads)
  }
  const failedSplits: number[] = []
  for (let i = 0; i <= stream.byteLength; i++) if (!reassemble([stream.subarray(0, i), stream.subarray(i)])) failedSplits.push(i)
  t.strictSame(failedSplits, [], `two chunks split at each of ${stream.byteLength + 1} points`)
  const failedTriples: number[] = []
  for (let i = 0; i + 7 <= stream.byteLength; i++) if (!reassemble([stream.subarray(0, i), stream.subarray(i, i + 7), stream.subarray(i + 7)])) failedTriples.push(i)
  t.strictSame(failedTriples, [], 'three chunks, a 7-byte middle at each offset')
  t.ok(reassemble(Array.from(stream, (b) => bytes(b))), 'one byte at a time')
  for (let round = 0; round < 50; round++) {
    const chunks: Uint8Array[] = []
    for (let at = 0; at < stream.byteLength; ) {
      const n = g.int(40)
      chunks.push(stream.subarray(at, at + n))
      at += n
    }
    if (!t.ok(reassemble(chunks), `random splits with empty chunks, round ${round}`)) break
  }
  const fd = new FrameDecoder()
  fd.push(bytes(0, 0x40, 0, 0, ...new Uint8Array(10)))
  t.equal(fd.buffered, 10, 'a frame announced at 4 MiB holds only the 10 bytes that arrived')
  const reused = new Uint8Array(encodeFrame(bytes(1, 2, 3)))
  const [frame] = new FrameDecoder().push(reused)
  reused.fill(9)
  t.strictSame(frame, bytes(1, 2, 3), 'frames are copies: the caller may reuse its chunk')
  const decoded = payloads.slice(1, -1).map((p) => decodeEnvelope(p).kind)
  t.same(decoded, ENVELOPE_KINDS, 'the reassembled payloads decode')
})

t.test('an oversized length prefix is refused before anything is allocated', async (t) => {
  const before = process.memoryUsage().arrayBuffers
  const fd = new FrameDecoder()
  t.same(fd.push(bytes(0xff, 0xff)), [], 'half a header waits')
  const err = thrown(() => fd.push(bytes(0xff, 0xff, 1, 2, 3)))
  t.ok(isDecodeError(err), (err as Error).message)
  t.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, 'no 4 GiB buffer was allocated')
  t.ok(isDecodeError(thrown(() => fd.push(encodeFrame(bytes())))), 'the stream stays failed: it cannot be resynchronised')

  const limit = new FrameDecoder({ maxFrameBytes: 100 })
  t.equal(limit.push(encodeFrame(new Uint8Array(100))).length, 1, 'exactly the maximum is accepted')
  t.ok(isDecodeError(thrown(() => limit.push(bytes(0, 0, 0, 101)))), 'one over is not')
  const edge = new FrameDecoder()
  const header = new Uint8Array(4)
  new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1)
  t.ok(isDecodeError(thrown(() => edge.push(header))), 'MAX_FRAME_BYTES + 1 refused by default')
  t.ok(isHoldfastError(thrown(() => encodeFrame(new Uint8Array(101), 100)), 'TOO_LARGE'), 'the sender refuses to build one')
  t.ok(isDecodeError(thrown(() => decodeEnvelope(new Uint8Array(101), { maxFrameBytes: 100 }))), 'decode refuses an oversized message too')
  t.ok(isDecodeError(thrown(() => new FrameDecoder().push('abc' as unknown as Uint8Array))), 'non-bytes chunks are a DECODE_ERROR')
})

// ---------------------------------------------------------------------------------------------
// Groups, depth, element count

t.test('groups are rejected anywhere the decoder would look, and allowed inside bytes', async (t) => {
  const raft = encodeRaftMessage(CORE_MESSAGES[5]!)
  const group = bytes((15 << 3) | 3, 0x08, 0x01, (15 << 3) | 4)
  const cases: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
    ['a group field in the envelope', concat(ld(7, vi(1, 1)), group), decodeEnvelope],
    ['a group in a raft message', concat(raft, group), decodeRaftMessage],
    ['a group in an entry', concat(vi(1, 5), ld(7, ld(1, concat(vi(1, 1), group)))), decodeRaftMessage],
    ['a group inside membership, inside snapshot meta, inside raft, inside the envelope', ld(1, concat(vi(1, 9), ld(11, ld(3, group)))), decodeEnvelope],
    ['a lone end-group', bytes((3 << 3) | 4), decodeEnvelope],
    ['a million nested start-groups', new Uint8Array(1_000_000).fill(0x0b), decodeEnvelope],
  ]
  for (const [name, input, decode] of cases) {
    const started = performance.now()
    const err = thrown(() => decode(input))
    t.ok(isDecodeError(err), `${name}: ${(err as Error).message}`)
    t.ok(performance.now() - started < 1000, `${name}: fast`)
  }
  const m: Message = { type: 'append', from: A, to: B, term: 2, index: 0, logTerm: 0, commit: 0, entries: [{ index: 1, term: 2, type: 'normal', data: new Uint8Array(4096).fill(0x0b) }] }
  t.strictSame(decodeRaftMessage(encodeRaftMessage(m)), m, 'bytes that look like groups are just data')
})

t.test('nesting depth is bounded; unknown nested fields are never walked', async (t) => {
  const append = encodeEnvelope({ kind: 'raft', body: CORE_MESSAGES[5]! })
  const heartbeat = encodeEnvelope({ kind: 'raft', body: CORE_MESSAGES[10]! })
  t.equal(decodeEnvelope(append).kind, 'raft', 'the schema depth (4) is within the default')
  const err = thrown(() => decodeEnvelope(append, { maxDepth: 3 }))
  t.ok(isDecodeError(err), `Envelope > Raft > EntryList > Entry exceeds maxDepth 3: ${(err as Error).message}`)
  t.equal(decodeEnvelope(heartbeat, { maxDepth: 2 }).kind, 'raft', 'a shallower message still fits')

  // 100,000 levels of nested length-delimited fields under an unknown field number: skipped as
  // opaque bytes by both the pre-scan and protobufjs, so no recursion and no stack overflow.
  // Built bottom-up: each level's length is the size of everything inside it.
  const depth = 100_000
  const lengths = new Array<number>(depth)
  let inner = 0
  for (let i = depth - 1; i >= 0; i--) {
    lengths[i] = inner
    inner += 1 + varint(inner).length
  }
  const nested = new Uint8Array(inner)
  let at = 0
  for (let i = 0; i < depth; i++) {
    nested[at++] = 0x0a
    for (const b of varint(lengths[i]!)) nested[at++] = b
  }
  const m = CORE_MESSAGES[10]!
  const started = performance.now()
  t.strictSame(decodeRaftMessage(concat(encodeRaftMessage(m), ld(50, nested))), m, 'decoded, with the deep unknown field ignored')
  t.ok(performance.now() - started < 1000, 'quickly')
})

t.test('the number of nested values per frame is bounded', async (t) => {
  const entries = (n: number): Uint8Array => {
    const one = ld(1, new Uint8Array(0)) // an empty Entry: 2 bytes on the wire, one object decoded
    const list = new Uint8Array(one.byteLength * n)
    for (let i = 0; i < n; i++) list.set(one, i * one.byteLength)
    return concat(vi(1, 5), ld(2, bytes(0x61)), ld(3, bytes(0x62)), vi(4, 1), ld(7, list))
  }
  t.equal(decodeRaftMessage(entries(1000), { maxElements: 1003 }).entries?.length, 1000, 'within the limit')
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(entries(1001), { maxElements: 1003 }))), 'past the limit')
  const err = thrown(() => decodeRaftMessage(entries(MAX_ELEMENTS)))
  t.ok(isDecodeError(err), `MAX_ELEMENTS empty entries (${MAX_ELEMENTS}) refused by default: ${(err as Error).message}`)
})

// ---------------------------------------------------------------------------------------------
// The pipeline: wire bytes to the core's validator

t.test('decoded messages go through the core validator', async (t) => {
  const m: Message = { type: 'append', from: A, to: B, term: 4, index: 7, logTerm: 3, entries: ENTRIES, commit: 6 }
  const decoded = decodeRaftMessage(openEnvelope(encodeEnvelope({ kind: 'raft', body: m })).body)
  t.equal(validateMessage(decoded, B), undefined, 'a valid append passes')
  t.equal(validateMessage(decoded, 'someone-else'), 'misaddressed')
  // Structurally fine for the wire, nonsense for Raft: entry indexes that do not follow index.
  const gap = decodeRaftMessage(encodeRaftMessage({ ...m, entries: [{ ...ENTRIES[0]!, index: 20 }] }))
  t.equal(validateMessage(gap, B), 'malformed', 'the validator catches what the codec cannot')
  const noTerm = decodeRaftMessage(encodeRaftMessage({ type: 'heartbeat', from: A, to: B, term: 0, commit: 0 }))
  t.equal(validateMessage(noTerm, B), 'malformed', 'term 0')
})

t.test('PeerRpc speaks envelopes: raft bytes, other kinds, and garbage', async (t) => {
  const net = new MemoryNetwork()
  const ta = net.createTransport('a')
  const a = new PeerRpc(ta)
  const b = new PeerRpc(net.createTransport('b'))
  const raft: Message[] = []
  const other: WireMessage[] = []
  b.onRaft((_from, body) => raft.push(decodeRaftMessage(body)))
  b.onEnvelope((_from, message) => other.push(message))
  const m = CORE_MESSAGES[5]!
  t.ok(a.sendRaft('b', encodeRaftMessage(m)))
  const gossip: WireMessage = { kind: 'gossip', body: { kind: 'ping', seq: 3, target: '', updates: [] } }
  t.ok(a.sendEnvelope('b', gossip))
  ta.send('b', encodeFrame(bytes(1, 2, 3)))
  await until(() => raft.length === 1 && other.length === 1 && b.malformedFrames === 1, 2000, 'delivered')
  t.strictSame(raft[0], m)
  t.strictSame(other[0], gossip)
  t.equal(b.malformedFrames, 1, 'garbage counted')
})
