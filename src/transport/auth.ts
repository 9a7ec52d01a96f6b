/**
 * Peer admission, as pure logic: the per-connection handshake that decides whether a peer belongs
 * to the cluster, and the derivation of the swarm topic and proof key from the cluster name and
 * secret. No I/O here: swarm.ts feeds it the connection's facts and carries its messages.
 *
 * The handshake, after hyperswarm's Noise handshake has authenticated both public keys:
 *   1. Both sides send a JoinChallenge: the cluster's hash and a fresh nonce.
 *   2. The initiator answers the responder's challenge with a JoinRequest whose proof is
 *      HMAC(proofKey, domain | Noise handshake hash | challenger's nonce | prover's key).
 *   3. The responder admits the initiator if it is a member (admitted by its key) or its proof
 *      verifies; it answers JoinResult{accepted}, and only then sends its own proof.
 *   4. The initiator admits the responder the same way and answers JoinResult.
 *   The connection is ready once each side has admitted the other and heard that it was admitted.
 *
 * Why these choices:
 * - The proof is bound to the Noise handshake hash, which both ends share and nobody else can
 *   choose, so a proof recorded on one connection is worthless on any other (no replay).
 * - The prover's key is inside the MAC, so a proof cannot be reflected back at its sender.
 * - The responder proves only after the initiator did, so a stranger that dials a member learns
 *   nothing it could use to guess the secret offline. Secrets should still be long and random.
 * - Members are admitted by key alone, so a member keeps its links while an operator rotates the
 *   secret, and so a member that restarts does not depend on configuration it may have lost.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { NodeId } from '../core/types.js'
import type { WireError, WireMessage } from './wire-types.js'

/** Length of the nonces in JoinChallenge. */
export const NONCE_BYTES = 32
const PROOF_DOMAIN = 'holdfast/join-proof/v1'

/** What a cluster name and secret derive: the swarm topic, the public cluster hash and the proof key. */
export interface ClusterKeys {
  /** The hyperswarm topic: only holders of the secret can find the cluster's peers. */
  readonly topic: Buffer
  /** Identifies the cluster by name in the handshake, so a node pointed at another cluster learns so clearly. */
  readonly clusterHash: Buffer
  /** Keys the join proofs. Never leaves the process. */
  readonly proofKey: Buffer
}

/** Derives the topic, cluster hash and proof key. Domain-separated, so no two of them can be confused. */
export function deriveClusterKeys(cluster: string, secret: string | Uint8Array): ClusterKeys {
  const secretBytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret)
  return {
    topic: createHmac('sha256', secretBytes).update(`holdfast/topic/v1|${cluster}`).digest(),
    clusterHash: createHash('sha256').update(`holdfast/cluster/v1|${cluster}`).digest(),
    proofKey: createHmac('sha256', secretBytes).update(`holdfast/proof-key/v1|${cluster}`).digest(),
  }
}

/** The proof that `prover` knows the secret, on the connection with this handshake hash. */
export function joinProof(proofKey: Uint8Array, handshakeHash: Uint8Array, challengeNonce: Uint8Array, prover: Uint8Array): Buffer {
  return createHmac('sha256', proofKey).update(PROOF_DOMAIN).update(handshakeHash).update(challengeNonce).update(prover).digest()
}

export interface HandshakeParams {
  /** True on the side that dialled. */
  readonly initiator: boolean
  readonly localKey: Uint8Array
  /** The remote's public key, as authenticated by the Noise handshake. */
  readonly remoteKey: Uint8Array
  /** The Noise handshake hash of this connection (the same on both ends). */
  readonly handshakeHash: Uint8Array
  readonly keys: ClusterKeys
  /** Whether the remote is a member now (admitted by key). */
  readonly isMember: (id: NodeId) => boolean
  /** A fresh random nonce of NONCE_BYTES. */
  readonly nonce: Uint8Array
}

/** Why a handshake ended without a connection. */
export type HandshakeFailure =
  /** The remote neither is a member nor proved the secret: we refused it. */
  | { readonly code: 'AUTH_FAILED'; readonly by: 'us'; readonly reason: string }
  /** The remote refused us. */
  | { readonly code: 'AUTH_FAILED'; readonly by: 'them'; readonly reason: string }
  /** The remote sent something out of order or of the wrong kind. */
  | { readonly code: 'PROTOCOL_ERROR'; readonly by: 'them'; readonly reason: string }

export interface HandshakeStep {
  /** Messages to send, in order (sent even when the step also fails: a refusal tells the peer why). */
  readonly send: WireMessage[]
  /** Set once: true when the connection is admitted both ways, or the failure. */
  readonly outcome?: true | HandshakeFailure
}

