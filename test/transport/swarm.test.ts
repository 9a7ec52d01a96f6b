/**
 * The hyperswarm transport on a loopback DHT testnet: the shared Transport compliance suite, then
 * admission (wrong secrets, strangers, members by key), hostile peers (garbage, oversized frames,
 * data before admission, silence), backpressure, one connection per peer, and redials on the
 * injected clock. Hostile peers are raw hyperdht connections driven by hand.
 */
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import HyperDHT from 'hyperdht'
import t from 'tap'
import { createLoopbackTestnet } from '../../src/testing/testnet.js'
import { encodeEnvelope, encodeFrame } from '../../src/transport/codec.js'
import { SwarmTransport, startDhtBootstrap, type PeerProblem, type SwarmTransportOptions, type TransportClock } from '../../src/transport/swarm.js'
import { transportCompliance, until } from './compliance.js'
import { connectRawPeer } from './raw-peer.js'

const testnet = await createLoopbackTestnet(3)
const dhtNodes: HyperDHT[] = []
t.teardown(async () => {
  for (const d of dhtNodes) await d.destroy()
  await testnet.close()
})

const CLUSTER = 'swarm-test'
const SECRET = 'a long random secret for the swarm tests'

function open(options: Partial<SwarmTransportOptions> = {}): Promise<SwarmTransport> {
  return SwarmTransport.open({ keyPair: HyperDHT.keyPair(), cluster: CLUSTER, secret: SECRET, dht: { bootstrap: testnet.bootstrap, host: '127.0.0.1', firewalled: false }, ...options })
}

/** n transports that know each other as members, connected pairwise. */
async function group(n: number, options: Partial<SwarmTransportOptions> = {}): Promise<SwarmTransport[]> {
  const ts = await Promise.all(Array.from({ length: n }, () => open(options)))
  for (const x of ts) x.setMembers(ts.map((y) => y.id))
  await until(() => ts.every((x) => x.connectedPeers().length === n - 1), 20_000, `${n} transports connected`)
  return ts
}

transportCompliance(t, 'swarm', async (n) => {
  const transports = await group(n)
  return {
    transports,
    async disconnect(a, b) {
      const downs: string[] = []
      ;(b as SwarmTransport).onPeer((p, up) => !up && downs.push(p))
      ;(a as SwarmTransport).disconnect(b.id, 'test')
      await until(() => downs.includes(a.id), 10_000, 'b saw the disconnect')
    },
    async close() {
      await Promise.all(transports.map((x) => x.close()))
    },
  }
})

function problems(x: SwarmTransport): PeerProblem[] {
  const out: PeerProblem[] = []
  x.on('refused', (p: PeerProblem) => out.push(p))
  x.on('disconnected', (p: PeerProblem) => out.push(p))
  return out
}

const rawPeer = (target: SwarmTransport, options: { secret?: string; admit?: boolean } = {}): ReturnType<typeof connectRawPeer> => {
  const dht = new HyperDHT({ bootstrap: testnet.bootstrap, host: '127.0.0.1' })
  dhtNodes.push(dht)
  return connectRawPeer(dht, target, { cluster: CLUSTER, secret: options.secret ?? SECRET, admit: options.admit ?? true })
}

