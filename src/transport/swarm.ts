import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import createDebug from 'debug'
import HyperDHT from 'hyperdht'
import Hyperswarm, { type Discovery, type NoiseSecretStream } from 'hyperswarm'
import type { NodeId } from '../core/types.js'
import { HoldfastError } from '../errors.js'
import { AuthHandshake, NONCE_BYTES, deriveClusterKeys, type ClusterKeys, type HandshakeStep } from './auth.js'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js'
import { decodeEnvelope, encodeEnvelope } from './codec.js'
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from './frames.js'
import type { Transport } from './types.js'

const log = createDebug('holdfast:swarm')

/** Largest frame accepted before a peer is admitted: the handshake's messages are a few hundred bytes. */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096

/** Topic lookups while alone: soon at first, then every 30 s at most. */
const REDISCOVERY_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 }

/** An ed25519 key pair: the node's identity and its Noise key. */
export interface KeyPair {
  readonly publicKey: Uint8Array
  readonly secretKey: Uint8Array
}

/** A DHT bootstrap node, as "host:port" or an object. */
export type DhtAddress = string | { host: string; port: number }

/** Timers, injectable so tests can drive reconnects. */
export interface TransportClock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const realClock: TransportClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
}

export interface SwarmTransportOptions {
  keyPair: KeyPair
  /** The cluster's name: nodes of different clusters never admit each other. */
  cluster: string
  /** The cluster's shared secret. The swarm topic and the join proofs derive from it. */
  secret: string | Uint8Array
  /**
   * The DHT this node uses. Either the addresses of bootstrap nodes (a LAN runs its own, see
   * startDhtBootstrap) and optionally the local address to bind, or an existing HyperDHT instance
   * (which close() leaves running). Without either, hyperswarm's public bootstrap nodes are used.
   */
  dht?:
    | {
        bootstrap?: DhtAddress[]
        host?: string
        port?: number
        /**
         * Whether this node is behind a NAT or firewall that peers cannot dial directly. Set it to
         * false on a LAN, in a data centre and on loopback: hyperdht then connects directly instead
         * of holepunching, which between two "firewalled" nodes on one network can take seconds
         * or fail. @default true (hyperdht's own default, right for nodes behind home or mobile NAT)
         */
        firewalled?: boolean
      }
    | { node: unknown }
  /** Largest frame sent or accepted. @default 16 MiB */
  maxFrameBytes?: number
  /** Bytes queued on one connection beyond which frames are dropped (Raft resends). @default 32 MiB */
  maxQueuedBytes?: number
  /** A peer that has not completed the admission handshake by then is disconnected. @default 5000 */
  handshakeTimeoutMs?: number
  /** A connection that has received nothing (not even keep-alives) for this long is closed. @default 5000 */
  idleTimeoutMs?: number
  /** How long a key that failed the admission handshake is refused in the firewall. @default 60000 */
  denyMs?: number
  /** Reconnect delays to members. @default { baseMs: 200, maxMs: 5000 } */
  backoff?: BackoffPolicy
  /** Random numbers in [0, 1) for reconnect jitter. @default Math.random */
  rand?: () => number
  /** Timers for reconnects, handshake deadlines and the deny list. @default real timers */
  clock?: TransportClock
}

/** Counters of one swarm transport, for metrics and tests. */
export interface SwarmTransportStats {
  /** Connections admitted (both sides completed the handshake). */
  admitted: number
  /** Peers we refused: neither a member nor holding the secret. */
  authFailures: number
  /** Times a peer refused us. */
  refusedByPeers: number
  /**
   * Connection attempts refused in hyperswarm's firewall (keys that recently failed the
   * handshake). About one per key and deny period: after the first, hyperswarm bans the key
   * itself and refuses its dials before asking us.
   */
  firewallRefusals: number
  /** Connections closed because the byte stream did not decode as frames (oversized or garbage). */
  frameErrors: number
  /** Connections closed for a protocol violation, by the handshake or by disconnect(). */
  protocolErrors: number
  /** Connections that did not finish the handshake in time. */
  handshakeTimeouts: number
  /** Second connections to an already connected peer; the newer one is kept. */
  duplicateConnections: number
  /** Frames dropped because their connection's queue was full. */
  droppedFrames: number
  framesIn: number
  framesOut: number
  /** Redials of members. */
  redials: number
  /** Topic lookups repeated while the node had no peer. */
  rediscoveries: number
}

