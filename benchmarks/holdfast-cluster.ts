/**
 * holdfast clusters for the benchmark: one `holdfast dht` bootstrap process per run, and members
 * that are real processes on 127.0.0.1, each with its own data directory and HTTP port:
 *
 * - 'daemon' members run `holdfast start` (src/cli/main.ts through tsx, as the test harness does);
 * - 'embedded' members run embedded-node.ts: the same daemon plus the benchmark's writers in its
 *   process, driven over IPC.
 */
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ClusterStatus } from '../src/daemon/types.js'
import type { Envelope, FillRequest, FillResult, LoadRequest, LoadResult, MemberMessage } from './ipc.js'
import { Child, freeTcpPort, freeUdpPort, waitFor } from './procs.js'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const EMBEDDED = fileURLToPath(new URL('./embedded-node.ts', import.meta.url))

/**
 * Extra node flags for every member process, from HOLDFAST_BENCH_NODE_ARGS (space-separated), e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the members (node refuses --cpu-prof in
 * NODE_OPTIONS). The profile is written when a member exits cleanly.
 */
function nodeArgs(): string[] {
  return (process.env['HOLDFAST_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')
}

/** The environment of every child: without DEBUG (its output would cost CPU and fill the pipes). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env['DEBUG']
  return env
}

/** The DHT bootstrap node every cluster of a run uses (clusters differ by name and secret). */
export class Dht {
  private constructor(
    readonly child: Child,
    readonly address: string,
  ) {}

  static async start(): Promise<Dht> {
    const port = await freeUdpPort()
    const child = new Child('dht', process.execPath, ['--import', 'tsx', MAIN, 'dht', '--host', '127.0.0.1', '--port', String(port)], { env: childEnv() })
    await waitFor(() => child.output.includes('bootstrap node on') || !child.running, 'the DHT bootstrap node', 60_000)
    if (!child.running) throw new Error(`holdfast dht exited:\n${child.output}`)
    return new Dht(child, `127.0.0.1:${port}`)
  }

  stop(): Promise<void> {
    return this.child.kill()
  }
}

/** How a member runs. */
export type MemberKind = 'daemon' | 'embedded'

/** One member process. */
export class Member {
  readonly name: string
  readonly kind: MemberKind
  readonly dataDir: string
  /** The HTTP API; changes when a start lost its port and was retried on another (rebindIfPortTaken). */
  url: string
  readonly args: readonly string[]
  /** When the current process was started (performance.now()). */
  startedAt = 0
  /** The arguments of the latest start. */
  #startArgs: readonly string[] = []
  /** Whether the current process has answered /v1/status. */
  #answered = false
  #portRetries = 0
  child!: Child
  #id: string | undefined
  #nextRequest = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  /** Snapshot installs this member reported (embedded members only). */
  readonly snapshots: Array<{ index: number; bytes: number; atMs: number }> = []

  constructor(name: string, kind: MemberKind, dataDir: string, url: string, args: readonly string[]) {
    this.name = name
    this.kind = kind
    this.dataDir = dataDir
    this.url = url
    this.args = args
    this.start()
  }

  /** Starts the process (again) with `args`; a restart of a daemon needs only --data-dir. */
  start(args: readonly string[] = this.args): void {
    this.startedAt = performance.now()
    this.#startArgs = args
    this.#answered = false
    if (this.kind === 'daemon') {
      this.child = new Child(this.name, process.execPath, [...nodeArgs(), '--import', 'tsx', MAIN, 'start', ...args], { env: childEnv() })
      return
    }
    this.child = new Child(this.name, process.execPath, [...nodeArgs(), '--import', 'tsx', EMBEDDED, ...args], {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    })
    this.child.proc.on('message', (m: MemberMessage) => {
      if (m.type === 'ready') this.#id = m.nodeId
      else if (m.type === 'snapshotInstalled') this.snapshots.push({ index: m.index, bytes: m.bytes, atMs: m.atMs })
      else if (m.type === 'reply') {
        const p = this.#pending.get(m.id)
        this.#pending.delete(m.id)
        if (m.ok) p?.resolve(m.result)
        else p?.reject(new Error(`${this.name}: ${m.error}`))
      }
    })
    void this.child.exited.then(() => {
      for (const p of this.#pending.values()) p.reject(new Error(`${this.name} exited:\n${this.child.output.slice(-2000)}`))
      this.#pending.clear()
    })
  }

  get running(): boolean {
    return this.child.running
  }

  get pid(): number {
    return this.child.pid
  }

  /** The node id, known once the member answered /v1/status. */
  get id(): string {
    if (!this.#id) throw new Error(`${this.name}: id not known yet`)
    return this.#id
  }

  /** GET `path` as JSON, or undefined when the member does not answer in time. */
  async get<T>(path: string, timeoutMs = 2_000): Promise<{ status: number; body: T } | undefined> {
    if (!this.running) return undefined
    try {
      const res = await fetch(this.url + path, { signal: AbortSignal.timeout(timeoutMs) })
      const body = (await res.json().catch(() => undefined)) as T
      return { status: res.status, body }
    } catch {
      return undefined
    }
  }

  async status(): Promise<ClusterStatus | undefined> {
    const a = await this.get<ClusterStatus>('/v1/status')
    if (a?.status !== 200) return undefined
    this.#answered = true
    this.#id = a.body.id
    return a.body
  }

  /**
   * Starts the process again on a fresh HTTP port if it exited before answering because its port
   * was taken (ports are picked free, then bound by the child: another process may take one in
   * between). At most 3 times per member. Returns whether it did.
   */
  async rebindIfPortTaken(): Promise<boolean> {
    if (this.running || this.#answered || this.#portRetries >= 3 || !this.child.output.includes('EADDRINUSE')) return false
    this.#portRetries++
    const port = await freeTcpPort()
    this.url = `http://127.0.0.1:${port}`
    this.start(withHttpPort(this.#startArgs, port))
    return true
  }

  async waitUp(ms = 120_000): Promise<ClusterStatus> {
    return waitFor(async () => {
      if (!this.running) {
        if (await this.rebindIfPortTaken()) return undefined
        throw new Error(`${this.name} exited:\n${this.child.output.slice(-3000)}`)
      }
      return this.status()
    }, `${this.name} to answer /v1/status\n${this.child.output.slice(-2000)}`, ms, 25)
  }

  async kill(): Promise<void> {
    await this.child.kill()
  }

  /** Stops the process cleanly (SIGTERM; the embedded member over IPC), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return
    if (this.kind === 'embedded') void this.request({ op: 'stop' }).catch(() => {})
    else this.child.proc.kill('SIGTERM')
    const timer = setTimeout(() => this.child.proc.kill('SIGKILL'), graceMs)
    await this.child.exited
    clearTimeout(timer)
  }

  /** A request to an embedded member; rejects if it fails or the member exits. */
  request(r: LoadRequest): Promise<LoadResult>
  request(r: FillRequest): Promise<FillResult>
  request(r: { op: 'stop' }): Promise<null>
  request(r: LoadRequest | FillRequest | { op: 'stop' }): Promise<unknown> {
    if (this.kind !== 'embedded') throw new Error(`${this.name} is not an embedded member`)
    const id = this.#nextRequest++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.child.proc.send({ ...r, id } satisfies Envelope)
    })
  }
}

export interface ClusterOptions {
  /** The run's work directory; the cluster's goes below it. */
  readonly dir: string
  readonly name: string
  readonly dht: Dht
  /** Raft tick and election timeout (ticks); the daemon's defaults when omitted. */
  readonly tickMs?: number
  readonly electionTicks?: number
  /** Voters the daemons promote learners up to. */
  readonly voters: number
}

/** `args` with the HTTP API on 127.0.0.1:`port` (replacing an --http value, or added). */
function withHttpPort(args: readonly string[], port: number): string[] {
  const out = [...args]
  const i = out.indexOf('--http')
  if (i >= 0 && i + 1 < out.length) out[i + 1] = `127.0.0.1:${port}`
  else out.push('--http', `127.0.0.1:${port}`)
  return out
}

/** A cluster of members around the run's DHT. */
export class HoldfastCluster {
  readonly dir: string
  readonly members: Member[] = []
  readonly #options: ClusterOptions
  readonly #secretFile: string
  #count = 0

  private constructor(options: ClusterOptions, secretFile: string) {
    this.#options = options
    this.dir = join(options.dir, options.name)
    this.#secretFile = secretFile
  }

  /** Writes the secret; members are added with add(). */
  static async create(options: ClusterOptions): Promise<HoldfastCluster> {
    const secretFile = join(options.dir, `${options.name}.secret`)
    await writeFile(secretFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
    return new HoldfastCluster(options, secretFile)
  }

  /** The `holdfast start` arguments of a new member. */
  async #args(dataDir: string, port: number, opts: { init?: boolean; learner?: boolean }): Promise<string[]> {
    const o = this.#options
    return [
      '--data-dir', dataDir,
      '--cluster', o.name,
      '--secret-file', this.#secretFile,
      '--http', `127.0.0.1:${port}`,
      '--bootstrap', o.dht.address,
      ...(o.tickMs !== undefined ? ['--tick-ms', String(o.tickMs)] : []),
      ...(o.electionTicks !== undefined ? ['--election-ticks', String(o.electionTicks)] : []),
      ...(opts.init ? ['--init', '--voters', String(o.voters)] : []),
      ...(opts.learner ? ['--learner'] : []),
    ]
  }

  /**
   * Starts a member process (it joins as a learner unless `init`); does not wait for it. `port`
   * (for tests) is the HTTP port to try first.
   */
  async add(kind: MemberKind, opts: { init?: boolean; learner?: boolean; port?: number } = {}): Promise<Member> {
    const n = this.#count++
    const dataDir = join(this.dir, `node${n}`)
    const port = opts.port ?? (await freeTcpPort())
    const m = new Member(`${this.#options.name}/node${n}`, kind, dataDir, `http://127.0.0.1:${port}`, await this.#args(dataDir, port, opts))
    this.members.push(m)
    return m
  }

  live(): Member[] {
    return this.members.filter((m) => m.running)
  }

  /**
   * Waits until a live member leads with `voters` voters that it reaches, every live member is a
   * member and names it leader, and every live member has applied the leader's commit index.
   */
  async waitFormed(voters: number, ms = 120_000): Promise<Member> {
    return waitFor(async () => {
      const live = this.live()
      if (live.length < voters) {
        // Checked after counting: a member that lost its port may exit between any two checks.
        let rebound = false
        for (const m of this.members) if (await m.rebindIfPortTaken()) rebound = true
        if (rebound) return undefined
        const dead = this.members.filter((m) => !m.running).map((m) => `${m.name}:\n${m.child.output.slice(-1500)}`)
        throw new Error(`cluster ${this.#options.name} cannot form ${voters} voters: only ${live.length} members run\n${dead.join('\n')}`)
      }
      const ss = await Promise.all(live.map((m) => m.status()))
      const i = ss.findIndex((s) => s?.role === 'leader' && s.view === 'leader')
      if (i < 0) return undefined
      const ls = ss[i]!
      const vs = ls.members.filter((m) => m.voter)
      if (vs.length !== voters || !vs.every((m) => m.reachable)) return undefined
      if (!ss.every((s) => s !== undefined && s.leader === ls.id && ls.members.some((m) => m.id === s.id) && s.appliedIndex >= ls.commitIndex - 16)) return undefined
      return live[i]
    }, `cluster ${this.#options.name} to form with ${voters} voters`, ms, 25)
  }

  /**
   * Stops every member and removes the cluster's directory. Members are SIGKILLed, unless
   * HOLDFAST_BENCH_NODE_ARGS is set: then they stop cleanly, so their profiles are written.
   */
  async destroy(): Promise<void> {
    const profiling = nodeArgs().length > 0
    await Promise.all(this.members.map((m) => (profiling ? m.stop() : m.kill())))
    await rm(this.dir, { recursive: true, force: true })
  }
}
