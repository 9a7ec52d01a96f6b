import type { NodeId } from '../core/types.js'

/**
 * A connection to the cluster's peers. Frames are opaque bytes; encoding lives in codec.ts and
 * request/response matching in rpc.ts, so every transport stays this small.
 *
 * Delivery is best effort: frames may be lost when a peer is down. Frames to one peer over one
 * live connection arrive in order. Implementations: memory.ts (tests, with fault injection) and
 * the hyperswarm transport.
 */
export interface Transport {
  /** This node's id (in production, its public key). */
  readonly id: NodeId
  /** Sends one frame. Returns false when the peer is not connected (the frame is dropped). */
  send(to: NodeId, frame: Uint8Array): boolean
  /** Sets the handler for inbound frames. `from` is the authenticated sender. */
  onFrame(handler: (from: NodeId, frame: Uint8Array) => void): void
  /** Sets the handler for peers connecting (`up`) and disconnecting. */
  onPeer(handler: (peer: NodeId, up: boolean) => void): void
  /** Peers with a live connection now. */
  connectedPeers(): NodeId[]
  /**
   * Closes the connection to `peer` because it broke the protocol (for example sent a frame that
   * does not decode). Frames in flight on it are lost; the peer may connect again.
   */
  disconnect(peer: NodeId, reason: string): void
  close(): Promise<void>
}