/** Why the transport closed a connection or refused a peer; emitted as 'refused' and 'disconnected'. */
export interface PeerProblem {
  peer: NodeId
  code: 'AUTH_FAILED' | 'PROTOCOL_ERROR' | 'DECODE_ERROR' | 'TIMEOUT'
  /** 'us' when this node refused or closed, 'them' when the peer did. */
  by: 'us' | 'them'
  reason: string
}

/** A live, admitted connection to a peer. */
interface Link {
  readonly conn: NoiseSecretStream
  readonly peer: NodeId
  /** Bytes written while the stream asked us to wait for 'drain' (an upper bound of its queue). */
  queuedBytes: number
  congested: boolean
}

/**
 * The bytes waiting in the connection's write queue. The stream (streamx) counts them; 'drain'
 * comes only once the queue is empty, which a steady stream of frames (a snapshot transfer) may
 * never let happen, so a count that only resets on 'drain' grows past the limit while the queue
 * itself stays small, and frames were dropped for nothing. Falls back to that upper bound if the
 * stream does not expose its count.
 */
function queuedBytes(link: Link): number {
  const buffered = (link.conn as unknown as { _writableState?: { buffered?: unknown } })._writableState?.buffered
  return typeof buffered === 'number' ? buffered : link.queuedBytes
}

/**
 * The production Transport: peers found on a hyperswarm topic derived from the cluster name and
 * secret, connections authenticated by their Noise keys, and admission decided by auth.ts:
 * members by key, anyone else by proving the secret on that very connection.
 *
 * - Hyperswarm's firewall refuses keys that failed the handshake in the last `denyMs`, before any
 *   bytes flow. Other unknown keys get the handshake and nothing else: until both sides have
 *   admitted each other, the only frames sent or accepted are the handshake's, so no cluster data
 *   reaches a stranger. (The firewall sees only a key, so it cannot check a proof itself.)
 * - Frames are length-prefixed (frames.ts) and checked against the maximum before anything is
 *   buffered. A byte stream that does not decode closes that one connection.
 * - One connection per peer: hyperswarm resolves simultaneous dials; if a second admitted
 *   connection still appears (the peer restarted and redialled before we noticed the old one
 *   died), the newer one wins.
 * - Members lost are redialled with exponential backoff and jitter from the injected clock and
 *   random source, independent of hyperswarm's own slower retry schedule.
 *
 * Events: 'refused' (PeerProblem: a peer failed admission, or refused us), 'disconnected'
 * (PeerProblem: a connection closed for a fault).
 */
export class SwarmTransport extends EventEmitter implements Transport {
  readonly id: NodeId
  readonly stats: SwarmTransportStats = {
    admitted: 0,
    authFailures: 0,
    refusedByPeers: 0,
    firewallRefusals: 0,
    frameErrors: 0,
    protocolErrors: 0,
    handshakeTimeouts: 0,
    duplicateConnections: 0,
    droppedFrames: 0,
    framesIn: 0,
    framesOut: 0,
    redials: 0,
    rediscoveries: 0,
  }
  readonly #keys: ClusterKeys
  readonly #keyPair: KeyPair
  readonly #swarm: Hyperswarm
  readonly #ownedDht: HyperDHT | null
  readonly #maxFrameBytes: number
  readonly #maxQueuedBytes: number
  readonly #handshakeTimeoutMs: number
  readonly #idleTimeoutMs: number
  readonly #denyMs: number
  readonly #backoff: BackoffPolicy
  readonly #rand: () => number
  readonly #clock: TransportClock
  readonly #links = new Map<NodeId, Link>()
  readonly #members = new Set<NodeId>()
  /** Keys refused in the firewall, until the recorded time. */
  readonly #denied = new Map<NodeId, number>()
  /** Pending redial per member, with its attempt count. */
  readonly #redials = new Map<NodeId, { attempt: number; timer: unknown }>()
  readonly #timers = new Set<unknown>()
  #onFrame: (from: NodeId, frame: Uint8Array) => void = () => {}
  #onPeer: (peer: NodeId, up: boolean) => void = () => {}
  #closed = false
  #discovery: Discovery | undefined

