/**
 * Failover under load: SIGKILL the leader while writers run, and time from the kill to the first
 * acknowledged write that was sent after it, and (holdfast) to the first 200 from
 * /v1/leader-check on a surviving node. The same load and the same probe run against etcd (its
 * HTTP/JSON gateway) with etcd's default timing.
 *
 * The load: `writers` HTTP writers spread over every member; a writer whose request fails or
 * times out moves to the next member after a 5 ms pause, as a client with all endpoints would.
 * Besides, a probe write goes to every member every 20 ms without waiting for the earlier ones,
 * so the times are not quantised by the writers' timeouts (a write forwarded to the dead leader
 * waits for its timeout). Followers forward writes to the leader in both systems. Between repetitions the killed member
 * is restarted on its data directory and the cluster is whole again before the next kill.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Dht } from '../holdfast-cluster.js'
import { HoldfastCluster, type Member } from '../holdfast-cluster.js'
import { EtcdCluster, type EtcdMember } from '../etcd.js'
import { HttpClient, putKv } from '../http-client.js'
import { randomText } from '../load.js'
import { sleep, waitFor } from '../procs.js'
import { progress } from '../report/progress.js'
import { median, round3 } from '../stats.js'

/** How long a load writer waits for its write, and a probe for its. */
const WRITE_TIMEOUT_MS = 2_000
const PROBE_TIMEOUT_MS = 1_000
/** One probe write to every member this often, ms: the resolution of the failover times. */
const PROBE_EVERY_MS = 20

/** One holdfast timing to measure. */
export interface HoldfastTiming {
  readonly label: string
  readonly tickMs: number
  readonly electionTicks: number
}

/** holdfast's defaults (src/options.ts), and the faster timing the demo and the tests use. */
export const DEFAULT_TIMING: HoldfastTiming = { label: 'holdfast, defaults (tick 100 ms, election timeout 1-2 s)', tickMs: 100, electionTicks: 10 }
export const FAST_TIMING: HoldfastTiming = { label: 'holdfast, tick 50 ms (election timeout 0.5-1 s)', tickMs: 50, electionTicks: 10 }

export interface FailoverOptions {
  readonly reps: number
  readonly dir: string
  readonly dht: Dht
  readonly timings: readonly HoldfastTiming[]
  /** The etcd executable; undefined leaves etcd out. */
  readonly etcd: string | undefined
  /** Concurrent writers of the load. */
  readonly writers: number
  /** Load before each kill, ms. */
  readonly settleMs: number
}

export interface FailoverRep {
  /** Kill to the first acknowledged write sent after it, ms. */
  readonly writeMs: number
  /** Kill to the first 200 from /v1/leader-check on a surviving node, ms (holdfast only). */
  readonly leaderCheckMs?: number
}

export interface FailoverSeries {
  readonly system: string
  readonly reps: readonly FailoverRep[]
  readonly writeMedianMs: number
  readonly writeMaxMs: number
  readonly leaderCheckMedianMs?: number
  readonly leaderCheckMaxMs?: number
}

/**
 * Writers that keep writing through a failover, and probes, and when each write was sent and
 * acknowledged. A writer waits for its write (up to `timeoutMs`), so a write stuck on the dead
 * leader blocks its writer; the probes do not wait: every PROBE_EVERY_MS one probe write goes to
 * each member, so the first write that can succeed after the kill is sent within that period.
 */
class FailoverLoad {
  #stopped = false
  readonly #acks: Array<{ sent: number; acked: number }> = []
  readonly #done: Promise<void>
  readonly #probes = new Set<Promise<void>>()
  readonly #timer: NodeJS.Timeout

