import t from 'tap'
import { randomInt } from 'node:crypto'
import * as codec from '../../src/transport/codec.js'
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  MAX_ELEMENTS,
  MAX_FRAME_BYTES,
  decodeEnvelope,
  decodeRaftMessage,
  encodeEnvelope,
  encodeFrame,
  encodeRaftMessage,
  openEnvelope,
  type WireMessage,
} from '../../src/transport/codec.js'
import { isHoldfastError } from '../../src/errors.js'
import type { Message } from '../../src/core/types.js'
import { CRAFTED_FAMILIES } from '../fuzz/adversarial.js'
import { PrototypeGuard, shapeProblems } from '../fuzz/checks.js'
import { FAMILIES } from '../fuzz/cases.js'
import { ENTRY_POINTS, formatFinding } from '../fuzz/engine.js'
import { formatSummary, mib, type RunSummary } from '../fuzz/run.js'
import { ENVELOPE_KINDS, POLLUTION_NAMES } from '../fuzz/generators.js'
import { runSharded } from '../fuzz/runner.js'
import { bytes, concat, fromHex, ld, repeat, str, tag, varint, varintBig, varintPadded, vi } from '../fuzz/wire.js'

/**
 * The codec fuzz (engine: test/fuzz/engine.ts; longer runs: `npm run fuzz`). At least 100,000
 * random and mutated frames through every decoder entry point, in a child process whose heap is
 * measured; then fixed worst cases. Replay a run with HOLDFAST_FUZZ_SEED=<seed> (the default seed
 * keeps CI deterministic; HOLDFAST_FUZZ_SEED=random explores), run more with HOLDFAST_FUZZ_CASES=<n>.
 */
const FUZZ_SEED = process.env.HOLDFAST_FUZZ_SEED === 'random' ? randomInt(2 ** 31) : Number(process.env.HOLDFAST_FUZZ_SEED ?? 1367175928)
const FUZZ_CASES = Number(process.env.HOLDFAST_FUZZ_CASES ?? 100_000)
/** The floor: frames per `npm test`. */
const MIN_FRAMES = 100_000
const PER_CASE_MS = 250
const MAX_HEAP_GROWTH = 32 * 1024 * 1024

// Started now, in two child processes (every other case each), so they work while the
// in-process tests below run.
const bigRun: Promise<RunSummary> = runSharded(
  {
    seed: FUZZ_SEED,
    cases: FUZZ_CASES,
    checkpointEvery: 2500,
    warmup: 5000,
    perCaseMs: PER_CASE_MS,
    maxHeapGrowth: MAX_HEAP_GROWTH,
    maxFindings: 20,
  },
  2,
)

const isDecodeError = (err: unknown): boolean => isHoldfastError(err, 'DECODE_ERROR')
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}
/** A Raft message head (type, from, to, term). */
const raftHead = (type = 5): Uint8Array => concat(vi(1, type), str(2, 'a'), str(3, 'b'), vi(4, 1))

t.test('the fuzz covers every decoder entry point codec.ts exports', async (t) => {
  const exported = Object.entries(codec)
    .filter(([name, v]) => typeof v === 'function' && (/^(decode|open)/.test(name) || /Decoder$/.test(name)))
    .map(([name]) => name)
    .sort()
  t.strictSame(exported, [...ENTRY_POINTS].sort(), 'a new decoder export needs a place in test/fuzz/engine.ts')
})

