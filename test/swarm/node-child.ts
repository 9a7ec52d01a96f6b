/**
 * One holdfast node over hyperswarm, in its own OS process, driven by the parent test (harness.ts)
 * over the Node IPC channel. Started as
 *
 *   node --import tsx node-child.ts '<ChildConfig as JSON>'
 *
 * with an 'ipc' stdio entry. Messages (see ChildCommand and ChildMessage below):
 * - parent → child: `{ type: 'cmd', id, op, args }`; every command gets one `reply` with its id.
 * - child → parent: `ready` once the node is open; `event` for the node's and the transport's
 *   events; `reply` for commands; `fatal` when the node cannot start.
 *
 * A write is replied to only after its promise has resolved, so a reply the parent received is an
 * acknowledged write. A reply lost because the parent SIGKILLed the child only makes the parent's
 * check weaker, never wrong. The child exits when the IPC channel closes (the parent is gone).
 */
import { pathToFileURL } from 'node:url'
import type { Membership, MembershipChange, NodeId } from '../../src/core/types.js'
import { isHoldfastError } from '../../src/errors.js'
import type { HoldfastNode } from '../../src/node.js'
import { createSwarmNode } from '../../src/swarm-node.js'
import type { KeyValue, Value } from '../../src/state/index.js'
import type { PeerProblem, SwarmTransport, SwarmTransportStats } from '../../src/transport/swarm.js'

/** How the parent configures a child (argv[2], JSON). */
export interface ChildConfig {
  /** A short name for logs. */
  name: string
  dataDir: string
  cluster: string
  secret: string
  /** Addresses of the parent's DHT testnet. */
  dhtBootstrap: Array<{ host: string; port: number }>
  /** Only on the first start of an initial voter. */
  bootstrap?: Membership
  /** Dial these ids directly (transport.setMembers) beyond what the node's own membership names. */
  dialMembers?: NodeId[]
  tickMs?: number
  electionTicks?: number
  logTail?: number
  operationTimeoutMs?: number
  /** SwarmTransport settings (idleTimeoutMs, denyMs, ...). */
  swarm?: Record<string, number>
}

/** One result of the `get` command; `consistency: 'local'` reads with getLocal(). */
export type Consistency = 'linearizable' | 'lease' | 'local'

/** Commands and their arguments. */
export interface ChildOps {
  put: { args: { key: string; value: Value; timeoutMs?: number; fence?: number }; result: { revision: number } }
  /** The acting state: fence(), leaderCheck(), isActing(). */
  acting: { args: Record<string, never>; result: { fence: number; leaderCheck: boolean; acting: boolean } }
  get: { args: { key: string; consistency: Consistency; timeoutMs?: number }; result: KeyValue | null }
  list: { args: { prefix?: string }; result: KeyValue[] }
  status: { args: Record<string, never>; result: ChildStatus }
  changeMembership: { args: { change: MembershipChange; timeoutMs?: number }; result: Membership }
  transferLeadership: { args: { to: NodeId; timeoutMs?: number }; result: null }
  setMembers: { args: { ids: NodeId[] }; result: null }
  /** Peer RPC to `to`'s 'test.echo' handler, which every child serves. */
  echo: { args: { to: NodeId; text: string; timeoutMs?: number }; result: string }
  close: { args: Record<string, never>; result: null }
}
export type ChildOp = keyof ChildOps

export interface ChildCommand {
  type: 'cmd'
  id: number
  op: ChildOp
  args: unknown
}

/** What `status` returns: the node's status plus the transport's view. */
export interface ChildStatus {
  id: NodeId
  role: string
  term: number
  leaderId: NodeId | null
  commitIndex: number
  appliedIndex: number
  membership: Membership
  connectedPeers: NodeId[]
  stats: SwarmTransportStats
}

/** Event names forwarded to the parent. */
export type ChildEventName =
  | 'role'
  | 'leader'
  | 'member'
  | 'applied'
  | 'peer'
  | 'snapshotSent'
  | 'snapshotInstalled'
  | 'refused'
  | 'disconnected'
  | 'error'

export type ChildMessage =
  | { type: 'ready'; id: NodeId; status: ChildStatus }
  | { type: 'event'; name: ChildEventName; data: unknown }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: { code: string; message: string } }
  | { type: 'fatal'; message: string }

export const ECHO_METHOD = 'test.echo'

function send(m: ChildMessage, then?: () => void): void {
  // After the channel closed (the parent is gone) there is nobody to tell.
  if (process.connected) process.send!(m, undefined, {}, () => then?.())
}

function statusOf(node: HoldfastNode): ChildStatus {
  const s = node.status()
  const transport = node.transport as SwarmTransport
  return {
    id: s.id,
    role: s.role,
    term: s.term,
    leaderId: s.leaderId ?? null,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    membership: node.membership(),
    connectedPeers: transport.connectedPeers(),
    stats: { ...transport.stats },
  }
}

