import { mkdir } from 'node:fs/promises'
import type { Membership, NodeId } from './core/types.js'
import { loadOrCreateIdentity } from './identity.js'
import { createNode, type HoldfastNode } from './node.js'
import type { NodeOptions } from './options.js'
import { SwarmTransport, type SwarmTransportOptions } from './transport/swarm.js'
import { attachVip } from './vip/attach.js'
import { VipManager, type VipOptions } from './vip/manager.js'

/** Options of createSwarmNode(): those of createNode() without transport and id, plus the swarm's. */
export interface SwarmNodeOptions extends Omit<NodeOptions, 'transport' | 'id'> {
  /** The cluster's name. */
  cluster: string
  /** The cluster's shared secret: long and random (32 random bytes, say). */
  secret: string | Uint8Array
  /** The DHT: bootstrap node addresses and optionally the local address to bind. See SwarmTransportOptions.dht. */
  dht?: SwarmTransportOptions['dht']
  /** Further transport settings (frame and queue limits, timeouts, reconnect backoff). */
  swarm?: Omit<SwarmTransportOptions, 'keyPair' | 'cluster' | 'secret' | 'dht'>
  /** A virtual IP that follows the acting node: `{ address: '10.0.0.100/24', device: 'eth0' }`. See attachVip. */
  vip?: VipOptions
}

/**
 * Creates or opens a node that finds its peers over hyperswarm. Its id is its public key, from the
 * key pair kept in the data directory (created on first start). The transport admits the
 * cluster's members by key and anyone else who proves the secret; it follows the membership as
 * it changes. The node's transport is `node.transport` (a SwarmTransport, with stats and events).
 */
export async function createSwarmNode(options: SwarmNodeOptions): Promise<HoldfastNode> {
  await mkdir(options.dataDir, { recursive: true })
  const identity = await loadOrCreateIdentity(options.dataDir)
  const { cluster, secret, dht, swarm, vip, ...nodeOptions } = options
  const vipManager = vip ? new VipManager(vip) : undefined // bad VIP options are refused before anything opens
  const transport = await SwarmTransport.open({ ...swarm, keyPair: identity.keyPair, cluster, secret, ...(dht ? { dht } : {}) })
  let node: HoldfastNode
  try {
    node = await createNode({ ...nodeOptions, id: identity.id, transport })
  } catch (err) {
    await transport.close()
    throw err
  }
  const follow = (m: Membership): void => transport.setMembers(memberIds(m))
  follow(node.membership())
  node.on('member', follow)
  if (vipManager) attachVip(node, vipManager)
  return node
}

function memberIds(m: Membership): NodeId[] {
  return [...m.voters, ...m.learners]
}
