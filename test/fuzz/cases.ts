/**
 * The codec fuzz's cases. Case n of seed s is a pure function of (s, n) (`makeCase`): one input
 * frame from one of several families (random bytes, byte and field mutations of valid messages and
 * of every envelope body, crafted hostile shapes, valid messages), sometimes handed over as a view
 * into a larger buffer or as a Node Buffer; the same bytes framed into a stream with a second,
 * valid envelope (sometimes with a corrupted header); the split points of that stream; and the
 * decode limits. So any case replays alone, and a parent can rebuild the bytes of a case a child
 * hung on.
 */
import * as realCodec from '../../src/transport/codec.js'
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES, type DecodeLimits, type EnvelopeKind, type WireMessage } from '../../src/transport/codec.js'
import type { Message } from '../../src/core/types.js'
import { crafted } from './adversarial.js'
import { ENVELOPE_KINDS, Gen, prng, randomEnvelope, randomRaft } from './generators.js'
import { pickWeighted } from '../sim/prng.js'
import { mutateBytes, mutateMessage } from './mutators.js'
import { concat } from './wire.js'

// ---------------------------------------------------------------------------------------------
// Cases

/** A case's input family. */
export const FAMILIES = ['random', 'raft', 'envelope', 'body', 'structured', 'valid', 'crafted'] as const
const FAMILY_WEIGHTS: Record<(typeof FAMILIES)[number], number> = { random: 8, raft: 12, envelope: 16, body: 20, structured: 14, valid: 6, crafted: 24 }

/** One fuzz case: a pure function of (seed, caseNo). */
export interface FuzzCase {
  readonly seed: number
  readonly caseNo: number
  /** The family, and for crafted inputs which one ("crafted/groups"). */
  readonly family: string
  /** The frame fed to decodeEnvelope, decodeRaftMessage and openEnvelope. */
  readonly input: Uint8Array
  /** Set when `input` is a view into a larger buffer or a Node Buffer rather than a plain Uint8Array of its own. */
  readonly wrapped?: 'view' | 'Buffer'
  /** The limits passed with it; {} for the defaults. */
  readonly limits: DecodeLimits
  /** What `input` must decode to, when it is valid by construction. */
  readonly expected?: { readonly kind: 'envelope'; readonly value: WireMessage } | { readonly kind: 'raft'; readonly value: Message }
  /** The byte stream for the FrameDecoder: `input` framed, then `trailer` framed (maybe corrupted). */
  readonly stream: Uint8Array
  /** Sizes of the chunks the stream is pushed in; they sum to its length. */
  readonly chunks: readonly number[]
  readonly maxFrameBytes: number
  /** A valid envelope framed after the input: if it comes out of the FrameDecoder intact, it must decode to this. */
  readonly trailer: { readonly bytes: Uint8Array; readonly value: WireMessage }
}

/** The PRNG seed of one case: cases are independent, so each replays alone. */
export function caseSeed(seed: number, caseNo: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(caseNo + 1, 0x85ebca6b) ^ Math.floor(caseNo / 2 ** 32)) >>> 0
}

const messageType = (kind: EnvelopeKind): string => (kind === 'raft' ? 'holdfast.wire.RaftMessage' : `holdfast.wire.${kind[0]!.toUpperCase()}${kind.slice(1)}`)

/** Builds case `caseNo` of `seed`. Never calls a decoder: a parent can rebuild a case a child hung on. */
export function makeCase(seed: number, caseNo: number): FuzzCase {
  const g = new Gen(prng(caseSeed(seed, caseNo)))
  const family = pickWeighted(g.rand, FAMILY_WEIGHTS)
  let input: Uint8Array
  let limits: DecodeLimits = {}
  let expected: FuzzCase['expected']
  let stream: Uint8Array | undefined
  let name: string = family
  switch (family) {
    case 'random':
      input = g.bytes(g.pick([0, 1, 4, 16, 64, 512]))
      break
    case 'raft':
      input = mutateBytes(g, g.pick(corpus(seed).raft))
      break
    case 'envelope':
      input = mutateBytes(g, g.pick(corpus(seed).envelopes))
      break
    case 'body': {
      // Mutate one body, then wrap it correctly: the mutation reaches that kind's decoder.
      const kind = g.pick(ENVELOPE_KINDS)
      const body = g.pick(corpus(seed).bodies[kind])
      let mutated = mutateMessage(g, body, messageType(kind))
      if (g.chance(0.3)) mutated = mutateMessage(g, mutated, messageType(kind))
      input = realCodec.encodeEnvelopeRaw(kind, mutated)
      name = `body/${kind}`
      break
    }
    case 'structured': {
      const raft = g.chance(0.3)
      input = g.pick(raft ? corpus(seed).raft : corpus(seed).envelopes)
      for (let n = 1 + g.int(3); n > 0; n--) input = mutateMessage(g, input, raft ? 'holdfast.wire.RaftMessage' : 'holdfast.wire.Envelope')
      break
    }
    case 'valid':
      if (g.bool()) {
        const value = randomRaft(g)
        input = realCodec.encodeRaftMessage(value)
        expected = { kind: 'raft', value }
      } else {
        const value = randomEnvelope(g)
        input = realCodec.encodeEnvelope(value)
        expected = { kind: 'envelope', value }
      }
      break
    case 'crafted': {
      const c = crafted(g)
      input = c.input
      limits = c.limits ?? {}
      expected = c.expected
      stream = c.stream
      name = `crafted/${c.name}`
      break
    }
  }
  if (family !== 'crafted' && family !== 'valid' && g.chance(0.08)) limits = randomLimits(g, input)
  // The same bytes as a view into a larger buffer, or as a Node Buffer (which protobufjs reads with
  // its BufferReader): what a transport may hand over. The stream below frames a copy.
  let wrapped: FuzzCase['wrapped']
  const wrap = g.int(12)
  if (wrap === 0) {
    const before = g.int(16)
    const outer = new Uint8Array(before + input.byteLength + g.int(16)).fill(g.pick([0x00, 0x0a, 0x80, 0xff]))
    outer.set(input, before)
    input = outer.subarray(before, before + input.byteLength)
    wrapped = 'view'
  } else if (wrap === 1) {
    input = Buffer.from(input)
    wrapped = 'Buffer'
  }

  const trailer = g.pick(corpus(seed).trailers)
  if (stream === undefined) {
    const frames = [frame(input), frame(trailer.bytes)]
    if (g.chance(0.2)) frames.push(frame(g.bool() ? input : new Uint8Array(0)))
    stream = concat(...frames)
    if (g.chance(0.25)) stream = corruptStream(g, stream, input.byteLength)
  }
  // A Buffer case pushes Buffer chunks too, as a socket does.
  if (wrapped === 'Buffer') stream = Buffer.from(stream)
  const maxFrameBytes = g.pick([MAX_FRAME_BYTES, MAX_FRAME_BYTES, MAX_FRAME_BYTES, MAX_FRAME_BYTES, MAX_FRAME_BYTES, 64, input.byteLength, Math.max(0, input.byteLength - 1), 0])
  return { seed, caseNo, family: wrapped ? `${name} (as a ${wrapped})` : name, input, limits, ...(expected ? { expected } : {}), ...(wrapped ? { wrapped } : {}), stream, chunks: splitPoints(g, stream.byteLength), maxFrameBytes, trailer }
}

