/**
 * The processes of the VIP test, each started inside its namespace by vip.test.ts as
 *
 *   ip netns exec NS node --import tsx children.ts <role> '<config JSON>'
 *
 * with an IPC channel to the test. Every role exits when that channel closes (the test is gone).
 *
 * - dht: a DHT bootstrap node bound to the bridge address (hyperdht needs an explicit bind address
 *   on a machine without a route to the internet).
 * - node: a holdfast node (createSwarmNode with the `vip` option) and an HTTP server on port 8080
 *   of every address of its namespace, the VIP included, answering `{ id, acting }`. Forwards the
 *   node's events ('event', 'role') to the test.
 * - client: GETs http://VIP:8080/ on a fresh connection every `everyMs` and reports each outcome.
 */
import { createServer, request } from 'node:http'
import HyperDHT from 'hyperdht'
import { pathToFileURL } from 'node:url'
import type { Membership } from '../../src/core/types.js'
import type { HoldfastNode } from '../../src/node.js'
import { createSwarmNode } from '../../src/swarm-node.js'
import { startDhtBootstrap } from '../../src/transport/swarm.js'
import type { VipOptions } from '../../src/vip/manager.js'

export const HTTP_PORT = 8080
export const DHT_PORT = 49737

export interface DhtConfig {
  host: string
  port: number
}

export interface NodeConfig {
  name: string
  dataDir: string
  cluster: string
  secret: string
  /** This namespace's address: the DHT binds to it. */
  host: string
  dhtBootstrap: Array<{ host: string; port: number }>
  bootstrap?: Membership
  tickMs?: number
  electionTicks?: number
  vip: VipOptions
}

export interface ClientConfig {
  url: string
  everyMs: number
  timeoutMs: number
}

/** One probe of the client: wall-clock ms (performance.timeOrigin + now(), comparable across processes). */
export interface Probe {
  at: number
  /** The answering node's id, or undefined on failure. */
  id?: string
  error?: string
  ms: number
}

export type ChildMessage =
  | { type: 'ready'; id?: string; port?: number }
  | { type: 'event'; event: Record<string, unknown> & { type: string; at: number } }
  | { type: 'probe'; probe: Probe }
  | { type: 'fatal'; message: string }

/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes of this machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now()

function send(m: ChildMessage): void {
  if (process.connected) process.send!(m)
}

async function runDht(config: DhtConfig): Promise<void> {
  const boot = await startDhtBootstrap({ host: config.host, port: config.port })
  process.on('disconnect', () => void boot.close().finally(() => process.exit(0)))
  send({ type: 'ready', port: boot.address.port })
}

async function runNode(config: NodeConfig): Promise<void> {
  process.on('disconnect', () => process.exit(0))
  // firewalled: false, because these hosts share a LAN without NAT. hyperdht otherwise assumes
  // every node is behind a firewall and holepunches between addresses that need no holepunching:
  // measured here, three nodes then took 16 s to over 60 s to connect, against 0.1-0.3 s.
  // SwarmTransportOptions.dht has no such setting yet, so the child makes the DHT node itself.
  const dht = new HyperDHT({ bootstrap: config.dhtBootstrap, host: config.host, firewalled: false })
  const n: HoldfastNode = await createSwarmNode({
    dataDir: config.dataDir,
    cluster: config.cluster,
    secret: config.secret,
    dht: { node: dht },
    ...(config.bootstrap ? { bootstrap: config.bootstrap } : {}),
    ...(config.tickMs !== undefined ? { tickMs: config.tickMs } : {}),
    ...(config.electionTicks !== undefined ? { electionTicks: config.electionTicks } : {}),
    vip: config.vip,
  })
  n.on('event', (e: Record<string, unknown> & { type: string }) => send({ type: 'event', event: { ...e, at: wallNow() } }))
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('connection', 'close')
    res.end(JSON.stringify({ id: n.id, acting: n.leaderCheck() }))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(HTTP_PORT, '0.0.0.0', () => resolve())
  })
  send({ type: 'ready', id: n.id })
}

function runClient(config: ClientConfig): void {
  process.on('disconnect', () => process.exit(0))
  const probe = (): void => {
    const at = wallNow()
    const done = (r: { id?: string; error?: string }): void => {
      send({ type: 'probe', probe: { at, ms: wallNow() - at, ...r } })
      setTimeout(probe, config.everyMs)
    }
    // agent: false: a new connection every time, so each probe resolves the VIP's link address anew.
    const req = request(config.url, { agent: false, timeout: config.timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => {
        try {
          done({ id: (JSON.parse(body) as { id: string }).id })
        } catch {
          done({ error: `bad body: ${body.slice(0, 100)}` })
        }
      })
      res.on('error', (err) => done({ error: err.message }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }))
    req.end()
  }
  send({ type: 'ready' })
  probe()
}

async function main(): Promise<void> {
  const [role, raw] = process.argv.slice(2)
  if (!process.send || raw === undefined) throw new Error('usage: node --import tsx children.ts dht|node|client <config JSON>, with an IPC channel')
  const config = JSON.parse(raw) as unknown
  if (role === 'dht') await runDht(config as DhtConfig)
  else if (role === 'node') await runNode(config as NodeConfig)
  else if (role === 'client') runClient(config as ClientConfig)
  else throw new Error(`unknown role ${role}`)
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
    send({ type: 'fatal', message })
    process.stderr.write(`netns child failed: ${message}\n`)
    process.exitCode = 1
    if (process.connected) process.disconnect()
  })
}