t.test(`fuzz: ${FUZZ_CASES.toLocaleString('en')} random and mutated frames through every decoder entry point (seed ${FUZZ_SEED})`, async (t) => {
  t.comment(`fuzz seed ${FUZZ_SEED}; replay with HOLDFAST_FUZZ_SEED=${FUZZ_SEED}`)
  const s = await bigRun
  t.comment(formatSummary(s))
  for (const f of s.findings) t.fail(formatFinding(f))
  t.equal(s.findings.length, 0, `seed ${FUZZ_SEED}: no findings (only DECODE_ERROR thrown, round trips exact, no pollution, framing as modelled, no slow case, no hang, bounded heap)`)

  const st = s.stats
  t.ok(st.cases >= MIN_FRAMES, `${st.cases} fuzz frames, at least ${MIN_FRAMES}`)
  for (const e of ENTRY_POINTS) {
    const n = e === 'FrameDecoder' ? st.streams : st.calls[e]
    t.ok(n >= MIN_FRAMES, `${e}: ${n} ${e === 'FrameDecoder' ? 'streams' : 'calls'}, at least ${MIN_FRAMES}`)
    t.ok(st.decoded[e] > 0 && st.rejected[e] > 0, `${e}: both outcomes reached (${st.decoded[e]} decoded, ${st.rejected[e]} refused)`)
  }
  t.ok(st.streamFrames > 0 && st.streamsRejected > 0, `FrameDecoder reassembled ${st.streamFrames} frames and refused ${st.streamsRejected} streams`)
  const families = Object.keys(st.families)
  const missing = [
    ...FAMILIES.filter((f) => f !== 'body' && f !== 'crafted' && !families.includes(f)),
    ...ENVELOPE_KINDS.map((k) => `body/${k}`).filter((f) => !families.includes(f)),
    ...CRAFTED_FAMILIES.map((c) => `crafted/${c}`).filter((f) => !families.includes(f)),
  ]
  t.strictSame(missing, [], 'every input family ran, including a mutated body of every envelope kind and every crafted shape')

  t.ok(st.slowestMs < PER_CASE_MS, `slowest case ${st.slowestMs.toFixed(1)} ms (case ${st.slowestCase}, ${st.slowestFamily}), under ${PER_CASE_MS} ms`)
  t.ok(s.samples.length >= 20, `${s.samples.length} heap checkpoints (two processes)`)
  t.ok(s.heapGrowth < MAX_HEAP_GROWTH, `heap grew ${mib(s.heapGrowth)} after warm-up (peak ${mib(s.heapPeakGrowth)}), under ${mib(MAX_HEAP_GROWTH)}`)
  t.ok(s.arrayBuffersGrowth < MAX_HEAP_GROWTH, `ArrayBuffer memory grew ${mib(s.arrayBuffersGrowth)}`)
})

// ---------------------------------------------------------------------------------------------
// Fixed worst cases

t.test('a frame header announcing 16 MiB costs only the bytes that arrived; one over is refused before buffering', async (t) => {
  for (const announced of [MAX_FRAME_BYTES, MAX_FRAME_BYTES - 1]) {
    const before = process.memoryUsage().arrayBuffers
    const fd = new FrameDecoder()
    const header = new Uint8Array(FRAME_HEADER_BYTES)
    new DataView(header.buffer).setUint32(0, announced)
    t.strictSame(fd.push(concat(header, new Uint8Array(10))), [], `${announced}: no frame yet`)
    for (let i = 0; i < 100; i++) fd.push(new Uint8Array(100))
    t.equal(fd.buffered, 10 + 100 * 100, `${announced}: holds exactly the ${10 + 100 * 100} bytes delivered`)
    t.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, `${announced}: nothing allocated for the announced size`)
  }
  for (const announced of [MAX_FRAME_BYTES + 1, 2 ** 31, 2 ** 32 - 1]) {
    const header = new Uint8Array(FRAME_HEADER_BYTES)
    new DataView(header.buffer).setUint32(0, announced)
    const fd = new FrameDecoder()
    fd.push(header.subarray(0, 3))
    t.equal(fd.buffered, 3, `${announced}: three header bytes held`)
    t.ok(isDecodeError(thrown(() => fd.push(concat(header.subarray(3), new Uint8Array(1000))))), `${announced}: refused on the header's last byte`)
    t.ok(fd.buffered <= FRAME_HEADER_BYTES, `${announced}: nothing of the payload buffered (${fd.buffered})`)
    t.ok(isDecodeError(thrown(() => fd.push(encodeFrame(bytes(1))))), `${announced}: and the stream stays failed`)
  }
})

