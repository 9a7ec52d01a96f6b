/**
 * The etcd side of the comparison: Debian's etcd-server (installed by ensure-etcd.sh when
 * missing), three members on 127.0.0.1, each with its own data directory and etcd's defaults
 * (fsync of the WAL on every commit, 100 ms heartbeat, 1000 ms election timeout). The write rows
 * drive it with the etcd3 client (gRPC); the failover probes use its HTTP/JSON gateway, as the
 * holdfast probes use holdfast's HTTP API.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Etcd3 } from 'etcd3'
import { HttpClient } from './http-client.js'
import { Child, freeTcpPort, waitFor } from './procs.js'

const ENSURE = fileURLToPath(new URL('./ensure-etcd.sh', import.meta.url))

/** The etcd executable, installed first when missing; throws with the script's reason. */
export function ensureEtcd(): { path: string; version: string } {
  const r = spawnSync('bash', [ENSURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 })
  const path = r.stdout.trim().split('\n').pop() ?? ''
  if (r.status !== 0 || path === '') {
    throw new Error(`benchmarks/ensure-etcd.sh failed (${r.status ?? r.signal}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}\n(run with --no-etcd to leave etcd out)`)
  }
  const v = spawnSync(path, ['--version'], { encoding: 'utf8' })
  const version = /etcd Version: (\S+)/.exec(v.stdout)?.[1] ?? 'unknown'
  return { path, version }
}

/** One etcd member process. */
export class EtcdMember {
  child!: Child
  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly etcd: string,
    readonly args: readonly string[],
  ) {
    this.start()
  }

  start(): void {
    const env = { ...process.env }
    delete env['ETCDCTL_API']
    this.child = new Child(`etcd/${this.name}`, this.etcd, this.args, { env })
  }

  get running(): boolean {
    return this.child.running
  }

  async kill(): Promise<void> {
    await this.child.kill()
  }
}

/** What /v3/maintenance/status answers (uint64 fields come as strings). */
interface EtcdStatus {
  header?: { member_id?: string }
  leader?: string
}

/** A three-member etcd cluster on loopback. */
export class EtcdCluster {
  readonly members: EtcdMember[]
  readonly dir: string
  readonly #http = new HttpClient(256)

  private constructor(dir: string, members: EtcdMember[]) {
    this.dir = dir
    this.members = members
  }

  static async start(etcd: string, dir: string, size = 3): Promise<EtcdCluster> {
    await mkdir(dir, { recursive: true })
    const ports = []
    for (let i = 0; i < size; i++) ports.push({ client: await freeTcpPort(), peer: await freeTcpPort() })
    const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',')
    const token = `holdfast-bench-${randomBytes(4).toString('hex')}`
    const members = ports.map((p, i) => {
      const clientUrl = `http://127.0.0.1:${p.client}`
      return new EtcdMember(`m${i}`, clientUrl, etcd, [
        '--name', `m${i}`,
        '--data-dir', join(dir, `m${i}`),
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', `http://127.0.0.1:${p.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
        '--initial-cluster', initial,
        '--initial-cluster-token', token,
        '--initial-cluster-state', 'new',
        // The default 2 GB quota could be reached by a long run of fresh keys; nothing else changes.
        '--quota-backend-bytes', String(8 * 1024 ** 3),
        '--logger', 'zap',
        '--log-level', 'error',
      ])
    })
    const cluster = new EtcdCluster(dir, members)
    await cluster.leader()
    return cluster
  }

  /** /v3/maintenance/status of one member, or undefined when it does not answer. */
  async status(m: EtcdMember, timeoutMs = 1_000): Promise<EtcdStatus | undefined> {
    if (!m.running) return undefined
    try {
      const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(timeoutMs) })
      if (res.status !== 200) return undefined
      return (await res.json()) as EtcdStatus
    } catch {
      return undefined
    }
  }

  /** Waits until every live member answers and they agree on a leader; returns the leader. */
  async leader(ms = 120_000): Promise<EtcdMember> {
    return waitFor(async () => {
      const live = this.members.filter((m) => m.running)
      const ss = await Promise.all(live.map((m) => this.status(m)))
      const leader = ss[0]?.leader
      if (!leader || leader === '0' || !ss.every((s) => s?.leader === leader)) return undefined
      const i = ss.findIndex((s) => s?.header?.member_id === leader)
      return i < 0 ? undefined : live[i]
    }, `the etcd cluster to elect a leader\n${this.members.map((m) => m.child.output.slice(-1000)).join('\n')}`, ms, 25)
  }

  /** A put through the HTTP/JSON gateway of `m`; rejects unless acknowledged. */
  async httpPut(m: EtcdMember, key: string, value: Buffer, timeoutMs: number): Promise<void> {
    const body = Buffer.from(JSON.stringify({ key: Buffer.from(key).toString('base64'), value: value.toString('base64') }))
    const status = await this.#http.send('POST', new URL('/v3/kv/put', m.clientUrl), body, timeoutMs)
    if (status !== 200) throw new Error(`etcd put answered ${status}`)
  }

  /** An etcd3 (gRPC) client on `m` alone, so writes do not take an extra forwarding hop. */
  client(m: EtcdMember): Etcd3 {
    return new Etcd3({ hosts: [m.clientUrl] })
  }

  async destroy(): Promise<void> {
    this.#http.close()
    await Promise.all(this.members.map((m) => m.kill()))
    await rm(this.dir, { recursive: true, force: true })
  }
}
