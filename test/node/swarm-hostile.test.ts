/**
 * A cluster of swarm nodes keeps committing while a peer that knows the secret (so it passes
 * admission) sends oversized frames, garbage envelopes and undecodable raft messages, and a
 * stranger sends raw bytes: each offender is disconnected and counted, nothing changes state.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import HyperDHT from 'hyperdht'
import t from 'tap'
import { loadOrCreateIdentity } from '../../src/identity.js'
import type { HoldfastNode } from '../../src/node.js'
import { createSwarmNode } from '../../src/swarm-node.js'
import { until } from '../../src/testing/cluster.js'
import { createLoopbackTestnet } from '../../src/testing/testnet.js'
import { encodeEnvelopeRaw, encodeFrame } from '../../src/transport/codec.js'
import type { SwarmTransport } from '../../src/transport/swarm.js'
import { connectRawPeer } from '../transport/raw-peer.js'

const CLUSTER = 'hostile'
const SECRET = randomBytes(32).toString('hex')

t.test('hostile peers are disconnected while the cluster keeps committing', async (t) => {
  const testnet = await createLoopbackTestnet(3)
  const root = await mkdtemp(join(tmpdir(), 'holdfast-hostile-'))
  const dirs = [0, 1, 2].map((i) => join(root, `n${i}`))
  const ids = await Promise.all(dirs.map(async (d) => (await loadOrCreateIdentity(d)).id))
  const dht = { bootstrap: testnet.bootstrap, host: '127.0.0.1', firewalled: false }
  const nodes: HoldfastNode[] = []
  const rawDhts: HyperDHT[] = []
  t.teardown(async () => {
    for (const n of nodes) await n.close().catch(() => {})
    for (const d of rawDhts) await d.destroy()
    await testnet.close()
    await rm(root, { recursive: true, force: true })
  })
  for (const dataDir of dirs) {
    nodes.push(await createSwarmNode({ dataDir, cluster: CLUSTER, secret: SECRET, dht, bootstrap: { voters: ids, learners: [] }, tickMs: 50 }))
  }
  await until(() => nodes.some((n) => n.status().role === 'leader'), 30_000, 'a leader')
  const leader = nodes.find((n) => n.status().role === 'leader')!
  const target = nodes.find((n) => n !== leader)!
  const transport = target.transport as SwarmTransport

  // A writer that runs throughout the attack.
  const acked: number[] = []
  let writing = true
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      await leader.put(`w${i}`, i)
      acked.push(i)
    }
  })()

  const attacker = (admit: boolean) => {
    const d = new HyperDHT({ bootstrap: testnet.bootstrap, host: '127.0.0.1' })
    rawDhts.push(d)
    return connectRawPeer(d, transport, { cluster: CLUSTER, secret: SECRET, admit })
  }
  const ackedBefore = acked.length

  // 1. Admitted, then a frame header announcing 4 GiB.
  const oversized = await attacker(true)
  const header = Buffer.alloc(4)
  header.writeUInt32BE(0xffff_fff0)
  oversized.conn.write(header)
  await oversized.closed
  t.equal(transport.stats.frameErrors, 1, 'the oversized frame closed the connection')

  // 2. Admitted, then a well-framed envelope that does not decode.
  const garbage = await attacker(true)
  garbage.conn.write(encodeFrame(randomBytes(200)))
  await garbage.closed

  // 3. Admitted, then a raft envelope whose body is not a raft message.
  const badRaft = await attacker(true)
  badRaft.conn.write(encodeFrame(encodeEnvelopeRaw('raft', randomBytes(100))))
  await badRaft.closed
  t.ok(target.malformedMessages >= 1, 'the undecodable raft message was counted by the node')

  // 4. A stranger that skips the handshake and sends raw bytes.
  const stranger = await attacker(false)
  stranger.conn.write(randomBytes(1000))
  await stranger.closed
  t.ok(transport.stats.frameErrors + transport.stats.protocolErrors >= 3, `offenders counted (${JSON.stringify({ frameErrors: transport.stats.frameErrors, protocolErrors: transport.stats.protocolErrors })})`)

  const ackedDuring = acked.length - ackedBefore
  await until(() => acked.length > ackedBefore + ackedDuring + 20, 30_000, 'writes continue after the attack')
  writing = false
  await writer
  t.ok(ackedDuring > 0, `writes were acknowledged during the attack (${ackedDuring})`)
  t.same(target.transport.connectedPeers().sort(), ids.filter((id) => id !== target.id).sort(), 'the target is connected to exactly its members again')
  const last = acked.at(-1)!
  await until(() => nodes.every((n) => n.getLocal(`w${last}`)?.value === last), 30_000, 'every node applied the last write')
  t.equal(target.getLocal(`w${last}`)?.value, last, 'the attacked node kept replicating')
})
