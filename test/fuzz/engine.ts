/**
 * The codec fuzz engine, shared by `npm test` (test/transport/fuzz.test.ts) and `npm run fuzz`
 * (test/fuzz/cli.ts).
 *
 * Cases come from cases.ts (a case is a pure function of seed and case number); runs with heap
 * checkpoints are in run.ts, child processes and the hang watchdog in runner.ts.
 *
 * Every case goes through every decoder entry point of src/transport/codec.ts: decodeEnvelope,
 * decodeRaftMessage, openEnvelope (and decodeRaftMessage on the body it routes, as rpc.ts does),
 * and FrameDecoder. The checks (each a `Check`):
 *
 * - typed-errors: only HoldfastError DECODE_ERROR is ever thrown by a decoder;
 * - round-trip: a decoded value re-encodes and decodes to a deep-equal value; a valid message
 *   decodes to itself; a decode within limits respects maxFrameBytes;
 * - shape: decoded values are plain objects, arrays and Uint8Arrays with schema keys only (no own
 *   __proto__ / constructor / prototype), safe integers and well-formed strings;
 * - pollution: Object/Array/Function/Uint8Array prototypes unchanged after every case;
 * - consistency: openEnvelope + decodeRaftMessage agrees with decodeEnvelope on the same frame;
 * - framing: FrameDecoder emits exactly the frames of a reference model, holds exactly the bytes
 *   of the unfinished frame (never more than its maximum plus a header), and refuses a header over
 *   the maximum on the push that completes it, then stays failed;
 * - time: the decoder calls of one case take less than `perCaseMs` (wall time; a case over a fifth
 *   of it is timed twice more and the fastest run counts, so a GC pause or a busy machine is
 *   neither a finding nor the slowest case reported);
 * - memory (runFuzz): heap and ArrayBuffer bytes after gc grow less than `maxHeapGrowth` between an
 *   early checkpoint and the end;
 * - hang, crash (runner.ts): a child that stops reporting progress is killed, one that dies is
 *   noticed, and the case is pinpointed by running its window again one case at a time.
 */
import * as realCodec from '../../src/transport/codec.js'
import { FRAME_HEADER_BYTES, MAX_ELEMENTS, MAX_FRAME_BYTES, type DecodeLimits, type WireMessage } from '../../src/transport/codec.js'
import type { Message } from '../../src/core/types.js'
import { isHoldfastError } from '../../src/errors.js'
import { corpus, makeCase, type FuzzCase } from './cases.js'
import { bytesEqual, expectedBuffered, modelFraming, PrototypeGuard, sameValue, shapeProblems } from './checks.js'
import { ENVELOPE_KINDS } from './generators.js'
import { concat, toHex } from './wire.js'

// ---------------------------------------------------------------------------------------------
// The codec under test

/** A FrameDecoder as the engine uses it. */
export interface FrameDecoderLike {
  push(chunk: Uint8Array): Uint8Array[]
  readonly buffered: number
}

/** The decoders under test, with the encoders the round-trip check needs. Tests swap in broken ones. */
export interface Codec {
  readonly decodeEnvelope: typeof realCodec.decodeEnvelope
  readonly decodeRaftMessage: typeof realCodec.decodeRaftMessage
  readonly openEnvelope: typeof realCodec.openEnvelope
  readonly FrameDecoder: new (options?: { maxFrameBytes?: number }) => FrameDecoderLike
  readonly encodeEnvelope: typeof realCodec.encodeEnvelope
  readonly encodeRaftMessage: typeof realCodec.encodeRaftMessage
  readonly encodeEnvelopeRaw: typeof realCodec.encodeEnvelopeRaw
}

export const REAL_CODEC: Codec = realCodec

/** The decoder entry points every case goes through (a test checks codec.ts exports no others). */
export const ENTRY_POINTS = ['decodeEnvelope', 'decodeRaftMessage', 'openEnvelope', 'FrameDecoder'] as const
export type EntryPoint = (typeof ENTRY_POINTS)[number]

