/**
 * The simulated replicated state machine: a tiny key-value map whose applied index is durable
 * atomically with its contents (as the real driver records both in one LMDB transaction). A running
 * digest over every applied entry lets the invariant checker compare whole applied prefixes of two
 * nodes in O(1), including across snapshot installs.
 */
import type { Entry } from '../../src/core/types.js'
import type { KvOutput } from '../../src/testing/linearizability.js'

/** A client command, carried as JSON in a normal entry's data. `p` is a liveness probe (no effect). */
export type Command =
  | { readonly t: 'w'; readonly key: string; readonly value: string }
  | { readonly t: 'c'; readonly key: string; readonly expect: string | null; readonly value: string }
  | { readonly t: 'p'; readonly n: number }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeCommand(c: Command): Uint8Array {
  return encoder.encode(JSON.stringify(c))
}

export function decodeCommand(data: Uint8Array): Command {
  return JSON.parse(decoder.decode(data)) as Command
}

const hashCache = new WeakMap<Entry, number>()

/** A 32-bit hash of an entry's term, type and data (FNV-1a, then mixed). Cached per Entry object. */
export function entryHash(e: Entry): number {
  let h = hashCache.get(e)
  if (h !== undefined) return h
  h = 0x811c9dc5 ^ e.term ^ (e.type === 'membership' ? 0x5bd1e995 : 0)
  const d = e.data
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i]!, 0x01000193)
  h = mix(h, e.index)
  hashCache.set(e, h)
  return h
}

/** Combines two 32-bit values (murmur3 finaliser style). */
export function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b, 0x9e3779b1)) | 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** The state machine of one node. Survives crashes (it is "on disk"). */
export class KvState {
  data = new Map<string, string>()
  /** The index of the last applied entry (or installed snapshot). */
  applied = 0
  /** Digest of every entry applied so far, in order; equal digests mean equal applied prefixes. */
  digest = 0

  /** Applies one committed entry; returns the client-visible output of a command, if it is one. */
  apply(e: Entry): KvOutput | undefined {
    this.applied = e.index
    this.digest = mix(this.digest, entryHash(e))
    if (e.type !== 'normal' || e.data.length === 0) return undefined
    const c = decodeCommand(e.data)
    switch (c.t) {
      case 'w':
        this.data.set(c.key, c.value)
        return { kind: 'write' }
      case 'c': {
        const ok = (this.data.get(c.key) ?? null) === c.expect
        if (ok) this.data.set(c.key, c.value)
        return { kind: 'cas', ok }
      }
      case 'p':
        return undefined
    }
  }

  read(key: string): string | null {
    return this.data.get(key) ?? null
  }

  /** A copy, as sent with a snapshot message. */
  clone(): KvState {
    const c = new KvState()
    c.data = new Map(this.data)
    c.applied = this.applied
    c.digest = this.digest
    return c
  }
}
