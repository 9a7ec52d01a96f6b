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
import { Child, freeTcpPort, pollUntil, sleep, waitFor } from './procs.js'

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
  raftTerm?: string
}

/** A member that exited on its own: its name, how, and the tail of its output. */
function exitedText(m: EtcdMember): string {
  const { exitCode, signalCode } = m.child.proc
  return `etcd member ${m.name} exited (${signalCode ?? `code ${exitCode}`}):\n${m.child.output.slice(-1500)}`
}

/** A member that could not listen: a port chosen free was taken before etcd bound it. */
function lostPortRace(m: EtcdMember): boolean {
  return !m.running && /address already in use/i.test(m.child.output)
}

/** A three-member etcd cluster on loopback. */
export class EtcdCluster {
  readonly members: EtcdMember[]
  readonly dir: string
  readonly #http = new HttpClient(256)
  /** Member names by the ids their status answers carried, for diagnostics about a member that is down. */
  readonly #names = new Map<string, string>()

  private constructor(dir: string, members: EtcdMember[]) {
    this.dir = dir
    this.members = members
  }

  /**
   * Starts the members and waits until all of them agree on a leader. The ports are picked free
   * and released before etcd binds them, so another socket (any outgoing connection on the
   * machine takes one from the same range) can take one first: then the members are started
   * again on fresh ports.
   */
  static async start(etcd: string, dir: string, size = 3): Promise<EtcdCluster> {
    for (let attempt = 1; ; attempt++) {
      const cluster = await EtcdCluster.#spawn(etcd, dir, size)
      try {
        await cluster.leader()
        return cluster
      } catch (err) {
        const raced = cluster.members.some(lostPortRace)
        await cluster.destroy()
        if (!raced || attempt >= 5) throw err
      }
    }
  }

  static async #spawn(etcd: string, dir: string, size: number): Promise<EtcdCluster> {
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
    return new EtcdCluster(dir, members)
  }

  /** /v3/maintenance/status of one member, or undefined when it does not answer. */
  async status(m: EtcdMember, timeoutMs = 1_000): Promise<EtcdStatus | undefined> {
    if (!m.running) return undefined
    try {
      const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(timeoutMs) })
      if (res.status !== 200) return undefined
      const s = (await res.json()) as EtcdStatus
      if (s.header?.member_id) this.#names.set(s.header.member_id, m.name)
      return s
    } catch {
      return undefined
    }
  }

  /**
   * Waits until every member answers and all agree on a leader; returns the leader. Every member
   * must be running: a member that exited is an error at once (with its output), never left out,
   * because a kill of the leader in a cluster already missing a member leaves no quorum.
   */
  async leader(ms = 120_000): Promise<EtcdMember> {
    const leader = await pollUntil(async () => {
      const dead = this.members.find((m) => !m.running)
      if (dead) throw new Error(exitedText(dead))
      const ss = await Promise.all(this.members.map((m) => this.status(m)))
      const id = ss[0]?.leader
      if (!id || id === '0' || !ss.every((s) => s?.leader === id)) return undefined
      const i = ss.findIndex((s) => s?.header?.member_id === id)
      return i < 0 ? undefined : this.members[i]
    }, ms, 25)
    if (!leader) throw new Error(`timed out after ${ms} ms waiting for the etcd cluster to elect a leader (${await this.describe()})\n${this.members.map((m) => m.child.output.slice(-1000)).join('\n')}`)
    return leader
  }

  /** Starts a killed member again on its data directory and ports, and waits until the cluster is whole. */
  async restart(m: EtcdMember, ms = 120_000): Promise<void> {
    const deadline = performance.now() + ms
    for (;;) {
      m.start()
      await waitFor(async () => !m.running || (await this.status(m)) !== undefined, `the restarted etcd member ${m.name}`, ms)
      if (m.running) break
      // Its port was taken while it was down (an outgoing connection): it frees again shortly.
      if (!lostPortRace(m) || performance.now() > deadline) throw new Error(exitedText(m))
      await sleep(250)
    }
    await this.leader(Math.max(1_000, deadline - performance.now()))
  }

  /** One line per member: running or how it exited, and the leader and term it reports (diagnostics). */
  async describe(): Promise<string> {
    const ss = await Promise.all(this.members.map((m) => this.status(m, 500)))
    return this.members
      .map((m, i) => {
        if (!m.running) return `${m.name}: exited (${m.child.proc.signalCode ?? `code ${m.child.proc.exitCode}`})`
        const s = ss[i]
        const leader = !s?.leader || s.leader === '0' ? 'none' : (this.#names.get(s.leader) ?? s.leader)
        return `${m.name}: ${s ? `running, leader ${leader}, term ${s.raftTerm}` : 'running, no answer to status'}`
      })
      .join('; ')
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
