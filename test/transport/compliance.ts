/**
 * The behaviour every Transport must have. Run against the memory transport here and against the
 * hyperswarm transport in its own test, through a factory that builds a connected group.
 */
import type { Test } from 'tap'
import type { Transport } from '../../src/transport/types.js'

export interface TransportGroup {
  transports: Transport[]
  /** Disconnects a from b (both directions); resolves once both sides have seen it. */
  disconnect(a: Transport, b: Transport): Promise<void>
  close(): Promise<void>
}

import { until } from '../../src/testing/cluster.js'

export { until }

export function transportCompliance(t: Test, name: string, makeGroup: (n: number) => Promise<TransportGroup>): void {
  t.test(`${name}: frames reach the addressed peer intact and in order`, async (t) => {
    const g = await makeGroup(3)
    t.teardown(() => g.close())
    const [a, b, c] = g.transports as [Transport, Transport, Transport]
    await until(() => a.connectedPeers().length === 2, 10_000, 'a connected to both')
    const gotB: string[] = []
    const gotC: string[] = []
    b.onFrame((from, f) => gotB.push(`${from}:${Buffer.from(f).toString()}`))
    c.onFrame((from, f) => gotC.push(`${from}:${Buffer.from(f).toString()}`))
    for (let i = 0; i < 100; i++) t.equal(a.send(b.id, Buffer.from(`m${i}`)), true)
    a.send(c.id, Buffer.from('only-c'))
    await until(() => gotB.length === 100 && gotC.length === 1, 10_000, 'delivery')
    t.same(gotB, Array.from({ length: 100 }, (_, i) => `${a.id}:m${i}`), 'in order, with the sender id')
    t.same(gotC, [`${a.id}:only-c`])
    const big = new Uint8Array(256 * 1024).map((_, i) => i % 251)
    let gotBig: Uint8Array | undefined
    b.onFrame((_from, f) => (gotBig = f))
    a.send(b.id, big)
    await until(() => gotBig !== undefined, 10_000, 'big frame')
    t.same(Buffer.from(gotBig!), Buffer.from(big), 'a 256 KiB frame arrives intact')
  })

  t.test(`${name}: peer up and down events; sends to a down peer report false`, async (t) => {
    const g = await makeGroup(2)
    t.teardown(() => g.close())
    const [a, b] = g.transports as [Transport, Transport]
    await until(() => a.connectedPeers().includes(b.id), 10_000, 'connection')
    const events: string[] = []
    a.onPeer((peer, up) => events.push(`${peer}:${up ? 'up' : 'down'}`))
    await g.disconnect(a, b)
    await until(() => events.includes(`${b.id}:down`), 10_000, 'down event')
    t.notOk(a.connectedPeers().includes(b.id))
    t.equal(a.send(b.id, Buffer.from('x')), false, 'send to a disconnected peer returns false')
    t.equal(a.send('nobody', Buffer.from('x')), false, 'send to an unknown peer returns false')
  })

  t.test(`${name}: disconnect(peer) closes that connection on both sides and leaves the others`, async (t) => {
    const g = await makeGroup(3)
    t.teardown(() => g.close())
    const [a, b, c] = g.transports as [Transport, Transport, Transport]
    await until(() => a.connectedPeers().length === 2, 10_000, 'a connected to both')
    const bEvents: string[] = []
    b.onPeer((peer, up) => bEvents.push(`${peer}:${up ? 'up' : 'down'}`))
    const gotC: string[] = []
    c.onFrame((_from, f) => gotC.push(Buffer.from(f).toString()))
    a.disconnect(b.id, 'protocol violation (test)')
    await until(() => bEvents.includes(`${a.id}:down`), 10_000, 'b saw the connection close')
    t.ok(a.send(c.id, Buffer.from('c unaffected')), 'a still sends to c')
    await until(() => gotC.includes('c unaffected'), 10_000, 'c received')
  })
}