t.test('length-delimited fields claiming 16 MiB with a few bytes behind them are refused at once', async (t) => {
  for (const claim of [MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, 2 ** 32 - 1]) {
    const inputs: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
      ['envelope body', concat(bytes(...tag(1, 2), ...varint(claim)), raftHead()), decodeEnvelope],
      ['envelope body, routed', concat(bytes(...tag(1, 2), ...varint(claim)), raftHead()), openEnvelope],
      ['entries', concat(raftHead(), bytes(...tag(7, 2), ...varint(claim)), bytes(1, 2, 3)), decodeRaftMessage],
      ['an entry inside entries', concat(raftHead(), ld(7, concat(bytes(...tag(1, 2), ...varint(claim)), bytes(8, 1)))), decodeRaftMessage],
      ['a string', concat(vi(1, 5), bytes(...tag(2, 2), ...varint(claim)), bytes(0x61)), decodeRaftMessage],
      ['an unknown field', concat(raftHead(), bytes(...tag(99, 2), ...varint(claim)), bytes(0x61)), decodeRaftMessage],
    ]
    for (const [name, input, decode] of inputs) {
      const started = performance.now()
      const err = thrown(() => decode(input))
      t.ok(isDecodeError(err), `${name} claiming ${claim}: ${err instanceof Error ? err.message : String(err)}`)
      t.ok(performance.now() - started < 50, `${name}: at once`)
    }
  }
})

t.test('varints of ten bytes and more', async (t) => {
  const term = (v: number[]): Uint8Array => concat(vi(1, 7), str(2, 'a'), str(3, 'b'), bytes(...tag(4, 0), ...v))
  const refused: [string, number[]][] = [
    ['2^64 - 1 (ten bytes)', varintBig(2n ** 64n - 1n)],
    ['2^53 (the first unsafe integer)', varintBig(2n ** 53n)],
    ['ten bytes overflowing 64 bits', [...new Array<number>(9).fill(0xff), 0x7f]],
    ['eleven bytes', [...new Array<number>(10).fill(0x80), 0x01]],
    ['thirty continuation bytes', new Array<number>(30).fill(0xff)],
    ['continuation to the end of the input', new Array<number>(5).fill(0x80)],
  ]
  for (const [name, v] of refused) t.ok(isDecodeError(thrown(() => decodeRaftMessage(term(v)))), `term ${name}: DECODE_ERROR`)
  t.equal(decodeRaftMessage(term(varintPadded(5, 10))).term, 5, 'a ten-byte overlong encoding of 5 is valid protobuf and decodes to 5')
  t.equal(decodeRaftMessage(term(varintBig(2n ** 53n - 1n))).term, Number.MAX_SAFE_INTEGER, '2^53 - 1 decodes')
  const tagged = (tagBytes: number[]): Uint8Array => concat(raftHead(7), bytes(...tagBytes, 0))
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(tagged(varintPadded(99 * 8 + 2, 6))))), 'a six-byte tag')
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(tagged([0x80, 0x80, 0x80, 0x80, 0x10])))), 'a tag over 32 bits')
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(concat(raftHead(7), bytes(...tag(99, 2), ...varintPadded(1, 6), 0))))), 'a six-byte length')
  t.ok(isDecodeError(thrown(() => openEnvelope(bytes(...varintPadded(1 * 8 + 2, 6), 0)))), 'openEnvelope: a six-byte tag')
  t.equal(openEnvelope(bytes(...varintPadded(1 * 8 + 2, 5), ...varintPadded(2, 5), 8, 1)).kind, 'raft', 'openEnvelope: five-byte overlong tag and length are valid')
})

t.test('huge repeated-field counts at the default limits: bounded by MAX_ELEMENTS', async (t) => {
  const voters = (n: number): Uint8Array => concat(raftHead(9), ld(11, concat(vi(1, 1), ld(3, repeat(str(1, '__proto__'), n)))))
  // The raft head's two strings, the snapshot meta and its membership count too.
  const fixed = 4
  let started = performance.now()
  const ok = decodeRaftMessage(voters(MAX_ELEMENTS - fixed))
  t.equal(ok.snapshot?.membership.voters.length, MAX_ELEMENTS - fixed, `${MAX_ELEMENTS - fixed} voters named __proto__ decode`)
  t.equal(Object.getPrototypeOf(ok.snapshot?.membership), Object.prototype, 'into a plain object')
  t.ok(performance.now() - started < 5000, `in ${(performance.now() - started).toFixed(0)} ms`)
  started = performance.now()
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(voters(MAX_ELEMENTS - fixed + 1)))), 'one more is refused')
  t.ok(isDecodeError(thrown(() => decodeRaftMessage(voters(4 * MAX_ELEMENTS)))), 'four times as many are refused')
  t.ok(performance.now() - started < 2000, `refusals take ${(performance.now() - started).toFixed(0)} ms`)
  const updates = (n: number): Uint8Array => ld(9, concat(vi(1, 1), repeat(ld(4, concat(str(1, 'n'), vi(3, 1))), n)))
  t.ok(isDecodeError(thrown(() => decodeEnvelope(updates(MAX_ELEMENTS)))), `${MAX_ELEMENTS} gossip updates refused`)
})