t.test('a node with the wrong secret is refused, learns nothing, and is then refused in the firewall', async (t) => {
  const [a, b] = await group(2)
  t.teardown(() => Promise.all([a!.close(), b!.close()]))
  const seenByA: string[] = []
  a!.onFrame((from) => seenByA.push(from))
  const intruder = await open({ secret: 'not the secret' })
  t.teardown(() => intruder.close())
  const intruderFrames: string[] = []
  intruder.onFrame((from) => intruderFrames.push(from))
  const refusals = problems(intruder)
  // A different secret is a different topic: it can only dial members it was told about.
  intruder.setMembers([a!.id, b!.id])
  await until(() => a!.stats.authFailures >= 1 && b!.stats.authFailures >= 1, 20_000, 'both members refused the intruder')
  await until(() => a!.stats.firewallRefusals >= 1, 20_000, 'its redials are refused in the firewall')
  t.ok(intruder.stats.refusedByPeers >= 1, 'the intruder was told it was refused')
  t.match(refusals[0], { code: 'AUTH_FAILED', by: 'them' })
  t.equal(intruder.stats.framesIn, 0, 'it received no frame beyond the handshake')
  t.same(intruderFrames, [], 'nothing reached its frame handler')
  t.same(intruder.connectedPeers(), [])
  t.notOk(a!.connectedPeers().includes(intruder.id))
  t.same(seenByA, [], 'the member got no frame from it')
  t.ok(a!.send(b!.id, Buffer.from('still fine')), 'the members keep talking')
})

t.test('members are admitted by key even when their secrets differ (rotation); strangers must prove it', async (t) => {
  const x = await open({ secret: 'old secret' })
  const y = await open({ secret: 'new secret' })
  t.teardown(() => Promise.all([x.close(), y.close()]))
  x.setMembers([x.id, y.id])
  y.setMembers([x.id, y.id])
  await until(() => x.connectedPeers().includes(y.id) && y.connectedPeers().includes(x.id), 20_000, 'connected')
  t.equal(x.stats.authFailures + y.stats.authFailures, 0, 'nobody was refused')

  // A stranger holding the secret is admitted at the transport level without being a member.
  const stranger = await rawPeer(y, { secret: 'new secret' })
  await until(() => y.stats.admitted >= 2, 10_000, 'stranger admitted')
  t.ok(stranger.received.some((m) => m.kind === 'joinResult' && m.body.accepted), 'the stranger heard it was accepted')
  stranger.conn.destroy()
})

t.test('hostile peers: garbage and oversized frames close only their own connection', async (t) => {
  const [a, b] = await group(2)
  t.teardown(() => Promise.all([a!.close(), b!.close()]))
  const seen = problems(a!)
  const got: string[] = []
  b!.onFrame((_from, f) => got.push(Buffer.from(f).toString()))

  // An admitted peer announces a frame far beyond the maximum.
  const big = await rawPeer(a!)
  t.ok(a!.connectedPeers().length === 2 || (await until(() => a!.connectedPeers().length === 2, 10_000, 'admitted').then(() => true)))
  const header = Buffer.alloc(4)
  header.writeUInt32BE(0xffff_fff0)
  big.conn.write(header)
  await big.closed
  t.equal(a!.stats.frameErrors, 1, 'counted')
  t.match(seen.at(-1), { code: 'DECODE_ERROR', by: 'us' })

  // A peer that sends cluster data before admission.
  const early = await rawPeer(a!, { admit: false })
  early.conn.write(encodeFrame(encodeEnvelope({ kind: 'raft', body: { type: 'heartbeat', from: 'x', to: a!.id, term: 99, commit: 0 } })))
  await early.closed
  t.match(seen.at(-1), { code: 'PROTOCOL_ERROR', by: 'them' })

  // A stranger announcing a frame larger than any handshake message.
  const beforeErrors = a!.stats.frameErrors
  const pushy = await rawPeer(a!, { admit: false })
  const bigHeader = Buffer.alloc(4)
  bigHeader.writeUInt32BE(64 * 1024)
  pushy.conn.write(bigHeader)
  await pushy.closed
  t.equal(a!.stats.frameErrors, beforeErrors + 1, 'a 64 KiB frame before admission is refused at its header')

  // Raw garbage instead of a handshake.
  const garbage = await rawPeer(a!, { admit: false })
  garbage.conn.write(randomBytes(64))
  await garbage.closed
  t.ok(a!.stats.frameErrors + a!.stats.protocolErrors >= 2, 'garbage counted')

  t.ok(a!.send(b!.id, Buffer.from('after')), 'a still sends to b')
  await until(() => got.includes('after'), 10_000, 'b received')
  t.ok(a!.connectedPeers().includes(b!.id), 'the honest link stayed up throughout')
})