  constructor(endpoints: number, writers: number, put: (endpoint: number, key: string, timeoutMs: number) => Promise<void>) {
    const writer = async (w: number): Promise<void> => {
      let ep = w % endpoints
      for (let i = 0; !this.#stopped; i++) {
        const sent = performance.now()
        try {
          await put(ep, `failover/${w}/${i}`, WRITE_TIMEOUT_MS)
          this.#acks.push({ sent, acked: performance.now() })
        } catch {
          ep = (ep + 1) % endpoints
          await sleep(5)
        }
      }
    }
    this.#done = Promise.all(Array.from({ length: writers }, (_, w) => writer(w))).then(() => {})
    let n = 0
    this.#timer = setInterval(() => {
      for (let ep = 0; ep < endpoints; ep++) {
        const sent = performance.now()
        const p: Promise<void> = put(ep, `failover/probe/${n++}`, PROBE_TIMEOUT_MS).then(
          () => void this.#acks.push({ sent, acked: performance.now() }),
          () => {},
        )
        this.#probes.add(p)
        void p.finally(() => this.#probes.delete(p))
      }
    }, PROBE_EVERY_MS)
  }

  /** The first acknowledgement of a write sent at or after `t`. */
  firstAckAfter(t: number): number | undefined {
    let best: number | undefined
    for (const a of this.#acks) if (a.sent >= t && (best === undefined || a.acked < best)) best = a.acked
    return best
  }

  get acks(): number {
    return this.#acks.length
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await Promise.all([this.#done, ...this.#probes])
  }
}

function series(system: string, reps: FailoverRep[]): FailoverSeries {
  const w = reps.map((r) => r.writeMs)
  const c = reps.flatMap((r) => (r.leaderCheckMs === undefined ? [] : [r.leaderCheckMs]))
  return {
    system,
    reps,
    writeMedianMs: round3(median(w)),
    writeMaxMs: round3(Math.max(...w)),
    ...(c.length > 0 ? { leaderCheckMedianMs: round3(median(c)), leaderCheckMaxMs: round3(Math.max(...c)) } : {}),
  }
}

async function holdfastFailover(o: FailoverOptions, timing: HoldfastTiming, n: number): Promise<FailoverSeries> {
  const cluster = await HoldfastCluster.create({ dir: o.dir, name: `failover${n}`, dht: o.dht, voters: 3, tickMs: timing.tickMs, electionTicks: timing.electionTicks })
  // A restarted node helps elect no one for an election timeout after it boots: the next kill waits that out.
  const bootQuietMs = 2 * timing.electionTicks * timing.tickMs + 500
  const body = Buffer.from(JSON.stringify(randomText(254)))
  const http = new HttpClient(o.writers + (3 * PROBE_TIMEOUT_MS) / PROBE_EVERY_MS + 16)
  const reps: FailoverRep[] = []
  try {
    for (let i = 0; i < 3; i++) await cluster.add('daemon', { init: i === 0 })
    await cluster.waitFormed(3)
    const members = cluster.members
    for (let rep = 0; rep < o.reps; rep++) {
      await waitFor(() => members.every((m) => performance.now() - m.startedAt >= bootQuietMs), 'the boot quiet period')
      const load = new FailoverLoad(members.length, o.writers, (ep, key, timeoutMs) => putKv(http, members[ep]!.url, key, body, timeoutMs))
      let killedAt = 0
      let victim: Member | undefined
      try {
        await sleep(o.settleMs)
        victim = await cluster.waitFormed(3)
        const survivors = members.filter((m) => m !== victim)
        killedAt = performance.now()
        victim.child.proc.kill('SIGKILL')
        let checkAt: number | undefined
        await waitFor(async () => {
          if (checkAt === undefined) {
            const codes = await Promise.all(survivors.map(async (m) => (await m.get('/v1/leader-check', 250))?.status))
            if (codes.includes(200)) checkAt = performance.now()
          }
          return checkAt !== undefined && load.firstAckAfter(killedAt) !== undefined
        }, `${timing.label}: a write and a leader-check 200 after the kill`, 60_000, 5)
        const r = { writeMs: round3(load.firstAckAfter(killedAt)! - killedAt), leaderCheckMs: round3(checkAt! - killedAt) }
        reps.push(r)
        progress('failover', `${timing.label}, rep ${rep + 1}/${o.reps}: write after ${r.writeMs.toFixed(0)} ms, leader-check 200 after ${r.leaderCheckMs.toFixed(0)} ms (${load.acks} writes acknowledged)`)
      } finally {
        await load.stop()
      }
      await victim!.child.exited
      victim!.start(['--data-dir', victim!.dataDir])
      await victim!.waitUp()
      await cluster.waitFormed(3)
    }
  } finally {
    http.close()
    await cluster.destroy()
  }
  return series(timing.label, reps)
}

async function etcdFailover(o: FailoverOptions, etcdPath: string): Promise<FailoverSeries> {
  const cluster = await EtcdCluster.start(etcdPath, join(o.dir, 'etcd-failover'))
  const value = randomBytes(256)
  const reps: FailoverRep[] = []
  try {
    const members = cluster.members
    for (let rep = 0; rep < o.reps; rep++) {
      const load = new FailoverLoad(members.length, o.writers, (ep, key, timeoutMs) => cluster.httpPut(members[ep]!, key, value, timeoutMs))
      let victim: EtcdMember | undefined
      try {
        await sleep(o.settleMs)
        victim = await cluster.leader()
        const killedAt = performance.now()
        victim.child.proc.kill('SIGKILL')
        await waitFor(() => load.firstAckAfter(killedAt) !== undefined, 'etcd: a write after the kill', 60_000, 5)
        const r = { writeMs: round3(load.firstAckAfter(killedAt)! - killedAt) }
        reps.push(r)
        progress('failover', `etcd, defaults (heartbeat 100 ms, election 1000 ms), rep ${rep + 1}/${o.reps}: write after ${r.writeMs.toFixed(0)} ms (${load.acks} writes acknowledged)`)
      } finally {
        await load.stop()
      }
      await victim!.child.exited
      victim!.start()
      await waitFor(async () => (await cluster.status(victim!)) !== undefined, 'the restarted etcd member')
      await cluster.leader()
    }
  } finally {
    await cluster.destroy()
  }
  return series('etcd, defaults (heartbeat 100 ms, election 1000 ms)', reps)
}

export async function runFailover(o: FailoverOptions): Promise<FailoverSeries[]> {
  const out: FailoverSeries[] = []
  for (const [n, timing] of o.timings.entries()) out.push(await holdfastFailover(o, timing, n))
  if (o.etcd) out.push(await etcdFailover(o, o.etcd))
  return out
}
