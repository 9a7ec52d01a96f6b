/**
 * The daemon's Prometheus metrics (GET /metrics), on a registry of its own so that two daemons in
 * one process (tests) or an embedding service's own metrics never collide. Node state is read at
 * scrape time; events are counted as they happen; the HTTP layer reports requests and the
 * latency of the writes it serves.
 */
import createDebug from 'debug'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { HoldfastEvent } from '../acting/events.js'
import type { Role } from '../core/types.js'
import type { DaemonContext } from './types.js'

const log = createDebug('holdfast:daemon:metrics')

const ROLES: readonly Role[] = ['follower', 'preCandidate', 'candidate', 'leader']

/** How long a scrape waits for the cluster view (the leader's, over peer RPC) before using the local one. */
const PEER_VIEW_TIMEOUT_MS = 2_000

/** The daemon's metrics. */
export interface Metrics {
  /** The registry (this daemon's metrics only, plus the process defaults). */
  readonly registry: Registry
  /** The Content-Type of text(). */
  readonly contentType: string
  /** Records one write served by the HTTP layer: its duration and 'ok' or the error code it failed with. */
  observeProposal(seconds: number, outcome: string): void
  /** Records one HTTP request: its route template, method, status and duration. */
  observeRequest(route: string, method: string, status: number, seconds: number): void
  /** Counts a request refused as malformed (4xx for the input itself), by route and error code. */
  badRequest(route: string, code: string): void
  /** An SSE watch stream started / ended (its node iterator has finished). */
  watchOpened(): void
  watchClosed(): void
  /** Watch streams open now. */
  activeWatches(): number
  /** The exposition text: refreshes the per-peer series from ctx.clusterStatus() first. */
  text(): Promise<string>
  /** Stops listening to the node and the daemon's events. */
  close(): void
}

