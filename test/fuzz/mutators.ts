/**
 * Mutators for the codec fuzz: `mutateBytes` knows nothing about protobuf (flips, splices,
 * truncations); `mutateMessage` parses the fields of a well-formed message and breaks it the way a
 * hostile or buggy peer would: wrong wire types, lying lengths, overlong and oversized varints,
 * duplicated oneof members, huge repeated counts, groups, deep unknown nesting, and strings such as
 * "__proto__", recursing into nested messages by the schema (proto/generated/shape.js).
 */
import { MESSAGE_SHAPES } from '../../proto/generated/shape.js'
import { POLLUTION_NAMES, type Gen } from './generators.js'
import { bytes, concat, nest, repeat, tag, varint, varintBig, varintPadded } from './wire.js'

/** Bytes that mean something to a protobuf reader: group start/end, continuation, zero, max, an LD tag. */
const INTERESTING_BYTES = [0x0b, 0x0c, 0x0f, 0x80, 0xff, 0x00, 0x7f, 0x0a, 0x01, 0x12]

/** One to three byte-level mutations (a copy; the input is untouched). */
export function mutateBytes(g: Gen, input: Uint8Array): Uint8Array {
  let out: Uint8Array = Uint8Array.from(input)
  for (let n = 1 + g.int(3); n > 0; n--) {
    const at = g.int(out.length + 1)
    switch (g.int(9)) {
      case 0: // truncate
        out = out.slice(0, at)
        break
      case 1: // bit flip
        if (at < out.length) out[at] = out[at]! ^ (1 << g.int(8))
        break
      case 2: // random byte
        if (at < out.length) out[at] = g.int(256)
        break
      case 3:
        if (at < out.length) out[at] = g.pick(INTERESTING_BYTES)
        break
      case 4: // insert random bytes
        out = concat(out.subarray(0, at), g.bytes(8), out.subarray(at))
        break
      case 5: // delete a range
        out = concat(out.subarray(0, at), out.subarray(at + 1 + g.int(8)))
        break
      case 6: // duplicate a range
        out = concat(out.subarray(0, at), out.subarray(g.int(out.length + 1), g.int(out.length + 1)), out.subarray(at))
        break
      case 7: // insert a long varint: continuation bytes, then maybe an end
        out = concat(out.subarray(0, at), new Uint8Array(1 + g.int(12)).fill(g.pick([0x80, 0xff])), g.bool() ? bytes(g.int(128)) : bytes(), out.subarray(at))
        break
      case 8: // insert a length claim far larger than what follows
        out = concat(out.subarray(0, at), bytes(g.pick([0x0a, 0x12, 0x3a, 0x5a]), ...varint(g.pick([127, 128, 2 ** 24, 2 ** 24 + 1, 2 ** 31, 2 ** 32 - 1]))), out.subarray(at))
        break
    }
  }
  return out
}

/** One field as it appears on the wire. */
interface Field {
  readonly no: number
  readonly wire: number
  /** The value's bytes: a varint's bytes, the fixed bytes, or a length-delimited field's content. */
  readonly value: Uint8Array
}

/** The top-level fields of `buf`, or undefined when it is not well-formed (no groups accepted). */
export function parseFields(buf: Uint8Array): Field[] | undefined {
  const fields: Field[] = []
  const c = { pos: 0 }
  while (c.pos < buf.byteLength) {
    const key = readVarint(buf, c)
    if (key === undefined || key > 0xffffffff) return undefined
    const no = Math.floor(key / 8)
    const wire = key % 8
    const start = c.pos
    switch (wire) {
      case 0:
        if (readVarint(buf, c) === undefined) return undefined
        fields.push({ no, wire, value: buf.subarray(start, c.pos) })
        break
      case 1:
      case 5: {
        const n = wire === 1 ? 8 : 4
        if (c.pos + n > buf.byteLength) return undefined
        c.pos += n
        fields.push({ no, wire, value: buf.subarray(start, c.pos) })
        break
      }
      case 2: {
        const len = readVarint(buf, c)
        if (len === undefined || c.pos + len > buf.byteLength) return undefined
        fields.push({ no, wire, value: buf.subarray(c.pos, c.pos + len) })
        c.pos += len
        break
      }
      default:
        return undefined
    }
  }
  return fields
}