/** The checks a finding can come from. */
export const CHECKS = ['typed-errors', 'round-trip', 'shape', 'pollution', 'consistency', 'framing', 'time', 'memory', 'hang', 'crash'] as const
export type Check = (typeof CHECKS)[number]

/** A violated check, with everything needed to replay it. */
export interface Finding {
  readonly check: Check
  readonly seed: number
  /** The case number, or the first case of the window for memory findings. */
  readonly caseNo: number
  readonly family: string
  /** Where it happened, e.g. "decodeEnvelope(input)" or "FrameDecoder.push". */
  readonly site: string
  readonly message: string
  /** The case's input (or stream, for framing findings) as hex. */
  readonly hex: string
  /** A smaller input that still fails the same check at the same site, when shrinking found one. */
  readonly minimalHex?: string
  /** For stream findings: the chunk sizes the stream was pushed in. */
  readonly chunks?: readonly number[]
  readonly maxFrameBytes?: number
  readonly limits?: DecodeLimits
}

/** How to replay a finding. */
export function replayHint(f: Pick<Finding, 'seed' | 'caseNo'>): string {
  return `replay: HOLDFAST_FUZZ_SEED=${f.seed} npx tap test/transport/fuzz.test.ts, or this case alone: npm run fuzz -- --seed ${f.seed} --from ${f.caseNo} --cases 1 --jobs 1`
}

/** A finding as text, for test output and the CLI. */
export function formatFinding(f: Finding): string {
  const lines = [
    `[${f.check}] seed ${f.seed} case ${f.caseNo} (${f.family}) at ${f.site}: ${f.message}`,
    `  input (${f.hex.length / 2} bytes): ${abbreviate(f.hex)}`,
  ]
  if (f.minimalHex !== undefined) lines.push(`  minimal reproduction (${f.minimalHex.length / 2} bytes): ${abbreviate(f.minimalHex)}`)
  if (f.chunks !== undefined) lines.push(`  pushed in chunks of ${abbreviate(f.chunks.join(','))} with maxFrameBytes ${f.maxFrameBytes}`)
  if (f.limits !== undefined && Object.keys(f.limits).length > 0) lines.push(`  limits ${JSON.stringify(f.limits)}`)
  lines.push(`  ${replayHint(f)}`)
  return lines.join('\n')
}

const abbreviate = (s: string, max = 2000): string => (s.length <= max ? s : `${s.slice(0, max)}... (${s.length - max} more characters)`)

// ---------------------------------------------------------------------------------------------
// Running cases

export interface FuzzStats {
  /** Cases run: each is one fuzz frame through every entry point. */
  cases: number
  /** Calls per entry point (FrameDecoder counts pushes). */
  calls: Record<EntryPoint, number>
  /** Calls that returned a value, and that threw DECODE_ERROR, per entry point. */
  decoded: Record<EntryPoint, number>
  rejected: Record<EntryPoint, number>
  /** Streams fed to a fresh FrameDecoder (one per case), and how many it refused. */
  streams: number
  streamsRejected: number
  /** Frames the FrameDecoder reassembled (each also decoded). */
  streamFrames: number
  /** Inputs that decoded as an envelope or a raft message, and that no entry point accepted. */
  inputsDecoded: number
  inputsRejected: number
  /** Cases per family. */
  families: Record<string, number>
  /** Wall time per family (generation, decoding and checks). */
  familyMs: Record<string, number>
  /** Total time in decoder calls, and the slowest case's. */
  decodeMs: number
  slowestMs: number
  slowestCase: number
  slowestFamily: string
}

export function emptyStats(): FuzzStats {
  const zero = (): Record<EntryPoint, number> => ({ decodeEnvelope: 0, decodeRaftMessage: 0, openEnvelope: 0, FrameDecoder: 0 })
  return { cases: 0, calls: zero(), decoded: zero(), rejected: zero(), streams: 0, streamsRejected: 0, streamFrames: 0, inputsDecoded: 0, inputsRejected: 0, families: {}, familyMs: {}, decodeMs: 0, slowestMs: 0, slowestCase: -1, slowestFamily: '' }
}

