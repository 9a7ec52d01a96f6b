import { execFile } from 'node:child_process'
import createDebug from 'debug'
import PQueue from 'p-queue'
import { HoldfastError } from '../errors.js'
import type { HoldfastEvent } from './events.js'

const log = createDebug('holdfast:notifier')

/** @default 3 */
export const DEFAULT_NOTIFIER_RETRIES = 3
/** @default 500 */
export const DEFAULT_NOTIFIER_RETRY_DELAY_MS = 500
/** @default 1000 */
export const DEFAULT_NOTIFIER_QUEUE_LIMIT = 1000
/** @default 10000 */
export const DEFAULT_NOTIFIER_TIMEOUT_MS = 10_000

/** Anything that emits holdfast events: a HoldfastNode. */
export interface EventSource {
  on(event: 'event', listener: (e: HoldfastEvent) => void): unknown
  off(event: 'event', listener: (e: HoldfastEvent) => void): unknown
}

/** What a notifier delivers: a node's event, or its own report of events it had to drop. */
export type NotifierEvent = HoldfastEvent | { type: 'eventsDropped'; time: number; node: string; term: number; dropped: number }

export interface NotifierOptions {
  /** POSTs each event as JSON to `url`; any 2xx answer counts as delivered. */
  webhook?: {
    url: string
    headers?: Record<string, string>
    /** Per attempt. @default 10000 */
    timeoutMs?: number
  }
  /**
   * Runs a command per event (no shell). Each argument may contain placeholders: {type}, {node},
   * {term}, {time} and {json} (the whole event). The event's JSON is also on the command's stdin
   * and in the environment as HOLDFAST_EVENT. Exit status 0 counts as delivered.
   */
  command?: {
    argv: readonly string[]
    env?: Record<string, string>
    /** Per attempt; the command is killed past it. @default 10000 */
    timeoutMs?: number
  }
  /** Only these event types are sent. @default every type */
  types?: readonly string[]
  /** Further attempts after a failed one, per sink. @default 3 */
  retries?: number
  /** Delay before the first retry; it doubles for each further one. @default 500 */
  retryDelayMs?: number
  /**
   * Events waiting or in delivery, at most. When full, new events are dropped and counted; the
   * count goes out as an 'eventsDropped' event ahead of the next one delivered.
   * @default 1000
   */
  queueLimit?: number
  /** Called when an event could not be delivered to a sink after every retry. */
  onError?: (err: Error, event: NotifierEvent, sink: 'webhook' | 'command') => void
}

export interface NotifierStats {
  /** Events handed to every sink successfully. */
  delivered: number
  /** Deliveries (event × sink) that failed after every retry. */
  failed: number
  /** Attempts repeated after a failure. */
  retries: number
  /** Events dropped because the queue was full. */
  dropped: number
  /** Events waiting or in delivery now. */
  queued: number
}

export interface Notifier {
  readonly stats: NotifierStats
  /** Resolves once every queued event has been delivered (or has failed). */
  idle(): Promise<void>
  /** Stops listening, then waits for the queue to drain. */
  close(): Promise<void>
}

/**
 * Turns a node's events (`node.on('event')`) into webhook calls and/or commands, for alerting:
 *
 *   const notifier = createNotifier(node, {
 *     webhook: { url: 'https://alerts.example/holdfast', headers: { authorization: 'Bearer …' } },
 *     command: { argv: ['/usr/local/bin/page-oncall', '{type}', '{json}'] },
 *     types: ['actingStart', 'actingStop', 'actingFailed', 'quorumLost', 'staleFence'],
 *   })
 *
 * Events are delivered one at a time, in order, each to every sink with retries and exponential
 * backoff. The queue is bounded (p-queue): an event arriving when it is full is dropped and
 * counted, never blocks the node. Delivery failures are counted and passed to `onError`.
 */
