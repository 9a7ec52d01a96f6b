/**
 * The contract between the daemon's parts: the daemon (daemon.ts) owns the node, the replicated
 * member directory and the membership work; the HTTP API (http-api.ts), the metrics (metrics.ts)
 * and the status page (status-page.ts) see it only through DaemonContext.
 */
import type { EventEmitter } from 'node:events'
import type { HoldfastEvent } from '../acting/events.js'
import type { NodeId, Role } from '../core/types.js'
import type { HoldfastNode } from '../node.js'

/** One member in the cluster view. */
export interface ClusterMember {
  readonly id: NodeId
  /** Its advertised HTTP base URL (from the replicated directory), null until it registered one. */
  readonly url: string | null
  /** 'leader', 'follower' (a voter that does not lead) or 'learner'. */
  readonly role: 'leader' | 'follower' | 'learner'
  readonly voter: boolean
  /** Connected to the node that produced the view (always true for that node itself). */
  readonly reachable: boolean
  /** The highest log index known to be on the member (known on the leader only). */
  readonly matchIndex: number | null
  /** commitIndex - matchIndex on the leader: how far the member is behind, null when unknown. */
  readonly lag: number | null
  /** Started with --learner: never promoted automatically. */
  readonly learnerOnly: boolean
}

/** What GET /v1/status returns. */
export interface ClusterStatus {
  /** This node. */
  readonly id: NodeId
  readonly url: string
  readonly cluster: string
  readonly role: Role
  readonly term: number
  readonly leader: NodeId | null
  readonly leaderUrl: string | null
  readonly commitIndex: number
  readonly appliedIndex: number
  /** This node acts now (node.isActing()). */
  readonly acting: boolean
  /** This node passes leaderCheck() now. */
  readonly leaderCheck: boolean
  /** node.ready(). */
  readonly ready: boolean
  /** The fencing token in force on this node. */
  readonly fence: number
  /** The acting node as the leader reports it; null when none acts or the leader is unknown/unreachable. */
  readonly actingId: NodeId | null
  /** The number of voters the daemon promotes learners up to (--voters at --init). */
  readonly targetVoters: number
  /** 'leader' when `members` (match indices, reachability) comes from the leader's view, 'local' otherwise. */
  readonly view: 'leader' | 'local'
  readonly members: readonly ClusterMember[]
}

/** What the HTTP layer needs from the daemon. */
export interface DaemonContext {
  readonly node: HoldfastNode
  readonly cluster: string
  /** This node's advertised base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string
  /** Bearer token protecting everything but /v1/health and /v1/leader-check; undefined = open. */
  readonly token: string | undefined
  /** The largest value (JSON body) a PUT accepts, in bytes. */
  readonly maxValueBytes: number
  /** A member's advertised base URL, from the replicated directory. */
  memberUrl(id: NodeId): string | undefined
  /** The cluster view (asks the leader over peer RPC for match indices and the acting node). */
  clusterStatus(options?: { signal?: AbortSignal }): Promise<ClusterStatus>
  /** Membership changes and transfer, carried out on the leader (forwarded when this node follows). */
  promote(id: NodeId): Promise<void>
  demote(id: NodeId): Promise<void>
  remove(id: NodeId): Promise<void>
  transfer(to: NodeId): Promise<void>
  /** This node's most recent events, oldest first (a bounded ring). */
  recentEvents(): readonly HoldfastEvent[]
  /**
   * The events of this node and of the leader (asked over peer RPC; its own alone when the leader
   * does not answer), oldest first: elections, acting changes and membership changes are the
   * leader's, so a page on any node shows them.
   */
  clusterEvents(options?: { signal?: AbortSignal }): Promise<readonly HoldfastEvent[]>
  /** Emits 'event' (HoldfastEvent) for each new event, for live views. */
  readonly events: EventEmitter
}