/** Generous limits for decoding a re-encoded value: encoding may grow a frame (empty bytes fields are written). */
const RELAXED: DecodeLimits = { maxFrameBytes: 4 * MAX_FRAME_BYTES, maxElements: 4 * MAX_ELEMENTS }

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown }

/** A problem found while checking one input; becomes a Finding once the case is known. */
interface Problem {
  readonly check: Check
  readonly site: string
  readonly message: string
  /** True for stream (framing) problems: shrinking and the reported bytes use the stream. */
  readonly stream?: boolean
}

export interface EngineOptions {
  readonly seed: number
  readonly codec?: Codec
  /** The bound on one case's decoder time. @default 250 */
  readonly perCaseMs?: number
  /** Shrink failing inputs before reporting them. @default true */
  readonly shrink?: boolean
}

/** Runs cases and collects statistics and findings. */
export class FuzzEngine {
  readonly seed: number
  readonly stats: FuzzStats = emptyStats()
  readonly findings: Finding[] = []
  readonly #codec: Codec
  readonly #perCaseMs: number
  readonly #shrink: boolean
  readonly #guard = new PrototypeGuard()
  /** Decoder time of the case in progress. */
  #caseMs = 0
  /** Off while shrinking: statistics count the real cases only. */
  #counting = true
  #sinceFullGuard = 0
  #lastFullGuard: number | undefined

  constructor(options: EngineOptions) {
    this.seed = options.seed
    this.#codec = options.codec ?? REAL_CODEC
    this.#perCaseMs = options.perCaseMs ?? 250
    this.#shrink = options.shrink ?? true
  }

