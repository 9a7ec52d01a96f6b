/**
 * Hostile peers against a daemon's peer port, run by the driver in the client namespace: a raw
 * hyperdht connection to the daemon's node key, then one misbehaviour per attack (see
 * PeerAttack['kind']). An attack succeeds for the daemon when the connection is refused or closed
 * by it and the attacker was never admitted (or, admitted with the right secret, was thrown out
 * for its garbage); the run checks separately that nothing changed and nothing crashed.
 */
import { randomBytes } from 'node:crypto'
import HyperDHT from 'hyperdht'
import { AuthHandshake, deriveClusterKeys, NONCE_BYTES } from '../../src/transport/auth.js'
import { decodeEnvelope, encodeEnvelope, encodeEnvelopeRaw, encodeFrame, FrameDecoder } from '../../src/transport/codec.js'
import type { PeerAttack, PeerAttackResult } from './protocol.js'

/** Longer than the daemon's handshake timeout (5 s), so a stalled stranger is seen closed. */
const CLOSE_WAIT_MS = 8_000

export async function peerAttack(a: PeerAttack): Promise<PeerAttackResult> {
  const dht = new HyperDHT({ bootstrap: [a.dhtBootstrap], host: a.localHost, firewalled: false })
  try {
    return await attack(dht, a)
  } finally {
    await dht.destroy().catch(() => {})
  }
}

async function attack(dht: HyperDHT, a: PeerAttack): Promise<PeerAttackResult> {
  const keyPair = HyperDHT.keyPair()
  const conn = dht.connect(Buffer.from(a.targetId, 'hex'), { keyPair })
  conn.on('error', () => {})
  let closed = false
  const closedP = new Promise<void>((resolve) =>
    conn.on('close', () => {
      closed = true
      resolve()
    }),
  )
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => conn.once('open', () => resolve(true))),
    closedP.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000)),
  ])
  const result = (refused: boolean, admitted: boolean, detail: string): PeerAttackResult => ({ kind: a.kind, refused, admitted, detail })
  if (!opened) {
    conn.destroy()
    // Refused before any byte (the firewall denies keys that failed recently), or unreachable.
    return result(closed, false, closed ? 'closed before opening' : 'no connection within 15 s')
  }
  const waitClosed = (ms = CLOSE_WAIT_MS): Promise<boolean> => Promise.race([closedP.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])

  if (a.kind === 'randomFrames') {
    conn.write(randomBytes(2000))
    const c = await waitClosed()
    conn.destroy()
    return result(c, false, c ? 'closed on random bytes' : 'still open after random bytes')
  }
  if (a.kind === 'strangerRaft') {
    // A raft envelope where the handshake's first message belongs.
    conn.write(encodeFrame(encodeEnvelopeRaw('raft', randomBytes(120))))
    const c = await waitClosed()
    conn.destroy()
    return result(c, false, c ? 'closed on a raft frame before admission' : 'still open after a raft frame')
  }
  if (a.kind === 'truncatedFrame') {
    // A handshake-sized frame header, then a few of its bytes, then silence: the handshake deadline ends it.
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1000)
    conn.write(Buffer.concat([header, randomBytes(10)]))
    const c = await waitClosed()
    conn.destroy()
    return result(c, false, c ? 'closed after a truncated frame' : 'still open after a truncated frame')
  }

  // The rest go through the admission handshake, with the wrong secret or the right one.
  const secret = a.kind === 'wrongSecret' ? `${a.secret}-wrong` : a.secret
  const hs = new AuthHandshake({
    initiator: true,
    localKey: keyPair.publicKey,
    remoteKey: conn.remotePublicKey,
    handshakeHash: conn.handshakeHash!,
    keys: deriveClusterKeys(a.cluster, secret),
    isMember: () => false,
    nonce: randomBytes(NONCE_BYTES),
  })
  let outcome: true | object | undefined
  const decoder = new FrameDecoder()
  const send = (s: ReturnType<AuthHandshake['start']>): void => {
    for (const m of s.send) if (!conn.destroyed) conn.write(encodeFrame(encodeEnvelope(m)))
    if (s.outcome !== undefined && outcome === undefined) outcome = s.outcome
  }
  conn.on('data', (chunk: Uint8Array) => {
    try {
      for (const f of decoder.push(chunk)) if (outcome === undefined) send(hs.receive(decodeEnvelope(f)))
    } catch {
      conn.destroy()
    }
  })
  send(hs.start())
  const deadline = Date.now() + 10_000
  while (outcome === undefined && !closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  const admitted = outcome === true
  if (a.kind === 'wrongSecret') {
    // Raft messages anyway, as if admitted.
    if (!conn.destroyed) for (let i = 0; i < 5; i++) conn.write(encodeFrame(encodeEnvelopeRaw('raft', randomBytes(80))))
    const c = await waitClosed()
    conn.destroy()
    return result(!admitted && (c || outcome !== undefined), admitted, `handshake ${admitted ? 'admitted' : outcome === undefined ? 'unfinished' : 'refused'}, connection ${c ? 'closed' : 'open'}`)
  }
  if (!admitted) {
    conn.destroy()
    return result(false, false, `the right secret was not admitted (${JSON.stringify(outcome)})`)
  }
  if (a.kind === 'oversizedFrame') {
    const header = Buffer.alloc(4)
    header.writeUInt32BE(0xffff_fff0)
    conn.write(header)
  } else {
    conn.write(encodeFrame(randomBytes(300)))
  }
  const c = await waitClosed()
  conn.destroy()
  return result(c, true, c ? 'admitted, then closed for its frame' : 'admitted and still open after its frame')
}
