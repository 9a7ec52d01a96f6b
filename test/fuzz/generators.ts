/**
 * Random values for codec tests: a small generator over the project's seeded PRNG, and random but
 * well-formed Raft messages and envelopes of every kind (structurally valid, not semantically).
 */
import { ENVELOPE_FIELDS, type EnvelopeKind, type WireError, type WireMessage } from '../../src/transport/codec.js'
import type { Entry, Message, MessageType } from '../../src/core/types.js'
import { Prng } from '../sim/prng.js'

/** The project's seeded PRNG (test/sim/prng.ts), as a function. */
export function prng(seed: number): () => number {
  const p = new Prng(seed)
  return () => p.next()
}

/** Names that reach Object.prototype if a decoder ever assigns wire strings as keys. */
export const POLLUTION_NAMES = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', 'polluted'] as const

export class Gen {
  constructor(readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n)
  }
  bool(): boolean {
    return this.rand() < 0.5
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.rand() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }
  u64(): number {
    return this.pick([0, 1, this.int(1000), this.int(2 ** 32), 2 ** 32, Number.MAX_SAFE_INTEGER, this.int(Number.MAX_SAFE_INTEGER)])
  }
  u32(): number {
    return this.pick([0, 1, this.int(2 ** 32), 0xffffffff])
  }
  bytes(max = 32): Uint8Array {
    const out = new Uint8Array(this.int(max + 1))
    for (let i = 0; i < out.length; i++) out[i] = this.int(256)
    return out
  }
  str(): string {
    if (this.int(4) === 0) return this.pick(['', 'n0', 'é✓ 🐙', ...POLLUTION_NAMES])
    const cps: number[] = []
    for (let n = this.int(12); n > 0; n--) cps.push(this.pick([0x20 + this.int(95), 0xa0 + this.int(0x700), 0x1f300 + this.int(200)]))
    return String.fromCodePoint(...cps)
  }
}

export const MESSAGE_TYPES: readonly MessageType[] = ['preVote', 'preVoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat', 'heartbeatResp', 'snapshot', 'timeoutNow']

export const ENVELOPE_KINDS = Object.keys(ENVELOPE_FIELDS) as EnvelopeKind[]

export function randomEntry(g: Gen, index: number, term: number): Entry {
  return { index, term, type: g.pick(['normal', 'membership'] as const), data: g.bytes() }
}

/** A random Message: any type, any subset of optional fields (structurally valid, not semantically). */
export function randomRaft(g: Gen): Message {
  const m: { -readonly [K in keyof Message]: Message[K] } = { type: g.pick(MESSAGE_TYPES), from: g.str(), to: g.str(), term: g.u64() }
  if (g.bool()) m.index = g.u64()
  if (g.bool()) m.logTerm = g.u64()
  if (g.bool()) m.entries = Array.from({ length: g.int(4) }, () => randomEntry(g, g.u64(), g.u64()))
  if (g.bool()) m.commit = g.u64()
  if (g.bool()) m.reject = g.bool()
  if (g.bool()) m.rejectHint = g.u64()
  if (g.bool()) m.snapshot = { index: g.u64(), term: g.u64(), membership: { voters: Array.from({ length: g.int(4) }, () => g.str()), learners: Array.from({ length: g.int(3) }, () => g.str()) } }
  if (g.bool()) m.readSeq = g.u64()
  if (g.bool()) m.transfer = g.bool()
  return m
}

export function randomError(g: Gen): WireError {
  return g.bool() ? { code: g.str(), message: g.str() } : { code: 'NOT_LEADER', message: g.str(), leaderHint: g.str() }
}

export function randomEnvelope(g: Gen, kind: EnvelopeKind = g.pick(ENVELOPE_KINDS)): WireMessage {
  switch (kind) {
    case 'raft':
      return { kind, body: randomRaft(g) }
    case 'snapshotChunk':
      return { kind, body: { snapshotId: g.str(), index: g.u64(), term: g.u64(), offset: g.u64(), data: g.bytes(200), last: g.bool(), checksum: g.bytes() } }
    case 'snapshotAck':
      return { kind, body: { snapshotId: g.str(), nextOffset: g.u64(), done: g.bool(), ...(g.bool() ? { error: randomError(g) } : {}) } }
    case 'forwardProposal':
      return { kind, body: { id: g.u32(), command: g.bytes() } }
    case 'forwardRead':
      return { kind, body: { id: g.u32(), request: g.bytes() } }
    case 'forwardResponse':
      return {
        kind,
        body: { id: g.u32(), outcome: g.bool() ? { ok: true, index: g.u64(), revision: g.u64(), result: g.bytes() } : { ok: false, error: randomError(g) } },
      }
    case 'rpcRequest':
      return { kind, body: { id: g.u32(), method: g.str(), payload: g.bytes() } }
    case 'rpcResponse':
      return { kind, body: { id: g.u32(), outcome: g.bool() ? { ok: true, payload: g.bytes() } : { ok: false, error: randomError(g) } } }
    case 'gossip':
      return {
        kind,
        body: {
          kind: g.pick(['ping', 'ack', 'pingReq'] as const),
          seq: g.u32(),
          target: g.str(),
          updates: Array.from({ length: g.int(4) }, () => ({
            nodeId: g.str(),
            incarnation: g.u64(),
            state: g.pick(['alive', 'suspect', 'dead', 'left'] as const),
            softState: Array.from({ length: g.int(3) }, () => ({ key: g.str(), value: g.bytes() })),
          })),
        },
      }
    case 'joinChallenge':
      return { kind, body: { clusterHash: g.bytes(), nonce: g.bytes() } }
    case 'joinRequest':
      return { kind, body: { clusterHash: g.bytes(), publicKey: g.bytes(), nonce: g.bytes(), proof: g.bytes() } }
    case 'joinResult':
      return { kind, body: { accepted: g.bool(), proof: g.bytes(), ...(g.bool() ? { error: randomError(g) } : {}) } }
  }
}