  /** Runs case `caseNo`; returns its findings (also appended to `findings`). */
  runCase(caseNo: number): Finding[] {
    const caseStarted = performance.now()
    const c = makeCase(this.seed, caseNo)
    this.stats.cases++
    this.stats.families[c.family] = (this.stats.families[c.family] ?? 0) + 1
    this.#caseMs = 0
    const problems: Problem[] = []
    const inputOk = this.#checkInput(c, c.input, problems)
    if (inputOk) this.stats.inputsDecoded++
    else this.stats.inputsRejected++
    this.#checkStream(c, c.stream, problems)
    // Every case: the cheap check (enumerable additions, replaced values). Every 64th case, or when
    // that fails: the full one, which also sees non-enumerable additions and removals.
    const quick = this.#guard.quickCheck()
    if (!quick || ++this.#sinceFullGuard >= 64) {
      const site = quick ? `after the case (found by the full check, which runs every 64 cases: one of the cases since ${this.#lastFullGuard ?? 'the start'})` : 'after the case'
      this.#sinceFullGuard = 0
      this.#lastFullGuard = caseNo
      for (const p of this.#guard.check()) problems.push({ check: 'pollution', site, message: p })
      if (problems.some((p) => p.check === 'pollution')) this.#guard.restore()
    }
    let ms = this.#caseMs
    this.stats.decodeMs += ms
    // Slow (over a fifth of the bound): time the case twice more and keep the fastest. A decoder
    // that is slow on this input is slow every time; a descheduled process or a GC pause is not.
    // So the slowest case reported is the decoders' doing, not the machine's.
    for (let retry = 0; retry < 2 && ms > this.#perCaseMs / 5; retry++) ms = Math.min(ms, this.#retime(c))
    if (ms > this.stats.slowestMs) {
      this.stats.slowestMs = ms
      this.stats.slowestCase = caseNo
      this.stats.slowestFamily = c.family
    }
    if (ms > this.#perCaseMs) problems.push({ check: 'time', site: 'all entry points', message: `decoding took ${ms.toFixed(1)} ms, over the ${this.#perCaseMs} ms bound` })
    const found = dedupe(problems).map((p) => this.#finding(c, p))
    this.findings.push(...found)
    this.stats.familyMs[c.family] = (this.stats.familyMs[c.family] ?? 0) + performance.now() - caseStarted
    return found
  }

  /** The decoder time of running case `c` again, without counting or reporting anything. */
  #retime(c: FuzzCase): number {
    this.#counting = false
    this.#caseMs = 0
    try {
      this.#checkInput(c, c.input, [])
      this.#checkStream(c, c.stream, [])
    } finally {
      this.#counting = true
      this.#guard.restore()
    }
    return this.#caseMs
  }

  #finding(c: FuzzCase, p: Problem): Finding {
    const bytes = p.stream ? c.stream : c.input
    let minimalHex: string | undefined
    if (this.#shrink && p.check !== 'time' && p.check !== 'pollution') {
      const minimal = this.#minimize(c, p, bytes)
      if (minimal.byteLength < bytes.byteLength) minimalHex = toHex(minimal)
    }
    return {
      check: p.check,
      seed: c.seed,
      caseNo: c.caseNo,
      family: c.family,
      site: p.site,
      message: p.message,
      hex: toHex(bytes),
      ...(minimalHex !== undefined ? { minimalHex } : {}),
      ...(p.stream ? { chunks: c.chunks, maxFrameBytes: c.maxFrameBytes } : { limits: c.limits }),
    }
  }

  /** Greedy delta debugging: drop ever smaller ranges while the same check fails at the same site. */
  #minimize(c: FuzzCase, p: Problem, bytes: Uint8Array): Uint8Array {
    const stillFails = (b: Uint8Array): boolean => {
      const problems: Problem[] = []
      try {
        if (p.stream) this.#checkStream({ ...c, chunks: rechunk(c.chunks, b.byteLength) }, b, problems)
        else this.#checkInput({ ...c, expected: undefined }, c.wrapped === 'Buffer' ? Buffer.from(b) : b, problems)
      } catch {
        return false
      }
      this.#guard.restore()
      return problems.some((q) => q.check === p.check && q.site === p.site)
    }
    this.#counting = false
    let best = bytes
    let budget = 4000
    try {
      for (let size = Math.max(1, best.byteLength >> 1); size >= 1 && budget > 0; size = size === 1 ? 0 : size >> 1) {
        for (let at = 0; at < best.byteLength && budget > 0; ) {
          const candidate = concat(best.subarray(0, at), best.subarray(at + size))
          budget--
          if (stillFails(candidate)) best = candidate
          else at += size
        }
      }
    } finally {
      this.#counting = true
    }
    return best
  }

  /** Times and classifies one decoder call: a value, DECODE_ERROR, or a typed-errors problem. */
  #call<T>(entry: EntryPoint, site: string, problems: Problem[], fn: () => T): Outcome<T> {
    if (this.#counting) this.stats.calls[entry]++
    const started = performance.now()
    let outcome: Outcome<T>
    try {
      outcome = { ok: true, value: fn() }
    } catch (error) {
      outcome = { ok: false, error }
    }
    this.#caseMs += performance.now() - started
    if (outcome.ok) {
      if (this.#counting) this.stats.decoded[entry]++
    } else if (isHoldfastError(outcome.error, 'DECODE_ERROR')) {
      if (this.#counting) this.stats.rejected[entry]++
    } else {
      problems.push({ check: 'typed-errors', site, message: `threw ${describe(outcome.error)}` })
    }
    return outcome
  }

  /** Every message decoder on one input; true when any of them decoded it. */
  #checkInput(c: FuzzCase, input: Uint8Array, problems: Problem[]): boolean {
    const codec = this.#codec
    const limits = c.limits
    const env = this.#call('decodeEnvelope', 'decodeEnvelope(input)', problems, () => codec.decodeEnvelope(input, limits))
    if (env.ok) this.#checkEnvelope(env.value, input, limits, 'decodeEnvelope(input)', problems)
    const raft = this.#call('decodeRaftMessage', 'decodeRaftMessage(input)', problems, () => codec.decodeRaftMessage(input, limits))
    if (raft.ok) this.#checkRaft(raft.value, input, limits, 'decodeRaftMessage(input)', problems)

    if (c.wrapped !== undefined) {
      // A view or a Buffer must decode exactly as a plain copy of its bytes does.
      const copy = Uint8Array.from(input)
      const plainEnv = this.#call('decodeEnvelope', 'decodeEnvelope(plain copy of input)', problems, () => codec.decodeEnvelope(copy, limits))
      const plainRaft = this.#call('decodeRaftMessage', 'decodeRaftMessage(plain copy of input)', problems, () => codec.decodeRaftMessage(copy, limits))
      if (plainEnv.ok !== env.ok || (env.ok && plainEnv.ok && !sameValue(env.value, plainEnv.value))) problems.push({ check: 'consistency', site: 'decodeEnvelope(input)', message: `a ${c.wrapped} decodes differently from a plain copy of its bytes` })
      if (plainRaft.ok !== raft.ok || (raft.ok && plainRaft.ok && !sameValue(raft.value, plainRaft.value))) problems.push({ check: 'consistency', site: 'decodeRaftMessage(input)', message: `a ${c.wrapped} decodes differently from a plain copy of its bytes` })
    }
    if (c.expected?.kind === 'envelope' && !(env.ok && sameValue(env.value, c.expected.value))) {
      problems.push({ check: 'round-trip', site: 'decodeEnvelope(input)', message: `a valid ${c.expected.value.kind} envelope ${env.ok ? 'decoded to a different value' : `was refused: ${describe(env.error)}`}` })
    }
    if (c.expected?.kind === 'raft' && !(raft.ok && sameValue(raft.value, c.expected.value))) {
      problems.push({ check: 'round-trip', site: 'decodeRaftMessage(input)', message: `a valid raft message ${raft.ok ? 'decoded to a different value' : `was refused: ${describe(raft.error)}`}` })
    }

    const open = this.#call('openEnvelope', 'openEnvelope(input)', problems, () => codec.openEnvelope(input, limits))
    if (!open.ok) return env.ok || raft.ok
    const { kind, body } = open.value
    if (!ENVELOPE_KINDS.includes(kind)) problems.push({ check: 'shape', site: 'openEnvelope(input)', message: `unknown kind ${JSON.stringify(kind)}` })
    if (!(body instanceof Uint8Array) || body.buffer !== input.buffer || body.byteOffset + body.byteLength !== input.byteOffset + input.byteLength) {
      problems.push({ check: 'shape', site: 'openEnvelope(input)', message: 'the body is not the tail of the input' })
      return true
    }
    try {
      const again = codec.openEnvelope(codec.encodeEnvelopeRaw(kind, body), RELAXED)
      if (again.kind !== kind || !bytesEqual(again.body, body)) problems.push({ check: 'round-trip', site: 'openEnvelope(input)', message: 'rewrapping the body changed it' })
    } catch (err) {
      problems.push({ check: 'round-trip', site: 'openEnvelope(input)', message: `the body did not rewrap: ${describe(err)}` })
    }
    if (env.ok && env.value.kind !== kind) problems.push({ check: 'consistency', site: 'openEnvelope(input)', message: `kind ${kind}, but decodeEnvelope says ${env.value.kind}` })
    if (kind !== 'raft') return true
    // The hot path of rpc.ts: route the raft body by openEnvelope, decode it alone.
    const routed = this.#call('decodeRaftMessage', 'decodeRaftMessage(openEnvelope(input).body)', problems, () => codec.decodeRaftMessage(body, limits))
    // Equal to the envelope's raft body (checked above, and compared below), it needs no checks of its own.
    if (routed.ok && !(env.ok && sameValue(env.value.body, routed.value))) this.#checkRaft(routed.value, body, limits, 'decodeRaftMessage(openEnvelope(input).body)', problems)
    // With custom limits the two paths legitimately differ at the boundary (the envelope is one more level and value).
    if (Object.keys(limits).length === 0 && (env.ok || routed.ok)) {
      if (env.ok !== routed.ok) {
        problems.push({
          check: 'consistency',
          site: 'decodeRaftMessage(openEnvelope(input).body)',
          message: env.ok ? `decodeEnvelope accepted the frame, the routed body was refused: ${describe((routed as { error: unknown }).error)}` : `the routed body decoded, decodeEnvelope refused the frame: ${describe((env as { error: unknown }).error)}`,
        })
      } else if (env.ok && routed.ok && !sameValue(env.value.body, routed.value)) {
        problems.push({ check: 'consistency', site: 'decodeRaftMessage(openEnvelope(input).body)', message: 'the routed body decoded to a different message than decodeEnvelope' })
      }
    }
    return true
  }

  #checkCommon(value: unknown, input: Uint8Array, limits: DecodeLimits, site: string, problems: Problem[]): void {
    for (const p of shapeProblems(value)) problems.push({ check: 'shape', site, message: p })
    const max = limits.maxFrameBytes ?? MAX_FRAME_BYTES
    if (input.byteLength > max) problems.push({ check: 'round-trip', site, message: `decoded ${input.byteLength} bytes over the ${max}-byte limit` })
  }

  #checkEnvelope(value: WireMessage, input: Uint8Array, limits: DecodeLimits, site: string, problems: Problem[]): void {
    this.#checkCommon(value, input, limits, site, problems)
    let back: unknown
    try {
      back = this.#codec.decodeEnvelope(this.#codec.encodeEnvelope(value), RELAXED)
    } catch (err) {
      return void problems.push({ check: 'round-trip', site, message: `decoded, but did not re-encode and decode: ${describe(err)}` })
    }
    if (!sameValue(back, value)) problems.push({ check: 'round-trip', site, message: 're-encoding changed the value' })
  }

