/**
 * The messages between the benchmark and an embedded member (embedded-node.ts), over fork()
 * IPC with the 'advanced' serialization (typed arrays cross as they are).
 */

/** Asks the member to run the closed-loop load (load.ts) with node.put() for `ms`. */
export interface LoadRequest {
  readonly op: 'load'
  readonly prefix: string
  readonly concurrency: number
  readonly ms: number
  readonly valueSize: number
}

/** Asks the member to write `count` keys `<prefix><n>` in transactions of `perTxn` puts. */
export interface FillRequest {
  readonly op: 'fill'
  readonly prefix: string
  readonly count: number
  readonly valueSize: number
  readonly perTxn: number
  readonly concurrency: number
}

/** Asks the member to stop its daemon (leadership handed over, LMDB flushed) and exit. */
export interface StopRequest {
  readonly op: 'stop'
}

export type Request = LoadRequest | FillRequest | StopRequest

/** A request with the id its reply carries. */
export type Envelope = Request & { readonly id: number }

export interface LoadResult {
  readonly latencies: Float64Array
  readonly seconds: number
  readonly errors: number
  readonly firstError?: string
}

export interface FillResult {
  readonly seconds: number
  readonly entries: number
  readonly bytes: number
}

/** What the member sends. */
export type MemberMessage =
  | { readonly type: 'ready'; readonly nodeId: string; readonly url: string }
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string }
  | { readonly type: 'snapshotInstalled'; readonly index: number; readonly bytes: number; readonly atMs: number }
