/**
 * Parent side of the multi-process swarm tests: a DHT testnet on 127.0.0.1 in the test process,
 * and holdfast nodes in child processes (node-child.ts) that join it, each on its own data
 * directory. Children can be started, SIGKILLed and restarted on the same directory; every child
 * and directory is removed at teardown, also when the test fails.
 *
 * Nothing here sleeps to synchronise: waits poll a condition or listen for an event, each with a
 * deadline that only guards against hangs.
 *
 * Children run their DHT with `firewalled: false`: a fresh DHT node on 127.0.0.1 otherwise counts
 * itself as firewalled, so hyperdht holepunches between two such nodes, and on loopback that
 * sometimes gives the dialling side an "open" stream that the other side never sees; it dies by
 * the 5 s idle timeout and is redialled, and pairs of a new cluster took 5-20 s to connect (seen
 * with plain hyperswarm as well). Tests still wait for connections rather than assume them.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import type { Membership, NodeId } from '../../src/core/types.js'
import { loadOrCreateIdentity } from '../../src/identity.js'
import type { KeyValue, Value } from '../../src/state/index.js'
import { createLoopbackTestnet, type LoopbackTestnet } from '../../src/testing/testnet.js'
import type { ChildCommand, ChildConfig, ChildEventName, ChildMessage, ChildOp, ChildOps, ChildStatus, Consistency } from './node-child.js'

const CHILD = fileURLToPath(new URL('./node-child.ts', import.meta.url))

/** Against hangs only: no healthy step of these tests comes near it. */
export const DEADLINE_MS = 60_000
/** Fast elections: a 500-1000 ms election timeout. */
export const FAST = { tickMs: 50, electionTicks: 10 } as const