  #checkRaft(value: Message, input: Uint8Array, limits: DecodeLimits, site: string, problems: Problem[]): void {
    this.#checkCommon(value, input, limits, site, problems)
    let back: unknown
    try {
      back = this.#codec.decodeRaftMessage(this.#codec.encodeRaftMessage(value), RELAXED)
    } catch (err) {
      return void problems.push({ check: 'round-trip', site, message: `decoded, but did not re-encode and decode: ${describe(err)}` })
    }
    if (!sameValue(back, value)) problems.push({ check: 'round-trip', site, message: 're-encoding changed the value' })
  }

  /** The stream through a fresh FrameDecoder, compared push by push with the reference model. */
  #checkStream(c: FuzzCase, stream: Uint8Array, problems: Problem[]): void {
    const problem = (message: string): void => void problems.push({ check: 'framing', site: 'FrameDecoder.push', message, stream: true })
    if (this.#counting) this.stats.streams++
    const max = c.maxFrameBytes
    const model = modelFraming(stream, max)
    let fd: FrameDecoderLike
    try {
      fd = new this.#codec.FrameDecoder({ maxFrameBytes: max })
    } catch (err) {
      return problem(`the constructor threw ${describe(err)}`)
    }
    let at = 0
    let next = 0 // the model's next frame
    const defaultLimits = Object.keys(c.limits).length === 0
    for (const n of c.chunks) {
      const end = at + n
      // Inline rather than through #call: a stream is ~20 pushes, and this loop is hot.
      let frames: Uint8Array[] | undefined
      let error: unknown
      const started = performance.now()
      try {
        frames = fd.push(stream.subarray(at, end))
      } catch (err) {
        error = err
      }
      this.#caseMs += performance.now() - started
      if (this.#counting) {
        this.stats.calls.FrameDecoder++
        if (frames) this.stats.decoded.FrameDecoder++
      }
      const failsHere = model.failAt !== undefined && model.failAt >= at && model.failAt < end
      if (frames === undefined) {
        if (!isHoldfastError(error, 'DECODE_ERROR')) return void problems.push({ check: 'typed-errors', site: 'FrameDecoder.push', message: `threw ${describe(error)}`, stream: true })
        if (this.#counting) {
          this.stats.rejected.FrameDecoder++
          this.stats.streamsRejected++
        }
        if (!failsHere) return problem(`refused the stream in bytes ${at}..${end}, where every header is within ${max}: ${describe(error)}`)
        if (fd.buffered > FRAME_HEADER_BYTES) problem(`holds ${fd.buffered} bytes after refusing a header`)
        const after = this.#call('FrameDecoder', 'FrameDecoder.push', problems, () => fd.push(new Uint8Array(1)))
        if (after.ok) problem('accepted bytes after a failure: a failed stream must stay failed')
        return
      }
      if (failsHere) return problem(`accepted a header announcing ${new DataView(stream.buffer, stream.byteOffset).getUint32(model.failAt! - 3)} bytes, over the maximum of ${max}`)
      for (const f of frames) {
        const want = model.frames[next++]
        if (want === undefined || want.end <= at || want.end > end) return problem(`emitted a frame the model does not complete in bytes ${at}..${end}`)
        if (!bytesEqual(f, stream.subarray(want.start, want.end))) return problem(`frame ${next - 1} differs from the stream's bytes`)
        if (f.byteLength > 0 && f.buffer === stream.buffer) problem(`frame ${next - 1} is a view of the caller's chunk, not a copy`)
        if (Object.getPrototypeOf(f) !== Uint8Array.prototype || f.byteOffset !== 0 || f.byteLength !== f.buffer.byteLength) problem(`frame ${next - 1} is not a plain Uint8Array of its own (it would pin a larger buffer)`)
        if (this.#counting) this.stats.streamFrames++
        // The frame's bytes are the stream's (checked above). Decoding bytes equal to the input
        // (checked above with the same default limits) or to the trailer (valid, see
        // trailersProblems) again would only repeat work; other frames (from corrupted streams) go
        // through decodeEnvelope.
        const known = (defaultLimits && bytesEqual(f, c.input)) || bytesEqual(f, c.trailer.bytes)
        if (!known) this.#checkFrame(f, problems)
      }
      const missed = model.frames[next]
      if (missed !== undefined && missed.end > at && missed.end <= end) return problem(`did not emit frame ${next}, complete at byte ${missed.end}`)
      const want = expectedBuffered(model, end)
      if (fd.buffered !== want) return problem(`buffered is ${fd.buffered} after ${end} bytes, expected ${want}`)
      if (fd.buffered > max + FRAME_HEADER_BYTES) return problem(`buffers ${fd.buffered} bytes, over the maximum frame plus header`)
      at = end
    }
  }

  /** A reassembled frame goes to decodeEnvelope, as rpc.ts would send it. */
  #checkFrame(f: Uint8Array, problems: Problem[]): void {
    const site = 'decodeEnvelope(FrameDecoder frame)'
    const env = this.#call('decodeEnvelope', site, problems, () => this.#codec.decodeEnvelope(f))
    if (env.ok) this.#checkEnvelope(env.value, f, {}, site, problems)
  }

  /** The seed's trailers decode to themselves: a precondition for not decoding them again in every case. */
  trailersProblems(): string[] {
    const problems: string[] = []
    for (const t of corpus(this.seed).trailers) {
      let value: unknown
      try {
        value = this.#codec.decodeEnvelope(t.bytes)
      } catch (err) {
        problems.push(`a valid ${t.value.kind} envelope was refused: ${describe(err)}`)
        continue
      }
      if (!sameValue(value, t.value)) problems.push(`a valid ${t.value.kind} envelope decoded to a different value`)
    }
    return problems
  }
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${p.check}|${p.site}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Chunk sizes for a shrunk stream: the original pattern, cut or extended to `length`. */
function rechunk(chunks: readonly number[], length: number): number[] {
  const out: number[] = []
  let left = length
  for (let i = 0; left > 0; i++) {
    const n = Math.min(left, chunks.length === 0 ? left : Math.max(1, chunks[i % chunks.length]!))
    out.push(n)
    left -= n
  }
  return out
}

function describe(err: unknown): string {
  if (isHoldfastError(err)) return `HoldfastError ${err.code}: ${err.message}`
  if (err instanceof Error) return `${err.name}: ${err.message}`
  return `a non-Error value ${typeof err === 'string' ? JSON.stringify(err) : String(err)}`
}
