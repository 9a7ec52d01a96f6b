/**
 * The admission handshake (src/transport/auth.ts) as pure logic: two AuthHandshake objects talk
 * to each other directly, with the facts a Noise connection would give them.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { AuthHandshake, deriveClusterKeys, joinProof, NONCE_BYTES, type HandshakeStep } from '../../src/transport/auth.js'
import { backoffDelay } from '../../src/transport/backoff.js'
import type { WireMessage } from '../../src/transport/wire-types.js'

const A_KEY = Buffer.alloc(32, 0xa1)
const B_KEY = Buffer.alloc(32, 0xb2)
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex')

interface Side {
  h: AuthHandshake
  outcome?: HandshakeStep['outcome']
  inbox: WireMessage[]
}

function pair(opts: { secretA?: string; secretB?: string; clusterA?: string; clusterB?: string; aKnowsB?: boolean; bKnowsA?: boolean; hash?: Buffer } = {}): { a: Side; b: Side } {
  const handshakeHash = opts.hash ?? randomBytes(64)
  const mk = (initiator: boolean, local: Buffer, remote: Buffer, cluster: string, secret: string, knows: boolean): Side => ({
    h: new AuthHandshake({
      initiator,
      localKey: local,
      remoteKey: remote,
      handshakeHash,
      keys: deriveClusterKeys(cluster, secret),
      isMember: (id) => knows && id === hex(remote),
      nonce: randomBytes(NONCE_BYTES),
    }),
    inbox: [],
  })
  return {
    a: mk(true, A_KEY, B_KEY, opts.clusterA ?? 'c', opts.secretA ?? 'secret', opts.aKnowsB ?? false),
    b: mk(false, B_KEY, A_KEY, opts.clusterB ?? 'c', opts.secretB ?? 'secret', opts.bKnowsA ?? false),
  }
}

/** Runs the handshake to quiescence, delivering messages in order; returns every message sent. */
function run(a: Side, b: Side, tamper?: (from: 'a' | 'b', m: WireMessage) => WireMessage): WireMessage[] {
  const sent: WireMessage[] = []
  const post = (from: Side, to: Side, s: HandshakeStep): void => {
    if (s.outcome !== undefined && from.outcome === undefined) from.outcome = s.outcome
    for (const m of s.send) {
      const x = tamper ? tamper(from === a ? 'a' : 'b', m) : m
      sent.push(x)
      to.inbox.push(x)
    }
  }
  post(a, b, a.h.start())
  post(b, a, b.h.start())
  for (let guard = 0; guard < 20 && (a.inbox.length || b.inbox.length); guard++) {
    // The peer that has already failed has closed the connection: it takes nothing more.
    while (a.inbox.length) {
      const m = a.inbox.shift()!
      if (a.outcome === undefined) post(a, b, a.h.receive(m))
    }
    while (b.inbox.length) {
      const m = b.inbox.shift()!
      if (b.outcome === undefined) post(b, a, b.h.receive(m))
    }
  }
  return sent
}

t.test('two strangers with the same secret admit each other; the proofs differ per side', async (t) => {
  const { a, b } = pair()
  const sent = run(a, b)
  t.equal(a.outcome, true)
  t.equal(b.outcome, true)
  const proofs = sent.filter((m) => m.kind === 'joinRequest').map((m) => hex((m.body as { proof: Uint8Array }).proof))
  t.equal(proofs.length, 2, 'each side proved once')
  t.not(proofs[0], proofs[1], 'the prover key is inside the MAC')
})

t.test('the wrong secret is refused, and the responder never reveals its own proof to a stranger', async (t) => {
  const { a, b } = pair({ secretA: 'wrong' })
  const sent = run(a, b)
  t.match(b.outcome, { code: 'AUTH_FAILED', by: 'us' })
  t.match(a.outcome, { code: 'AUTH_FAILED', by: 'them' })
  const fromB = sent.filter((m) => m.kind === 'joinRequest' && hex((m.body as { publicKey: Uint8Array }).publicKey) === hex(B_KEY))
  t.equal(fromB.length, 0, 'no proof from the member to a stranger')
  const verdict = sent.find((m) => m.kind === 'joinResult')
  t.match(verdict, { body: { accepted: false, error: { code: 'AUTH_FAILED' } } }, 'the refusal says why')

  // The other way round: a wrong-secret responder is refused by the initiator.
  const r = pair({ secretB: 'wrong' })
  run(r.a, r.b)
  t.match(r.b.outcome, { code: 'AUTH_FAILED', by: 'us' }, 'the responder refuses the initiator whose proof it cannot verify')
})

