import t from 'tap'
import { FrameDecoder, decodeEnvelope, encodeEnvelope } from '../../src/transport/codec.js'
import { expectedBuffered, modelFraming, PrototypeGuard, sameValue, shapeProblems } from './checks.js'
import { makeCase } from './cases.js'
import { FuzzEngine, formatFinding, type Check, type Finding } from './engine.js'
import { FAULTS, type FaultName } from './faults.js'
import { Gen, prng, randomEnvelope } from './generators.js'
import { mutateMessage, parseFields } from './mutators.js'
import { runInChild } from './runner.js'
import { fromHex, toHex } from './wire.js'

/**
 * The fuzz engine's own tests: each check must fail on a codec broken in the way it guards against,
 * report the seed and case, and replay. A check that cannot fail would make the fuzz's green
 * meaningless.
 */
const SEED = 4242

t.test('a case is a pure function of seed and case number', async (t) => {
  for (const n of [0, 1, 999, 123_456]) {
    const a = makeCase(SEED, n)
    const b = makeCase(SEED, n)
    t.equal(toHex(a.input), toHex(b.input), `case ${n}: same input`)
    t.equal(toHex(a.stream), toHex(b.stream), `case ${n}: same stream`)
    t.strictSame(a.chunks, b.chunks, `case ${n}: same split points`)
    t.equal(a.chunks.reduce((x, y) => x + y, 0), a.stream.byteLength, `case ${n}: the chunks cover the stream`)
  }
  t.not(toHex(makeCase(SEED, 7).input), toHex(makeCase(SEED + 1, 7).input), 'another seed, another case')
})

// In-process faults: the engine must report each with the expected check, seed and case, and replay it.
const IN_PROCESS: [FaultName, Check][] = [
  ['plain-error', 'typed-errors'],
  ['round-trip', 'round-trip'],
  ['own-proto-key', 'shape'],
  ['pollute', 'pollution'],
  ['slow', 'time'],
  ['framing-max', 'framing'],
  ['framing-buffered', 'framing'],
  ['consistency', 'consistency'],
]

for (const [fault, check] of IN_PROCESS) {
  t.test(`the ${check} check catches a codec with fault "${fault}"`, async (t) => {
    const engine = new FuzzEngine({ seed: SEED, codec: FAULTS[fault]() })
    let found: Finding | undefined
    for (let n = 0; n < 5000 && !found; n++) found = engine.runCase(n).find((f) => f.check === check)
    if (!t.ok(found, `found within 5000 cases`)) return
    const f = found!
    const text = formatFinding(f)
    t.match(text, `seed ${SEED} case ${f.caseNo}`, 'the report names seed and case')
    t.match(text, `HOLDFAST_FUZZ_SEED=${SEED}`, 'and how to replay it')
    t.match(text, `--seed ${SEED} --from ${f.caseNo} --cases 1`, 'and how to replay the case alone')
    t.equal(f.hex, toHex(f.site.startsWith('FrameDecoder') ? makeCase(SEED, f.caseNo).stream : makeCase(SEED, f.caseNo).input), 'the bytes are the case’s')
    if (f.minimalHex !== undefined) t.ok(f.minimalHex.length < f.hex.length, `shrunk from ${f.hex.length / 2} to ${f.minimalHex.length / 2} bytes`)
    const replay = new FuzzEngine({ seed: SEED, codec: FAULTS[fault](), shrink: false }).runCase(f.caseNo)
    t.ok(
      replay.some((r) => r.check === check && r.site === f.site),
      'running that case alone reproduces it',
    )
    t.strictSame(new PrototypeGuard().check(), [], 'the engine left the prototypes as it found them')
  })
}

t.test('the real codec passes the same cases', async (t) => {
  const engine = new FuzzEngine({ seed: SEED })
  for (let n = 0; n < 500; n++) engine.runCase(n)
  t.strictSame(engine.findings.map(formatFinding), [], 'no findings')
  t.strictSame(engine.trailersProblems(), [], 'the trailers decode to themselves')
})

// Faults that need a process of their own: a leak (measured after gc), a hang, a crash.
t.test('the memory check catches a leak', async (t) => {
  const s = await runInChild({ seed: SEED, cases: 600, checkpointEvery: 100, warmup: 100, fault: 'leak' })
  const f = s.findings.find((x) => x.check === 'memory')
  if (!t.ok(f, `a memory finding (heap grew ${(s.heapGrowth / 2 ** 20).toFixed(1)} MiB)`)) return
  t.match(formatFinding(f!), `seed ${SEED}`, 'with the seed')
})