t.test('a peer that stays silent is disconnected at the handshake deadline', async (t) => {
  const a = await open({ handshakeTimeoutMs: 300 })
  t.teardown(() => a.close())
  const silent = await rawPeer(a, { admit: false })
  await silent.closed
  t.equal(a.stats.handshakeTimeouts, 1)
})

t.test('backpressure: beyond the queue limit frames are dropped, never buffered without bound', async (t) => {
  const [a, b] = await group(2, { maxQueuedBytes: 256 * 1024 })
  t.teardown(() => Promise.all([a!.close(), b!.close()]))
  let bytes = 0
  let last = ''
  b!.onFrame((_f, frame) => {
    bytes += frame.byteLength
    if (frame.byteLength < 100) last = Buffer.from(frame).toString()
  })
  const chunk = new Uint8Array(64 * 1024)
  let refused = 0
  for (let i = 0; i < 400; i++) if (!a!.send(b!.id, chunk)) refused++
  t.ok(refused > 0, `sends refused once the queue was full (${refused} of 400)`)
  t.equal(a!.stats.droppedFrames, refused, 'each refusal counted')
  await until(() => bytes >= (400 - refused) * chunk.byteLength, 20_000, 'the queued frames drain')
  await until(() => a!.send(b!.id, Buffer.from('after the storm')) && false, 50, 'resend').catch(() => {})
  await until(() => last === 'after the storm', 10_000, 'later frames flow')
  t.ok(a!.connectedPeers().includes(b!.id))
})

t.test('backpressure: a steady stream of frames that keeps the queue under the limit is never dropped', async (t) => {
  // A window of frames in flight, the next sent as one arrives (as a snapshot transfer does): the
  // write queue never empties, so 'drain' may never come, but it never holds more than the window.
  const frame = 1024 * 1024
  const [a, b] = await group(2, { maxQueuedBytes: 4 * frame })
  t.teardown(() => Promise.all([a!.close(), b!.close()]))
  const total = 150
  let sent = 0
  let received = 0
  let refused = 0
  const chunk = new Uint8Array(frame)
  const sendNext = (): void => {
    if (sent >= total) return
    if (a!.send(b!.id, chunk)) sent++
    else refused++
  }
  b!.onFrame(() => {
    received++
    sendNext()
  })
  for (let i = 0; i < 3; i++) sendNext()
  await until(() => received === total || refused > 0, 60_000, 'every frame arrived')
  t.equal(refused, 0, 'no frame was refused')
  t.equal(a!.stats.droppedFrames, 0)
  t.equal(received, total)
})

t.test('one connection per peer: a restarted peer replaces the old connection', async (t) => {
  const keyPair = HyperDHT.keyPair()
  const a = await open()
  let b = await open({ keyPair })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  a.setMembers([a.id, b.id])
  b.setMembers([a.id, b.id])
  await until(() => a.connectedPeers().includes(b.id), 20_000, 'connected')
  // Both dial each other repeatedly; the pair still settles on one connection.
  for (let i = 0; i < 3; i++) {
    a.disconnect(b.id, 'churn')
    await until(() => a.connectedPeers().includes(b.id) && b.connectedPeers().includes(a.id), 20_000, `reconnected ${i}`)
  }
  const settled = (): boolean => a.openConnections === 1 && b.openConnections === 1 && a.connectedPeers().join() === b.id && b.connectedPeers().join() === a.id
  await until(settled, 20_000, 'one admitted connection each')
  t.ok(settled(), 'settled on one connection per side')

  // The peer restarts with the same key; a may not have noticed the old connection died.
  const seenByA: string[] = []
  a.onPeer((peer, up) => peer === b.id && seenByA.push(up ? 'up' : 'down'))
  await b.close()
  b = await open({ keyPair })
  b.setMembers([a.id, b.id])
  const got: string[] = []
  b.onFrame((_f, frame) => got.push(Buffer.from(frame).toString()))
  await until(() => a.send(b.id, Buffer.from('hello again')) && got.includes('hello again'), 20_000, 'a reaches the restarted b')
  await until(settled, 20_000, 'the old connection is gone')
  t.ok(settled(), 'one connection to the restarted peer')
  t.notMatch(seenByA.join(','), /up,up|down,down/, `up and down alternate, also when a newer connection replaces the old (${seenByA.join(',')}; ${a.stats.duplicateConnections} replaced)`)
  t.equal(seenByA.at(-1), 'up')
})