  private constructor(options: SwarmTransportOptions, swarm: Hyperswarm, ownedDht: HyperDHT | null) {
    super()
    this.#keyPair = options.keyPair
    this.id = Buffer.from(options.keyPair.publicKey).toString('hex')
    this.#keys = deriveClusterKeys(options.cluster, options.secret)
    this.#swarm = swarm
    this.#ownedDht = ownedDht
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 32 * 1024 * 1024
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 5000
    this.#denyMs = options.denyMs ?? 60_000
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF
    this.#rand = options.rand ?? Math.random
    this.#clock = options.clock ?? realClock
    swarm.on('connection', (conn) => this.#accept(conn))
  }

  /** Opens the transport: joins the cluster's topic as client and server. */
  static async open(options: SwarmTransportOptions): Promise<SwarmTransport> {
    if (typeof options.cluster !== 'string' || options.cluster.length === 0) throw new HoldfastError('INVALID_ARGUMENT', 'cluster must be a non-empty string')
    const secretLength = typeof options.secret === 'string' ? Buffer.byteLength(options.secret) : options.secret?.byteLength
    if (!secretLength) throw new HoldfastError('INVALID_ARGUMENT', 'secret must not be empty')
    if (options.keyPair?.publicKey?.byteLength !== 32 || options.keyPair.secretKey?.byteLength !== 64) {
      throw new HoldfastError('INVALID_ARGUMENT', 'keyPair must be an ed25519 key pair (32-byte public key, 64-byte secret key)')
    }
    let ownedDht: HyperDHT | null = null
    let dht: HyperDHT
    if (options.dht && 'node' in options.dht) {
      dht = options.dht.node as HyperDHT
    } else {
      const d = options.dht ?? {}
      ownedDht = new HyperDHT({
        ...(d.bootstrap ? { bootstrap: d.bootstrap } : {}),
        ...(d.host ? { host: d.host } : {}),
        ...(d.port ? { port: d.port } : {}),
        ...(d.firewalled !== undefined ? { firewalled: d.firewalled } : {}),
      })
      dht = ownedDht
    }
    let transport: SwarmTransport | undefined
    const keyPair = { publicKey: Buffer.from(options.keyPair.publicKey), secretKey: Buffer.from(options.keyPair.secretKey) }
    const swarm = new Hyperswarm({ keyPair, dht, firewall: (key) => transport!.#firewall(key) })
    transport = new SwarmTransport(options, swarm, ownedDht)
    transport.#discovery = swarm.join(transport.#keys.topic, { server: true, client: true })
    transport.#scheduleRediscovery(0)
    return transport
  }

  /** Resolves once this node is announced on the topic and has tried the peers found so far. */
  async flushed(): Promise<void> {
    await this.#discovery?.flushed()
    await this.#swarm.flush()
  }

  /**
   * Sets the cluster's members (their ids are their public keys in hex). Members are admitted by
   * key and redialled when their connection drops; anyone else must prove the secret.
   */
  setMembers(ids: Iterable<NodeId>): void {
    const next = new Set([...ids].filter((id) => id !== this.id && /^[0-9a-f]{64}$/.test(id)))
    for (const id of this.#members) {
      if (next.has(id)) continue
      this.#members.delete(id)
      this.#cancelRedial(id)
      this.#swarm.leavePeer(Buffer.from(id, 'hex'))
    }
    for (const id of next) {
      if (this.#members.has(id)) continue
      this.#members.add(id)
      // A member we could not reach before is worth trying again now.
      this.#denied.delete(id)
      this.#swarm.peers.get(id)?.ban(false)
      this.#swarm.joinPeer(Buffer.from(id, 'hex'))
      this.#scheduleRedial(id)
    }
  }

  /** Connections open in hyperswarm, admitted or not (for tests: one per peer once settled). */
  get openConnections(): number {
    return this.#swarm.connections.size
  }

  send(to: NodeId, frame: Uint8Array): boolean {
    const link = this.#links.get(to)
    if (!link || this.#closed) return false
    if (link.congested && queuedBytes(link) + frame.byteLength > this.#maxQueuedBytes) {
      this.stats.droppedFrames++
      return false
    }
    this.#write(link.conn, frame, link)
    return true
  }

  onFrame(handler: (from: NodeId, frame: Uint8Array) => void): void {
    this.#onFrame = handler
  }

  onPeer(handler: (peer: NodeId, up: boolean) => void): void {
    this.#onPeer = handler
  }

  connectedPeers(): NodeId[] {
    return [...this.#links.keys()]
  }

  disconnect(peer: NodeId, reason: string): void {
    const link = this.#links.get(peer)
    if (!link) return
    this.stats.protocolErrors++
    this.#problem('disconnected', { peer, code: 'PROTOCOL_ERROR', by: 'us', reason })
    link.conn.destroy(new HoldfastError('PROTOCOL_ERROR', reason))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const t of this.#timers) this.#clock.clearTimeout(t)
    this.#timers.clear()
    for (const r of this.#redials.values()) this.#clock.clearTimeout(r.timer)
    this.#redials.clear()
    await this.#swarm.destroy()
    if (this.#ownedDht) await this.#ownedDht.destroy()
  }

  // ------------------------------------------------------------------ admission

  /** Hyperswarm's firewall, for dials in both directions: true refuses the key before any byte flows. */
  #firewall(remoteKey: Buffer): boolean {
    const id = remoteKey.toString('hex')
    if (this.#closed) return true
    const until = this.#denied.get(id)
    if (until === undefined) return false
    if (this.#clock.now() < until) {
      this.stats.firewallRefusals++
      return true
    }
    this.#denied.delete(id)
    return false
  }

  /** Refuses `id` in the firewall for denyMs; afterwards hyperswarm's ban on it is lifted. */
  #deny(id: NodeId): void {
    if (this.#members.has(id)) return
    this.#denied.set(id, this.#clock.now() + this.#denyMs)
    this.#after(this.#denyMs, () => {
      this.#denied.delete(id)
      this.#swarm.peers.get(id)?.ban(false)
    })
  }

  #accept(conn: NoiseSecretStream): void {
    const peer = conn.remotePublicKey.toString('hex')
    conn.on('error', (err: Error) => log('%s: connection to %s: %s', this.id.slice(0, 8), peer.slice(0, 8), err.message))
    if (this.#closed) return conn.destroy()
    conn.setKeepAlive(Math.max(100, Math.floor(this.#idleTimeoutMs / 4)))
    conn.setTimeout(this.#idleTimeoutMs)

    // Until the peer is admitted, only small handshake frames are accepted: a stranger cannot make
    // us buffer (or decode) megabytes.
    const decoder = new FrameDecoder({ maxFrameBytes: HANDSHAKE_MAX_FRAME_BYTES })
    let link: Link | undefined
    let handshake: AuthHandshake | undefined
    let ended = false
    const deadline = this.#after(this.#handshakeTimeoutMs, () => {
      if (link || ended) return
      this.stats.handshakeTimeouts++
      this.#problem('disconnected', { peer, code: 'TIMEOUT', by: 'us', reason: 'the admission handshake did not complete in time' })
      conn.destroy(new HoldfastError('TIMEOUT', 'handshake timeout'))
    })

    const step = (s: HandshakeStep): void => {
      for (const m of s.send) this.#write(conn, encodeEnvelope(m))
      if (s.outcome === undefined) return
      ended = true
      this.#clock.clearTimeout(deadline)
      this.#timers.delete(deadline)
      if (s.outcome === true) {
        link = this.#admit(conn, peer)
        decoder.maxFrameBytes = this.#maxFrameBytes
        return
      }
      const f = s.outcome
      if (f.code === 'AUTH_FAILED' && f.by === 'us') {
        this.stats.authFailures++
        this.#deny(peer)
      } else if (f.code === 'AUTH_FAILED') {
        this.stats.refusedByPeers++
      } else {
        this.stats.protocolErrors++
      }
      this.#problem('refused', { peer, code: f.code, by: f.by, reason: f.reason })
      // Let the refusal reach the peer, then close.
      conn.end()
      this.#after(1000, () => conn.destroy())
    }

    const onFrame = (frame: Uint8Array): void => {
      if (conn.destroyed) return
      if (link) {
        this.stats.framesIn++
        this.#onFrame(peer, frame)
        return
      }
      if (!handshake || ended) return
      let message
      try {
        message = decodeEnvelope(frame)
      } catch (err) {
        this.stats.frameErrors++
        this.#problem('disconnected', { peer, code: 'DECODE_ERROR', by: 'us', reason: (err as Error).message })
        return conn.destroy(err as Error)
      }
      step(handshake.receive(message))
    }
    conn.on('data', (chunk: Uint8Array) => {
      if (conn.destroyed) return
      try {
        decoder.push(chunk, onFrame)
      } catch (err) {
        this.stats.frameErrors++
        this.#problem('disconnected', { peer, code: 'DECODE_ERROR', by: 'us', reason: (err as Error).message })
        conn.destroy(err as Error)
      }
    })

    conn.on('close', () => {
      ended = true
      this.#clock.clearTimeout(deadline)
      this.#timers.delete(deadline)
      if (link && this.#links.get(peer) === link) {
        this.#links.delete(peer)
        this.#onPeer(peer, false)
        this.#scheduleRedial(peer)
      }
    })

    const begin = (): void => {
      if (conn.destroyed || this.#closed || !conn.handshakeHash) return void conn.destroy()
      handshake = new AuthHandshake({
        initiator: conn.isInitiator,
        localKey: this.#keyPair.publicKey,
        remoteKey: conn.remotePublicKey,
        handshakeHash: conn.handshakeHash,
        keys: this.#keys,
        isMember: (id) => this.#members.has(id),
        nonce: randomBytes(NONCE_BYTES),
      })
      step(handshake.start())
    }
    if (conn.handshakeHash) begin()
    else conn.opened.then(begin, () => conn.destroy())
  }

  #admit(conn: NoiseSecretStream, peer: NodeId): Link {
    const link: Link = { conn, peer, queuedBytes: 0, congested: false }
    conn.on('drain', () => {
      link.congested = false
      link.queuedBytes = 0
    })
    this.stats.admitted++
    this.#cancelRedial(peer)
    const old = this.#links.get(peer)
    this.#links.set(peer, link)
    if (old) {
      // The newer connection wins: the peer dialled again, so it has given up on the old one. Frames
      // in flight on the old one are lost: report it down and up again, so requests waiting for an
      // answer on it fail at once (CONNECTION_LOST) instead of at their deadline.
      this.stats.duplicateConnections++
      old.conn.destroy(new HoldfastError('CLOSED', 'replaced by a newer connection'))
      this.#onPeer(peer, false)
    }
    this.#onPeer(peer, true)
    return link
  }

  #write(conn: NoiseSecretStream, payload: Uint8Array, link?: Link): void {
    const bytes = encodeFrame(payload, this.#maxFrameBytes)
    this.stats.framesOut++
    const more = conn.write(bytes)
    if (!link) return
    if (link.congested) link.queuedBytes += bytes.byteLength
    else if (!more) {
      link.congested = true
      link.queuedBytes = bytes.byteLength
    }
  }

  // ------------------------------------------------------------------ reconnects

  #scheduleRedial(peer: NodeId): void {
    if (this.#closed || !this.#members.has(peer) || this.#links.has(peer) || this.#redials.has(peer)) return
    this.#armRedial(peer, 0)
  }

  #armRedial(peer: NodeId, attempt: number): void {
    const timer = this.#clock.setTimeout(() => {
      this.#redials.delete(peer)
      if (this.#closed || !this.#members.has(peer) || this.#links.has(peer)) return
      this.stats.redials++
      // joinPeer asks hyperswarm for a dial now (unless one is queued or connected), whatever its own schedule.
      this.#swarm.joinPeer(Buffer.from(peer, 'hex'))
      this.#armRedial(peer, attempt + 1)
    }, backoffDelay(attempt, this.#rand, this.#backoff))
    this.#redials.set(peer, { attempt, timer })
  }

  /**
   * Hyperswarm looks the topic up when joining and then every ten minutes, so two nodes that start
   * together can miss each other's announcements, and it stops retrying a topic peer after a few
   * failures. While this node has no peer at all, or knows no members (a joiner, which cannot
   * redial members by key), it looks again, with backoff up to 30 s.
   */
  #scheduleRediscovery(attempt: number): void {
    this.#after(backoffDelay(attempt, this.#rand, REDISCOVERY_BACKOFF), () => {
      if (this.#closed) return
      if (this.#links.size === 0 || this.#members.size === 0) {
        this.stats.rediscoveries++
        this.#discovery?.refresh().catch((err: Error) => log('%s: rediscovery failed: %s', this.id.slice(0, 8), err.message))
        this.#scheduleRediscovery(attempt + 1)
      } else {
        this.#scheduleRediscovery(0)
      }
    })
  }

  #cancelRedial(peer: NodeId): void {
    const r = this.#redials.get(peer)
    if (!r) return
    this.#clock.clearTimeout(r.timer)
    this.#redials.delete(peer)
  }

  #after(ms: number, fn: () => void): unknown {
    const t = this.#clock.setTimeout(() => {
      this.#timers.delete(t)
      fn()
    }, ms)
    this.#timers.add(t)
    return t
  }

  #problem(event: 'refused' | 'disconnected', p: PeerProblem): void {
    log('%s: %s %s: %s (%s, by %s)', this.id.slice(0, 8), event, p.peer.slice(0, 8), p.reason, p.code, p.by)
    this.emit(event, p)
  }
}

/** Opens a swarm transport. See SwarmTransportOptions. */
export function createSwarmTransport(options: SwarmTransportOptions): Promise<SwarmTransport> {
  return SwarmTransport.open(options)
}

/**
 * Starts a DHT bootstrap node, for networks without internet access (`holdfast dht`): other nodes
 * list its address in `dht.bootstrap`. Returns the node and a function that stops it.
 */
export async function startDhtBootstrap(options: { host: string; port: number }): Promise<{ address: { host: string; port: number }; close: () => Promise<void> }> {
  const node = HyperDHT.bootstrapper(options.port, options.host)
  await node.ready()
  return { address: { host: options.host, port: node.address().port }, close: () => node.destroy() }
}