for (const [fault, check] of [
  ['hang', 'hang'],
  ['crash', 'crash'],
] as const) {
  t.test(`the runner catches a decoder that ${fault === 'hang' ? 'never returns' : 'kills the process'}, and names the case`, async (t) => {
    const s = await runInChild({ seed: SEED, cases: 5000, progressEvery: 50, stallMs: 1500, fault })
    const f = s.findings.find((x) => x.check === check)
    if (!t.ok(f, `a ${check} finding`)) return
    t.match(f!.site, `case ${f!.caseNo}, run alone`, `pinpointed to case ${f!.caseNo}`)
    t.equal(f!.hex, toHex(makeCase(SEED, f!.caseNo).input), 'with its input')
    t.match(formatFinding(f!), `seed ${SEED} case ${f!.caseNo}`, 'the report names seed and case')
  })
}

// ---------------------------------------------------------------------------------------------
// The oracles themselves

t.test('the framing model agrees with FrameDecoder on a clean stream', async (t) => {
  const frame = (n: number): Uint8Array => {
    const out = new Uint8Array(4 + n)
    new DataView(out.buffer).setUint32(0, n)
    return out.fill(7, 4)
  }
  const stream = new Uint8Array([...frame(3), ...frame(0), ...frame(10), ...frame(2).subarray(0, 5)])
  const model = modelFraming(stream, 100)
  t.strictSame(model.frames.map((f) => f.length), [3, 0, 10], 'three complete frames')
  t.equal(model.failAt, undefined)
  const fd = new FrameDecoder({ maxFrameBytes: 100 })
  for (let i = 0; i < stream.byteLength; i++) {
    fd.push(stream.subarray(i, i + 1))
    if (fd.buffered !== expectedBuffered(model, i + 1)) return t.fail(`buffered differs after ${i + 1} bytes`)
  }
  t.pass('buffered matches after every byte')
  t.equal(modelFraming(stream, 9).failAt, 7 + 4 + 3, 'a limit of 9 fails on the third header’s last byte')
})

t.test('shape and equality oracles', async (t) => {
  const m = randomEnvelope(new Gen(prng(1)), 'gossip')
  const decoded = decodeEnvelope(encodeEnvelope(m))
  t.strictSame(shapeProblems(decoded), [], 'a decoded envelope is clean')
  t.ok(sameValue(decoded, m), 'and equal to what was encoded')
  t.notOk(sameValue({ a: new Uint8Array([1]) }, { a: new Uint8Array([2]) }), 'bytes compared by content')
  t.notOk(sameValue({ a: 1 }, { a: 1, b: undefined }), 'extra keys differ')
  t.notOk(sameValue(new Uint8Array(1), Buffer.alloc(1)), 'a Buffer is not a Uint8Array')
  t.match(shapeProblems(JSON.parse('{"kind":"gossip","__proto__":{"x":1}}')), [/own key "__proto__"/], 'an own __proto__ key')
  t.match(shapeProblems({ kind: 'x', body: { term: 2 ** 53 } }), [/safe/], 'an unsafe number')
  t.match(shapeProblems({ body: { from: '\ud800' } }), [/surrogate/], 'a lone surrogate')
  t.match(shapeProblems({ body: { data: Buffer.from([1]) } }), [/not a plain Uint8Array/], 'a Buffer')
  t.match(shapeProblems({ body: { data: new Uint8Array(8).subarray(2) } }), [/view/], 'a view')
  t.match(shapeProblems({ evil: 1 }), [/not a schema field/], 'an unknown key')
})

t.test('the structure-aware mutator parses what the codec writes and rebuilds what it parsed', async (t) => {
  const g = new Gen(prng(3))
  for (let i = 0; i < 200; i++) {
    const wire = encodeEnvelope(randomEnvelope(g))
    const fields = parseFields(wire)
    if (!t.ok(fields && fields.length === 1, 'one envelope field')) return
  }
  const mutated = new Set<string>()
  const wire = encodeEnvelope(randomEnvelope(g, 'raft'))
  let inside = 0
  for (let i = 0; i < 200; i++) {
    const m = mutateMessage(g, wire, 'holdfast.wire.Envelope')
    mutated.add(toHex(m))
    const fields = parseFields(m)
    if (fields?.length === 1 && fields[0]!.no === 1 && toHex(m) !== toHex(wire)) inside++
  }
  t.ok(mutated.size > 50, `200 mutations of one message, ${mutated.size} distinct`)
  t.ok(inside > 50, `${inside} of them inside the raft body, the envelope intact`)
  t.strictSame(fromHex(toHex(wire)), wire, 'hex round-trips')
})
