/**
 * Real daemon processes for the daemon, CLI and status page tests: a `holdfast dht` bootstrap
 * process and `holdfast start` processes on 127.0.0.1, each with its own data directory and HTTP
 * port, run from the TypeScript sources through tsx (the same entry point the `holdfast` bin runs
 * after the build). Processes can be SIGKILLed, SIGSTOPped, stopped with SIGTERM and restarted on
 * the same directory; every process and directory is removed at teardown, also when a test fails.
 *
 * Nothing here sleeps to synchronise: waits poll the HTTP API with a deadline that only guards
 * against hangs.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freeTcpPort, freeUdpPort } from '../../benchmarks/procs.js'
import type { ClusterStatus } from '../../src/daemon/types.js'

export const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
/** Against hangs only. */
export const DEADLINE_MS = 60_000
/** Fast elections for tests: a 500-1000 ms election timeout. */
export const FAST_ARGS = ['--tick-ms', '50', '--election-ticks', '10'] as const

/** Polls `pred` every `everyMs` until it returns a truthy value; throws after `ms`. */
export async function waitFor<T>(pred: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = DEADLINE_MS, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** An HTTP answer, with its body parsed as JSON when it is JSON. */
export interface Answer {
  status: number
  headers: Headers
  body: any
  text: string
}

/** One `holdfast` process (dht or start). */
export class HoldfastProcess {
  readonly name: string
  readonly args: readonly string[]
  exited!: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #proc!: ChildProcess
  #output = ''
  #running = false

  constructor(name: string, args: readonly string[], readonly env: NodeJS.ProcessEnv = {}) {
    this.name = name
    this.args = args
    this.#spawn(args)
  }

  #spawn(args: readonly string[]): void {
    this.#proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env },
    })
    this.#running = true
    const keep = (d: Buffer): void => {
      this.#output = (this.#output + d.toString()).slice(-40_000)
    }
    this.#proc.stdout!.on('data', keep)
    this.#proc.stderr!.on('data', keep)
    this.exited = new Promise((resolve) => {
      this.#proc.on('exit', (code, signal) => {
        this.#running = false
        resolve({ code, signal })
      })
    })
  }

  get running(): boolean {
    return this.#running
  }

  get pid(): number | undefined {
    return this.#proc.pid
  }

  /** The tail of its stdout and stderr, to explain a failure. */
  get output(): string {
    return this.#output
  }

  signal(sig: NodeJS.Signals): void {
    if (this.#running) this.#proc.kill(sig)
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.#running) return
    this.#proc.kill('SIGKILL')
    await this.exited
  }

  /** Starts the process again with the same arguments (or `args`), after it exited. */
  restart(args: readonly string[] = this.args): void {
    if (this.#running) throw new Error(`${this.name} is still running`)
    this.#output += `\n----- restart -----\n`
    this.#spawn(args)
  }
}

/** A daemon process with its HTTP address. */
export class DaemonProcess extends HoldfastProcess {
  readonly dataDir: string
  readonly port: number
  readonly url: string
  #id: string | undefined
  token: string | undefined

  constructor(name: string, args: readonly string[], dataDir: string, port: number, token?: string, env: NodeJS.ProcessEnv = {}) {
    super(name, args, env)
    this.dataDir = dataDir
    this.port = port
    this.url = `http://127.0.0.1:${port}`
    this.token = token
  }

  /** The node id, known once the daemon has answered /v1/status. */
  get id(): string {
    if (!this.#id) throw new Error(`${this.name}: id not known yet (call waitUp first)`)
    return this.#id
  }

  /** An HTTP request to this daemon; the bearer token is sent unless `auth: false`. Connection errors throw. */
  async http(method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string>; auth?: boolean; timeoutMs?: number; redirect?: 'manual' | 'follow' | 'error' } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) }
    if (options.auth !== false && this.token) headers['authorization'] = `Bearer ${this.token}`
    const res = await fetch(this.url + path, {
      method,
      headers,
      ...(options.body !== undefined ? { body: options.body } : {}),
      redirect: options.redirect ?? 'manual',
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    })
    const text = await res.text()
    let body: unknown = undefined
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        body = JSON.parse(text)
      } catch {
        body = undefined
      }
    }
    return { status: res.status, headers: res.headers, body, text }
  }

  /** GET /v1/status, or undefined while the daemon does not answer. */
  async status(): Promise<ClusterStatus | undefined> {
    if (!this.running) return undefined
    try {
      const a = await this.http('GET', '/v1/status', { timeoutMs: 5_000 })
      if (a.status !== 200) return undefined
      this.#id = (a.body as ClusterStatus).id
      return a.body as ClusterStatus
    } catch {
      return undefined
    }
  }

  /** Waits until the daemon answers /v1/status. */
  async waitUp(ms = DEADLINE_MS): Promise<ClusterStatus> {
    return waitFor(async () => {
      if (!this.running) throw new Error(`${this.name} exited before answering /v1/status:\n${this.output}`)
      return this.status()
    }, `${this.name} to answer /v1/status\n${this.output}`, ms)
  }
}

export interface DaemonClusterOptions {
  /** Daemons started (the first with --init). @default 3 */
  size?: number
  /** --voters at init. @default 3 */
  voters?: number
  /** Start the cluster's daemons with --token-file holding this token. */
  token?: string
  /** Extra arguments for every daemon. */
  args?: readonly string[]
  /** Wait until this many voters and every daemon is a member. @default min(size, voters) */
  waitVoters?: number
}

