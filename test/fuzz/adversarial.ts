/**
 * Hand-made hostile inputs for the codec fuzz: the shapes a peer would send to exhaust memory or
 * CPU, or to reach Object.prototype. Each builder draws its parameters from the generator, so the
 * fuzz explores the family around its boundaries; the fixed worst cases have their own tests.
 */
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES, encodeEnvelope, encodeRaftMessage, type DecodeLimits, type WireMessage } from '../../src/transport/codec.js'
import { Gen, POLLUTION_NAMES, randomEnvelope, randomRaft } from './generators.js'
import { bytes, concat, ld, nest, repeat, str, tag, varint, varintBig, varintPadded, vi } from './wire.js'

/** One crafted input: bytes for the message decoders, optionally with limits or a whole stream. */
export interface Crafted {
  readonly name: string
  readonly input: Uint8Array
  readonly limits?: DecodeLimits
  /** A stream for the FrameDecoder instead of the framed input (e.g. a header that lies). */
  readonly stream?: Uint8Array
  /** The message `input` must decode to, when it is well-formed by construction. */
  readonly expected?: { readonly kind: 'envelope'; readonly value: WireMessage }
}

/** A Raft message head (type, from, to, term): enough to be valid. */
const raftHead = (type = 5): Uint8Array => concat(vi(1, type), str(2, 'a'), str(3, 'b'), vi(4, 1))

/** The frame header for a payload of `length` bytes. */
function header(length: number): Uint8Array {
  const h = new Uint8Array(FRAME_HEADER_BYTES)
  new DataView(h.buffer).setUint32(0, length)
  return h
}

/** A generator whose every string is a prototype name: messages built with it must round-trip. */
class PollutionGen extends Gen {
  override str(): string {
    return this.pick(POLLUTION_NAMES)
  }
}

type Builder = (g: Gen) => Crafted