/** Polls `pred` (which may be async) every `everyMs` until it returns true; throws after `ms`. */
export async function waitUntil(pred: () => boolean | Promise<boolean>, what: string, ms = DEADLINE_MS, everyMs = 25): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await pred()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** A command the child answered with an error. */
export class ChildError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`)
  }
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
}

/** One recorded event of a child, with the parent's receive time (performance.now()). */
export interface RecordedEvent {
  name: ChildEventName
  data: unknown
  at: number
}

/** A holdfast node in a child process. */
export class ChildNode {
  readonly name: string
  readonly dataDir: string
  readonly id: NodeId
  readonly events: RecordedEvent[] = []
  /** Latest values from the child's events. */
  role = 'follower'
  leaderId: NodeId | null = null
  applied = 0
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #proc: ChildProcess
  #pending = new Map<number, Pending>()
  #nextId = 1
  #output = ''
  #gone = false
  #killed = false
  #listeners = new Set<() => void>()
  #ready: Promise<void>

  constructor(name: string, id: NodeId, config: ChildConfig) {
    this.name = name
    this.id = id
    this.dataDir = config.dataDir
    this.#proc = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    const keep = (d: Buffer): void => {
      // The tail is enough to explain a failure.
      this.#output = (this.#output + d.toString()).slice(-20_000)
    }
    this.#proc.stdout!.on('data', keep)
    this.#proc.stderr!.on('data', keep)
    this.exited = new Promise((resolve) => {
      this.#proc.on('error', (err) => {
        this.#output += `\nspawn error: ${err.message}`
      })
      this.#proc.on('exit', (code, signal) => {
        this.#gone = true
        const why = new Error(`child ${name} exited (code ${code}, signal ${signal}) before answering`)
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer)
          p.reject(why)
        }
        this.#pending.clear()
        this.#notify()
        resolve({ code, signal })
      })
    })
    this.#ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child ${name} did not open its node in ${DEADLINE_MS} ms:\n${this.output}`)), DEADLINE_MS)
      this.#proc.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          clearTimeout(timer)
          if (m.id !== id) reject(new Error(`child ${name} has id ${m.id}, expected ${id}`))
          this.role = m.status.role
          this.leaderId = m.status.leaderId
          this.applied = m.status.appliedIndex
          resolve()
        } else if (m.type === 'fatal') {
          clearTimeout(timer)
          reject(new Error(`child ${name} failed to start: ${m.message}`))
        }
      })
      void this.exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`child ${name} exited before opening its node:\n${this.output}`))
      })
    })
    this.#ready.catch(() => {})
    this.#proc.on('message', (m: ChildMessage) => this.#onMessage(m))
  }

  /** Resolves once the child's node is open. */
  ready(): Promise<void> {
    return this.#ready
  }

  /** The child's stdout and stderr (the tail). */
  get output(): string {
    return this.#output
  }

  /** False once the process has exited (or was killed). */
  get alive(): boolean {
    return !this.#gone && !this.#killed
  }

  #onMessage(m: ChildMessage): void {
    if (m.type === 'reply') {
      const p = this.#pending.get(m.id)
      if (!p) return
      this.#pending.delete(m.id)
      clearTimeout(p.timer)
      if (m.ok) p.resolve(m.value)
      else p.reject(new ChildError(m.error.code, m.error.message))
    } else if (m.type === 'event') {
      this.events.push({ name: m.name, data: m.data, at: performance.now() })
      if (m.name === 'role') this.role = m.data as string
      else if (m.name === 'leader') this.leaderId = (m.data as NodeId | null) ?? null
      else if (m.name === 'applied') this.applied = Math.max(this.applied, m.data as number)
    }
    this.#notify()
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l()
  }

  /** Sends a command and resolves with the child's answer (rejects with ChildError, or when the child dies). */
  call<K extends ChildOp>(op: K, args: ChildOps[K]['args'], timeoutMs = DEADLINE_MS): Promise<ChildOps[K]['result']> {
    if (!this.alive) return Promise.reject(new Error(`child ${this.name} is not running`))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`child ${this.name} did not answer ${op} in ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      const cmd: ChildCommand = { type: 'cmd', id, op, args }
      this.#proc.send(cmd, (err) => {
        if (!err) return
        clearTimeout(timer)
        this.#pending.delete(id)
        reject(new Error(`child ${this.name}: ${op} not sent: ${err.message}`))
      })
    })
  }

  put(key: string, value: Value, timeoutMs?: number): Promise<{ revision: number }> {
    return this.call('put', { key, value, ...(timeoutMs ? { timeoutMs } : {}) })
  }

  get(key: string, consistency: Consistency = 'linearizable'): Promise<KeyValue | null> {
    return this.call('get', { key, consistency })
  }

  list(prefix?: string): Promise<KeyValue[]> {
    return this.call('list', prefix ? { prefix } : {})
  }

  status(): Promise<ChildStatus> {
    return this.call('status', {})
  }

  /** Resolves when `pred` holds, checked now and on every message from the child; rejects at the deadline or when the child exits. */
  waitFor(pred: () => boolean, what: string, ms = DEADLINE_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        this.#listeners.delete(check)
        if (err) reject(err)
        else resolve()
      }
      const check = (): void => {
        if (pred()) done()
        else if (this.#gone) done(new Error(`child ${this.name} exited while waiting for ${what}:\n${this.output}`))
      }
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what} on ${this.name}`)), ms)
      this.#listeners.add(check)
      check()
    })
  }

  /** Waits for an event named `name` (recorded at any time so far) whose data satisfies `pred`. */
  async waitEvent(name: ChildEventName, pred: (data: any) => boolean = () => true, ms = DEADLINE_MS): Promise<RecordedEvent> {
    let found: RecordedEvent | undefined
    await this.waitFor(() => (found = this.events.find((e) => e.name === name && pred(e.data))) !== undefined, `a '${name}' event`, ms)
    return found!
  }

  /** Waits until the child has applied at least `index`. */
  waitApplied(index: number, ms = DEADLINE_MS): Promise<void> {
    return this.waitFor(() => this.applied >= index, `applied index ${index} (at ${this.applied})`, ms)
  }

  /** Sends a signal to the process (SIGSTOP and SIGCONT pause and resume it). */
  signal(sig: NodeJS.Signals): void {
    if (!this.#gone) this.#proc.kill(sig)
  }

  /** SIGKILLs the process: no hand-over, no flush beyond what the node already made durable. */
  async kill(): Promise<void> {
    this.#killed = true
    if (!this.#gone) this.#proc.kill('SIGKILL')
    await this.exited
  }

  /** Closes the node gracefully (a leader hands over first) and waits for the process to exit. */
  async close(): Promise<void> {
    await this.call('close', {})
    const { code } = await this.exited
    if (code !== 0) throw new Error(`child ${this.name} exited with code ${code} after close:\n${this.output}`)
  }
}

export interface ClusterOptions {
  /** Cluster name (distinct per test, so topics never collide). */
  cluster: string
  secret?: string
  tickMs?: number
  electionTicks?: number
  logTail?: number
  operationTimeoutMs?: number
  swarm?: Record<string, number>
}

/**
 * A test's cluster of child processes on one loopback DHT testnet. Data directories are named;
 * a name's identity (key pair) is created on first use, so the parent knows every id up front.
 */
export class SwarmCluster {
  readonly root: string
  readonly testnet: LoopbackTestnet
  readonly options: ClusterOptions & { secret: string }
  /** Every child ever started, the running and the dead. */
  readonly started: ChildNode[] = []
  /** The running child per name. */
  readonly nodes = new Map<string, ChildNode>()
  readonly #ids = new Map<string, NodeId>()

  private constructor(root: string, testnet: LoopbackTestnet, options: ClusterOptions & { secret: string }) {
    this.root = root
    this.testnet = testnet
    this.options = options
  }

  /** Starts the testnet; `t.teardown` kills every child and removes every directory, whatever happens. */
  static async create(t: Test, options: ClusterOptions): Promise<SwarmCluster> {
    const root = await mkdtemp(join(tmpdir(), 'holdfast-swarm-'))
    let cluster: SwarmCluster | undefined
    t.teardown(async () => {
      if (cluster) await cluster.destroy()
      await rm(root, { recursive: true, force: true })
    })
    const testnet = await createLoopbackTestnet(3)
    cluster = new SwarmCluster(root, testnet, { secret: `secret of ${options.cluster} ${Math.random()}`, ...options })
    return cluster
  }

  dataDir(name: string): string {
    return join(this.root, name)
  }

  /** The id of `name`, creating its data directory and key pair if needed. */
  async id(name: string): Promise<NodeId> {
    let id = this.#ids.get(name)
    if (id === undefined) {
      await mkdir(this.dataDir(name), { recursive: true })
      id = (await loadOrCreateIdentity(this.dataDir(name))).id
      this.#ids.set(name, id)
    }
    return id
  }

  /** The membership of a new cluster of these voters. */
  async membership(names: readonly string[]): Promise<Membership> {
    return { voters: await Promise.all(names.map((n) => this.id(n))), learners: [] }
  }

  /** Starts `name` on its data directory and waits until its node is open. */
  async start(name: string, extra: Partial<ChildConfig> = {}): Promise<ChildNode> {
    if (this.nodes.get(name)?.alive) throw new Error(`${name} is already running`)
    const o = this.options
    const config: ChildConfig = {
      name,
      dataDir: this.dataDir(name),
      cluster: o.cluster,
      secret: o.secret,
      dhtBootstrap: this.testnet.bootstrap,
      tickMs: o.tickMs ?? FAST.tickMs,
      electionTicks: o.electionTicks ?? FAST.electionTicks,
      ...(o.logTail !== undefined ? { logTail: o.logTail } : {}),
      ...(o.operationTimeoutMs !== undefined ? { operationTimeoutMs: o.operationTimeoutMs } : {}),
      ...(o.swarm ? { swarm: o.swarm } : {}),
      ...extra,
    }
    const child = new ChildNode(name, await this.id(name), config)
    this.started.push(child)
    this.nodes.set(name, child)
    await child.ready()
    return child
  }

  /** Starts the initial voters of a new cluster, together, each with the same bootstrap membership. */
  async startVoters(names: readonly string[], extra: Partial<ChildConfig> = {}): Promise<ChildNode[]> {
    const bootstrap = await this.membership(names)
    return Promise.all(names.map((n) => this.start(n, { bootstrap, ...extra })))
  }

  /** The running children. */
  running(): ChildNode[] {
    return [...this.nodes.values()].filter((c) => c.alive)
  }

  byId(id: NodeId): ChildNode | undefined {
    return this.running().find((c) => c.id === id)
  }

  /**
   * Waits until one of `among` leads and all of `among` name it as their leader (asked directly,
   * not taken from events), and returns it.
   */
  async leader(among: readonly ChildNode[] = this.running(), ms = DEADLINE_MS): Promise<ChildNode> {
    let found: ChildNode | undefined
    await waitUntil(
      async () => {
        const statuses = await Promise.all(among.map((c) => c.status()))
        const leaders = statuses.filter((s) => s.role === 'leader')
        const l = leaders[0]
        if (leaders.length !== 1 || !l || !statuses.every((s) => s.leaderId === l.id)) return false
        found = among.find((c) => c.id === l.id)
        return true
      },
      `one leader that all of ${among.map((c) => c.name).join(', ')} agree on`,
      ms,
      50,
    )
    return found!
  }

  /**
   * Waits until every one of `among` has applied everything the leader has committed now, and
   * returns that index.
   */
  async caughtUp(among: readonly ChildNode[] = this.running(), ms = DEADLINE_MS): Promise<number> {
    const leader = await this.leader(among, ms)
    const { commitIndex } = await leader.status()
    await Promise.all(among.map((c) => c.waitApplied(commitIndex, ms)))
    return commitIndex
  }

  /** Waits until each of `among` is connected to every other (members dial each other by id). */
  async mesh(among: readonly ChildNode[] = this.running(), ms = DEADLINE_MS): Promise<void> {
    await waitUntil(
      async () => {
        const statuses = await Promise.all(among.map((c) => c.status()))
        return statuses.every((s) => among.every((c) => c.id === s.id || s.connectedPeers.includes(c.id)))
      },
      `${among.map((c) => c.name).join(', ')} to be connected to each other`,
      ms,
      100,
    )
  }

  /** Kills every child (SIGKILL) and closes the testnet. */
  async destroy(): Promise<void> {
    await Promise.all(this.started.map((c) => c.kill()))
    await this.testnet.close()
  }

  /** Every child's output tail, for a failing test's diagnostics. */
  outputs(): string {
    return this.started.map((c) => `--- ${c.name} (${c.id.slice(0, 8)}):\n${c.output}`).join('\n')
  }
}

/** A write the cluster acknowledged. */
export interface Ack {
  key: string
  value: Value
  revision: number
  /** Which child the write was sent to. */
  via: string
  issuedAt: number
  ackedAt: number
}

/**
 * An open-loop writer: it sends a put of a fresh key every `intervalMs` to the next target
 * (round robin), without waiting for earlier writes, up to `maxInFlight`. Writes stuck on a dead
 * leader therefore do not stop writes that a new leader can take. Only writes whose reply arrived
 * count as acknowledged; every other outcome is recorded by error code.
 */
export class Writer {
  readonly acked = new Map<string, Ack>()
  readonly failures = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #inFlight = new Set<Promise<void>>()
  #n = 0
  #turn = 0

  constructor(
    readonly prefix: string,
    readonly targets: () => ChildNode[],
    readonly options: { intervalMs?: number; maxInFlight?: number; timeoutMs?: number } = {},
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.#issue(), this.options.intervalMs ?? 20)
  }

  #issue(): void {
    if (this.#inFlight.size >= (this.options.maxInFlight ?? 200)) return
    const targets = this.targets().filter((c) => c.alive)
    const target = targets[this.#turn++ % Math.max(1, targets.length)]
    if (!target) return
    const key = `${this.prefix}${String(this.#n++).padStart(6, '0')}`
    const value = { key, n: this.#n, pad: 'v'.repeat(this.#n % 50) }
    const issuedAt = performance.now()
    const p = target
      .put(key, value, this.options.timeoutMs ?? 10_000)
      .then(
        ({ revision }) => {
          this.acked.set(key, { key, value, revision, via: target.name, issuedAt, ackedAt: performance.now() })
        },
        (err: unknown) => {
          const code = err instanceof ChildError ? err.code : 'CHILD_GONE'
          this.failures.set(code, (this.failures.get(code) ?? 0) + 1)
        },
      )
      .finally(() => this.#inFlight.delete(p))
    this.#inFlight.add(p)
  }

  /** The first acknowledged write issued after `t`. */
  firstAckIssuedAfter(t: number): Ack | undefined {
    let first: Ack | undefined
    for (const a of this.acked.values()) if (a.issuedAt > t && (!first || a.ackedAt < first.ackedAt)) first = a
    return first
  }

  /** Stops issuing and waits for every write in flight to settle. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all(this.#inFlight)
  }
}

/** Compares what `node` stores under `prefix` (a local read) with the acknowledged writes: every one present with its value. */
export async function missingAcks(node: ChildNode, acked: Iterable<Ack>, prefix: string): Promise<string[]> {
  const stored = new Map((await node.list(prefix)).map((kv) => [kv.key, kv]))
  const problems: string[] = []
  for (const a of acked) {
    const kv = stored.get(a.key)
    if (!kv) problems.push(`${node.name}: acknowledged ${a.key}@${a.revision} is missing`)
    else if (JSON.stringify(kv.value) !== JSON.stringify(a.value)) problems.push(`${node.name}: ${a.key} holds ${JSON.stringify(kv.value)}`)
    else if (kv.modRevision !== a.revision) problems.push(`${node.name}: ${a.key} acknowledged at revision ${a.revision}, stored at ${kv.modRevision}`)
  }
  return problems
}
