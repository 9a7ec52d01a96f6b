import t from 'tap'
import { MemoryNetwork } from '../../src/transport/memory.js'
import { PeerRpc } from '../../src/transport/rpc.js'
import { HoldfastError, isHoldfastError } from '../../src/errors.js'
import { transportCompliance, until } from './compliance.js'
import { lcg } from '../core/harness.js'

transportCompliance(t, 'memory', async (n) => {
  const net = new MemoryNetwork()
  const transports = Array.from({ length: n }, (_, i) => net.createTransport(`n${i}`))
  return {
    transports,
    async disconnect(a, b) {
      net.partition([a.id], [b.id])
    },
    async close() {
      for (const tr of transports) await tr.close()
    },
  }
})

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return isHoldfastError(err) ? err.code : String(err)
  }
  return undefined
}

t.test('rpc: many requests in flight at once, matched by id', async (t) => {
  const net = new MemoryNetwork({ rand: lcg(7), faults: { delayMs: [0, 20] } })
  const a = new PeerRpc(net.createTransport('a'))
  const b = new PeerRpc(net.createTransport('b'))
  b.handle('echo', async (p, from) => {
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 10)))
    return enc(`${from}:${dec(p)}`)
  })
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => a.request('b', 'echo', enc(`q${i}`))))
  t.same(answers.map(dec), Array.from({ length: 200 }, (_, i) => `a:q${i}`), 'every answer matches its request despite reordering')
})

t.test('rpc: remote errors come back typed; unknown methods are refused', async (t) => {
  const net = new MemoryNetwork()
  const a = new PeerRpc(net.createTransport('a'))
  const b = new PeerRpc(net.createTransport('b'))
  b.handle('fails', () => {
    throw new Error('boom')
  })
  b.handle('typed', () => {
    throw new HoldfastError('REVISION_MISMATCH', 'key changed')
  })
  let caught: unknown
  try {
    await a.request('b', 'fails', enc(''))
  } catch (err) {
    caught = err
  }
  t.ok(isHoldfastError(caught, 'REMOTE_ERROR'))
  t.match((caught as Error).message, /b: boom/)
  t.equal(await codeOf(a.request('b', 'typed', enc(''))), 'REVISION_MISMATCH', 'a HoldfastError keeps its code across the wire')
  t.equal(await codeOf(a.request('b', 'nope', enc(''))), 'UNKNOWN_METHOD')
  t.equal(await codeOf(a.request('b', '', enc(''))), 'INVALID_ARGUMENT')
})

t.test('rpc: a disconnect fails pending requests at once; timeouts and aborts are typed', async (t) => {
  const net = new MemoryNetwork()
  const a = new PeerRpc(net.createTransport('a'))
  const b = new PeerRpc(net.createTransport('b'))
  b.handle('hang', () => new Promise<Uint8Array>(() => {}))
  const pending = a.request('b', 'hang', enc(''), { timeoutMs: 60_000 })
  const started = Date.now()
  setTimeout(() => net.partition(['a'], ['b']), 10)
  t.equal(await codeOf(pending), 'CONNECTION_LOST')
  t.ok(Date.now() - started < 5000, 'failed at the disconnect, not at the timeout')
  t.equal(await codeOf(a.request('b', 'hang', enc(''))), 'UNAVAILABLE', 'a request to a disconnected peer fails at once')
  net.heal()
  t.equal(await codeOf(a.request('b', 'hang', enc(''), { timeoutMs: 30 })), 'TIMEOUT')
  const ac = new AbortController()
  const aborted = a.request('b', 'hang', enc(''), { signal: ac.signal, timeoutMs: 60_000 })
  ac.abort()
  t.equal(await codeOf(aborted), 'ABORTED')
})

t.test('rpc: a malformed frame closes that peer\'s connection and is counted; other peers and later requests are served', async (t) => {
  const net = new MemoryNetwork()
  const ta = net.createTransport('a')
  const a = new PeerRpc(ta)
  const tb = net.createTransport('b')
  const b = new PeerRpc(tb)
  const c = new PeerRpc(net.createTransport('c'))
  b.handle('ping', () => enc('pong'))
  const bEvents: string[] = []
  b.onPeer((peer, up) => bEvents.push(`${peer}:${up ? 'up' : 'down'}`))
  for (const garbage of [new Uint8Array(0), new Uint8Array([9, 1, 2, 3, 4]), new Uint8Array([1, 0, 0, 0, 1, 0xff, 0xff]), new Uint8Array([2, 0])]) {
    const before = { malformed: b.malformedFrames, disconnects: tb.disconnects }
    ta.send('b', garbage)
    await until(() => b.malformedFrames === before.malformed + 1, 2000, 'malformed frame counted')
    t.equal(tb.disconnects, before.disconnects + 1, 'and its connection closed')
  }
  t.ok(bEvents.filter((e) => e === 'a:down').length === 4, 'b saw the connection to a go down once per garbage frame')
  ta.send('b', new Uint8Array([9]))
  t.equal(dec(await c.request('b', 'ping', enc(''))), 'pong', 'another peer is served throughout')
  await until(() => ta.connectedPeers().includes('b'), 2000, 'a reconnects')
  t.equal(dec(await a.request('b', 'ping', enc(''))), 'pong', 'the offender is served again once it behaves')
})

t.test('memory network: loss and duplication are applied', async (t) => {
  const net = new MemoryNetwork({ rand: lcg(3) })
  const a = net.createTransport('a')
  const b = net.createTransport('b')
  let got = 0
  b.onFrame(() => got++)
  net.setFaults({ loss: 0.5 })
  for (let i = 0; i < 1000; i++) a.send('b', enc('x'))
  await new Promise((r) => setTimeout(r, 20))
  t.ok(got > 350 && got < 650, `about half lost (${got} arrived)`)
  net.heal()
  got = 0
  net.setFaults({ duplicate: 1 })
  for (let i = 0; i < 100; i++) a.send('b', enc('x'))
  await new Promise((r) => setTimeout(r, 20))
  t.equal(got, 200, 'every frame duplicated')
})