const BUILDERS: Record<string, Builder> = {
  /** A length-delimited field claiming far more than the few bytes that follow. */
  lengthClaim: (g) => {
    const claim = g.pick([2 ** 24, 2 ** 24 + 1, 2 ** 31, 2 ** 32 - 1, MAX_FRAME_BYTES - 1])
    const few = g.bytes(16)
    const input = g.bool()
      ? concat(bytes(...tag(g.int(13) + 1, 2), ...varint(claim)), few) // the envelope's body
      : ld(1, concat(raftHead(), bytes(...tag(7, 2), ...varint(claim)), few)) // entries, inside a raft body
    return { name: 'lengthClaim', input }
  },

  /** A frame header announcing 16 MiB (or more) followed by a handful of bytes. */
  frameClaim: (g) => {
    const input = g.bytes(64)
    const announced = g.pick([MAX_FRAME_BYTES, MAX_FRAME_BYTES - 1, MAX_FRAME_BYTES + 1, 2 ** 31, 2 ** 32 - 1])
    return { name: 'frameClaim', input, stream: concat(header(announced), input) }
  },

  /** Unknown length-delimited fields nested up to 5000 deep: skipped as opaque bytes, never walked. */
  deepUnknown: (g) => {
    const inner = nest(g.pick([14, 50, 1000]), g.pick([1, 10, 100, 1000, 5000]), g.bool() ? bytes() : raftHead())
    const input = g.bool() ? concat(ld(9, vi(1, 1)), inner) : ld(1, concat(raftHead(7), inner))
    return { name: 'deepUnknown', input }
  },

  /** Start-group tags nested up to 100,000 deep, at the top level or inside a known body. */
  groups: (g) => {
    const n = g.pick([1, 2, 100, 1000, 10_000])
    const groupTag = bytes(...tag(g.pick([1, 15, 1000]), 3))
    const run = concat(repeat(groupTag, n), g.bool() ? repeat(bytes(...tag(15, 4)), n) : bytes())
    const input = g.bool() ? run : ld(1, concat(raftHead(), ld(7, ld(1, run))))
    return { name: 'groups', input }
  },

  /** The schema's deepest path (Envelope > Raft > EntryList > Entry) under a shallow depth limit. */
  deepKnown: (g) => {
    const entry = concat(vi(1, 1), vi(2, 1), ld(4, g.bytes(4)))
    const input = ld(1, concat(raftHead(), ld(7, ld(1, entry))))
    return { name: 'deepKnown', input, limits: { maxDepth: g.pick([1, 2, 3, 4, 5]) } }
  },

  /**
   * Huge repeated-field counts, around the element limit. Scaled down (the limit with them) so a
   * case stays cheap; the full-size worst cases have their own tests.
   */
  repeated: (g) => {
    let n = g.pick([10, 50, 100, 300])
    let input: Uint8Array
    let perItem: number // elements per repeated item, counted by the pre-scan
    switch (g.int(4)) {
      case 0: // empty entries
        input = ld(1, concat(raftHead(), ld(7, repeat(ld(1, bytes()), n))))
        perItem = 1
        break
      case 1: // membership voters
        input = ld(1, concat(raftHead(9), ld(11, concat(vi(1, 1), ld(3, repeat(str(1, g.pick(POLLUTION_NAMES)), n))))))
        perItem = 1
        break
      case 2: // gossip updates with one soft-state pair each (five values an update)
        n = Math.ceil(n / 5)
        input = ld(9, concat(vi(1, 1), repeat(ld(4, concat(str(1, 'n'), vi(3, 1), ld(4, concat(str(1, g.pick(POLLUTION_NAMES)), ld(2, bytes(1)))))), n)))
        perItem = 5
        break
      default: // one scalar field repeated (last one wins): no allocation, only work
        input = ld(1, concat(raftHead(), repeat(vi(4, 7), n)))
        perItem = 0
    }
    // The envelope and the raft body's strings count too: aim the limit just around the total.
    const fixed = 4
    const limit = Math.max(1, n * perItem + fixed + g.int(7) - 3)
    return { name: 'repeated', input, limits: g.chance(0.8) ? { maxElements: limit } : {} }
  },

  /** Varints of ten bytes and more, in values, tags and lengths. */
  varints: (g) => {
    const long = g.pick([
      varintBig(2n ** 64n - 1n),
      varintBig(2n ** 64n),
      [...new Array<number>(10 + g.int(20)).fill(0xff), 0x01],
      [...new Array<number>(9).fill(0x80), 0x01],
      varintPadded(1, 10),
      varintPadded(1, 11),
    ])
    let input: Uint8Array
    switch (g.int(3)) {
      case 0: // a uint64 value
        input = ld(1, concat(raftHead(), bytes(...tag(g.pick([4, 5, 6, 8, 10, 12]), 0), ...long)))
        break
      case 1: // a tag
        input = ld(1, concat(raftHead(), bytes(...long.map((b, i) => (i === 0 ? (b & 0xf8) | 2 : b))), bytes(0)))
        break
      default: // a length
        input = concat(bytes(...tag(1, 2)), bytes(...long), raftHead())
    }
    return { name: 'varints', input }
  },

  /** Well-formed messages whose every string is "__proto__", "constructor", "prototype", ... */
  pollution: (g) => {
    const pg = new PollutionGen(g.rand)
    const value = randomEnvelope(pg)
    return { name: 'pollution', input: encodeEnvelope(value), expected: { kind: 'envelope', value } }
  },

  /** A valid raft message followed by a prototype name as an unknown string field. */
  pollutionUnknown: (g) => {
    const input = concat(encodeRaftMessage(randomRaft(g)), str(g.pick([14, 99, 1000]), g.pick(POLLUTION_NAMES)))
    return { name: 'pollutionUnknown', input }
  },
}

export const CRAFTED_FAMILIES = Object.keys(BUILDERS)

/** One crafted input of a random family. */
export function crafted(g: Gen, family: string = g.pick(CRAFTED_FAMILIES)): Crafted {
  return BUILDERS[family]!(g)
}
