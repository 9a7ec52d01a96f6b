/**
 * A hostile or hand-driven peer for swarm tests: a raw hyperdht connection to a SwarmTransport,
 * optionally taken through the admission handshake with a given secret, after which the test
 * writes whatever bytes it likes.
 */
import { randomBytes } from 'node:crypto'
import type HyperDHT from 'hyperdht'
import type { NoiseSecretStream } from 'hyperswarm'
import HyperDHTClass from 'hyperdht'
import { until } from '../../src/testing/cluster.js'
import { AuthHandshake, deriveClusterKeys, NONCE_BYTES } from '../../src/transport/auth.js'
import { decodeEnvelope, encodeEnvelope, encodeFrame, FrameDecoder } from '../../src/transport/codec.js'
import type { SwarmTransport } from '../../src/transport/swarm.js'

export interface RawPeer {
  conn: NoiseSecretStream
  /** Envelopes received (handshake included). */
  received: ReturnType<typeof decodeEnvelope>[]
  /** Resolves when the connection closes (a plain listener: events.once would reject on 'error'). */
  closed: Promise<void>
}

export async function connectRawPeer(dht: HyperDHT, target: SwarmTransport, options: { cluster: string; secret: string; admit: boolean }): Promise<RawPeer> {
  await target.flushed()
  const keyPair = HyperDHTClass.keyPair()
  const conn = dht.connect(Buffer.from(target.id, 'hex'), { keyPair })
  // The connection's errors are expected (the target resets it); 'close' is what the tests await.
  conn.on('error', () => {})
  const closed = new Promise<void>((resolve) => conn.on('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    conn.once('open', () => resolve())
    conn.once('close', () => reject(new Error('closed before opening')))
  })
  const received: ReturnType<typeof decodeEnvelope>[] = []
  if (!options.admit) return { conn, received, closed }
  const hs = new AuthHandshake({
    initiator: true,
    localKey: keyPair.publicKey,
    remoteKey: conn.remotePublicKey,
    handshakeHash: conn.handshakeHash!,
    keys: deriveClusterKeys(options.cluster, options.secret),
    isMember: () => false,
    nonce: randomBytes(NONCE_BYTES),
  })
  let done: true | object | undefined
  const decoder = new FrameDecoder()
  const send = (s: ReturnType<AuthHandshake['start']>): void => {
    for (const m of s.send) conn.write(encodeFrame(encodeEnvelope(m)))
    if (s.outcome !== undefined && done === undefined) done = s.outcome
  }
  conn.on('data', (chunk: Uint8Array) => {
    for (const f of decoder.push(chunk)) {
      const m = decodeEnvelope(f)
      received.push(m)
      if (done === undefined) send(hs.receive(m))
    }
  })
  send(hs.start())
  await until(() => done !== undefined || conn.destroyed, 10_000, 'raw peer handshake')
  return { conn, received, closed }
}