/** A varint of up to ten bytes (only the low 49 bits kept: enough for tags and lengths). */
function readVarint(buf: Uint8Array, c: { pos: number }): number | undefined {
  let v = 0
  for (let i = 0; i < 10; i++) {
    const b = buf[c.pos++]
    if (b === undefined) return undefined
    if (i < 7) v += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) return v
  }
  return undefined
}

function encodeField(f: Field): Uint8Array {
  const head = bytes(...tag(f.no, f.wire))
  return f.wire === 2 ? concat(head, bytes(...varint(f.value.byteLength)), f.value) : concat(head, f.value)
}

const encoder = new TextEncoder()
const utf8 = (s: string): Uint8Array => encoder.encode(s)

/** Varint values that sit on a boundary of the decoder's number handling. */
function nastyVarint(g: Gen): number[] {
  switch (g.int(9)) {
    case 0:
      return varintBig(2n ** 64n - 1n) // ten bytes, the largest uint64
    case 1:
      return varintBig(2n ** 53n) // the first unsafe integer
    case 2:
      return varintBig(2n ** 53n - 1n)
    case 3:
      return [...new Array<number>(9).fill(0xff), 0x7f] // ten bytes, overflowing 64 bits
    case 4:
      return [...new Array<number>(10 + g.int(6)).fill(0x80), 0x01] // eleven or more bytes
    case 5:
      return varintPadded(g.int(16), 2 + g.int(9)) // overlong but in range
    case 6:
      return varintBig(2n ** 32n + BigInt(g.int(12))) // truncates to a small int32 / uint32
    case 7:
      return varintBig(2n ** 31n) // negative as int32
    default:
      return new Array<number>(1 + g.int(12)).fill(0x80) // never ends
  }
}

/** Fields no schema-following encoder writes: groups, undefined wire types, deep unknown nesting. */
function hostileField(g: Gen): Uint8Array {
  const no = g.pick([1, 2, 3, 7, 15, 99, 536_870_911])
  switch (g.int(7)) {
    case 0: // a group, maybe unterminated, maybe nested
      return concat(...new Array<Uint8Array>(1 + g.int(4)).fill(bytes(...tag(no, 3))), g.bool() ? bytes(...tag(no, 4)) : bytes())
    case 1: // an end-group without a start
      return bytes(...tag(no, 4))
    case 2: // wire types 6 and 7
      return bytes(...tag(no, 6 + g.int(2)), 0)
    case 3: // fixed32 / fixed64 for any field number
      return g.bool() ? bytes(...tag(no, 5), 1, 2, 3, 4) : bytes(...tag(no, 1), 1, 2, 3, 4, 5, 6, 7, 8)
    case 4: // an unknown field nested 1..1000 levels deep
      return nest(1000, 1 + g.int(1000))
    case 5: // a tag over 32 bits, or a field number 0
      return g.bool() ? bytes(0x80, 0x80, 0x80, 0x80, 0x10, 0x00) : bytes(...tag(0, g.pick([0, 2])), 0)
    default: // an overlong tag
      return bytes(...varintPadded(no * 8 + 2, 5 + g.int(3)), 0)
  }
}

/**
 * A mutation of `buf`, a message of type `type` (a key of MESSAGE_SHAPES), made by rewriting its
 * fields. Falls back to byte mutations when `buf` is not well-formed.
 */
