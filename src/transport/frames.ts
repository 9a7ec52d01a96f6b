import { HoldfastError } from '../errors.js'

/**
 * Length-prefixed frames for stream transports: each frame is a 4-byte big-endian payload length,
 * then the payload (one encoded Envelope, see codec.ts).
 */

/** Largest frame payload accepted or sent: 16 MiB. A longer length prefix fails before allocation. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024
/** Bytes in a frame's length prefix (unsigned 32-bit, big-endian). */
export const FRAME_HEADER_BYTES = 4

/**
 * Prefixes `payload` with its length (4 bytes, big-endian).
 * @throws HoldfastError TOO_LARGE when the payload exceeds `maxFrameBytes`.
 */
export function encodeFrame(payload: Uint8Array, maxFrameBytes: number = MAX_FRAME_BYTES): Uint8Array {
  if (payload.byteLength > maxFrameBytes) {
    throw new HoldfastError('TOO_LARGE', `frame of ${payload.byteLength} bytes exceeds the maximum of ${maxFrameBytes}`)
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength)
  new DataView(out.buffer).setUint32(0, payload.byteLength)
  out.set(payload, FRAME_HEADER_BYTES)
  return out
}

/**
 * Reassembles length-prefixed frames from a byte stream split at arbitrary points (TCP, Noise
 * streams). A length prefix is checked against the maximum as soon as its 4 bytes are in, before
 * anything is allocated for the frame, and a frame's bytes are held only as they arrive: a peer
 * that announces 16 MiB and sends 10 bytes costs 10 bytes, not 16 MiB. Memory per connection is
 * bounded by the largest frame accepted.
 *
 * After a DECODE_ERROR the stream cannot be resynchronised: the decoder stays failed, and the
 * connection should be closed.
 */
export class FrameDecoder {
  #maxFrameBytes: number
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES)
  #headerFilled = 0
  /** The current frame's length once its header is complete; -1 while reading a header. */
  #need = -1
  /** The current frame's bytes so far (copies, so callers may reuse their chunks). */
  #parts: Uint8Array[] = []
  #partsBytes = 0
  #failed: HoldfastError | null = null

  /** @param options.maxFrameBytes largest payload accepted. @default MAX_FRAME_BYTES */
  constructor(options: { maxFrameBytes?: number } = {}) {
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES
  }

  /** Bytes received but not yet returned as part of a frame. */
  get buffered(): number {
    return this.#headerFilled + this.#partsBytes
  }

  /**
   * Consumes `chunk` and returns the payloads of the frames it completes, in order (possibly none).
   * Returned frames are fresh copies, owned by the caller.
   * @throws HoldfastError DECODE_ERROR when a length prefix exceeds the maximum, and on every call after that.
   */
  /**
   * The largest payload accepted from the next frame header on. A connection can start small
   * (only handshake messages before a peer is admitted) and raise it once the peer is trusted.
   */
  set maxFrameBytes(n: number) {
    this.#maxFrameBytes = n
  }

  get maxFrameBytes(): number {
    return this.#maxFrameBytes
  }

  /**
   * With `onFrame`, each frame is handed over as soon as it completes, before the next header is
   * read, so the handler may change `maxFrameBytes` for the frames after it; push then returns [].
   */
  push(chunk: Uint8Array, onFrame?: (frame: Uint8Array) => void): Uint8Array[] {
    if (this.#failed) throw this.#failed
    if (!(chunk instanceof Uint8Array)) throw this.#fail('frame chunk is not a Uint8Array')
    const frames: Uint8Array[] = []
    let pos = 0
    while (pos < chunk.byteLength || this.#need === 0) {
      if (this.#need < 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, chunk.byteLength - pos)
        this.#header.set(chunk.subarray(pos, pos + take), this.#headerFilled)
        this.#headerFilled += take
        pos += take
        if (this.#headerFilled < FRAME_HEADER_BYTES) break
        const length = new DataView(this.#header.buffer).getUint32(0)
        if (length > this.#maxFrameBytes) throw this.#fail(`frame length ${length} exceeds the maximum of ${this.#maxFrameBytes} bytes`)
        this.#headerFilled = 0
        this.#need = length
      }
      const take = Math.min(this.#need - this.#partsBytes, chunk.byteLength - pos)
      if (take > 0) {
        // A copy: Buffer#slice would be a view, and the caller may reuse its chunk.
        const part = new Uint8Array(take)
        part.set(chunk.subarray(pos, pos + take))
        this.#parts.push(part)
        this.#partsBytes += take
        pos += take
      }
      if (this.#partsBytes === this.#need) {
        const frame = this.#parts.length === 1 ? this.#parts[0]! : joinParts(this.#parts, this.#need)
        this.#parts = []
        this.#partsBytes = 0
        this.#need = -1
        if (onFrame) onFrame(frame)
        else frames.push(frame)
      }
    }
    return frames
  }

  #fail(message: string): HoldfastError {
    this.#failed = new HoldfastError('DECODE_ERROR', message)
    this.#headerFilled = 0
    this.#parts = []
    this.#partsBytes = 0
    return this.#failed
  }
}

function joinParts(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