/**
 * One connection's admission handshake. Feed it every message the remote sends until it reports an
 * outcome; after a failure the connection must be closed.
 */
export class AuthHandshake {
  readonly remoteId: NodeId
  readonly #p: HandshakeParams
  #remoteNonce: Uint8Array | undefined
  /** We admitted the remote. */
  #admitted = false
  /** The remote admitted us. */
  #admittedByRemote = false
  /** We sent our proof. */
  #proved = false
  #done = false

  constructor(params: HandshakeParams) {
    this.#p = params
    this.remoteId = Buffer.from(params.remoteKey).toString('hex')
  }

  /** The first messages of this side. */
  start(): HandshakeStep {
    return { send: [{ kind: 'joinChallenge', body: { clusterHash: this.#p.keys.clusterHash, nonce: this.#p.nonce } }] }
  }

  receive(message: WireMessage): HandshakeStep {
    if (this.#done) return this.#fail('PROTOCOL_ERROR', 'a handshake message after the handshake ended', [])
    switch (message.kind) {
      case 'joinChallenge': {
        if (this.#remoteNonce) return this.#fail('PROTOCOL_ERROR', 'a second challenge', [])
        if (!equal(message.body.clusterHash, this.#p.keys.clusterHash)) {
          return this.#refuse('the peer belongs to a different cluster (cluster names differ)')
        }
        if (message.body.nonce.byteLength !== NONCE_BYTES) return this.#fail('PROTOCOL_ERROR', 'a challenge nonce of the wrong size', [])
        this.#remoteNonce = message.body.nonce
        // The initiator proves first; the responder waits until it has admitted the initiator.
        return { send: this.#p.initiator ? [this.#proof()] : [] }
      }
      case 'joinRequest': {
        if (!this.#remoteNonce) return this.#fail('PROTOCOL_ERROR', 'a proof before the challenge', [])
        if (this.#admitted) return this.#fail('PROTOCOL_ERROR', 'a second proof', [])
        const b = message.body
        if (!equal(b.publicKey, this.#p.remoteKey)) return this.#refuse('the proof names a key other than the connection\'s')
        const expected = joinProof(this.#p.keys.proofKey, this.#p.handshakeHash, this.#p.nonce, this.#p.remoteKey)
        const proven = equal(b.proof, expected)
        if (!proven && !this.#p.isMember(this.remoteId)) return this.#refuse('not a member, and the proof of the cluster secret is wrong')
        this.#admitted = true
        const send: WireMessage[] = [{ kind: 'joinResult', body: { accepted: true, proof: new Uint8Array(0) } }]
        if (!this.#p.initiator) send.push(this.#proof())
        return this.#maybeReady(send)
      }
      case 'joinResult': {
        if (!this.#proved || this.#admittedByRemote) return this.#fail('PROTOCOL_ERROR', 'a verdict nobody asked for', [])
        if (!message.body.accepted) {
          const why = message.body.error?.message ?? 'no reason given'
          return this.#fail('AUTH_FAILED', `the peer refused us: ${why}`, [], 'them')
        }
        this.#admittedByRemote = true
        return this.#maybeReady([])
      }
      default:
        return this.#fail('PROTOCOL_ERROR', `a ${message.kind} message before the handshake completed`, [])
    }
  }

  #proof(): WireMessage {
    this.#proved = true
    const proof = joinProof(this.#p.keys.proofKey, this.#p.handshakeHash, this.#remoteNonce!, this.#p.localKey)
    return { kind: 'joinRequest', body: { clusterHash: this.#p.keys.clusterHash, publicKey: this.#p.localKey, nonce: new Uint8Array(0), proof } }
  }

  #maybeReady(send: WireMessage[]): HandshakeStep {
    if (!(this.#admitted && this.#admittedByRemote)) return { send }
    this.#done = true
    return { send, outcome: true }
  }

  #refuse(reason: string): HandshakeStep {
    const error: WireError = { code: 'AUTH_FAILED', message: reason }
    return this.#fail('AUTH_FAILED', reason, [{ kind: 'joinResult', body: { accepted: false, proof: new Uint8Array(0), error } }], 'us')
  }

  #fail(code: HandshakeFailure['code'], reason: string, send: WireMessage[], by: 'us' | 'them' = 'them'): HandshakeStep {
    this.#done = true
    const outcome = (code === 'AUTH_FAILED' ? { code, by, reason } : { code, by: 'them', reason }) as HandshakeFailure
    return { send, outcome }
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b)
}