export function createNotifier(source: EventSource, options: NotifierOptions): Notifier {
  if (!options.webhook && !options.command) throw new HoldfastError('INVALID_ARGUMENT', 'a notifier needs a webhook or a command')
  if (options.command && options.command.argv.length === 0) throw new HoldfastError('INVALID_ARGUMENT', 'command.argv needs at least the program')
  const retries = options.retries ?? DEFAULT_NOTIFIER_RETRIES
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_NOTIFIER_RETRY_DELAY_MS
  const limit = options.queueLimit ?? DEFAULT_NOTIFIER_QUEUE_LIMIT
  if (!(limit >= 1)) throw new HoldfastError('INVALID_ARGUMENT', 'queueLimit must be at least 1')
  const types = options.types ? new Set(options.types) : undefined
  const queue = new PQueue({ concurrency: 1 })
  const stats: NotifierStats = { delivered: 0, failed: 0, retries: 0, dropped: 0, queued: 0 }
  let unreported = 0

  const sinks: { name: 'webhook' | 'command'; send: (e: NotifierEvent) => Promise<void> }[] = []
  if (options.webhook) {
    const w = options.webhook
    sinks.push({ name: 'webhook', send: (e) => postJson(w.url, e, w.headers ?? {}, w.timeoutMs ?? DEFAULT_NOTIFIER_TIMEOUT_MS) })
  }
  if (options.command) {
    const c = options.command
    sinks.push({ name: 'command', send: (e) => runCommand(c.argv, c.env ?? {}, e, c.timeoutMs ?? DEFAULT_NOTIFIER_TIMEOUT_MS) })
  }

  const deliver = async (e: NotifierEvent): Promise<void> => {
    let ok = true
    for (const sink of sinks) {
      for (let attempt = 0; ; attempt++) {
        try {
          await sink.send(e)
          break
        } catch (err) {
          if (attempt >= retries) {
            ok = false
            stats.failed++
            log('%s: giving up on %s event after %d attempts: %s', sink.name, e.type, attempt + 1, (err as Error).message)
            options.onError?.(err as Error, e, sink.name)
            break
          }
          stats.retries++
          await new Promise((r) => setTimeout(r, retryDelayMs * 2 ** attempt))
        }
      }
    }
    if (ok) stats.delivered++
  }

  const listener = (e: HoldfastEvent): void => {
    if (types && !types.has(e.type)) return
    if (stats.queued >= limit) {
      stats.dropped++
      unreported++
      return
    }
    stats.queued++
    void queue.add(async () => {
      try {
        if (unreported > 0) {
          const dropped = unreported
          unreported = 0
          await deliver({ type: 'eventsDropped', time: Date.now(), node: e.node, term: e.term, dropped })
        }
        await deliver(e)
      } finally {
        stats.queued--
      }
    })
  }
  source.on('event', listener)

  return {
    stats,
    idle: () => queue.onIdle(),
    async close() {
      source.off('event', listener)
      await queue.onIdle()
    },
  }
}

async function postJson(url: string, body: unknown, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
  // Drain the body so the connection can be reused.
  await res.arrayBuffer().catch(() => {})
  if (res.status < 200 || res.status >= 300) throw new Error(`webhook answered ${res.status}`)
}

function runCommand(argv: readonly string[], env: Record<string, string>, e: NotifierEvent, timeoutMs: number): Promise<void> {
  const json = JSON.stringify(e)
  const fill = (arg: string): string =>
    arg.replace(/\{(type|node|term|time|json)\}/g, (_, k: string) => (k === 'json' ? json : String((e as unknown as Record<string, unknown>)[k])))
  const [file, ...args] = argv.map(fill)
  return new Promise<void>((resolve, reject) => {
    const child = execFile(file!, args, { timeout: timeoutMs, env: { ...process.env, ...env, HOLDFAST_EVENT: json } }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${argv[0]} failed: ${err.message}${stderr ? `: ${String(stderr).trim().slice(0, 500)}` : ''}`))
      else resolve()
    })
    child.stdin?.on('error', () => {}) // a command that does not read stdin may close it early
    child.stdin?.end(json)
  })
}
