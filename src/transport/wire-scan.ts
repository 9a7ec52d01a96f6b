import { HoldfastError } from '../errors.js'
import { MESSAGE_SHAPES, type FieldShape } from '../../proto/generated/shape.js'

/**
 * A pre-scan of protobuf wire format, run on every inbound message before protobufjs sees it.
 *
 * protobufjs trusts its input more than a network peer deserves: it skips groups recursively,
 * follows whatever wire type arrives for a known field, and allocates one object per nested message.
 * This scan walks the bytes with the schema's field table (generated from proto/holdfast.proto into
 * proto/generated/shape.js) and refuses, with DECODE_ERROR:
 *
 * - wire types 3 and 4 (groups) and the undefined wire types 6 and 7, at every level it walks;
 * - field number 0, tags or lengths over 32 bits, varints over 10 bytes, anything past the end;
 * - a known field arriving with a wire type other than the schema's (e.g. a uint64 as bytes);
 * - nesting deeper than `maxDepth` (the outermost message is depth 1);
 * - more than `maxElements` length-delimited values (nested messages, strings, bytes), which bounds
 *   the objects the decoder allocates for one frame.
 *
 * It recurses only into fields the schema declares as messages. Unknown fields (from a newer
 * peer) are skipped as opaque bytes, exactly as protobufjs will skip them, so their content can
 * neither nest nor allocate. A `bytes` field is never parsed, so user data that happens to look
 * like a group is fine. Recursion depth is therefore bounded by both `maxDepth` and the schema,
 * which is not recursive.
 */

/** Limits applied by the pre-scan. */
export interface ScanLimits {
  /** Deepest message nesting accepted; the outermost message is depth 1. */
  readonly maxDepth: number
  /** Most length-delimited values (messages, strings, bytes) accepted in one message tree. */
  readonly maxElements: number
}

const VARINT = 0
const FIXED64 = 1
const LENGTH_DELIMITED = 2
const START_GROUP = 3
const END_GROUP = 4
const FIXED32 = 5

interface Cursor {
  readonly buf: Uint8Array
  pos: number
  elements: number
}

/**
 * Checks that `buf` is a well-formed encoding of message `type` within `limits`.
 * Throws HoldfastError('DECODE_ERROR') otherwise; never anything else.
 */
export function scanMessage(buf: Uint8Array, type: string, limits: ScanLimits): void {
  const cursor: Cursor = { buf, pos: 0, elements: 0 }
  scan(cursor, buf.byteLength, shapeOf(type), type, 1, limits)
}

function shapeOf(type: string): ReadonlyMap<number, FieldShape> {
  const shape = MESSAGE_SHAPES.get(type)
  // Only reachable through a bug in the generated table or a caller passing a bad name.
  if (shape === undefined) throw new HoldfastError('DECODE_ERROR', `no schema for message type ${type}`)
  return shape
}

function fail(message: string, at: number): never {
  throw new HoldfastError('DECODE_ERROR', `${message} at byte ${at}`)
}

function scan(c: Cursor, end: number, shape: ReadonlyMap<number, FieldShape>, type: string, depth: number, limits: ScanLimits): void {
  if (depth > limits.maxDepth) fail(`message nesting deeper than ${limits.maxDepth}`, c.pos)
  while (c.pos < end) {
    const at = c.pos
    const key = readVarint32(c, end)
    const fieldNo = key >>> 3
    const wire = key & 7
    if (fieldNo === 0) fail('field number 0', at)
    if (wire === START_GROUP || wire === END_GROUP) fail('protobuf groups are not accepted', at)
    const field = shape.get(fieldNo)
    if (field !== undefined && field.wire !== wire && !(field.packable === true && wire === LENGTH_DELIMITED)) {
      fail(`${type}.${field.name} has wire type ${wire}, expected ${field.wire}`, at)
    }
    switch (wire) {
      case VARINT:
        skipVarint64(c, end)
        break
      case FIXED64:
        skipBytes(c, end, 8)
        break
      case FIXED32:
        skipBytes(c, end, 4)
        break
      case LENGTH_DELIMITED: {
        const len = readVarint32(c, end)
        if (len > end - c.pos) fail(`length ${len} runs past the end`, c.pos)
        if (field !== undefined) {
          if (++c.elements > limits.maxElements) fail(`more than ${limits.maxElements} nested values`, at)
          if (field.message !== undefined) {
            const childEnd = c.pos + len
            scan(c, childEnd, shapeOf(field.message), field.message, depth + 1, limits)
            // scan() consumes exactly up to childEnd or throws; this restates the invariant.
            if (c.pos !== childEnd) fail('nested message overran its length', c.pos)
            break
          }
          if (field.utf8 === true && !isUtf8(c.buf, c.pos, c.pos + len)) {
            // protobufjs would decode it to lone surrogates or U+FFFD, so the value would not round-trip.
            fail(`${type}.${field.name} is not well-formed UTF-8`, at)
          }
        }
        c.pos += len
        break
      }
      default:
        fail(`invalid wire type ${wire}`, at)
    }
  }
  if (c.pos !== end) fail('field runs past the end of its message', c.pos)
}

/** A varint that must fit in 32 bits (tags, lengths), in at most 5 bytes. */
function readVarint32(c: Cursor, end: number): number {
  let value = 0
  for (let i = 0; i < 5; i++) {
    if (c.pos >= end) fail('truncated varint', c.pos)
    const b = c.buf[c.pos++]!
    if (i === 4 && b > 0x0f) fail('varint does not fit in 32 bits', c.pos - 1)
    value += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) return value
  }
  // Unreachable: the fifth byte is at most 0x0f, so it ends the varint.
  return fail('varint does not fit in 32 bits', c.pos)
}

/** A varint of up to 64 bits: at most 10 bytes, the tenth carrying only the top bit. */
function skipVarint64(c: Cursor, end: number): void {
  for (let i = 0; i < 10; i++) {
    if (c.pos >= end) fail('truncated varint', c.pos)
    const b = c.buf[c.pos++]!
    if (i === 9 && b > 0x01) fail('varint longer than 64 bits', c.pos - 1)
    if (b < 0x80) return
  }
}

function skipBytes(c: Cursor, end: number, n: number): void {
  if (end - c.pos < n) fail(`truncated ${n}-byte field`, c.pos)
  c.pos += n
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function isUtf8(buf: Uint8Array, start: number, end: number): boolean {
  try {
    strictUtf8.decode(buf.subarray(start, end))
    return true
  } catch {
    return false
  }
}
