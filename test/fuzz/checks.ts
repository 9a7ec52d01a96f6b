/**
 * The fuzz's per-case oracles that do not depend on the codec: prototype integrity, the shape of
 * decoded values, and a reference model of length-prefixed framing.
 */
import { FRAME_HEADER_BYTES } from '../../src/transport/codec.js'

// ---------------------------------------------------------------------------------------------
// Prototype pollution

/** The prototypes a decoder could pollute by assigning wire-supplied keys. */
const GUARDED: readonly [string, object][] = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['Uint8Array.prototype', Uint8Array.prototype],
]

const quickCheckFunction = function probe(): void {}

interface Slot {
  readonly key: string | symbol
  /** Accessors are compared by descriptor, data properties by a (cheaper) read. */
  readonly accessor: boolean
  readonly value: unknown
  readonly descriptor: PropertyDescriptor
}

/**
 * A record of the guarded prototypes' own properties (names, symbols, values and accessors), to
 * compare after every case: an added, removed or replaced property is pollution.
 */
export class PrototypeGuard {
  readonly #snapshot = GUARDED.map(([name, proto]) => ({ name, proto, slots: slotsOf(proto) }))

  /**
   * A cheap check, without allocation: no enumerable property added to the guarded prototypes (what
   * an assignment through __proto__ or constructor.prototype makes), no Object.prototype value replaced.
   */
  quickCheck(): boolean {
    for (const _ in {}) return false
    for (const _ in []) return false
    for (const _ in quickCheckFunction) return false
    for (const _ in Uint8Array.prototype) return false
    // Object.prototype's values; the other prototypes' (longer lists) are left to check().
    const { proto, slots } = this.#snapshot[0]!
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!
      if (!s.accessor && (proto as Record<string | symbol, unknown>)[s.key] !== s.value) return false
    }
    return true
  }

  /** Descriptions of every difference from the snapshot; empty when nothing changed. */
  check(): string[] {
    const problems: string[] = []
    for (const { name, proto, slots } of this.#snapshot) {
      const keys = Reflect.ownKeys(proto)
      if (keys.length !== slots.length) {
        const known = new Set(slots.map((s) => s.key))
        for (const k of keys) if (!known.has(k)) problems.push(`${name} gained ${String(k)}`)
        const now = new Set(keys)
        for (const s of slots) if (!now.has(s.key)) problems.push(`${name} lost ${String(s.key)}`)
        continue
      }
      for (const s of slots) {
        if (s.accessor ? !sameDescriptor(Object.getOwnPropertyDescriptor(proto, s.key), s.descriptor) : (proto as Record<string | symbol, unknown>)[s.key] !== s.value) {
          problems.push(`${name}.${String(s.key)} was replaced`)
        }
      }
    }
    if (Object.getPrototypeOf({}) !== Object.prototype) problems.push('{} has a new prototype')
    if (Object.getPrototypeOf(Object.prototype) !== null) problems.push('Object.prototype has a prototype')
    const probe: Record<string, unknown> = {}
    if (probe.polluted !== undefined || probe.__polluted !== undefined) problems.push('({}).polluted is defined')
    for (const k in probe) problems.push(`for-in over {} yields ${k}`)
    for (const k in []) problems.push(`for-in over [] yields ${k}`)
    return problems
  }

  /** Puts every guarded prototype back as snapshotted, so one finding does not spoil later cases. */
  restore(): void {
    for (const { proto, slots } of this.#snapshot) {
      const known = new Set(slots.map((s) => s.key))
      for (const k of Reflect.ownKeys(proto)) if (!known.has(k)) Reflect.deleteProperty(proto, k)
      for (const s of slots) {
        if (!sameDescriptor(Object.getOwnPropertyDescriptor(proto, s.key), s.descriptor)) Object.defineProperty(proto, s.key, s.descriptor)
      }
    }
  }
}

function slotsOf(proto: object): Slot[] {
  return Reflect.ownKeys(proto).map((key) => {
    const d = Object.getOwnPropertyDescriptor(proto, key)!
    return { key, accessor: d.get !== undefined || d.set !== undefined, value: d.value, descriptor: d }
  })
}

function sameDescriptor(a: PropertyDescriptor | undefined, b: PropertyDescriptor): boolean {
  return a !== undefined && a.value === b.value && a.get === b.get && a.set === b.set && a.writable === b.writable && a.enumerable === b.enumerable && a.configurable === b.configurable
}

// ---------------------------------------------------------------------------------------------
// Decoded values

/**
 * Every property name a decoded WireMessage or Message may have (src/transport/wire-types.ts,
 * src/core/types.ts). A key outside this list came from the input.
 */
const ALLOWED_KEYS = new Set<PropertyKey>([
  // envelope, raft message, entry, snapshot meta, membership
  'kind', 'body', 'type', 'from', 'to', 'term', 'index', 'logTerm', 'entries', 'commit', 'reject', 'rejectHint',
  'snapshot', 'readSeq', 'transfer', 'data', 'membership', 'voters', 'learners',
  // snapshot transfer, errors, forwarding, rpc
  'snapshotId', 'offset', 'last', 'checksum', 'nextOffset', 'done', 'error', 'code', 'message', 'leaderHint',
  'id', 'command', 'request', 'outcome', 'ok', 'revision', 'result', 'method', 'payload',
  // gossip, join handshake
  'seq', 'target', 'updates', 'nodeId', 'incarnation', 'state', 'softState', 'key', 'value',
  'clusterHash', 'nonce', 'publicKey', 'proof', 'accepted',
])

