import { HoldfastError, isHoldfastError, type ErrorCode } from '../errors.js'
import type { NodeId } from '../core/types.js'
import type { Transport } from './types.js'
import { decodeEnvelope, encodeEnvelope, encodeEnvelopeRaw, openEnvelope, type RpcRequest, type RpcResponse, type WireError, type WireMessage } from './codec.js'

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

/**
 * Raft frames and request/response RPC over one Transport. Requests carry a 32-bit id so many can be
 * in flight at once; a peer that disconnects fails its pending requests at once with CONNECTION_LOST (their effect is unknown),
 * and a remote handler error comes back as a HoldfastError with the remote code.
 *
 * Every frame is one protobuf Envelope (proto/holdfast.proto, codec.ts): `raft` bodies are passed
 * on as bytes for the driver to decode with decodeRaftMessage; `rpcRequest`/`rpcResponse` are
 * handled here; any other kind goes to the onEnvelope handler. A frame that does not decode is
 * counted in `malformedFrames` and dropped, and that peer's connection is closed.
 */
export class PeerRpc {
  readonly #transport: Transport
  readonly #handlers = new Map<string, RequestHandler>()
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #onRaft: (from: NodeId, bytes: Uint8Array) => void = () => {}
  #onPeer: (peer: NodeId, up: boolean) => void = () => {}
  #onEnvelope: (from: NodeId, message: WireMessage) => void = () => {}
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

  /**
   * Sets the handler for inbound Raft messages. `bytes` is the encoded message as the peer sent it,
   * not yet validated: decode it with decodeRaftMessage (which throws DECODE_ERROR on garbage).
   */
  onRaft(handler: (from: NodeId, bytes: Uint8Array) => void): void {
    this.#onRaft = handler
  }

  onPeer(handler: (peer: NodeId, up: boolean) => void): void {
    this.#onPeer = handler
  }

  /** Sets the handler for decoded envelopes of kinds other than raft and rpc (snapshot chunks, forwarding, gossip, ...). */
  onEnvelope(handler: (from: NodeId, message: WireMessage) => void): void {
    this.#onEnvelope = handler
  }

  /** Sends an encoded Raft message (encodeRaftMessage's output). Returns false when the peer is not connected. */
  sendRaft(to: NodeId, bytes: Uint8Array): boolean {
    return this.#transport.send(to, encodeEnvelopeRaw('raft', bytes))
  }

  /**
   * Sends any other envelope kind (snapshot chunks, forwarding, gossip, ...).
   * Returns false when the peer is not connected. Throws INVALID_ARGUMENT for an unencodable message.
   */
  sendEnvelope(to: NodeId, message: WireMessage): boolean {
    return this.#transport.send(to, encodeEnvelope(message))
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
    let frame: Uint8Array
    try {
      frame = encodeEnvelope({ kind: 'rpcRequest', body: { id, method, payload } })
    } catch (err) {
      return Promise.reject(err)
    }

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
      if (p.to === peer) p.reject(new HoldfastError('CONNECTION_LOST', `peer ${peer} disconnected before answering`))
    }
  }

  #receive(from: NodeId, frame: Uint8Array): void {
    let message: WireMessage
    try {
      const { kind, body } = openEnvelope(frame)
      // Raft is the hot path: route its bytes without decoding them twice.
      if (kind === 'raft') return this.#onRaft(from, body)
      message = decodeEnvelope(frame)
    } catch (err) {
      // Only DECODE_ERROR is thrown above. A peer that sends garbage is broken or hostile: its
      // connection is closed (it may reconnect), the node keeps serving every other peer.
      this.malformedFrames++
      this.#transport.disconnect(from, `malformed frame: ${(err as Error).message}`)
      return
    }
    switch (message.kind) {
      case 'rpcRequest':
        return void this.#serve(from, message.body)
      case 'rpcResponse':
        return this.#settle(from, message.body)
      default:
        return this.#onEnvelope(from, message)
    }
  }

  #settle(from: NodeId, response: RpcResponse): void {
    const pending = this.#pending.get(response.id)
    // A response from anyone but the peer we asked is ignored: ids are only unique per requester.
    if (!pending || pending.to !== from) return
    if (response.outcome.ok) return pending.resolve(response.outcome.payload)
    pending.reject(remoteError(response.outcome.error, from))
  }

  async #serve(from: NodeId, request: RpcRequest): Promise<void> {
    let reply: Uint8Array
    try {
      const handler = this.#handlers.get(request.method)
      if (!handler) throw new HoldfastError('UNKNOWN_METHOD', `no handler for ${request.method}`)
      const result = await handler(request.payload, from)
      reply = encodeEnvelope({ kind: 'rpcResponse', body: { id: request.id, outcome: { ok: true, payload: result } } })
    } catch (err) {
      const error: WireError = {
        code: isHoldfastError(err) ? err.code : 'REMOTE_ERROR',
        message: err instanceof Error ? err.message : String(err),
        ...(isHoldfastError(err) && err.leaderHint !== undefined ? { leaderHint: err.leaderHint } : {}),
      }
      reply = encodeEnvelope({ kind: 'rpcResponse', body: { id: request.id, outcome: { ok: false, error } } })
    }
    this.#transport.send(from, reply)
  }
}

function remoteError(error: WireError, from: NodeId): HoldfastError {
  // The code is the remote's ErrorCode; a peer on a newer version may send one this build lacks.
  const code = (error.code === '' ? 'REMOTE_ERROR' : error.code) as ErrorCode
  return new HoldfastError(code, `${from}: ${error.message}`, { leaderHint: error.leaderHint })
}