t.test('decoding work grows linearly with the frame, for the cheapest fields to send', async (t) => {
  // A quadratic step anywhere (in the pre-scan, protobufjs or the conversion) would show as a 256x
  // ratio between these sizes instead of 16x. Minimum of five runs each, to shed scheduling noise;
  // the bound sits halfway (in ratio) between the two, as a loaded CI machine measured up to 73x for
  // a linear case (garbage collection weighs more on the big frames).
  const small = 128 * 1024
  const big = 16 * small
  const fill = (part: Uint8Array, size: number): Uint8Array => repeat(part, Math.floor(size / part.byteLength))
  const patterns: [string, (size: number) => Uint8Array][] = [
    ['unknown varint fields', (n) => concat(raftHead(), fill(bytes(...tag(99, 0), 1), n))],
    ['a known varint field, repeated', (n) => concat(raftHead(), fill(vi(4, 7), n))],
    ['empty unknown length-delimited fields', (n) => concat(raftHead(), fill(bytes(...tag(99, 2), 0), n))],
    ['ten-byte varints', (n) => concat(raftHead(), fill(bytes(...tag(5, 0), ...varintBig(2n ** 53n - 1n)), n))],
    ['empty entries (refused past MAX_ELEMENTS)', (n) => concat(raftHead(), ld(7, fill(ld(1, bytes()), n)))],
  ]
  const time = (input: Uint8Array): number => {
    let best = Infinity
    for (let i = 0; i < 5; i++) {
      const started = performance.now()
      thrown(() => decodeRaftMessage(input))
      best = Math.min(best, performance.now() - started)
    }
    return Math.max(best, 0.5)
  }
  for (const [name, make] of patterns) {
    const ratio = time(make(big)) / time(make(small))
    t.ok(ratio < 128, `${name}: 16x the bytes cost ${ratio.toFixed(1)}x the time (linear: 16x, quadratic: 256x)`)
  }
})

t.test('wire strings named like prototype properties stay data', async (t) => {
  const guard = new PrototypeGuard()
  for (const name of POLLUTION_NAMES) {
    const raft: Message = {
      type: 'snapshot',
      from: name,
      to: name,
      term: 1,
      snapshot: { index: 1, term: 1, membership: { voters: [name, name], learners: [name] } },
    }
    const error = { code: name, message: name, leaderHint: name }
    const envelopes: WireMessage[] = [
      { kind: 'raft', body: raft },
      { kind: 'rpcRequest', body: { id: 1, method: name, payload: new TextEncoder().encode(`{"${name}":{"polluted":1}}`) } },
      { kind: 'rpcResponse', body: { id: 1, outcome: { ok: false, error } } },
      { kind: 'forwardResponse', body: { id: 1, outcome: { ok: false, error } } },
      { kind: 'snapshotAck', body: { snapshotId: name, nextOffset: 0, done: false, error } },
      { kind: 'snapshotChunk', body: { snapshotId: name, index: 1, term: 1, offset: 0, data: bytes(1), last: true, checksum: bytes(2) } },
      { kind: 'joinResult', body: { accepted: false, proof: bytes(), error } },
      {
        kind: 'gossip',
        body: { kind: 'pingReq', seq: 1, target: name, updates: [{ nodeId: name, incarnation: 1, state: 'alive', softState: [{ key: name, value: bytes(1) }, { key: name, value: bytes(2) }] }] },
      },
    ]
    for (const m of envelopes) {
      const decoded = decodeEnvelope(encodeEnvelope(m))
      t.strictSame(decoded, m, `${m.kind} with every string "${name}" round-trips`)
      t.strictSame(shapeProblems(decoded), [], `${m.kind} "${name}": plain objects with schema keys only`)
    }
    t.strictSame(decodeRaftMessage(encodeRaftMessage(raft)), raft, `raft message "${name}" round-trips`)
    // The same names as unknown fields and as the content of unknown nested fields.
    const unknown = concat(encodeRaftMessage(raft), str(99, name), ld(100, str(1, name)))
    t.strictSame(decodeRaftMessage(unknown), raft, `"${name}" in unknown fields is skipped`)
  }
  const gossip = decodeEnvelope(encodeEnvelope({ kind: 'gossip', body: { kind: 'ack', seq: 1, target: '', updates: [{ nodeId: 'n', incarnation: 1, state: 'alive', softState: [{ key: '__proto__', value: bytes(1) }] }] } }))
  const kv = gossip.kind === 'gossip' ? gossip.body.updates[0]!.softState[0]! : undefined
  t.strictSame(Object.keys(kv ?? {}), ['key', 'value'], 'a soft-state key "__proto__" is a value, never a property name')
  t.strictSame(guard.check(), [], 'Object, Array, Function and Uint8Array prototypes unchanged')
  t.equal(({} as Record<string, unknown>).polluted, undefined, '({}).polluted is undefined')
})