/** A `holdfast dht` process and daemons around it. */
export class DaemonCluster {
  readonly dir: string
  readonly dht: HoldfastProcess
  readonly bootstrap: string
  readonly secretFile: string
  readonly tokenFile: string | undefined
  readonly daemons: DaemonProcess[] = []
  /** The cluster's name: unique per cluster, so clusters of tests running side by side never meet. */
  readonly name = `daemon-test-${randomBytes(4).toString('hex')}`
  readonly #options: DaemonClusterOptions
  #count = 0

  private constructor(dir: string, dht: HoldfastProcess, bootstrap: string, secretFile: string, tokenFile: string | undefined, options: DaemonClusterOptions) {
    this.dir = dir
    this.dht = dht
    this.bootstrap = bootstrap
    this.secretFile = secretFile
    this.tokenFile = tokenFile
    this.#options = options
  }

  /** Starts the DHT and `size` daemons, and waits until the cluster has formed. Torn down with `t`. */
  static async start(t: Test, options: DaemonClusterOptions = {}): Promise<DaemonCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'holdfast-daemon-'))
    const secretFile = join(dir, 'secret')
    await writeFile(secretFile, 'a long random secret for the daemon tests\n', { mode: 0o600 })
    let tokenFile: string | undefined
    if (options.token !== undefined) {
      tokenFile = join(dir, 'token')
      await writeFile(tokenFile, options.token + '\n', { mode: 0o600 })
    }
    const dhtPort = await freeUdpPort()
    const dht = new HoldfastProcess('dht', ['dht', '--host', '127.0.0.1', '--port', String(dhtPort)])
    const cluster = new DaemonCluster(dir, dht, `127.0.0.1:${dhtPort}`, secretFile, tokenFile, options)
    t.teardown(() => cluster.destroy())
    await waitFor(() => dht.output.includes('bootstrap node on') || !dht.running, 'the DHT bootstrap node')
    if (!dht.running) throw new Error(`holdfast dht exited:\n${dht.output}`)
    const size = options.size ?? 3
    for (let i = 0; i < size; i++) await cluster.add({ init: i === 0 })
    await cluster.waitFormed(options.waitVoters ?? Math.min(size, options.voters ?? 3))
    return cluster
  }

  /** Starts one more daemon (joins as a learner unless `init`). */
  async add(opts: { init?: boolean; learner?: boolean; args?: readonly string[]; env?: NodeJS.ProcessEnv } = {}): Promise<DaemonProcess> {
    const n = this.#count++
    const dataDir = join(this.dir, `node${n}`)
    for (let attempt = 1; ; attempt++) {
      const port = await freeTcpPort()
      const d = this.#spawn(n, dataDir, port, opts)
      try {
        await d.waitUp()
        this.daemons.push(d)
        return d
      } catch (err) {
        // The port is picked free, then bound by the daemon: another process may take it between.
        if (attempt < 3 && !d.running && d.output.includes('EADDRINUSE')) continue
        this.daemons.push(d) // torn down with the others
        throw err
      }
    }
  }

  #spawn(n: number, dataDir: string, port: number, opts: { init?: boolean; learner?: boolean; args?: readonly string[]; env?: NodeJS.ProcessEnv }): DaemonProcess {
    const args = [
      'start',
      '--data-dir', dataDir,
      '--cluster', this.name,
      '--secret-file', this.secretFile,
      '--http', `127.0.0.1:${port}`,
      '--bootstrap', this.bootstrap,
      ...FAST_ARGS,
      ...(opts.init ? ['--init', '--voters', String(this.#options.voters ?? 3)] : []),
      ...(opts.learner ? ['--learner'] : []),
      ...(this.tokenFile ? ['--token-file', this.tokenFile] : []),
      ...(this.#options.args ?? []),
      ...(opts.args ?? []),
    ]
    return new DaemonProcess(`node${n}`, args, dataDir, port, this.#options.token, opts.env)
  }

  /** The running daemons. */
  live(): DaemonProcess[] {
    return this.daemons.filter((d) => d.running)
  }

  /** Waits until some live daemon leads with `voters` voters and every live daemon is a member and agrees on the leader. */
  async waitFormed(voters: number, ms = DEADLINE_MS): Promise<DaemonProcess> {
    return waitFor(async () => {
      const live = this.live()
      const statuses = await Promise.all(live.map((d) => d.status()))
      if (statuses.some((s) => s === undefined)) return undefined
      const leaderIdx = statuses.findIndex((s) => s!.role === 'leader')
      if (leaderIdx < 0) return undefined
      const ls = statuses[leaderIdx]!
      if (ls.members.filter((m) => m.voter).length !== voters) return undefined
      if (!statuses.every((s) => s!.leader === ls.id && ls.members.some((m) => m.id === s!.id))) return undefined
      return live[leaderIdx]
    }, `a cluster of ${voters} voters with every live daemon a member`, ms)
  }

  /** The live daemon that leads, as the daemons agree (waits for one). */
  async leader(ms = DEADLINE_MS): Promise<DaemonProcess> {
    return waitFor(async () => {
      const live = this.live()
      const statuses = await Promise.all(live.map((d) => d.status()))
      const i = statuses.findIndex((s) => s?.role === 'leader')
      if (i < 0) return undefined
      const id = statuses[i]!.id
      return statuses.every((s) => s === undefined || s.leader === id) ? live[i] : undefined
    }, 'a leader', ms)
  }

  async destroy(): Promise<void> {
    for (const d of this.daemons) d.signal('SIGKILL')
    this.dht.signal('SIGKILL')
    await Promise.all([...this.daemons.map((d) => d.exited), this.dht.exited])
    await rm(this.dir, { recursive: true, force: true })
  }
}
