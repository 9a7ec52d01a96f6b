/**
 * A DaemonContext over one in-process node, for the HTTP API and metrics tests: the cluster view
 * is the node's own (with the leader's match indices when it leads), membership changes and
 * transfers run on whichever node leads, and the node's events are kept and re-emitted.
 */
import { EventEmitter } from 'node:events'
import type { HoldfastEvent } from '../../src/acting/events.js'
import type { ClusterStatus, DaemonContext } from '../../src/daemon/types.js'
import type { HoldfastNode } from '../../src/node.js'

export interface TestContextOptions {
  readonly cluster?: string
  readonly token?: string | undefined
  readonly maxValueBytes?: number
  /** This node's base URL (read when needed: servers get their port after the context exists). */
  url(): string
  /** A member's base URL. */
  memberUrl(id: string): string | undefined
  /** The node that leads now (membership changes and transfers run there). */
  leader(): HoldfastNode
}

/** A test DaemonContext; `statusOverride`, when set, replaces clusterStatus(). */
export type TestContext = DaemonContext & { statusOverride: (() => Promise<ClusterStatus>) | undefined }

export function testContext(node: HoldfastNode, options: TestContextOptions): TestContext {
  const events = new EventEmitter()
  const recent: HoldfastEvent[] = []
  node.on('event', (e: HoldfastEvent) => {
    recent.push(e)
    if (recent.length > 100) recent.shift()
    events.emit('event', e)
  })
  const cluster = options.cluster ?? 'test'
  const ctx: TestContext = {
    node,
    cluster,
    get url() {
      return options.url()
    },
    token: options.token,
    maxValueBytes: options.maxValueBytes ?? 1024 * 1024,
    memberUrl: (id) => options.memberUrl(id),
    statusOverride: undefined,
    async clusterStatus(): Promise<ClusterStatus> {
      if (ctx.statusOverride) return ctx.statusOverride()
      const s = node.status()
      return {
        id: s.id,
        url: options.url(),
        cluster,
        role: s.role,
        term: s.term,
        leader: s.leaderId,
        leaderUrl: s.leaderId === null ? null : options.memberUrl(s.leaderId) ?? null,
        commitIndex: s.commitIndex,
        appliedIndex: s.appliedIndex,
        acting: node.isActing(),
        leaderCheck: node.leaderCheck(),
        ready: node.ready(),
        fence: node.fence(),
        actingId: null,
        targetVoters: 3,
        view: s.role === 'leader' ? 'leader' : 'local',
        members: s.members.map((m) => ({
          id: m.id,
          url: options.memberUrl(m.id) ?? null,
          role: !m.voter ? 'learner' : m.id === s.leaderId ? 'leader' : 'follower',
          voter: m.voter,
          reachable: m.reachable,
          matchIndex: m.matchIndex ?? null,
          lag: m.matchIndex === undefined ? null : Math.max(0, s.commitIndex - m.matchIndex),
          learnerOnly: false,
        })),
      }
    },
    promote: async (id) => void (await options.leader().changeMembership({ type: 'promote', node: id })),
    demote: async (id) => void (await options.leader().changeMembership({ type: 'demote', node: id })),
    remove: async (id) => void (await options.leader().changeMembership({ type: 'remove', node: id })),
    transfer: (to) => options.leader().transferLeadership(to),
    recentEvents: () => [...recent],
    clusterEvents: async () => [...recent],
    events,
  }
  return ctx
}
