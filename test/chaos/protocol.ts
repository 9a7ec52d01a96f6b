/**
 * What the campaign's orchestrator (in the root namespace) and its driver (driver.ts, in the
 * client namespace, where the daemons' HTTP addresses are reachable) say to each other over IPC.
 * Times are wall-clock milliseconds (performance.timeOrigin + now()), comparable across the
 * processes of this machine.
 */

/** A daemon the driver talks to: its short name and base URL. */
export interface Target {
  name: string
  url: string
}

/** One client operation as the driver observed it. */
export interface RecordedOp {
  client: number
  kind: 'read' | 'write' | 'cas'
  key: string
  /** The value written (write, cas). Unique across the run. */
  value?: string
  /** cas: the revision sent as ?ifRevision. */
  ifRevision?: number
  /** cas: the value the key had at that revision, as the client observed it (null: absent, revision 0). */
  expect?: string | null
  /** read: linearizable or lease. */
  consistency?: 'linearizable' | 'lease'
  /** The node asked. */
  node: string
  call: number
  /** Return time; null when the outcome is unknown (timeout, connection lost after sending). */
  ret: number | null
  /**
   * ok: done (a read's result in readValue; a cas that applied); fail: a cas refused with
   * REVISION_MISMATCH; unknown: no definite answer; notApplied: a definite answer that the
   * operation did not take effect (refused connection, NOT_LEADER and the like), or a read that failed.
   */
  outcome: 'ok' | 'fail' | 'unknown' | 'notApplied'
  readValue?: string | null
  /** The key's revision a read returned, or the revision a write was applied at. */
  revision?: number
  /** The error code or failure class, for the record. */
  code?: string
  proxied?: boolean
}

/** One leader-check probe of one node. */
export interface LeaseSample {
  node: string
  start: number
  end: number
  /** 200: passes; 503: does not; 0: no answer. */
  status: number
  id?: string
  fence?: number
}

export interface WorkloadConfig {
  clients: number
  keys: number
  token: string
  opTimeoutMs: number
  seed: number
  /** Share of writes to write-once keys u/<client>-<seq>, checked for presence at the end. */
  writeOnceShare: number
}

/** The driver's answer to an HTTP request. */
export interface HttpAnswer {
  status: number
  text: string
  body?: unknown
  /** The failure class when no answer came (refused, timeout, reset, ...). */
  error?: string
  /** The daemon said it went through the leader (X-Holdfast-Proxied). */
  proxied?: boolean
}

export interface HttpRequest {
  url: string
  method: string
  body?: string
  /** base64, for bodies that are not text. */
  bodyBase64?: string
  headers?: Record<string, string>
  /** Send the bearer token (default true); a string sends that token instead. */
  auth?: boolean | string
  timeoutMs?: number
  /** Characters of the answer's text kept. @default 4000 */
  maxText?: number
}

export interface PeerAttack {
  kind: 'wrongSecret' | 'strangerRaft' | 'randomFrames' | 'truncatedFrame' | 'oversizedFrame' | 'admittedGarbage'
  targetId: string
  dhtBootstrap: { host: string; port: number }
  localHost: string
  cluster: string
  secret: string
}

export interface PeerAttackResult {
  kind: PeerAttack['kind']
  /** The target closed the connection, or refused the handshake. */
  refused: boolean
  /** The target admitted the attacker (never for wrongSecret/strangerRaft). */
  admitted: boolean
  detail: string
}

export type Request =
  | { op: 'http'; req: HttpRequest }
  | { op: 'targets'; targets: Target[] }
  | { op: 'workloadStart'; config: WorkloadConfig }
  | { op: 'workloadStop' }
  | { op: 'samplerStart'; everyMs: number }
  | { op: 'samplerStop' }
  | { op: 'peerAttack'; attack: PeerAttack }

export type ToDriver = { id: number } & Request
export type FromDriver = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string }

/** Wall-clock milliseconds with sub-millisecond resolution. */
export const wallNow = (): number => performance.timeOrigin + performance.now()