export function mutateMessage(g: Gen, buf: Uint8Array, type: string, depth = 0): Uint8Array {
  const fields = parseFields(buf)
  const shape = MESSAGE_SHAPES.get(type)
  if (fields === undefined || shape === undefined) return mutateBytes(g, buf)
  const out: (Field | Uint8Array)[] = [...fields]
  const at = g.int(out.length + 1)
  const f = fields[at]
  const known = f === undefined ? undefined : shape.get(f.no)
  // Mostly go down into a nested message: that is where the decoders' conversions are.
  const op = f?.wire === 2 && known?.message !== undefined && depth < 6 && g.chance(0.6) ? 5 : g.int(14)
  switch (op) {
    case 0: // drop a field
      if (f) out.splice(at, 1)
      break
    case 1: // duplicate a field: repeated values merge, oneof members collide
      if (f) out.splice(at, 0, f)
      break
    case 2: // swap two fields
      if (f && fields.length > 1) {
        const other = g.int(fields.length)
        out[at] = fields[other]!
        out[other] = f
      }
      break
    case 3: // the right value with the wrong wire type
      if (f) out[at] = concat(bytes(...tag(f.no, g.pick([0, 1, 2, 5].filter((w) => w !== f.wire)))), f.wire === 2 ? bytes(...varint(f.value.byteLength)) : bytes(), f.value)
      break
    case 4: // the right value under another field number
      if (f) out[at] = { ...f, no: g.pick([0, 1, 2, 3, 4, 7, 11, 12, 13, 16, 99, 2 ** 29 - 1]) }
      break
    case 5: // recurse into a nested message, or replace a string / bytes value
      if (f && f.wire === 2) {
        if (known?.message !== undefined && depth < 6) out[at] = { ...f, value: mutateMessage(g, f.value, known.message, depth + 1) }
        else out[at] = { ...f, value: g.pick([utf8(g.pick(POLLUTION_NAMES)), g.bytes(16), bytes(0xed, 0xa0, 0x80), bytes(0xc0, 0x80), bytes(), utf8('x'.repeat(g.int(1000)))]) }
      }
      break
    case 6: // a length that lies
      if (f && f.wire === 2) {
        const claim = g.pick([f.value.byteLength + 1, f.value.byteLength + 1 + g.int(64), Math.max(0, f.value.byteLength - 1), 2 ** 24, 2 ** 24 + 1, 2 ** 32 - 1])
        out[at] = concat(bytes(...tag(f.no, 2), ...varint(claim)), f.value)
      }
      break
    case 7: // a boundary varint for a varint field
      if (f && f.wire === 0) out[at] = concat(bytes(...tag(f.no, 0)), bytes(...nastyVarint(g)))
      break
    case 8: // an overlong length prefix, still correct
      if (f && f.wire === 2) out[at] = concat(bytes(...tag(f.no, 2), ...varintPadded(f.value.byteLength, 2 + g.int(9))), f.value)
      break
    case 9: // a hostile field anywhere
      out.splice(at, 0, hostileField(g))
      break
    case 10: {
      // a field repeated many times: repeated messages and strings allocate one value each
      const one = encodeField(f ?? { no: 1, wire: 2, value: bytes() })
      // Up to 64 KiB: the count is the point, not the bulk.
      out.splice(at, 0, repeat(one, Math.min(g.pick([10, 100, 1000]), Math.max(2, Math.floor(65_536 / one.byteLength)))))
      break
    }
    case 11: // every string field set to a prototype name
      for (let i = 0; i < out.length; i++) {
        const fi = out[i]
        if (fi instanceof Uint8Array || fi === undefined) continue
        if (shape.get(fi.no)?.utf8 === true) out[i] = { ...fi, value: utf8(g.pick(POLLUTION_NAMES)) }
      }
      break
    case 12: // a packed-looking run of varints for a scalar field
      if (f && f.wire === 0) out[at] = { no: f.no, wire: 2, value: repeat(f.value, 1 + g.int(50)) }
      break
    default: // byte mutations inside the value
      if (f && f.wire === 2) out[at] = { ...f, value: mutateBytes(g, f.value) }
      else return mutateBytes(g, buf)
  }
  return concat(...out.map((x) => (x instanceof Uint8Array ? x : encodeField(x))))
}