/**
 * Valid messages of a seed, made once, that cases mutate (cheaper than a fresh message per case;
 * the mutations are fresh). The 'valid' family still makes a fresh message every time.
 */
interface Corpus {
  readonly seed: number
  readonly raft: readonly Uint8Array[]
  readonly envelopes: readonly Uint8Array[]
  /** Encoded bodies of each envelope kind (without the envelope). */
  readonly bodies: Readonly<Record<EnvelopeKind, readonly Uint8Array[]>>
  /** Five valid envelopes of each kind; one follows each case's input in its stream. */
  readonly trailers: readonly FuzzCase['trailer'][]
}

let corpusCache: Corpus | undefined

export function corpus(seed: number): Corpus {
  if (corpusCache?.seed === seed) return corpusCache
  const g = new Gen(prng(caseSeed(seed, -1)))
  const raft = Array.from({ length: 512 }, () => realCodec.encodeRaftMessage(randomRaft(g)))
  const envelopes = Array.from({ length: 512 }, () => realCodec.encodeEnvelope(randomEnvelope(g)))
  const bodies = Object.fromEntries(
    ENVELOPE_KINDS.map((kind) => [kind, Array.from({ length: 64 }, () => realCodec.openEnvelope(realCodec.encodeEnvelope(randomEnvelope(g, kind))).body.slice())]),
  ) as Record<EnvelopeKind, Uint8Array[]>
  const trailers = ENVELOPE_KINDS.flatMap((kind) => Array.from({ length: 5 }, () => randomEnvelope(g, kind))).map((value) => ({ bytes: realCodec.encodeEnvelope(value), value }))
  corpusCache = { seed, raft, envelopes, bodies, trailers }
  return corpusCache
}


function randomLimits(g: Gen, input: Uint8Array): DecodeLimits {
  const limits: { -readonly [K in keyof DecodeLimits]: DecodeLimits[K] } = {}
  if (g.bool()) limits.maxFrameBytes = g.pick([0, 1, input.byteLength, Math.max(0, input.byteLength - 1), 16])
  if (g.bool()) limits.maxDepth = g.pick([0, 1, 2, 3, 4])
  if (g.bool()) limits.maxElements = g.pick([0, 1, 2, 3, 5, 10])
  return limits
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength)
  new DataView(out.buffer).setUint32(0, payload.byteLength)
  out.set(payload, FRAME_HEADER_BYTES)
  return out
}

/** A byte mutation of the stream, or one frame header replaced by a lie. */
function corruptStream(g: Gen, stream: Uint8Array, firstLength: number): Uint8Array {
  if (g.bool()) return mutateBytes(g, stream)
  const out = Uint8Array.from(stream)
  const at = g.bool() ? 0 : FRAME_HEADER_BYTES + firstLength
  const lie = g.pick([MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, 2 ** 32 - 1, 0, firstLength + 1, Math.max(0, firstLength - 1), g.int(2 ** 32)])
  if (at + FRAME_HEADER_BYTES <= out.byteLength) new DataView(out.buffer).setUint32(at, lie)
  return out
}

/** Chunk sizes summing to `length`: random small, byte by byte, one piece, or with empty chunks. */
function splitPoints(g: Gen, length: number): number[] {
  // Big streams (crafted repeats and nests) in big pieces: small ones would only repeat the same work.
  const strategy = length > 4096 ? g.pick(['whole', 'large'] as const) : g.pick(['whole', 'bytes', 'large', 'large', 'small', 'small', 'small', 'empties', 'empties', 'empties'] as const)
  if (strategy === 'whole') return [length]
  if (strategy === 'bytes' && length <= 256) return new Array<number>(length).fill(1)
  const chunks: number[] = []
  for (let at = 0; at < length; ) {
    let n = strategy === 'large' ? g.int(4096) : 1 + g.int(24)
    if (strategy === 'empties' && g.chance(0.2)) n = 0
    n = Math.min(n, length - at)
    chunks.push(n)
    at += n
  }
  return chunks
}
