/**
 * The reference daemon: one holdfast node over hyperswarm with its HTTP API, built on the public
 * library API only. It adds what a stand-alone process needs on top of the library:
 *
 * - joining: a node that is not a member asks its peers to add it; the leader adds it as a learner
 *   (peers are admitted by the transport only after proving the cluster secret);
 * - promotion: the leader promotes caught-up learners, one at a time, until the cluster has the
 *   voter target set at --init; learners started with --learner (or demoted through the API) stay;
 * - the directory (directory.ts): every member's advertised URL, for X-Holdfast-Leader and the
 *   status page;
 * - the cluster view: a follower asks the leader for match indices and who acts.
 */
import createDebug from 'debug'
import { EventEmitter } from 'node:events'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { HoldfastEvent } from '../acting/events.js'
import type { NodeId } from '../core/types.js'
import { HoldfastError, isHoldfastError } from '../errors.js'
import { loadOrCreateIdentity } from '../identity.js'
import type { HoldfastNode } from '../node.js'
import { createSwarmNode } from '../swarm-node.js'
import { ConfigError, rememberConfig, type StartConfig } from './config.js'
import { Directory } from './directory.js'
import { createApiServer } from './http-api.js'
import { createMetrics } from './metrics.js'
import type { ClusterMember, ClusterStatus, DaemonContext } from './types.js'

const log = createDebug('holdfast:daemon')

/** How often the daemon looks after joining, registration and promotion. */
export const MAINTAIN_MS = 500
/** A learner within this many entries of the leader's commit index counts as caught up. */
export const PROMOTE_SLACK = 16
/** Recent events kept for the status page. */
export const RECENT_EVENTS = 200
const PEER_RPC_TIMEOUT_MS = 2_000
/** How long a node started with --init on a fresh data dir looks for a running cluster first. */
export const INIT_PROBE_MS = 3_000
/** After a peer accepted this node's join, how long it waits for the membership to arrive before asking again. */
const JOIN_SETTLE_MS = 10_000
const NODE_ID = /^[0-9a-f]{64}$/

const JOIN = 'daemon.join'
const STATUS = 'daemon.status'
const ADMIN = 'daemon.admin'
const EVENTS = 'daemon.events'

type AdminOp = 'promote' | 'demote' | 'remove' | 'transfer'

/** A running daemon. */
export interface Daemon {
  readonly node: HoldfastNode
  readonly context: DaemonContext
  readonly http: Server
  /** The HTTP address it listens on. */
  readonly address: { host: string; port: number }
  /** Hands leadership over, releases the VIP, closes the HTTP server and the node (LMDB flushed). */
  stop(): Promise<void>
}

/** Starts a daemon from a validated configuration. */
export async function startDaemon(config: StartConfig): Promise<Daemon> {
  const identity = await loadOrCreateIdentity(config.dataDir)
  await rememberConfig(config)
  let node = await openNode(config, identity.id, false)
  if (config.init && node.membership().voters.length === 0) {
    // A fresh data directory with --init: refuse if the swarm already holds this cluster (a second
    // --init, or the first node wiped and restarted with its original command line), which would
    // otherwise create a second cluster on the same topic.
    const existing = await findRunningCluster(node, INIT_PROBE_MS).catch(async (err: unknown) => {
      await node.close()
      throw err
    })
    await node.close()
    if (existing !== undefined) {
      throw new ConfigError(`--init: cluster "${config.cluster}" is already running (peer ${existing.slice(0, 12)}... answered); start this node without --init to join it`)
    }
    node = await openNode(config, identity.id, true)
  }
  const core = new DaemonCore(node, config)
  const metrics = createMetrics(core.context)
  const http = createApiServer(core.context, { metrics })
  try {
    http.listen(config.http.port, config.http.host)
    await once(http, 'listening')
  } catch (err) {
    core.stopMaintaining()
    await node.close()
    throw err
  }
  const addr = http.address()
  const address = typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { ...config.http }
  log('%s: HTTP API on %s:%d, advertised as %s', node.id, address.host, address.port, config.advertiseUrl)
  let stopping: Promise<void> | undefined
  return {
    node,
    context: core.context,
    http,
    address,
    stop: () =>
      (stopping ??= (async () => {
        core.stopMaintaining()
        http.close()
        http.closeAllConnections()
        // close() hands leadership to the most up-to-date voter; the acting handlers (and with
        // them the VIP) stop before that, and LMDB is flushed and closed last.
        await node.close()
      })()),
  }
}

