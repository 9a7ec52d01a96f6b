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

t.test('rpc: malformed frames are counted and do not disturb the connection', async (t) => {
  const net = new MemoryNetwork()
  const ta = net.createTransport('a')
  const a = new PeerRpc(ta)
  const b = new PeerRpc(net.createTransport('b'))
  b.handle('ping', () => enc('pong'))
  const raw: Uint8Array[] = [new Uint8Array(0), new Uint8Array([9, 1, 2, 3, 4]), new Uint8Array([1, 0, 0, 0, 1, 0xff, 0xff]), new Uint8Array([2, 0])]
  for (const f of raw) ta.send('b', f)
  await until(() => b.malformedFrames >= 3, 2000, 'malformed frames counted')
  t.ok(b.malformedFrames >= 3, `counted ${b.malformedFrames}`)
  t.equal(dec(await a.request('b', 'ping', enc(''))), 'pong', 'the peer still serves requests')
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