// ---------------------------------------------------------------------------------------------
// Regressions: inputs the fuzz found, with their exact bytes.

t.test('a 32-bit varint of six to nine bytes is read where the pre-scan reads it (protobufjs skipped ahead)', async (t) => {
  // protobufjs's Reader#uint32 read five bytes of a longer varint, then skipped five more unread.
  // From there it parsed bytes the pre-scan had checked as something else. codec.ts now reads
  // such varints byte by byte (ScannedReader).
  const overlongType = fromHex('0887808080808000' + '120161' + '1a0162' + '2001') // type 7 in seven bytes, from 'a', to 'b', term 1
  t.strictSame(decodeRaftMessage(overlongType), { type: 'heartbeat', from: 'a', to: 'b', term: 1 }, 'was { type: heartbeat, from: "", to: "b", term: 1 }')

  // The scan sees `from` as 18 bytes of valid UTF-8; protobufjs, one tag off, read a one-byte
  // string 0xc3 from inside it (decoded as "À", reading past its end), then "bb" as `to`.
  const content = '01' + 'c3a901' + '6161616161616161' + '1a026262' + '2001'
  const hidden = fromHex('08' + '878080808080808000' + '12' + '12' + content)
  t.strictSame(decodeRaftMessage(hidden), { type: 'heartbeat', from: '\u0001é\u0001aaaaaaaa\u001a\u0002bb \u0001', to: '', term: 0 }, 'was { from: "À", to: "bb", term: 1 }: past the UTF-8 check')

  // Found by `npm run fuzz` (seed 2036457951, case 918367): as a Node Buffer (protobufjs's
  // BufferReader cuts a string that runs past the end short) it decoded, as a Uint8Array it did not.
  const found = fromHex(
    '0aa30108878080808080800012124c78f09f8e87f09f8d8d6124f09f8eaecdb01a13f09f8cb7f09f8d8337f09f8ca23a39f09f8ea2208080808010280130b683fbcb0d40c00648015a53080110ffffffe68aa49a0b1a460a15c6a27e46dcb9f09f8d91c79bf09f8db85af09f8eb70a132f516ed6a6d7ac61f09f8c8fd09bca87d1b2730a0650d4b1dca37912103ff09f8db576f09f8d8acc91d7aede8060ffffffffffffff0f',
  )
  const plain = decodeEnvelope(found)
  t.strictSame(decodeEnvelope(Buffer.from(found)), plain, 'a Buffer decodes as a Uint8Array of the same bytes does')
  t.strictSame(shapeProblems(plain), [], 'to a clean message')
  t.strictSame(decodeEnvelope(encodeEnvelope(plain)), plain, 'that round-trips')
  t.equal(plain.kind === 'raft' && plain.body.from.includes('\ufffd'), false, 'with no replacement characters in its ids')
})