async function run(node: HoldfastNode, op: ChildOp, a: any): Promise<unknown> {
  switch (op) {
    case 'put':
      return await node.put(a.key, a.value, { ...(a.timeoutMs ? { timeoutMs: a.timeoutMs } : {}), ...(a.fence !== undefined ? { fence: a.fence } : {}) })
    case 'acting':
      return { fence: node.fence(), leaderCheck: node.leaderCheck(), acting: node.isActing() }
    case 'get': {
      if (a.consistency === 'local') return node.getLocal(a.key) ?? null
      return (await node.get(a.key, { consistency: a.consistency, ...(a.timeoutMs ? { timeoutMs: a.timeoutMs } : {}) })) ?? null
    }
    case 'list':
      return node.list(a.prefix ? { prefix: a.prefix } : {})
    case 'status':
      return statusOf(node)
    case 'changeMembership':
      return await node.changeMembership(a.change, a.timeoutMs ? { timeoutMs: a.timeoutMs } : {})
    case 'transferLeadership':
      await node.transferLeadership(a.to, a.timeoutMs ? { timeoutMs: a.timeoutMs } : {})
      return null
    case 'setMembers':
      ;(node.transport as SwarmTransport).setMembers(a.ids)
      return null
    case 'echo': {
      const reply = await node.request(a.to, ECHO_METHOD, Buffer.from(a.text), a.timeoutMs ? { timeoutMs: a.timeoutMs } : {})
      return Buffer.from(reply).toString()
    }
    case 'close':
      await node.close()
      return null
  }
}

async function main(): Promise<void> {
  const raw = process.argv[2]
  if (raw === undefined || !process.send) throw new Error('usage: node --import tsx node-child.ts <config JSON>, with an IPC channel')
  const config = JSON.parse(raw) as ChildConfig
  // The parent is gone (it died, or tore the test down): nothing left to do.
  let closed = false
  process.on('disconnect', () => process.exit(closed ? 0 : 3))

  const node = await createSwarmNode({
    dataDir: config.dataDir,
    cluster: config.cluster,
    secret: config.secret,
    dht: { bootstrap: config.dhtBootstrap, host: '127.0.0.1', firewalled: false },
    ...(config.bootstrap ? { bootstrap: config.bootstrap } : {}),
    ...(config.tickMs !== undefined ? { tickMs: config.tickMs } : {}),
    ...(config.electionTicks !== undefined ? { electionTicks: config.electionTicks } : {}),
    ...(config.logTail !== undefined ? { logTail: config.logTail } : {}),
    ...(config.operationTimeoutMs !== undefined ? { operationTimeoutMs: config.operationTimeoutMs } : {}),
    ...(config.swarm ? { swarm: config.swarm } : {}),
  })
  const transport = node.transport as SwarmTransport
  // createSwarmNode points the transport at the membership whenever it changes; the extra ids stay.
  const dial = (m: Membership): void => transport.setMembers([...(config.dialMembers ?? []), ...memberIds(m)])
  if (config.dialMembers) {
    dial(node.membership())
    node.on('member', dial)
  }
  node.handle(ECHO_METHOD, (payload, from) => Buffer.from(`${Buffer.from(payload).toString()} from ${from}`))

  const forward = (name: ChildEventName) => (data: unknown) => send({ type: 'event', name, data: data ?? null })
  node.on('role', forward('role'))
  node.on('leader', forward('leader'))
  node.on('member', forward('member'))
  node.on('peer', forward('peer'))
  node.on('snapshotSent', forward('snapshotSent'))
  node.on('snapshotInstalled', forward('snapshotInstalled'))
  node.on('error', (err: unknown) => forward('error')(String(err)))
  transport.on('refused', (p: PeerProblem) => forward('refused')(p))
  transport.on('disconnected', (p: PeerProblem) => forward('disconnected')(p))
  // 'applied' fires once per apply batch; the parent needs the latest index, not every step.
  let applied: number | undefined
  node.on('applied', (index: number) => {
    if (applied === undefined) setImmediate(() => {
      forward('applied')(applied)
      applied = undefined
    })
    applied = index
  })

  process.on('message', (m: ChildCommand) => {
    if (m?.type !== 'cmd') return
    run(node, m.op, m.args ?? {}).then(
      (value) => {
        // After close, the process ends once the reply is out.
        if (m.op === 'close') closed = true
        send({ type: 'reply', id: m.id, ok: true, value: value ?? null }, () => {
          if (m.op === 'close' && process.connected) process.disconnect()
        })
      },
      (err: unknown) => {
        const code = isHoldfastError(err) ? err.code : 'ERROR'
        send({ type: 'reply', id: m.id, ok: false, error: { code, message: err instanceof Error ? err.message : String(err) } })
      },
    )
  })
  send({ type: 'ready', id: node.id, status: statusOf(node) })
}

function memberIds(m: Membership): NodeId[] {
  return [...m.voters, ...m.learners]
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
    send({ type: 'fatal', message })
    process.stderr.write(`node-child failed: ${message}\n`)
    process.exitCode = 1
    if (process.connected) process.disconnect()
  })
}
