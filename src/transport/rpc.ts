import { HoldfastError, isHoldfastError, type ErrorCode } from '../errors.js'
import type { NodeId } from '../core/types.js'
import type { Transport } from './types.js'

/** Frame kinds multiplexed over one transport. */
const RAFT = 0
const REQUEST = 1
const RESPONSE_OK = 2
const RESPONSE_ERR = 3

/** @default 10000 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
/** Method names are short identifiers; longer ones are refused before sending. */
const MAX_METHOD_BYTES = 256

export type RequestHandler = (payload: Uint8Array, from: NodeId) => Promise<Uint8Array> | Uint8Array

export interface RequestOptions {
  signal?: AbortSignal | undefined
  /** @default 10000 */
  timeoutMs?: number | undefined
}

interface Pending {
  readonly to: NodeId
  readonly resolve: (payload: Uint8Array) => void
  readonly reject: (err: HoldfastError) => void
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Raft frames and request/response RPC over one Transport. Requests carry a 32-bit id so many can be
 * in flight at once; a peer that disconnects fails its pending requests at once with UNAVAILABLE,
 * and a remote handler error comes back as a HoldfastError with the remote code.
 *
 * Layout: [kind u8] then for RAFT the raft bytes; for REQUEST [id u32][method length u16][method][payload];
 * for responses [id u32][payload] (errors: UTF-8 JSON {code, message}).
 */
export class PeerRpc {
  readonly #transport: Transport
  readonly #handlers = new Map<string, RequestHandler>()
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #onRaft: (from: NodeId, bytes: Uint8Array) => void = () => {}
  #onPeer: (peer: NodeId, up: boolean) => void = () => {}
  /** Frames that could not be parsed, for metrics. */
  malformedFrames = 0

  constructor(transport: Transport) {
    this.#transport = transport
    transport.onFrame((from, frame) => this.#receive(from, frame))
    transport.onPeer((peer, up) => {
      if (!up) this.#failPeer(peer)
      this.#onPeer(peer, up)
    })
  }

  get id(): NodeId {
    return this.#transport.id
  }

  onRaft(handler: (from: NodeId, bytes: Uint8Array) => void): void {
    this.#onRaft = handler
  }

  onPeer(handler: (peer: NodeId, up: boolean) => void): void {
    this.#onPeer = handler
  }

  sendRaft(to: NodeId, bytes: Uint8Array): boolean {
    const frame = new Uint8Array(1 + bytes.byteLength)
    frame[0] = RAFT
    frame.set(bytes, 1)
    return this.#transport.send(to, frame)
  }

  /** Registers the handler for `method`, replacing any earlier one. */
  handle(method: string, handler: RequestHandler): void {
    this.#handlers.set(method, handler)
  }

  /** Sends a request and resolves with the response payload. */
  request(to: NodeId, method: string, payload: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    const methodBytes = encoder.encode(method)
    if (methodBytes.byteLength === 0 || methodBytes.byteLength > MAX_METHOD_BYTES) {
      return Promise.reject(new HoldfastError('INVALID_ARGUMENT', `method name must be 1..${MAX_METHOD_BYTES} bytes`))
    }
    if (options.signal?.aborted) return Promise.reject(new HoldfastError('ABORTED', `request ${method} to ${to} aborted`))
    const id = this.#nextId
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1
    const frame = new Uint8Array(1 + 4 + 2 + methodBytes.byteLength + payload.byteLength)
    const view = new DataView(frame.buffer)
    frame[0] = REQUEST
    view.setUint32(1, id)
    view.setUint16(5, methodBytes.byteLength)
    frame.set(methodBytes, 7)
    frame.set(payload, 7 + methodBytes.byteLength)

    return new Promise<Uint8Array>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
      const cleanup = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.#pending.delete(id)
      }
      const onAbort = (): void => {
        cleanup()
        reject(new HoldfastError('ABORTED', `request ${method} to ${to} aborted`))
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new HoldfastError('TIMEOUT', `request ${method} to ${to} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(id, {
        to,
        resolve: (p) => {
          cleanup()
          resolve(p)
        },
        reject: (e) => {
          cleanup()
          reject(e)
        },
      })
      if (!this.#transport.send(to, frame)) {
        this.#pending.get(id)?.reject(new HoldfastError('UNAVAILABLE', `peer ${to} is not connected`))
      }
    })
  }

  /** Fails every pending request (on close). */
  close(): void {
    for (const p of [...this.#pending.values()]) p.reject(new HoldfastError('CLOSED', 'the transport is closed'))
  }

  #failPeer(peer: NodeId): void {
    for (const p of [...this.#pending.values()]) {
      if (p.to === peer) p.reject(new HoldfastError('UNAVAILABLE', `peer ${peer} disconnected`))
    }
  }

  #receive(from: NodeId, frame: Uint8Array): void {
    if (frame.byteLength < 1) return void this.malformedFrames++
    const kind = frame[0]
    if (kind === RAFT) return this.#onRaft(from, frame.subarray(1))
    if (frame.byteLength < 5) return void this.malformedFrames++
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
    const id = view.getUint32(1)
    if (kind === REQUEST) return void this.#serve(from, id, frame, view)
    const pending = this.#pending.get(id)
    if (kind !== RESPONSE_OK && kind !== RESPONSE_ERR) return void this.malformedFrames++
    // A response from anyone but the peer we asked is ignored: ids are only unique per requester.
    if (!pending || pending.to !== from) return
    if (kind === RESPONSE_OK) return pending.resolve(frame.slice(5))
    pending.reject(decodeRemoteError(frame.subarray(5), from))
  }

  async #serve(from: NodeId, id: number, frame: Uint8Array, view: DataView): Promise<void> {
    let reply: Uint8Array
    try {
      if (frame.byteLength < 7) throw new HoldfastError('DECODE_ERROR', 'truncated request')
      const len = view.getUint16(5)
      if (frame.byteLength < 7 + len) throw new HoldfastError('DECODE_ERROR', 'truncated request')
      const method = decoder.decode(frame.subarray(7, 7 + len))
      const handler = this.#handlers.get(method)
      if (!handler) throw new HoldfastError('UNKNOWN_METHOD', `no handler for ${method}`)
      const result = await handler(frame.slice(7 + len), from)
      reply = withHeader(RESPONSE_OK, id, result)
    } catch (err) {
      const code: ErrorCode = isHoldfastError(err) ? err.code : 'REMOTE_ERROR'
      const message = err instanceof Error ? err.message : String(err)
      reply = withHeader(RESPONSE_ERR, id, encoder.encode(JSON.stringify({ code, message })))
    }
    this.#transport.send(from, reply)
  }
}

function withHeader(kind: number, id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength)
  out[0] = kind
  new DataView(out.buffer).setUint32(1, id)
  out.set(payload, 5)
  return out
}

function decodeRemoteError(bytes: Uint8Array, from: NodeId): HoldfastError {
  try {
    const { code, message } = JSON.parse(decoder.decode(bytes)) as { code?: unknown; message?: unknown }
    if (typeof code === 'string' && typeof message === 'string') {
      return new HoldfastError(code as ErrorCode, `${from}: ${message}`)
    }
  } catch {
    /* fall through */
  }
  return new HoldfastError('REMOTE_ERROR', `${from} sent an unreadable error`)
}
