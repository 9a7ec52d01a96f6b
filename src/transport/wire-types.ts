import type { Message, NodeId } from '../core/types.js'

/**
 * The TypeScript shapes of holdfast's wire messages (proto/holdfast.proto), as codec.ts encodes
 * and decodes them. Raft messages are the core's own Message type.
 */

// Types of the non-Raft messages. Proto3 semantics: a scalar that is absent decodes as its zero
// value ('' / 0 / false / empty bytes); only the fields marked optional below can be undefined.

/** An error carried in a response. `code` is a holdfast ErrorCode as sent by the peer (unchecked). */
export interface WireError {
  readonly code: string
  readonly message: string
  readonly leaderHint?: string
}

/** One piece of a snapshot's state stream. */
export interface SnapshotChunk {
  /** Unique per snapshot taken; a resumed transfer keeps its id. */
  readonly snapshotId: string
  /** The snapshot's last included index and its term. */
  readonly index: number
  readonly term: number
  /** Byte offset of `data` in the snapshot stream. */
  readonly offset: number
  readonly data: Uint8Array
  /** True on the final chunk. */
  readonly last: boolean
  /** On the final chunk: the digest of the whole stream. */
  readonly checksum: Uint8Array
}

/** The receiver's progress on a snapshot transfer: flow control and the resume point. */
export interface SnapshotAck {
  readonly snapshotId: string
  /** Everything before this offset is stored; a resumed transfer starts here. */
  readonly nextOffset: number
  /** The snapshot was verified and installed. */
  readonly done: boolean
  /** Set when the receiver gave up on this snapshot. */
  readonly error?: WireError
}

/** A follower forwarding a client's write to the leader. */
export interface ForwardProposal {
  readonly id: number
  readonly command: Uint8Array
}

/** A follower forwarding a linearizable read to the leader. */
export interface ForwardRead {
  readonly id: number
  /** The read to serve at the read index; empty when only the index is wanted. */
  readonly request: Uint8Array
}

/** The leader's answer to a ForwardProposal or ForwardRead with the same id. */
export interface ForwardResponse {
  readonly id: number
  readonly outcome:
    | { readonly ok: true; readonly index: number; readonly revision: number; readonly result: Uint8Array }
    | { readonly ok: false; readonly error: WireError }
}

/** A peer RPC request (rpc.ts). */
export interface RpcRequest {
  readonly id: number
  readonly method: string
  readonly payload: Uint8Array
}

/** A peer RPC response. */
export interface RpcResponse {
  readonly id: number
  readonly outcome: { readonly ok: true; readonly payload: Uint8Array } | { readonly ok: false; readonly error: WireError }
}

/** SWIM message kinds. */
export type GossipKind = 'ping' | 'ack' | 'pingReq'
/** A member's health as gossiped. */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

/** One member's state, piggybacked on gossip. */
export interface MemberUpdate {
  readonly nodeId: NodeId
  readonly incarnation: number
  readonly state: MemberState
  /** Per-node soft state; keys are unique by convention (the codec keeps order and duplicates). */
  readonly softState: readonly { readonly key: string; readonly value: Uint8Array }[]
}

/** A gossip message (placeholder shape for the SWIM work). */
export interface Gossip {
  readonly kind: GossipKind
  readonly seq: number
  /** For pingReq: the node to probe; '' otherwise. */
  readonly target: string
  readonly updates: readonly MemberUpdate[]
}

/** Join handshake, member to joiner: prove you know the cluster secret. */
export interface JoinChallenge {
  readonly clusterHash: Uint8Array
  readonly nonce: Uint8Array
}

/** Join handshake, joiner to member: the proof, bound to this connection's Noise handshake. */
export interface JoinRequest {
  readonly clusterHash: Uint8Array
  /** The joiner's ed25519 public key. */
  readonly publicKey: Uint8Array
  /** The joiner's nonce, for the member's reciprocal proof. */
  readonly nonce: Uint8Array
  readonly proof: Uint8Array
}

/** Join handshake, member to joiner: the verdict. */
export interface JoinResult {
  readonly accepted: boolean
  /** The member's reciprocal proof over the joiner's nonce. */
  readonly proof: Uint8Array
  readonly error?: WireError
}

/** The body type of each envelope kind. The keys are the Envelope oneof's field names. */
export interface EnvelopeBodies {
  raft: Message
  snapshotChunk: SnapshotChunk
  snapshotAck: SnapshotAck
  forwardProposal: ForwardProposal
  forwardRead: ForwardRead
  forwardResponse: ForwardResponse
  rpcRequest: RpcRequest
  rpcResponse: RpcResponse
  gossip: Gossip
  joinChallenge: JoinChallenge
  joinRequest: JoinRequest
  joinResult: JoinResult
}

/** Which message an envelope carries. */
export type EnvelopeKind = keyof EnvelopeBodies

/** One decoded envelope: its kind and body. */
export type WireMessage = { [K in EnvelopeKind]: { readonly kind: K; readonly body: EnvelopeBodies[K] } }[EnvelopeKind]
