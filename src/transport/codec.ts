import protobuf from 'protobufjs/minimal.js'
import { HoldfastError, isHoldfastError } from '../errors.js'
import type { Entry, EntryType, Membership, Message, MessageType, SnapshotMeta } from '../core/types.js'
import { holdfast } from '../../proto/generated/holdfast.js'
import { scanMessage, type ScanLimits } from './wire-scan.js'
import { MAX_FRAME_BYTES } from './frames.js'
import type { EnvelopeKind, GossipKind, JoinResult, MemberState, MemberUpdate, RpcResponse, SnapshotAck, WireError, WireMessage } from './wire-types.js'

export { FrameDecoder, encodeFrame, MAX_FRAME_BYTES, FRAME_HEADER_BYTES } from './frames.js'
export type * from './wire-types.js'

/**
 * The wire codec: protobuf messages (proto/holdfast.proto, static code in proto/generated/) and
 * length-prefixed frames.
 *
 * Decoding is defensive, in this order: the frame length is checked against the maximum before any
 * buffer is allocated for it; the bytes are pre-scanned against the schema (wire-scan.ts: no groups,
 * bounded depth and element count, wire types as declared); only then does protobufjs decode; and
 * the result is converted to holdfast's own types with every number, enum and oneof checked.
 * Every failure is a HoldfastError('DECODE_ERROR'); decode functions throw nothing else.
 */

const pb = holdfast.wire

/**
 * Deepest message nesting accepted (the envelope is depth 1). The schema's deepest path is 4
 * (Envelope > RaftMessage > EntryList > Entry); the rest is room to evolve.
 */
export const MAX_NESTING_DEPTH = 8
/**
 * Most length-delimited values (nested messages, strings, bytes) in one message. It bounds the
 * objects one frame can make the decoder allocate (a few tens of MB at worst). A default append
 * (core maxMsgBytes 1 MiB, >= 24 bytes an entry) holds under 44k entries, two values each.
 */
export const MAX_ELEMENTS = 262_144
/** Limits for decoding; every field defaults to the constant of the same name. */
export interface DecodeLimits {
  /** @default MAX_FRAME_BYTES */
  readonly maxFrameBytes?: number
  /** @default MAX_NESTING_DEPTH */
  readonly maxDepth?: number
  /** @default MAX_ELEMENTS */
  readonly maxElements?: number
}

/** Envelope field numbers; must match proto/holdfast.proto (a test checks it against the generated code). */
export const ENVELOPE_FIELDS: Readonly<Record<EnvelopeKind, number>> = {
  raft: 1,
  snapshotChunk: 2,
  snapshotAck: 3,
  forwardProposal: 4,
  forwardRead: 5,
  forwardResponse: 6,
  rpcRequest: 7,
  rpcResponse: 8,
  gossip: 9,
  joinChallenge: 10,
  joinRequest: 11,
  joinResult: 12,
}
const ENVELOPE_KINDS = Object.keys(ENVELOPE_FIELDS) as EnvelopeKind[]
const KIND_BY_FIELD = new Map<number, EnvelopeKind>(ENVELOPE_KINDS.map((k) => [ENVELOPE_FIELDS[k], k]))

// ---------------------------------------------------------------------------------------------
// Raft messages