/** Creates the metrics of one daemon. */
export function createMetrics(ctx: DaemonContext): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const node = ctx.node
  const registers = [registry]

  const gauge = (name: string, help: string, read: () => number): Gauge =>
    new Gauge({ name, help, registers, collect() { this.set(read()) } })

  new Gauge({
    name: 'holdfast_role',
    help: 'This node\'s Raft role: 1 for the current role, 0 for the others',
    labelNames: ['role'],
    registers,
    collect() {
      const role = node.status().role
      for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0)
    },
  })
  gauge('holdfast_voter', '1 when this node is a voter, 0 for a learner', () => (node.membership().voters.includes(node.id) ? 1 : 0))
  gauge('holdfast_term', 'The current Raft term', () => node.status().term)
  gauge('holdfast_commit_index', 'The highest log index known to be committed', () => node.status().commitIndex)
  gauge('holdfast_applied_index', 'The highest log index applied to the state machine', () => node.status().appliedIndex)
  gauge('holdfast_apply_lag', 'Committed entries not yet applied here (commit index - applied index)', () => {
    const s = node.status()
    return Math.max(0, s.commitIndex - s.appliedIndex)
  })
  gauge('holdfast_leader_known', '1 when this node knows a leader', () => (node.status().leaderId === null ? 0 : 1))
  gauge('holdfast_acting', '1 while this node acts (node.isActing())', () => (node.isActing() ? 1 : 0))
  gauge('holdfast_leader_check', '1 while this node passes leaderCheck() (acting with a valid lease)', () => (node.leaderCheck() ? 1 : 0))
  gauge('holdfast_ready', '1 when node.ready()', () => (node.ready() ? 1 : 0))
  gauge('holdfast_fence_token', 'The fencing token in force on this node', () => node.fence())

  // Hostile or broken peers, counted where they are refused: by the swarm transport (its stats)
  // and by the node (messages that did not decode, or claimed another sender).
  new Counter({
    name: 'holdfast_transport_events_total',
    help: 'Swarm transport events by kind: admitted, authFailures, firewallRefusals, frameErrors, protocolErrors, handshakeTimeouts, droppedFrames, ...',
    labelNames: ['kind'],
    registers,
    collect() {
      const stats = (node.transport as { stats?: Record<string, unknown> }).stats
      if (typeof stats !== 'object' || stats === null) return
      this.reset()
      for (const [kind, v] of Object.entries(stats)) if (typeof v === 'number') this.inc({ kind }, v)
    },
  })
  new Counter({
    name: 'holdfast_peer_messages_rejected_total',
    help: 'Raft messages from peers that were dropped: malformed (did not decode; the connection was closed) or spoofed (claimed another sender)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset()
      this.inc({ reason: 'malformed' }, node.malformedMessages)
      this.inc({ reason: 'spoofed' }, node.spoofedMessages)
    },
  })

  const peerReachable = new Gauge({ name: 'holdfast_peer_reachable', help: '1 when the peer is connected to the node whose view this is (the leader\'s when available)', labelNames: ['peer'], registers })
  const peerMatch = new Gauge({ name: 'holdfast_peer_match_index', help: 'The highest log index known to be on the peer (from the leader\'s view)', labelNames: ['peer'], registers })
  const peerLag = new Gauge({ name: 'holdfast_peer_replication_lag', help: 'Entries the peer is behind the leader\'s commit index (from the leader\'s view)', labelNames: ['peer'], registers })
  let viewFromLeader = 0
  gauge('holdfast_cluster_view_from_leader', '1 when the per-peer series come from the leader\'s view, 0 when from this node\'s own', () => viewFromLeader)

  /** Rebuilds the per-peer series: members that left disappear from the output. */
  async function refreshPeers(): Promise<void> {
    peerReachable.reset()
    peerMatch.reset()
    peerLag.reset()
    try {
      const status = await ctx.clusterStatus({ signal: AbortSignal.timeout(PEER_VIEW_TIMEOUT_MS) })
      viewFromLeader = status.view === 'leader' ? 1 : 0
      for (const m of status.members) {
        if (m.id === node.id) continue
        peerReachable.set({ peer: m.id }, m.reachable ? 1 : 0)
        if (m.matchIndex !== null) peerMatch.set({ peer: m.id }, m.matchIndex)
        if (m.lag !== null) peerLag.set({ peer: m.id }, m.lag)
      }
    } catch (err) {
      log('cluster view unavailable, using the local one: %s', (err as Error).message)
      viewFromLeader = 0
      for (const m of node.status().members) {
        if (m.id !== node.id) peerReachable.set({ peer: m.id }, m.reachable ? 1 : 0)
      }
    }
  }

  const proposals = new Histogram({
    name: 'holdfast_proposal_duration_seconds',
    help: 'Duration of the writes (put, delete) served over HTTP, from request to commit and apply, by outcome (ok or the error code)',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  const requests = new Counter({ name: 'holdfast_http_requests_total', help: 'HTTP requests by route template, method and status', labelNames: ['route', 'method', 'status'], registers })
  const requestDuration = new Histogram({
    name: 'holdfast_http_request_duration_seconds',
    help: 'HTTP request duration by route template (watch streams excluded)',
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
    registers,
  })
  const badRequests = new Counter({ name: 'holdfast_http_bad_requests_total', help: 'Requests refused for their input (malformed JSON, bad key, too large, ...), by route and code', labelNames: ['route', 'code'], registers })
  let watches = 0
  gauge('holdfast_http_watches_active', 'Open watch (SSE) streams', () => watches)

  const snapshotsSent = new Counter({ name: 'holdfast_snapshots_sent_total', help: 'Snapshot transfers this node sent to followers, by outcome', labelNames: ['outcome'], registers })
  // Both outcomes are exposed from the start, so a rate over them is defined before the first transfer.
  for (const outcome of ['ok', 'failed']) snapshotsSent.inc({ outcome }, 0)
  const snapshotsInstalled = new Counter({ name: 'holdfast_snapshots_installed_total', help: 'Snapshots received and installed on this node', registers })
  const snapshotsFailed = new Counter({ name: 'holdfast_snapshot_receive_failures_total', help: 'Snapshot transfers to this node that failed (a checksum mismatch, for one)', registers })
  const staleFences = new Counter({ name: 'holdfast_stale_fence_total', help: 'Fenced operations refused with STALE_FENCE when this node applied them', registers })
  const actingStarts = new Counter({ name: 'holdfast_acting_starts_total', help: 'Times this node started acting', registers })
  const actingStops = new Counter({ name: 'holdfast_acting_stops_total', help: 'Times this node stopped acting (or gave up starting), by reason', labelNames: ['reason'], registers })
  const quorumLost = new Counter({ name: 'holdfast_quorum_lost_total', help: 'Times this node, leading, lost its majority, by reason', labelNames: ['reason'], registers })
  const leaderChanges = new Counter({ name: 'holdfast_leader_changes_total', help: 'Changes of the leader this node knows (including to none)', registers })

  const onEvent = (e: HoldfastEvent): void => {
    switch (e.type) {
      case 'staleFence':
        staleFences.inc()
        break
      case 'actingStart':
        actingStarts.inc()
        break
      case 'actingStop':
        actingStops.inc({ reason: e.reason })
        break
      case 'quorumLost':
        quorumLost.inc({ reason: e.reason })
        break
    }
  }
  const onSnapshotSent = (e: { ok?: boolean }): void => snapshotsSent.inc({ outcome: e.ok ? 'ok' : 'failed' })
  const onSnapshotInstalled = (): void => snapshotsInstalled.inc()
  const onSnapshotFailed = (): void => snapshotsFailed.inc()
  const onLeader = (): void => leaderChanges.inc()
  ctx.events.on('event', onEvent)
  node.on('snapshotSent', onSnapshotSent)
  node.on('snapshotInstalled', onSnapshotInstalled)
  node.on('snapshotFailed', onSnapshotFailed)
  node.on('leader', onLeader)

  return {
    registry,
    contentType: registry.contentType,
    observeProposal: (seconds, outcome) => proposals.observe({ outcome }, seconds),
    observeRequest(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) })
      if (route !== '/v1/watch') requestDuration.observe({ route }, seconds)
    },
    badRequest: (route, code) => badRequests.inc({ route, code }),
    watchOpened: () => void watches++,
    watchClosed: () => void watches--,
    activeWatches: () => watches,
    async text() {
      await refreshPeers()
      return registry.metrics()
    },
    close() {
      ctx.events.off('event', onEvent)
      node.off('snapshotSent', onSnapshotSent)
      node.off('snapshotInstalled', onSnapshotInstalled)
      node.off('snapshotFailed', onSnapshotFailed)
      node.off('leader', onLeader)
    },
  }
}