t.test('members are admitted by key even when their proof fails (secret rotation)', async (t) => {
  const { a, b } = pair({ secretA: 'old', aKnowsB: true, bKnowsA: true })
  run(a, b)
  t.equal(a.outcome, true)
  t.equal(b.outcome, true)
  const one = pair({ secretA: 'old', bKnowsA: true })
  run(one.a, one.b)
  t.match(one.a.outcome, { code: 'AUTH_FAILED', by: 'us' }, 'a member still refuses a non-member whose proof fails')
})

t.test('a proof recorded on one connection is refused on another (replay)', async (t) => {
  const first = pair()
  const sent = run(first.a, first.b)
  const recorded = sent.find((m) => m.kind === 'joinRequest' && hex((m.body as { publicKey: Uint8Array }).publicKey) === hex(A_KEY))!
  t.ok(recorded, 'captured a\'s proof')
  // The attacker replays it on a new connection (new handshake hash, new nonces) with the same key.
  const second = pair()
  run(second.a, second.b, (from, m) => (from === 'a' && m.kind === 'joinRequest' ? recorded : m))
  t.match(second.b.outcome, { code: 'AUTH_FAILED', by: 'us' }, 'the replayed proof fails')
  // Same handshake hash but a fresh challenge nonce also fails: the nonce is bound too.
  const third = pair({ hash: Buffer.alloc(64, 7) })
  const fourth = pair({ hash: Buffer.alloc(64, 7) })
  const rec3 = run(third.a, third.b).find((m) => m.kind === 'joinRequest')!
  run(fourth.a, fourth.b, (from, m) => (from === 'a' && m.kind === 'joinRequest' ? rec3 : m))
  t.match(fourth.b.outcome, { code: 'AUTH_FAILED' }, 'a different challenge nonce refuses it')
  // Same nonce, different handshake hash: the Noise session is bound in.
  const keys = deriveClusterKeys('c', 'secret')
  const nonce = Buffer.alloc(NONCE_BYTES, 3)
  const responder = (hash: Buffer): AuthHandshake => {
    const h = new AuthHandshake({ initiator: false, localKey: B_KEY, remoteKey: A_KEY, handshakeHash: hash, keys, isMember: () => false, nonce })
    h.start()
    h.receive({ kind: 'joinChallenge', body: { clusterHash: keys.clusterHash, nonce: Buffer.alloc(NONCE_BYTES, 4) } })
    return h
  }
  const proofFor = (hash: Buffer): WireMessage => ({ kind: 'joinRequest', body: { clusterHash: keys.clusterHash, publicKey: A_KEY, nonce: new Uint8Array(0), proof: joinProof(keys.proofKey, hash, nonce, A_KEY) } })
  t.equal(responder(Buffer.alloc(64, 1)).receive(proofFor(Buffer.alloc(64, 1))).outcome, undefined, 'the proof for this session is admitted')
  t.match(responder(Buffer.alloc(64, 2)).receive(proofFor(Buffer.alloc(64, 1))).outcome, { code: 'AUTH_FAILED' }, 'the same proof on another session is refused')
})

t.test('a reflected proof (the peer sends our own proof back) fails', async (t) => {
  const handshakeHash = randomBytes(64)
  const keys = deriveClusterKeys('c', 'secret')
  const nonce = randomBytes(NONCE_BYTES)
  const h = new AuthHandshake({ initiator: false, localKey: B_KEY, remoteKey: A_KEY, handshakeHash, keys, isMember: () => false, nonce })
  h.start()
  h.receive({ kind: 'joinChallenge', body: { clusterHash: keys.clusterHash, nonce } })
  // A proof computed for B's own key, presented by A.
  const reflected = joinProof(keys.proofKey, handshakeHash, nonce, B_KEY)
  const step = h.receive({ kind: 'joinRequest', body: { clusterHash: keys.clusterHash, publicKey: A_KEY, nonce: new Uint8Array(0), proof: reflected } })
  t.match(step.outcome, { code: 'AUTH_FAILED', by: 'us' })
})

t.test('a proof naming another key than the connection is refused', async (t) => {
  const { a, b } = pair()
  run(a, b, (from, m) => (from === 'a' && m.kind === 'joinRequest' ? { kind: 'joinRequest', body: { ...m.body, publicKey: Buffer.alloc(32, 9) } } as WireMessage : m))
  t.match(b.outcome, { code: 'AUTH_FAILED', by: 'us' })
})