const MESSAGE_TYPE_TO_WIRE: Readonly<Record<MessageType, holdfast.wire.RaftMessageType>> = {
  preVote: pb.RaftMessageType.PRE_VOTE,
  preVoteResp: pb.RaftMessageType.PRE_VOTE_RESP,
  vote: pb.RaftMessageType.VOTE,
  voteResp: pb.RaftMessageType.VOTE_RESP,
  append: pb.RaftMessageType.APPEND,
  appendResp: pb.RaftMessageType.APPEND_RESP,
  heartbeat: pb.RaftMessageType.HEARTBEAT,
  heartbeatResp: pb.RaftMessageType.HEARTBEAT_RESP,
  snapshot: pb.RaftMessageType.SNAPSHOT,
  timeoutNow: pb.RaftMessageType.TIMEOUT_NOW,
}
const MESSAGE_TYPE_FROM_WIRE = invert(MESSAGE_TYPE_TO_WIRE)
const ENTRY_TYPE_TO_WIRE: Readonly<Record<EntryType, holdfast.wire.EntryType>> = {
  normal: pb.EntryType.ENTRY_NORMAL,
  membership: pb.EntryType.ENTRY_MEMBERSHIP,
}
const ENTRY_TYPE_FROM_WIRE = invert(ENTRY_TYPE_TO_WIRE)
const GOSSIP_KIND_TO_WIRE: Readonly<Record<GossipKind, holdfast.wire.GossipKind>> = {
  ping: pb.GossipKind.GOSSIP_PING,
  ack: pb.GossipKind.GOSSIP_ACK,
  pingReq: pb.GossipKind.GOSSIP_PING_REQ,
}
const GOSSIP_KIND_FROM_WIRE = invert(GOSSIP_KIND_TO_WIRE)
const MEMBER_STATE_TO_WIRE: Readonly<Record<MemberState, holdfast.wire.MemberState>> = {
  alive: pb.MemberState.MEMBER_ALIVE,
  suspect: pb.MemberState.MEMBER_SUSPECT,
  dead: pb.MemberState.MEMBER_DEAD,
  left: pb.MemberState.MEMBER_LEFT,
}
const MEMBER_STATE_FROM_WIRE = invert(MEMBER_STATE_TO_WIRE)

/**
 * Encodes one Raft message (without envelope or frame). Fields left undefined stay absent on the
 * wire, so decodeRaftMessage returns a deep-equal Message.
 * @throws HoldfastError INVALID_ARGUMENT for a value the wire cannot carry (an unknown type, a
 *   number that is not a non-negative safe integer).
 */
export function encodeRaftMessage(m: Message): Uint8Array {
  return ownedBytes(pb.RaftMessage.encode(raftToWire(m)).finish())
}

/**
 * Decodes bytes made by encodeRaftMessage. The result is structurally a Message; whether it makes
 * sense for Raft is for the core's validateMessage to judge.
 * @throws HoldfastError DECODE_ERROR, and nothing else.
 */