/** Keys that must never be own properties of a decoded object, whatever ALLOWED_KEYS says. */
const FORBIDDEN_KEYS = new Set<PropertyKey>(['__proto__', 'constructor', 'prototype'])

/**
 * Problems with a decoded value's structure: objects must be plain (Object.prototype), arrays
 * plain and dense, bytes plain Uint8Arrays owning their memory (`ownBytes`), numbers safe
 * non-negative integers, strings well-formed, and every key a schema name; no own __proto__,
 * constructor or prototype key, whatever the input said.
 */
export function shapeProblems(value: unknown, ownBytes = true): string[] {
  const problems: string[] = []
  walk(value, [], ownBytes, problems)
  return problems
}

function pathString(path: readonly PropertyKey[]): string {
  return `$${path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}`
}

/** Walks `v`, at `path` (keys from the root; joined only when reporting, which is rare). */
function walk(v: unknown, path: PropertyKey[], ownBytes: boolean, problems: string[]): void {
  if (problems.length >= 4) return
  if (path.length > 16) return void problems.push(`${pathString(path)}: nested deeper than any schema type`)
  switch (typeof v) {
    case 'string':
      if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) problems.push(`${pathString(path)}: string with a lone surrogate`)
      return
    case 'number':
      if (!Number.isSafeInteger(v) || v < 0) problems.push(`${pathString(path)}: number ${v} is not a safe non-negative integer`)
      return
    case 'boolean':
      return
    case 'object':
      break
    default:
      return void problems.push(`${pathString(path)}: unexpected ${typeof v}`)
  }
  if (v === null) return void problems.push(`${pathString(path)}: null`)
  const proto = Object.getPrototypeOf(v)
  if (proto === Uint8Array.prototype) {
    const b = v as Uint8Array
    if (ownBytes && (b.byteOffset !== 0 || b.byteLength !== b.buffer.byteLength)) problems.push(`${pathString(path)}: bytes are a view into a larger buffer`)
    return
  }
  if (v instanceof Uint8Array) return void problems.push(`${pathString(path)}: bytes are a ${v.constructor.name}, not a plain Uint8Array`)
  const keys = Reflect.ownKeys(v)
  if (Array.isArray(v)) {
    if (proto !== Array.prototype) problems.push(`${pathString(path)}: array with a foreign prototype`)
    if (keys.length !== v.length + 1) problems.push(`${pathString(path)}: array with extra own keys`)
    for (let i = 0; i < v.length; i++) {
      path.push(i)
      walk(v[i], path, ownBytes, problems)
      path.pop()
    }
    return
  }
  if (proto !== Object.prototype) problems.push(`${pathString(path)}: object with a foreign prototype`)
  for (const k of keys) {
    if (FORBIDDEN_KEYS.has(k) || !ALLOWED_KEYS.has(k)) {
      problems.push(`${pathString(path)}: own key ${JSON.stringify(String(k))} is not a schema field`)
      continue
    }
    path.push(k)
    walk((v as Record<PropertyKey, unknown>)[k], path, ownBytes, problems)
    path.pop()
  }
}

/**
 * Deep equality for decoded values (plain objects, arrays, Uint8Arrays, primitives): same
 * prototypes, same own enumerable keys, same bytes. util.isDeepStrictEqual, several times faster.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  if (a instanceof Uint8Array) return bytesEqual(a, b as Uint8Array)
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    if (a.length !== bb.length) return false
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], bb[i])) return false
    return true
  }
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false
  }
  return true
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  if (a.byteLength > 64) return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

// ---------------------------------------------------------------------------------------------
// Framing

/** What a correct FrameDecoder does with a stream, whatever the chunking. */
export interface FramingModel {
  /** Each complete frame: its payload's offset, length, and the stream offset just past it. */
  readonly frames: readonly { readonly start: number; readonly length: number; readonly end: number }[]
  /** Stream offset of the last byte of the first header announcing more than the maximum. */
  readonly failAt: number | undefined
  /** Stream offset where the unfinished tail (if any) begins: the last frame's end. */
  readonly tailStart: number
}

/** Frames a stream the slow, obvious way. */
export function modelFraming(stream: Uint8Array, maxFrameBytes: number): FramingModel {
  const frames: { start: number; length: number; end: number }[] = []
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength)
  let pos = 0
  let failAt: number | undefined
  while (pos + FRAME_HEADER_BYTES <= stream.byteLength) {
    const length = view.getUint32(pos)
    if (length > maxFrameBytes) {
      failAt = pos + FRAME_HEADER_BYTES - 1
      break
    }
    const start = pos + FRAME_HEADER_BYTES
    if (start + length > stream.byteLength) break
    frames.push({ start, length, end: start + length })
    pos = start + length
  }
  return { frames, failAt, tailStart: pos }
}

/**
 * What FrameDecoder#buffered must be after the stream's first `consumed` bytes were pushed (no
 * failure): the unfinished frame's bytes, not counting its header once that is complete.
 */
export function expectedBuffered(model: FramingModel, consumed: number): number {
  let lastEnd = 0
  for (const f of model.frames) {
    if (f.end > consumed) break
    lastEnd = f.end
  }
  const pending = consumed - lastEnd
  return pending < FRAME_HEADER_BYTES ? pending : pending - FRAME_HEADER_BYTES
}