t.test('a node of another cluster is refused at the challenge', async (t) => {
  const { a, b } = pair({ clusterB: 'other' })
  run(a, b)
  t.match(a.outcome, { code: 'AUTH_FAILED' })
  t.match(b.outcome, { code: 'AUTH_FAILED' })
})

t.test('out-of-order and foreign messages are protocol errors', async (t) => {
  const keys = deriveClusterKeys('c', 'secret')
  const mk = (): AuthHandshake => new AuthHandshake({ initiator: false, localKey: B_KEY, remoteKey: A_KEY, handshakeHash: randomBytes(64), keys, isMember: () => true, nonce: randomBytes(NONCE_BYTES) })
  const proof: WireMessage = { kind: 'joinRequest', body: { clusterHash: keys.clusterHash, publicKey: A_KEY, nonce: new Uint8Array(0), proof: randomBytes(32) } }
  t.match(mk().receive(proof).outcome, { code: 'PROTOCOL_ERROR' }, 'a proof before the challenge')
  t.match(mk().receive({ kind: 'raft', body: { type: 'heartbeat', from: hex(A_KEY), to: hex(B_KEY), term: 1, commit: 0 } }).outcome, { code: 'PROTOCOL_ERROR' }, 'cluster data before admission')
  t.match(mk().receive({ kind: 'joinResult', body: { accepted: true, proof: new Uint8Array(0) } }).outcome, { code: 'PROTOCOL_ERROR' }, 'a verdict nobody asked for')
  const h = mk()
  h.receive({ kind: 'joinChallenge', body: { clusterHash: keys.clusterHash, nonce: randomBytes(NONCE_BYTES) } })
  t.match(h.receive({ kind: 'joinChallenge', body: { clusterHash: keys.clusterHash, nonce: randomBytes(NONCE_BYTES) } }).outcome, { code: 'PROTOCOL_ERROR' }, 'a second challenge')
  t.match(mk().receive({ kind: 'joinChallenge', body: { clusterHash: keys.clusterHash, nonce: randomBytes(3) } }).outcome, { code: 'PROTOCOL_ERROR' }, 'a short nonce')
  // A member (admitted by key) still may not send two proofs.
  const m = mk()
  m.receive({ kind: 'joinChallenge', body: { clusterHash: keys.clusterHash, nonce: randomBytes(NONCE_BYTES) } })
  t.equal(m.receive(proof).outcome, undefined, 'the member is admitted by key, waiting for its verdict on us')
  t.match(m.receive(proof).outcome, { code: 'PROTOCOL_ERROR' }, 'a second proof')
})

t.test('topic, cluster hash and proof key are distinct and depend on what they should', async (t) => {
  const k = deriveClusterKeys('c', 'secret')
  t.not(hex(k.topic), hex(k.proofKey))
  t.not(hex(k.topic), hex(k.clusterHash))
  t.not(hex(deriveClusterKeys('c', 'other').topic), hex(k.topic), 'the topic depends on the secret')
  t.equal(hex(deriveClusterKeys('c', 'other').clusterHash), hex(k.clusterHash), 'the cluster hash does not')
  t.not(hex(deriveClusterKeys('d', 'secret').topic), hex(k.topic), 'the topic depends on the name')
  t.equal(hex(deriveClusterKeys('c', Buffer.from('secret')).topic), hex(k.topic), 'string and bytes secrets agree')
})

t.test('reconnect backoff: exponential, capped, with jitter from the injected source', async (t) => {
  const policy = { baseMs: 100, maxMs: 1000 }
  t.equal(backoffDelay(0, () => 0, policy), 50, 'half the ceiling at rand 0')
  t.equal(backoffDelay(0, () => 0.999999, policy), 50 + 50 * 0.999999)
  t.equal(backoffDelay(2, () => 0.5, policy), 300, 'ceiling 400 at attempt 2')
  t.equal(backoffDelay(10, () => 0.5, policy), 750, 'capped at maxMs')
  t.equal(backoffDelay(1e9, () => 0, policy), 500, 'huge attempt counts do not overflow')
  const seen = new Set(Array.from({ length: 20 }, (_, i) => backoffDelay(3, () => i / 20, policy)))
  t.equal(seen.size, 20, 'the jitter spreads peers apart')
})