export function decodeRaftMessage(bytes: Uint8Array, limits: DecodeLimits = {}): Message {
  return guard('raft message', () => {
    checkInput(bytes, limits)
    scanMessage(bytes, 'holdfast.wire.RaftMessage', scanLimits(limits))
    return raftFromWire(pb.RaftMessage.decode(new ScannedReader(bytes)))
  })
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

function raftToWire(m: Message): holdfast.wire.IRaftMessage {
  const type = own(MESSAGE_TYPE_TO_WIRE, m.type)
  if (type === undefined) throw invalid(`unknown raft message type ${String(m.type)}`)
  const w: holdfast.wire.IRaftMessage = { type, from: m.from, to: m.to, term: u64Out(m.term, 'term') }
  if (m.index !== undefined) w.index = u64Out(m.index, 'index')
  if (m.logTerm !== undefined) w.logTerm = u64Out(m.logTerm, 'logTerm')
  if (m.entries !== undefined) w.entries = { items: m.entries.map(entryToWire) }
  if (m.commit !== undefined) w.commit = u64Out(m.commit, 'commit')
  if (m.reject !== undefined) w.reject = m.reject
  if (m.rejectHint !== undefined) w.rejectHint = u64Out(m.rejectHint, 'rejectHint')
  if (m.snapshot !== undefined) w.snapshot = snapshotMetaToWire(m.snapshot)
  if (m.readSeq !== undefined) w.readSeq = u64Out(m.readSeq, 'readSeq')
  if (m.transfer !== undefined) w.transfer = m.transfer
  return w
}

function raftFromWire(w: holdfast.wire.IRaftMessage): Message {
  const type = MESSAGE_TYPE_FROM_WIRE.get(w.type ?? 0)
  if (type === undefined) throw decodeError(`unknown raft message type ${String(w.type)}`)
  const m: Mutable<Message> = { type, from: w.from ?? '', to: w.to ?? '', term: u64In(w.term, 'term') }
  // Optional fields: the generated class keeps null on its prototype, so non-null means present.
  if (w.index != null) m.index = u64In(w.index, 'index')
  if (w.logTerm != null) m.logTerm = u64In(w.logTerm, 'logTerm')
  if (w.entries != null) m.entries = (w.entries.items ?? []).map(entryFromWire)
  if (w.commit != null) m.commit = u64In(w.commit, 'commit')
  if (w.reject != null) m.reject = w.reject
  if (w.rejectHint != null) m.rejectHint = u64In(w.rejectHint, 'rejectHint')
  if (w.snapshot != null) m.snapshot = snapshotMetaFromWire(w.snapshot)
  if (w.readSeq != null) m.readSeq = u64In(w.readSeq, 'readSeq')
  if (w.transfer != null) m.transfer = w.transfer
  return m
}

function entryToWire(e: Entry): holdfast.wire.IEntry {
  const type = own(ENTRY_TYPE_TO_WIRE, e.type)
  if (type === undefined) throw invalid(`unknown entry type ${String(e.type)}`)
  return { index: u64Out(e.index, 'entry.index'), term: u64Out(e.term, 'entry.term'), type, data: bytesOut(e.data, 'entry.data') }
}

function entryFromWire(w: holdfast.wire.IEntry): Entry {
  const type = ENTRY_TYPE_FROM_WIRE.get(w.type ?? 0)
  if (type === undefined) throw decodeError(`unknown entry type ${String(w.type)}`)
  return { index: u64In(w.index, 'entry.index'), term: u64In(w.term, 'entry.term'), type, data: bytesIn(w.data) }
}

function snapshotMetaToWire(s: SnapshotMeta): holdfast.wire.ISnapshotMeta {
  return {
    index: u64Out(s.index, 'snapshot.index'),
    term: u64Out(s.term, 'snapshot.term'),
    membership: { voters: [...s.membership.voters], learners: [...s.membership.learners] },
  }
}

function snapshotMetaFromWire(w: holdfast.wire.ISnapshotMeta): SnapshotMeta {
  if (w.membership == null) throw decodeError('snapshot meta without membership')
  const membership: Membership = { voters: [...(w.membership.voters ?? [])], learners: [...(w.membership.learners ?? [])] }
  return { index: u64In(w.index, 'snapshot.index'), term: u64In(w.term, 'snapshot.term'), membership }
}

// ---------------------------------------------------------------------------------------------
// Envelopes

/**
 * Encodes one envelope (without frame).
 * @throws HoldfastError INVALID_ARGUMENT for a value the wire cannot carry.
 */
export function encodeEnvelope(message: WireMessage): Uint8Array {
  const envelope: holdfast.wire.IEnvelope = {}
  switch (message.kind) {
    case 'raft':
      envelope.raft = raftToWire(message.body)
      break
    case 'snapshotChunk': {
      const b = message.body
      envelope.snapshotChunk = {
        snapshotId: b.snapshotId,
        index: u64Out(b.index, 'index'),
        term: u64Out(b.term, 'term'),
        offset: u64Out(b.offset, 'offset'),
        data: bytesOut(b.data, 'data'),
        last: b.last,
        checksum: bytesOut(b.checksum, 'checksum'),
      }
      break
    }
    case 'snapshotAck': {
      const b = message.body
      envelope.snapshotAck = { snapshotId: b.snapshotId, nextOffset: u64Out(b.nextOffset, 'nextOffset'), done: b.done }
      if (b.error !== undefined) envelope.snapshotAck.error = errorToWire(b.error)
      break
    }
    case 'forwardProposal':
      envelope.forwardProposal = { id: u32Out(message.body.id, 'id'), command: bytesOut(message.body.command, 'command') }
      break
    case 'forwardRead':
      envelope.forwardRead = { id: u32Out(message.body.id, 'id'), request: bytesOut(message.body.request, 'request') }
      break
    case 'forwardResponse': {
      const { id, outcome } = message.body
      envelope.forwardResponse = outcome.ok
        ? {
            id: u32Out(id, 'id'),
            ok: { index: u64Out(outcome.index, 'index'), revision: u64Out(outcome.revision, 'revision'), result: bytesOut(outcome.result, 'result') },
          }
        : { id: u32Out(id, 'id'), error: errorToWire(outcome.error) }
      break
    }
    case 'rpcRequest':
      envelope.rpcRequest = { id: u32Out(message.body.id, 'id'), method: message.body.method, payload: bytesOut(message.body.payload, 'payload') }
      break
    case 'rpcResponse': {
      const { id, outcome } = message.body
      envelope.rpcResponse = outcome.ok
        ? { id: u32Out(id, 'id'), ok: bytesOut(outcome.payload, 'payload') }
        : { id: u32Out(id, 'id'), error: errorToWire(outcome.error) }
      break
    }
    case 'gossip': {
      const b = message.body
      const kind = own(GOSSIP_KIND_TO_WIRE, b.kind)
      if (kind === undefined) throw invalid(`unknown gossip kind ${String(b.kind)}`)
      envelope.gossip = { kind, seq: u32Out(b.seq, 'seq'), target: b.target, updates: b.updates.map(memberUpdateToWire) }
      break
    }
    case 'joinChallenge':
      envelope.joinChallenge = { clusterHash: bytesOut(message.body.clusterHash, 'clusterHash'), nonce: bytesOut(message.body.nonce, 'nonce') }
      break
    case 'joinRequest': {
      const b = message.body
      envelope.joinRequest = {
        clusterHash: bytesOut(b.clusterHash, 'clusterHash'),
        publicKey: bytesOut(b.publicKey, 'publicKey'),
        nonce: bytesOut(b.nonce, 'nonce'),
        proof: bytesOut(b.proof, 'proof'),
      }
      break
    }
    case 'joinResult': {
      const b = message.body
      envelope.joinResult = { accepted: b.accepted, proof: bytesOut(b.proof, 'proof') }
      if (b.error !== undefined) envelope.joinResult.error = errorToWire(b.error)
      break
    }
    default:
      throw invalid(`unknown envelope kind ${String((message as { kind?: unknown }).kind)}`)
  }
  return ownedBytes(pb.Envelope.encode(envelope).finish())
}

/**
 * Decodes one envelope (without frame).
 * @throws HoldfastError DECODE_ERROR, and nothing else.
 */
export function decodeEnvelope(bytes: Uint8Array, limits: DecodeLimits = {}): WireMessage {
  return guard('envelope', () => {
    checkInput(bytes, limits)
    scanMessage(bytes, 'holdfast.wire.Envelope', scanLimits(limits))
    return envelopeFromWire(pb.Envelope.decode(new ScannedReader(bytes)))
  })
}

/**
 * Wraps an already-encoded body (e.g. encodeRaftMessage's output) in an envelope without decoding
 * it again: the result is byte-for-byte what encodeEnvelope would produce for the decoded body.
 */
export function encodeEnvelopeRaw(kind: EnvelopeKind, body: Uint8Array): Uint8Array {
  const field = own(ENVELOPE_FIELDS, kind)
  if (field === undefined) throw invalid(`unknown envelope kind ${String(kind)}`)
  const tag = (field << 3) | 2
  const header: number[] = []
  writeVarint(header, tag)
  writeVarint(header, body.byteLength)
  const out = new Uint8Array(header.length + body.byteLength)
  out.set(header, 0)
  out.set(body, header.length)
  return out
}

/**
 * Splits an envelope into its kind and the body's bytes without decoding the body: for routing
 * (rpc.ts hands Raft bodies to the driver, which decodes them with decodeRaftMessage). Checks that
 * the envelope holds exactly one known body and nothing else; the body itself is not validated.
 * @throws HoldfastError DECODE_ERROR, and nothing else.
 */
export function openEnvelope(bytes: Uint8Array, limits: DecodeLimits = {}): { kind: EnvelopeKind; body: Uint8Array } {
  return guard('envelope', () => {
    checkInput(bytes, limits)
    const c = { pos: 0 }
    const key = readVarint(bytes, c)
    const kind = KIND_BY_FIELD.get(key >>> 3)
    if (kind === undefined || (key & 7) !== 2) throw decodeError(`not an envelope (first tag ${key})`)
    const len = readVarint(bytes, c)
    if (len !== bytes.byteLength - c.pos) throw decodeError('an envelope must hold exactly one body')
    return { kind, body: bytes.subarray(c.pos) }
  })
}

function envelopeFromWire(w: holdfast.wire.Envelope): WireMessage {
  let found: EnvelopeKind | undefined
  for (const kind of ENVELOPE_KINDS) {
    if (w[kind] == null) continue
    if (found !== undefined) throw decodeError(`envelope holds both ${found} and ${kind}`)
    found = kind
  }
  switch (found) {
    case undefined:
      throw decodeError('empty envelope')
    case 'raft':
      return { kind: found, body: raftFromWire(w.raft!) }
    case 'snapshotChunk': {
      const b = w.snapshotChunk!
      return {
        kind: found,
        body: {
          snapshotId: b.snapshotId ?? '',
          index: u64In(b.index, 'index'),
          term: u64In(b.term, 'term'),
          offset: u64In(b.offset, 'offset'),
          data: bytesIn(b.data),
          last: b.last ?? false,
          checksum: bytesIn(b.checksum),
        },
      }
    }
    case 'snapshotAck': {
      const b = w.snapshotAck!
      const body: Mutable<SnapshotAck> = { snapshotId: b.snapshotId ?? '', nextOffset: u64In(b.nextOffset, 'nextOffset'), done: b.done ?? false }
      if (b.error != null) body.error = errorFromWire(b.error)
      return { kind: found, body }
    }
    case 'forwardProposal':
      return { kind: found, body: { id: w.forwardProposal!.id ?? 0, command: bytesIn(w.forwardProposal!.command) } }
    case 'forwardRead':
      return { kind: found, body: { id: w.forwardRead!.id ?? 0, request: bytesIn(w.forwardRead!.request) } }
    case 'forwardResponse': {
      const b = w.forwardResponse!
      const id = b.id ?? 0
      if ((b.ok == null) === (b.error == null)) throw decodeError('forward response needs exactly one of ok and error')
      if (b.ok != null) {
        const ok = b.ok
        return { kind: found, body: { id, outcome: { ok: true, index: u64In(ok.index, 'index'), revision: u64In(ok.revision, 'revision'), result: bytesIn(ok.result) } } }
      }
      return { kind: found, body: { id, outcome: { ok: false, error: errorFromWire(b.error!) } } }
    }
    case 'rpcRequest': {
      const b = w.rpcRequest!
      return { kind: found, body: { id: b.id ?? 0, method: b.method ?? '', payload: bytesIn(b.payload) } }
    }
    case 'rpcResponse': {
      const b = w.rpcResponse!
      if ((b.ok == null) === (b.error == null)) throw decodeError('rpc response needs exactly one of ok and error')
      const outcome: RpcResponse['outcome'] = b.ok != null ? { ok: true, payload: bytesIn(b.ok) } : { ok: false, error: errorFromWire(b.error!) }
      return { kind: found, body: { id: b.id ?? 0, outcome } }
    }
    case 'gossip': {
      const b = w.gossip!
      const kind = GOSSIP_KIND_FROM_WIRE.get(b.kind ?? 0)
      if (kind === undefined) throw decodeError(`unknown gossip kind ${String(b.kind)}`)
      return { kind: found, body: { kind, seq: b.seq ?? 0, target: b.target ?? '', updates: (b.updates ?? []).map(memberUpdateFromWire) } }
    }
    case 'joinChallenge':
      return { kind: found, body: { clusterHash: bytesIn(w.joinChallenge!.clusterHash), nonce: bytesIn(w.joinChallenge!.nonce) } }
    case 'joinRequest': {
      const b = w.joinRequest!
      return { kind: found, body: { clusterHash: bytesIn(b.clusterHash), publicKey: bytesIn(b.publicKey), nonce: bytesIn(b.nonce), proof: bytesIn(b.proof) } }
    }
    case 'joinResult': {
      const b = w.joinResult!
      const body: Mutable<JoinResult> = { accepted: b.accepted ?? false, proof: bytesIn(b.proof) }
      if (b.error != null) body.error = errorFromWire(b.error)
      return { kind: found, body }
    }
  }
}

function errorToWire(e: WireError): holdfast.wire.IError {
  const w: holdfast.wire.IError = { code: e.code, message: e.message }
  if (e.leaderHint !== undefined) w.leaderHint = e.leaderHint
  return w
}

function errorFromWire(w: holdfast.wire.IError): WireError {
  const e: Mutable<WireError> = { code: w.code ?? '', message: w.message ?? '' }
  if (w.leaderHint != null) e.leaderHint = w.leaderHint
  return e
}

function memberUpdateToWire(u: MemberUpdate): holdfast.wire.IMemberUpdate {
  const state = own(MEMBER_STATE_TO_WIRE, u.state)
  if (state === undefined) throw invalid(`unknown member state ${String(u.state)}`)
  return {
    nodeId: u.nodeId,
    incarnation: u64Out(u.incarnation, 'incarnation'),
    state,
    softState: u.softState.map((kv) => ({ key: kv.key, value: bytesOut(kv.value, 'softState.value') })),
  }
}

function memberUpdateFromWire(w: holdfast.wire.IMemberUpdate): MemberUpdate {
  const state = MEMBER_STATE_FROM_WIRE.get(w.state ?? 0)
  if (state === undefined) throw decodeError(`unknown member state ${String(w.state)}`)
  return {
    nodeId: w.nodeId ?? '',
    incarnation: u64In(w.incarnation, 'incarnation'),
    state,
    softState: (w.softState ?? []).map((kv) => ({ key: kv.key ?? '', value: bytesIn(kv.value) })),
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * protobufjs's Reader, reading varints as the pre-scan (wire-scan.ts) does, so both parse the same
 * bytes the same way. protobufjs reads a 32-bit varint (tags, lengths, enums, bools, uint32) as up
 * to five bytes and, when the fifth still has its continuation bit, skips five more unread: right
 * for the ten-byte encoding of a negative int32, wrong for the six to nine bytes of an overlong or
 * large varint, which protobuf allows and the pre-scan accepts. From there on protobufjs parsed
 * bytes the scan had checked as something else (a string's content as fields, say), past its
 * UTF-8, group, depth and element checks. This reader walks every byte and keeps the low 32 bits,
 * as protobuf does for 32-bit fields. Found by the fuzz (test/transport/fuzz.test.ts).
 *
 * It is also used for Buffers: protobufjs would pick its BufferReader, whose string() cuts a
 * length that runs past the end short instead of failing, so a Buffer and a Uint8Array holding
 * the same bytes could decode differently.
 */
class ScannedReader extends protobuf.Reader {
  override uint32(): number {
    let value = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.len) throw new RangeError(`index out of range: ${this.pos} + 1 > ${this.len}`)
      const b = this.buf[this.pos++]!
      if (i < 5) value = (value | ((b & 0x7f) << (7 * i))) >>> 0
      if (b < 0x80) return value
    }
    throw new RangeError('varint longer than 10 bytes')
  }
}

/** Runs a decode step, converting any failure (protobufjs, RangeError, stack overflow) to DECODE_ERROR. */
function guard<T>(what: string, decode: () => T): T {
  try {
    return decode()
  } catch (err) {
    if (isHoldfastError(err, 'DECODE_ERROR')) throw err
    const reason = err instanceof Error ? err.message : 'unknown failure'
    throw new HoldfastError('DECODE_ERROR', `malformed ${what}: ${reason}`, { cause: err })
  }
}

function checkInput(bytes: unknown, limits: DecodeLimits): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw decodeError('input is not a Uint8Array')
  const max = limits.maxFrameBytes ?? MAX_FRAME_BYTES
  if (bytes.byteLength > max) throw decodeError(`message of ${bytes.byteLength} bytes exceeds the maximum of ${max}`)
}

function scanLimits(limits: DecodeLimits): ScanLimits {
  return { maxDepth: limits.maxDepth ?? MAX_NESTING_DEPTH, maxElements: limits.maxElements ?? MAX_ELEMENTS }
}

function decodeError(message: string): HoldfastError {
  return new HoldfastError('DECODE_ERROR', message)
}

function invalid(message: string): HoldfastError {
  return new HoldfastError('INVALID_ARGUMENT', message)
}

/** The parts of a `long` Long that matter here (protobufjs decodes uint64 to one). */
interface LongBits {
  readonly low: number
  readonly high: number
}

/** 2^53 - 1 is 0x1fffff in the high 32 bits. */
const MAX_SAFE_HIGH = 0x1fffff

/**
 * A uint64 from protobufjs (a Long when the `long` package is present, else a number) as a JS
 * number. Values above Number.MAX_SAFE_INTEGER would silently lose precision: they are refused.
 */
function u64In(v: number | LongBits | null | undefined, field: string): number {
  if (v == null) return 0
  if (typeof v === 'number') {
    // Without `long`, protobufjs converts through a double; anything unsafe may already be rounded.
    if (!Number.isSafeInteger(v) || v < 0) throw decodeError(`${field} is not a safe non-negative integer`)
    return v
  }
  const high = v.high >>> 0
  if (high > MAX_SAFE_HIGH) throw decodeError(`${field} exceeds Number.MAX_SAFE_INTEGER`)
  return high * 0x1_0000_0000 + (v.low >>> 0)
}

function u64Out(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`${field} must be a safe non-negative integer, got ${String(v)}`)
  return v
}

