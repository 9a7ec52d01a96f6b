/**
 * The processes of one campaign run, seen from the orchestrator (root namespace): the DHT
 * bootstrap node in the switch namespace, the driver in the client namespace (every HTTP call goes
 * through it), and the daemons, each `holdfast start` in its own namespace with its data directory
 * and its log file in the run's folder. Daemons are SIGKILLed, SIGSTOPped/SIGCONTed, restarted
 * and wiped here.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NetnsHost, NetnsRun } from '../netns/netns.js'
import type { FromDriver, HttpAnswer, HttpRequest, Request } from './protocol.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const DRIVER = fileURLToPath(new URL('./driver.ts', import.meta.url))
export const HTTP_PORT = 8080
export const DHT_PORT = 49737

/** The driver process and its request channel. */
export class Driver {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #next = 1
  readonly ready: Promise<void>
  readonly exited: Promise<void>

  constructor(run: NetnsRun, ns: string, token: string, logFile: string) {
    const fd = openSync(logFile, 'a')
    this.#child = run.spawnIn(ns, [process.execPath, '--import', 'tsx', DRIVER, token], { stdio: ['ignore', fd, fd, 'ipc'] })
    closeSync(fd)
    let onReady!: () => void
    this.ready = new Promise((r) => (onReady = r))
    this.#child.on('message', (m: FromDriver) => {
      if (m.id === 0) return onReady()
      const p = this.#pending.get(m.id)
      if (!p) return
      this.#pending.delete(m.id)
      if (m.ok) p.resolve(m.value)
      else p.reject(new Error(`driver: ${m.error}`))
    })
    this.exited = new Promise((resolve) =>
      this.#child.on('exit', () => {
        for (const p of this.#pending.values()) p.reject(new Error('the driver exited'))
        this.#pending.clear()
        resolve()
      }),
    )
  }

  call<T = unknown>(req: Request): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#child.send({ id, ...req })
    })
  }

  http(req: HttpRequest): Promise<HttpAnswer> {
    return this.call<HttpAnswer>({ op: 'http', req })
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.disconnect()
      this.#child.kill('SIGKILL')
    }
    await this.exited
  }
}

/** Spawns `holdfast ARGS` in a namespace with its output appended to `logFile`. */
export function spawnHoldfast(run: NetnsRun, ns: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const fd = openSync(logFile, 'a')
  writeSync(fd, `\n----- ${new Date().toISOString()} holdfast ${args.join(' ')}\n`)
  const child = run.spawnIn(ns, [process.execPath, '--import', 'tsx', MAIN, ...args], { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } })
  closeSync(fd)
  return child
}

export interface DaemonSettings {
  cluster: string
  secretFile: string
  tokenFile: string
  dhtBootstrap: string
  voters: number
  tickMs: number
  electionTicks: number
}

/** One daemon host: its namespace, address and data directory, and the process running there. */
export class Daemon {
  readonly url: string
  readonly dataDir: string
  readonly logFile: string
  /** The node id of the process running now (it changes when the data directory is wiped). */
  id: string | undefined
  /** Ids this host had before wipes, oldest first. */
  readonly formerIds: string[] = []
  paused = false
  #proc: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #running = false

  constructor(
    readonly name: string,
    readonly host: NetnsHost,
    readonly run: NetnsRun,
    folder: string,
    readonly settings: DaemonSettings,
  ) {
    this.url = `http://${host.ip}:${HTTP_PORT}`
    this.dataDir = join(folder, 'data', name)
    this.logFile = join(folder, 'logs', `${name}.log`)
    mkdirSync(join(folder, 'logs'), { recursive: true })
  }

  get running(): boolean {
    return this.#running
  }

  get pid(): number | undefined {
    return this.#proc?.pid
  }

  /** Starts `holdfast start` with every setting on the command line (a wiped directory remembers none). */
  start(opts: { init?: boolean; learner?: boolean } = {}): void {
    if (this.#running) throw new Error(`${this.name} is running`)
    const s = this.settings
    const args = [
      'start',
      '--data-dir', this.dataDir,
      '--cluster', s.cluster,
      '--secret-file', s.secretFile,
      '--token-file', s.tokenFile,
      '--http', `${this.host.ip}:${HTTP_PORT}`,
      '--bootstrap', s.dhtBootstrap,
      '--dht-host', this.host.ip,
      '--tick-ms', String(s.tickMs),
      '--election-ticks', String(s.electionTicks),
      ...(opts.init ? ['--init', '--voters', String(s.voters)] : []),
      ...(opts.learner ? ['--learner'] : []),
    ]
    const proc = spawnHoldfast(this.run, this.host.ns, args, this.logFile, { DEBUG: 'holdfast:daemon*' })
    this.#proc = proc
    this.#running = true
    this.paused = false
    this.#exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        if (this.#proc === proc) this.#running = false
        this.exitLog.push({ at: Date.now(), code, signal, expected: this.#killing })
        this.#killing = false
        resolve()
      }),
    )
  }

  /** Exits seen: a daemon that exits without being killed by the campaign has crashed. */
  readonly exitLog: Array<{ at: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean }> = []
  #killing = false

  signal(sig: NodeJS.Signals): void {
    if (!this.#running || !this.#proc) return
    this.#proc.kill(sig)
    if (sig === 'SIGSTOP') this.paused = true
    if (sig === 'SIGCONT') this.paused = false
  }

  async kill(): Promise<void> {
    if (!this.#running) return
    this.#killing = true
    this.#proc!.kill('SIGKILL')
    await this.#exited
    this.paused = false
  }

  /** Kills the daemon and deletes its data directory: its next start is a new node. */
  async wipe(): Promise<void> {
    await this.kill()
    if (this.id) this.formerIds.push(this.id)
    this.id = undefined
    rmSync(this.dataDir, { recursive: true, force: true })
  }
}