/** A clock the test advances by hand. */
class ManualClock implements TransportClock {
  t = 0
  readonly timers = new Map<number, { at: number; ms: number; fn: () => void }>()
  readonly delays: number[] = []
  #next = 1
  now(): number {
    return this.t
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++
    this.timers.set(id, { at: this.t + ms, ms, fn })
    this.delays.push(ms)
    return id
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number)
  }
  /** Runs the earliest timer whose delay matches `pick`, advancing time to it. */
  fireNext(pick: (ms: number) => boolean): number | undefined {
    const due = [...this.timers.entries()].filter(([, x]) => pick(x.ms)).sort((p, q) => p[1].at - q[1].at)[0]
    if (!due) return undefined
    this.timers.delete(due[0])
    this.t = Math.max(this.t, due[1].at)
    due[1].fn()
    return due[1].ms
  }
}

t.test('members are redialled on the injected clock, with backoff and jitter from the injected random source', async (t) => {
  const clock = new ManualClock()
  const keyPair = HyperDHT.keyPair()
  const policy = { baseMs: 200, maxMs: 1000 }
  const a = await open({ clock, rand: () => 0.5, backoff: policy })
  let b = await open({ keyPair })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  a.setMembers([a.id, b.id])
  b.setMembers([a.id, b.id])
  await until(() => a.connectedPeers().includes(b.id), 20_000, 'connected')
  await b.close()
  await until(() => !a.connectedPeers().includes(b.id), 20_000, 'a noticed')
  // The redial timers are the ones with the backoff policy's delays (rand 0.5: 3/4 of the ceiling).
  const isRedial = (ms: number): boolean => [150, 300, 600, 750].includes(ms)
  const fired: number[] = []
  for (let i = 0; i < 4; i++) {
    const ms = clock.fireNext(isRedial)
    t.ok(ms !== undefined, `redial ${i} was scheduled`)
    fired.push(ms!)
  }
  t.same(fired, [150, 300, 600, 750], 'exponential, capped, jittered by the injected source')
  t.equal(a.stats.redials, 4)
  b = await open({ keyPair })
  await until(() => {
    clock.fireNext(isRedial)
    return a.connectedPeers().includes(b.id)
  }, 20_000, 'a redial reaches the restarted peer')
  t.ok(true, 'reconnected')
})

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return port
}

t.test('a node can run the DHT bootstrap for a network without internet access', async (t) => {
  const boot = await startDhtBootstrap({ host: '127.0.0.1', port: await freeUdpPort() })
  const bootstrap = [`${boot.address.host}:${boot.address.port}`]
  const x = await SwarmTransport.open({ keyPair: HyperDHT.keyPair(), cluster: CLUSTER, secret: SECRET, dht: { bootstrap, host: '127.0.0.1' } })
  const y = await SwarmTransport.open({ keyPair: HyperDHT.keyPair(), cluster: CLUSTER, secret: SECRET, dht: { bootstrap, host: '127.0.0.1' } })
  t.teardown(async () => {
    await Promise.all([x.close(), y.close()])
    await boot.close()
  })
  // Neither knows the other's key: they find each other on the topic through the bootstrap node.
  await until(() => x.connectedPeers().includes(y.id) && y.connectedPeers().includes(x.id), 30_000, 'found each other')
  t.ok(x.stats.admitted >= 1 && y.stats.admitted >= 1, 'admitted by proof of the secret')
})
