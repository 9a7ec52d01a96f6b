/**
 * Processes and ports for the benchmark. Every child the benchmark starts is registered here and
 * SIGKILLed when the benchmark ends, normally, by an exception or by SIGINT/SIGTERM, and the work
 * directory is removed then too (unless --keep).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'

const children = new Set<ChildProcess>()
const dirs = new Set<string>()
let installed = false

function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}

function installCleanup(): void {
  if (installed) return
  installed = true
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping every process it started\n`)
      killAll()
      process.exit(130)
    })
  }
}

/** Removes `dir` when the benchmark exits (also on a signal or a crash). */
export function removeAtExit(dir: string): void {
  installCleanup()
  dirs.add(dir)
}

/** A child process whose output is kept (the tail) to explain failures; SIGKILLed at exit. */
export class Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #output = ''

  constructor(name: string, command: string, args: readonly string[], options: SpawnOptions = {}) {
    installCleanup()
    this.name = name
    this.proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    children.add(this.proc)
    const keep = (d: Buffer): void => {
      this.#output = (this.#output + d.toString()).slice(-20_000)
    }
    this.proc.stdout?.on('data', keep)
    this.proc.stderr?.on('data', keep)
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        children.delete(this.proc)
        resolve({ code, signal })
      })
    })
    this.proc.on('error', (err) => {
      this.#output += `\nspawn error: ${err.message}\n`
    })
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  get pid(): number {
    return this.proc.pid ?? -1
  }

  get output(): string {
    return this.#output
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (this.running) this.proc.kill('SIGKILL')
    await this.exited
  }
}

/** Child processes that do not come from `new Child` (fork()ed ones), killed at exit too. */
export function track(proc: ChildProcess): void {
  installCleanup()
  children.add(proc)
  proc.on('exit', () => children.delete(proc))
}

/**
 * Polls `pred` every `everyMs` until it returns a truthy value, and returns it; undefined once
 * `ms` have passed without one (for a measurement whose deadline is a result, not an error).
 */
export async function pollUntil<T>(pred: () => T | undefined | false | Promise<T | undefined | false>, ms: number, everyMs = 20): Promise<T | undefined> {
  const deadline = performance.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    if (performance.now() > deadline) return undefined
    await sleep(everyMs)
  }
}

/** Polls `pred` every `everyMs` until it returns a truthy value; throws after `ms` (a guard against hangs). */
export async function waitFor<T>(pred: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = 120_000, everyMs = 20): Promise<T> {
  const v = await pollUntil(pred, ms, everyMs)
  if (v === undefined) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
  return v
}

/** A pause that is part of what is measured (load running before a kill), never synchronisation. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Ports freeTcpPort has handed out in this process. */
const handedOut = new Set<number>()

/**
 * A free TCP port on 127.0.0.1, released before use and never one this process handed out
 * before: the kernel readily gives a just-released port to the next bind(0), so members started
 * together were once told the same port. Another process may still take it before the child binds
 * it (the holdfast cluster then restarts the member on another: Member.rebindIfPortTaken).
 */
export async function freeTcpPort(): Promise<number> {
  for (;;) {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise((resolve) => server.close(resolve))
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}

/** A free UDP port on 127.0.0.1. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const port = socket.address().port
  await new Promise<void>((resolve) => socket.close(resolve))
  return port
}

/** Resident memory of a process from /proc (Linux), in bytes: total, anonymous (heaps) and file-backed (LMDB's map). */
export function rss(pid: number): { rssBytes: number; anonBytes: number; fileBytes: number } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024
  return { rssBytes: kb('VmRSS'), anonBytes: kb('RssAnon'), fileBytes: kb('RssFile') }
}