/** Opens the node; `init` bootstraps a new cluster with this node as its only voter (a fresh data dir only). */
async function openNode(config: StartConfig, id: NodeId, init: boolean): Promise<HoldfastNode> {
  const privateDht = config.bootstrap.length > 0
  return createSwarmNode({
    dataDir: config.dataDir,
    cluster: config.cluster,
    secret: config.secret,
    ...(privateDht || config.dhtHost !== undefined || config.dhtPort !== undefined
      ? {
          dht: {
            ...(privateDht ? { bootstrap: [...config.bootstrap] } : {}),
            ...(config.dhtHost !== undefined ? { host: config.dhtHost } : {}),
            ...(config.dhtPort !== undefined ? { port: config.dhtPort } : {}),
            // A private DHT (our own `holdfast dht` bootstrap) means a LAN, a data centre or loopback:
            // peers are directly reachable, and holepunching between them only costs time.
            ...(privateDht ? { firewalled: false } : {}),
          },
        }
      : {}),
    ...(init ? { bootstrap: { voters: [id], learners: [] } } : {}),
    ...(config.tickMs !== undefined ? { tickMs: config.tickMs } : {}),
    ...(config.electionTicks !== undefined ? { electionTicks: config.electionTicks } : {}),
    maxValueSize: Math.max(config.maxValueBytes, 64 * 1024),
    ...(config.vip ? { vip: { address: config.vip.address, device: config.vip.device } } : {}),
  })
}

/**
 * Looks for members of this cluster on the swarm for `ms`: a member answers the status request
 * with its view (the leader) or NOT_LEADER; nodes still joining answer UNAVAILABLE and do not
 * count. Resolves with the id of the first member that answered.
 */
