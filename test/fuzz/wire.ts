/**
 * Building protobuf wire bytes by hand, for tests that need inputs no encoder would produce
 * (groups, overlong varints, lengths that lie). Field helpers take a field number and build one
 * field: `ld` length-delimited (wire type 2), `vi` varint (wire type 0).
 */

export const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b)

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.byteLength
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** The shortest varint for a non-negative integer up to 2^53 (use varintBig above that). */
export function varint(v: number): number[] {
  const out: number[] = []
  while (v > 0x7f) {
    out.push((v % 128) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}

/** A varint for any non-negative bigint: 2^64 - 1 is ten bytes, larger values more. */
export function varintBig(v: bigint): number[] {
  const out: number[] = []
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}

/** `v` padded to `length` bytes with continuation bytes: an overlong but decodable varint. */
export function varintPadded(v: number, length: number): number[] {
  const out = varint(v)
  if (out.length >= length) return out
  out[out.length - 1]! |= 0x80
  while (out.length < length - 1) out.push(0x80)
  out.push(0x00)
  return out
}

/** A field key: field number and wire type. */
export const tag = (field: number, wire: number): number[] => varint(field * 8 + wire)

/** A length-delimited field (wire type 2). */
export const ld = (field: number, body: Uint8Array): Uint8Array => concat(bytes(...tag(field, 2), ...varint(body.byteLength)), body)

/** A varint field (wire type 0). */
export const vi = (field: number, v: number): Uint8Array => bytes(...tag(field, 0), ...varint(v))

const encoder = new TextEncoder()

/** A string field (wire type 2, UTF-8). */
export const str = (field: number, s: string): Uint8Array => ld(field, encoder.encode(s))

/**
 * `core` wrapped in `depth` levels of length-delimited field `field`, built in one pass (wrapping
 * level by level would copy the bytes `depth` times).
 */
export function nest(field: number, depth: number, core: Uint8Array = new Uint8Array(0)): Uint8Array {
  const key = tag(field, 2)
  const lengths = new Array<number>(depth)
  let inner = core.byteLength
  for (let i = depth - 1; i >= 0; i--) {
    lengths[i] = inner
    inner += key.length + varintLength(inner)
  }
  const out = new Uint8Array(inner)
  let at = 0
  for (let i = 0; i < depth; i++) {
    out.set(key, at)
    at += key.length
    for (let v = lengths[i]!; ; v = Math.floor(v / 128)) {
      if (v <= 0x7f) {
        out[at++] = v
        break
      }
      out[at++] = (v % 128) | 0x80
    }
  }
  out.set(core, at)
  return out
}

/** Bytes in the shortest varint for `v`. */
export function varintLength(v: number): number {
  let n = 1
  while (v > 0x7f) {
    v = Math.floor(v / 128)
    n++
  }
  return n
}

/** `part` repeated `n` times. */
export function repeat(part: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(part.byteLength * n)
  if (out.byteLength === 0) return out
  out.set(part, 0)
  // Doubling: log2(n) copies instead of n.
  for (let filled = part.byteLength; filled < out.byteLength; filled *= 2) out.copyWithin(filled, 0, Math.min(filled, out.byteLength - filled))
  return out
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '')
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`not hex: ${hex.slice(0, 40)}`)
  return Uint8Array.from(Buffer.from(clean, 'hex'))
}