function u32Out(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw invalid(`${field} must be a uint32, got ${String(v)}`)
  return v
}

function bytesOut(v: Uint8Array, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalid(`${field} must be a Uint8Array`)
  return v
}

/**
 * protobufjs's writers carve small outputs out of a shared slab (a Buffer pool). Callers get a plain
 * Uint8Array over a buffer of its own, so transferring or retaining it never drags the slab along.
 */
function ownedBytes(b: Uint8Array): Uint8Array {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return new Uint8Array(b.buffer, 0, b.byteLength)
  return new Uint8Array(b)
}

/**
 * A decoded bytes field as a plain Uint8Array that owns its memory. protobufjs returns views (often
 * Buffers) into the input; a copy keeps a small entry from pinning a whole frame and keeps the
 * result independent of a caller reusing its input buffer.
 */
function bytesIn(v: Uint8Array | null | undefined): Uint8Array {
  return v == null ? new Uint8Array(0) : new Uint8Array(v)
}

/** `record[key]` only for the record's own keys: wire-supplied strings never reach the prototype. */
function own<K extends string, V>(record: Readonly<Record<K, V>>, key: unknown): V | undefined {
  return typeof key === 'string' && Object.hasOwn(record, key) ? record[key as K] : undefined
}

function invert<K extends string>(record: Readonly<Record<K, number>>): ReadonlyMap<number, K> {
  return new Map((Object.keys(record) as K[]).map((k) => [record[k], k]))
}

function writeVarint(out: number[], value: number): void {
  while (value > 0x7f) {
    out.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
}

/** A varint of at most 5 bytes within `bytes` (openEnvelope only reads tags and lengths). */
function readVarint(bytes: Uint8Array, c: { pos: number }): number {
  let value = 0
  for (let i = 0; i < 5; i++) {
    const b = bytes[c.pos++]
    if (b === undefined) throw decodeError('truncated varint')
    value += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) {
      if (value > 0xffffffff) break
      return value
    }
  }
  throw decodeError('varint does not fit in 32 bits')
}