async function findRunningCluster(node: HoldfastNode, ms: number): Promise<NodeId | undefined> {
  const deadline = Date.now() + ms
  const asked = new Set<NodeId>()
  while (Date.now() < deadline) {
    for (const peer of node.transport.connectedPeers()) {
      if (asked.has(peer)) continue
      asked.add(peer)
      try {
        await node.request(peer, STATUS, new Uint8Array(0), { timeoutMs: PEER_RPC_TIMEOUT_MS })
        return peer
      } catch (err) {
        if (isHoldfastError(err, 'NOT_LEADER')) return peer
        asked.delete(peer) // not answering yet (still starting, or a joiner like us): ask again
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return undefined
}

/** Joining, registration, promotion and the cluster view, around one node. */
class DaemonCore {
  readonly context: DaemonContext
  readonly #node: HoldfastNode
  readonly #config: StartConfig
  readonly #directory: Directory
  readonly #events = new EventEmitter()
  readonly #recent: HoldfastEvent[] = []
  readonly #timer: NodeJS.Timeout
  #busy = false
  #joinSettleUntil = 0

  constructor(node: HoldfastNode, config: StartConfig) {
    this.#node = node
    this.#config = config
    this.#directory = new Directory(node)
    node.on('event', (e: HoldfastEvent) => {
      this.#recent.push(e)
      if (this.#recent.length > RECENT_EVENTS) this.#recent.shift()
      this.#events.emit('event', e)
    })
    node.on('error', (err: unknown) => log('%s: node error: %O', node.id, err))
    node.handle(JOIN, (payload, from) => this.#serveJoin(payload, from))
    node.handle(STATUS, () => {
      // NOT_LEADER says "a member of a running cluster"; a node still joining says UNAVAILABLE.
      if (!this.#isMember() && node.status().role !== 'leader') throw new HoldfastError('UNAVAILABLE', 'not a member of the cluster yet')
      return encode(this.#leaderView())
    })
    node.handle(ADMIN, (payload) => this.#serveAdmin(payload))
    node.handle(EVENTS, () => encode(this.#recent))
    this.#timer = setInterval(() => void this.#maintain(), MAINTAIN_MS)
    this.#timer.unref()
    const self = this
    this.context = {
      node,
      cluster: config.cluster,
      url: config.advertiseUrl,
      token: config.token,
      maxValueBytes: config.maxValueBytes,
      memberUrl: (id) => self.#directory.member(id)?.url ?? (id === node.id ? config.advertiseUrl : undefined),
      clusterStatus: (options) => self.#clusterStatus(options?.signal),
      promote: (id) => self.#admin('promote', id),
      demote: (id) => self.#admin('demote', id),
      remove: (id) => self.#admin('remove', id),
      transfer: (id) => self.#admin('transfer', id),
      recentEvents: () => [...self.#recent],
      clusterEvents: (options) => self.#clusterEvents(options?.signal),
      events: this.#events,
    }
  }

  stopMaintaining(): void {
    clearInterval(this.#timer)
  }

  #isMember(id: NodeId = this.#node.id): boolean {
    const m = this.#node.membership()
    return m.voters.includes(id) || m.learners.includes(id)
  }

  /** One pass of the background work; passes never overlap. Failures are retried on the next pass. */
  async #maintain(): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      if (this.#isMember()) await this.#register()
      else if (Date.now() >= this.#joinSettleUntil) await this.#join()
      if (this.#node.status().role === 'leader') {
        if (!this.#directory.clusterRecord()) await this.#directory.putCluster({ voters: this.#config.voters }).catch(ignoreMismatch)
        await this.#promoteOne()
      }
    } catch (err) {
      log('%s: maintenance pass failed (retried): %s', this.#node.id, (err as Error).message)
    } finally {
      this.#busy = false
    }
  }

  /** Asks each connected peer to add this node; only the leader accepts. */
  async #join(): Promise<void> {
    const request = encode({ url: this.#config.advertiseUrl, learnerOnly: this.#config.learner })
    for (const peer of this.#node.transport.connectedPeers()) {
      try {
        await this.#node.request(peer, JOIN, request, { timeoutMs: PEER_RPC_TIMEOUT_MS })
        log('%s: %s added this node as a learner', this.#node.id, peer)
        // Ask no one else while the membership travels here: one cluster admits this node, once.
        this.#joinSettleUntil = Date.now() + JOIN_SETTLE_MS
        return
      } catch (err) {
        if (!isHoldfastError(err, 'NOT_LEADER')) log('%s: join via %s: %s', this.#node.id, peer, (err as Error).message)
      }
    }
  }

  async #serveJoin(payload: Uint8Array, from: NodeId): Promise<Uint8Array> {
    const req = decode(payload) as { url?: unknown; learnerOnly?: unknown }
    if (typeof req?.url !== 'string' || req.url.length > 512 || typeof req.learnerOnly !== 'boolean') {
      throw new HoldfastError('INVALID_ARGUMENT', 'a join request carries { url, learnerOnly }')
    }
    this.#assertLeader()
    if (this.#directory.isRemoved(from)) throw new HoldfastError('INVALID_MEMBERSHIP_CHANGE', `${from} was removed from the cluster and is not re-admitted`)
    if (!this.#isMember(from)) {
      await this.#node.changeMembership({ type: 'addLearner', node: from })
      this.#node.reportEvent({ type: 'x-member', action: 'joined', member: from })
    }
    const known = this.#directory.member(from)
    if (!known || known.url !== req.url) await this.#directory.putMember(from, { url: req.url, learnerOnly: known?.learnerOnly || req.learnerOnly })
    return encode({ ok: true })
  }

  /** Keeps this node's directory record (its URL) current. */
  async #register(): Promise<void> {
    const known = this.#directory.member(this.#node.id)
    const learnerOnly = (known?.learnerOnly ?? false) || this.#config.learner
    if (known && known.url === this.#config.advertiseUrl && known.learnerOnly === learnerOnly) return
    if (this.#node.status().leaderId === null) return
    await this.#directory.putMember(this.#node.id, { url: this.#config.advertiseUrl, learnerOnly })
  }

  /** On the leader: promotes the most caught-up eligible learner while voters are below target. */
  async #promoteOne(): Promise<void> {
    const membership = this.#node.membership()
    const target = this.#directory.clusterRecord()?.voters ?? this.#config.voters
    if (membership.voters.length >= target) return
    const status = this.#node.status()
    const eligible = status.members
      .filter((m) => !m.voter && m.reachable && m.matchIndex !== undefined && m.matchIndex + PROMOTE_SLACK >= status.commitIndex)
      .filter((m) => !this.#directory.member(m.id)?.learnerOnly && !this.#directory.isRemoved(m.id))
      .sort((a, b) => (b.matchIndex ?? 0) - (a.matchIndex ?? 0))
    const pick = eligible[0]
    if (!pick) return
    await this.#node.changeMembership({ type: 'promote', node: pick.id })
    log('%s: promoted %s (%d of %d voters)', this.#node.id, pick.id, membership.voters.length + 1, target)
    this.#node.reportEvent({ type: 'x-member', action: 'promoted', member: pick.id })
  }

  #assertLeader(): void {
    const s = this.#node.status()
    if (s.role !== 'leader') throw new HoldfastError('NOT_LEADER', 'this node does not lead', { leaderHint: s.leaderId ?? undefined })
  }

  /** Carries out an admin operation on the leader, forwarding it when this node follows. */
  async #admin(op: AdminOp, id: NodeId): Promise<void> {
    if (!NODE_ID.test(id)) throw new HoldfastError('INVALID_ARGUMENT', `"${id}" is not a node id (64 hex digits)`)
    const s = this.#node.status()
    if (s.role === 'leader') return this.#adminHere(op, id)
    if (s.leaderId === null) throw new HoldfastError('UNAVAILABLE', 'no leader is known; try again shortly')
    await this.#node.request(s.leaderId, ADMIN, encode({ op, id }), { timeoutMs: PEER_RPC_TIMEOUT_MS * 5 })
  }

  async #serveAdmin(payload: Uint8Array): Promise<Uint8Array> {
    const req = decode(payload) as { op?: unknown; id?: unknown }
    const ops: readonly string[] = ['promote', 'demote', 'remove', 'transfer']
    if (typeof req?.op !== 'string' || !ops.includes(req.op) || typeof req.id !== 'string' || !NODE_ID.test(req.id)) {
      throw new HoldfastError('INVALID_ARGUMENT', 'an admin request carries { op, id }')
    }
    this.#assertLeader()
    await this.#adminHere(req.op as AdminOp, req.id)
    return encode({ ok: true })
  }

  async #adminHere(op: AdminOp, id: NodeId): Promise<void> {
    this.#assertLeader()
    if (op === 'transfer') {
      if (!this.#node.membership().voters.includes(id)) throw new HoldfastError('INVALID_MEMBERSHIP_CHANGE', `${id} is not a voter`)
      if (id !== this.#node.id) await this.#node.transferLeadership(id)
      return
    }
    if (!this.#isMember(id)) throw new HoldfastError('INVALID_MEMBERSHIP_CHANGE', `${id} is not a member`)
    const record = this.#directory.member(id)
    // The directory first: the promoter must not undo a demotion, nor join re-admit a removed node.
    if (op === 'promote' && record?.learnerOnly) await this.#directory.putMember(id, { ...record, learnerOnly: false })
    if (op === 'demote' && record && !record.learnerOnly) await this.#directory.putMember(id, { ...record, learnerOnly: true })
    if (op === 'remove') await this.#directory.markRemoved(id)
    await this.#node.changeMembership({ type: op, node: id })
    this.#node.reportEvent({ type: 'x-member', action: op === 'remove' ? 'removed' : op === 'promote' ? 'promoted' : 'demoted', member: id })
  }

  /** The leader's view of the members (match indices, reachability) and who acts. */
  #leaderView(): LeaderView {
    this.#assertLeader()
    const s = this.#node.status()
    return {
      leader: this.#node.id,
      commitIndex: s.commitIndex,
      actingId: this.#node.isActing() ? this.#node.id : null,
      members: s.members.map((m) => ({ id: m.id, voter: m.voter, reachable: m.reachable, matchIndex: m.matchIndex ?? null })),
    }
  }

  async #clusterEvents(signal?: AbortSignal): Promise<readonly HoldfastEvent[]> {
    const own = [...this.#recent]
    const leader = this.#node.status().leaderId
    if (leader === null || leader === this.#node.id) return own
    let theirs: HoldfastEvent[] = []
    try {
      const got = decode(await this.#node.request(leader, EVENTS, new Uint8Array(0), { timeoutMs: PEER_RPC_TIMEOUT_MS, ...(signal ? { signal } : {}) }))
      if (Array.isArray(got)) theirs = got.filter((e): e is HoldfastEvent => typeof e === 'object' && e !== null && typeof e.type === 'string' && typeof e.time === 'number' && typeof e.node === 'string')
    } catch (err) {
      log('%s: leader events unavailable: %s', this.#node.id, (err as Error).message)
    }
    // Each node reports only its own events, so the two lists do not overlap.
    return [...own, ...theirs.filter((e) => e.node !== this.#node.id)].sort((a, b) => a.time - b.time).slice(-RECENT_EVENTS)
  }

  async #clusterStatus(signal?: AbortSignal): Promise<ClusterStatus> {
    const node = this.#node
    const s = node.status()
    let view: LeaderView | undefined
    if (s.role === 'leader') view = this.#leaderView()
    else if (s.leaderId !== null) {
      try {
        view = decode(await node.request(s.leaderId, STATUS, new Uint8Array(0), { timeoutMs: PEER_RPC_TIMEOUT_MS, ...(signal ? { signal } : {}) })) as LeaderView
      } catch (err) {
        log('%s: leader view unavailable: %s', node.id, (err as Error).message)
      }
    }
    const leader = view?.leader ?? s.leaderId
    const members: ClusterMember[] = (view?.members ?? s.members.map((m) => ({ id: m.id, voter: m.voter, reachable: m.reachable, matchIndex: m.matchIndex ?? null }))).map((m) => ({
      id: m.id,
      url: this.context.memberUrl(m.id) ?? null,
      role: m.id === leader ? 'leader' : m.voter ? 'follower' : 'learner',
      voter: m.voter,
      reachable: m.reachable,
      matchIndex: m.matchIndex,
      lag: view && m.matchIndex !== null ? Math.max(0, view.commitIndex - m.matchIndex) : null,
      learnerOnly: this.#directory.member(m.id)?.learnerOnly ?? false,
    }))
    return {
      id: node.id,
      url: this.#config.advertiseUrl,
      cluster: this.#config.cluster,
      role: s.role,
      term: s.term,
      leader,
      leaderUrl: leader === null ? null : (this.context.memberUrl(leader) ?? null),
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      acting: node.isActing(),
      leaderCheck: node.leaderCheck(),
      ready: node.ready(),
      fence: node.fence(),
      actingId: view?.actingId ?? null,
      targetVoters: this.#directory.clusterRecord()?.voters ?? this.#config.voters,
      view: view ? 'leader' : 'local',
      members,
    }
  }
}

interface LeaderView {
  readonly leader: NodeId
  readonly commitIndex: number
  readonly actingId: NodeId | null
  readonly members: ReadonlyArray<{ id: NodeId; voter: boolean; reachable: boolean; matchIndex: number | null }>
}

function encode(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v))
}

function decode(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw new HoldfastError('INVALID_ARGUMENT', 'the request is not JSON')
  }
}

function ignoreMismatch(err: unknown): void {
  if (!isHoldfastError(err, 'REVISION_MISMATCH')) throw err
}
