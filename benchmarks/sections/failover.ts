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
 *
 * A repetition whose write (or leader-check 200) does not come within `timeoutMs` is recorded as
 * timed out, with the members' state then, and the series goes on; the table and the JSON show
 * it. Any other failure of a system (a member that exits, a cluster that does not become whole
 * again) ends that system's series with `error` set, and the run goes on to the next system.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Dht } from '../holdfast-cluster.js'
import { HoldfastCluster, type Member } from '../holdfast-cluster.js'
import { EtcdCluster, type EtcdMember } from '../etcd.js'
import { HttpClient, putKv } from '../http-client.js'
import { randomText } from '../load.js'
import { pollUntil, sleep, waitFor } from '../procs.js'
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

/**
 * holdfast's defaults (src/options.ts); the faster timing the demo and the tests use; and a LAN
 * timing for a quiet network of nearby machines (heartbeats every 25 ms, which a loaded 2-core
 * machine still keeps: no spurious election was seen under the write load of this benchmark).
 */
export const DEFAULT_TIMING: HoldfastTiming = { label: 'holdfast, defaults (tick 100 ms, election timeout 1-2 s)', tickMs: 100, electionTicks: 10 }
export const FAST_TIMING: HoldfastTiming = { label: 'holdfast, tick 50 ms (election timeout 0.5-1 s)', tickMs: 50, electionTicks: 10 }
export const LAN_TIMING: HoldfastTiming = { label: 'holdfast, tick 25 ms (election timeout 250-500 ms)', tickMs: 25, electionTicks: 10 }

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
  /** How long a repetition waits for its write (and leader-check) after the kill before it is recorded as timed out, ms. */
  readonly timeoutMs: number
}

/** A repetition that did not see what it waits for within the deadline. */
export interface FailoverTimeout {
  /** The deadline, ms after the kill. */
  readonly afterMs: number
  /** What had not come, e.g. "an acknowledged write". */
  readonly missing: string
  /** The members' state at the deadline. */
  readonly members: string
}

export interface FailoverRep {
  /** Kill to the first acknowledged write sent after it, ms; null when none came before the deadline. */
  readonly writeMs: number | null
  /** Kill to the first 200 from /v1/leader-check on a surviving node, ms (holdfast only); null when none came. */
  readonly leaderCheckMs?: number | null
  /** Set when the repetition timed out: its figures above are those that came in time. */
  readonly timedOut?: FailoverTimeout
}

export interface FailoverSeries {
  readonly system: string
  readonly reps: readonly FailoverRep[]
  /** Repetitions that timed out (they are in `reps`, and left out of the medians and maxima). */
  readonly timedOut: number
  /** Over the repetitions with a write; null when none had one. */
  readonly writeMedianMs: number | null
  readonly writeMaxMs: number | null
  readonly leaderCheckMedianMs?: number | null
  readonly leaderCheckMaxMs?: number | null
  /** Set when the system failed for another reason than a timeout: its series stops there, and the run exits non-zero. */
  readonly error?: string
}

/** "rep 2/3: timed out after 60000 ms: no acknowledged write (m0: ...)", for the progress lines and the table. */
export function timeoutText(t: FailoverTimeout): string {
  return `timed out after ${t.afterMs} ms: no ${t.missing} after the kill (${t.members})`
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

function series(system: string, reps: readonly FailoverRep[], error?: string): FailoverSeries {
  const w = reps.flatMap((r) => (r.writeMs === null ? [] : [r.writeMs]))
  const c = reps.flatMap((r) => (r.leaderCheckMs === undefined || r.leaderCheckMs === null ? [] : [r.leaderCheckMs]))
  const holdfast = reps.some((r) => r.leaderCheckMs !== undefined)
  return {
    system,
    reps,
    timedOut: reps.filter((r) => r.timedOut).length,
    writeMedianMs: w.length > 0 ? round3(median(w)) : null,
    writeMaxMs: w.length > 0 ? round3(Math.max(...w)) : null,
    ...(holdfast ? { leaderCheckMedianMs: c.length > 0 ? round3(median(c)) : null, leaderCheckMaxMs: c.length > 0 ? round3(Math.max(...c)) : null } : {}),
    ...(error !== undefined ? { error } : {}),
  }
}

/** A system's repetitions so far, and the error that ended them early (a crash, a cluster that did not recover). */
interface Run {
  readonly reps: FailoverRep[]
  error?: string
}

async function holdfastFailover(o: FailoverOptions, timing: HoldfastTiming, n: number, out: Run): Promise<void> {
  const cluster = await HoldfastCluster.create({ dir: o.dir, name: `failover${n}`, dht: o.dht, voters: 3, tickMs: timing.tickMs, electionTicks: timing.electionTicks })
  // A restarted node helps elect no one for an election timeout after it boots: the next kill waits that out.
  const bootQuietMs = 2 * timing.electionTicks * timing.tickMs + 500
  const body = Buffer.from(JSON.stringify(randomText(254)))
  const http = new HttpClient(o.writers + (3 * PROBE_TIMEOUT_MS) / PROBE_EVERY_MS + 16)
  try {
    for (let i = 0; i < 3; i++) await cluster.add('daemon', { init: i === 0 })
    await cluster.waitFormed(3)
    const members = cluster.members
    for (let rep = 0; rep < o.reps; rep++) {
      await waitFor(() => members.every((m) => performance.now() - m.startedAt >= bootQuietMs), 'the boot quiet period')
      const load = new FailoverLoad(members.length, o.writers, (ep, key, timeoutMs) => putKv(http, members[ep]!.url, key, body, timeoutMs))
      let victim: Member | undefined
      try {
        await sleep(o.settleMs)
        victim = await cluster.waitFormed(3)
        const survivors = members.filter((m) => m !== victim)
        const killedAt = performance.now()
        victim.child.proc.kill('SIGKILL')
        let checkAt: number | undefined
        const done = await pollUntil(async () => {
          if (checkAt === undefined) {
            const codes = await Promise.all(survivors.map(async (m) => (await m.get('/v1/leader-check', 250))?.status))
            if (codes.includes(200)) checkAt = performance.now()
          }
          return checkAt !== undefined && load.firstAckAfter(killedAt) !== undefined
        }, o.timeoutMs, 5)
        const ack = load.firstAckAfter(killedAt)
        const writeMs = ack === undefined ? null : round3(ack - killedAt)
        const leaderCheckMs = checkAt === undefined ? null : round3(checkAt - killedAt)
        const what = `${timing.label}, rep ${rep + 1}/${o.reps}`
        if (done) {
          out.reps.push({ writeMs, leaderCheckMs })
          progress('failover', `${what}: write after ${writeMs!.toFixed(0)} ms, leader-check 200 after ${leaderCheckMs!.toFixed(0)} ms (${load.acks} writes acknowledged)`)
        } else {
          const missing = [writeMs === null ? 'acknowledged write' : '', leaderCheckMs === null ? 'leader-check 200 on a surviving node' : ''].filter((x) => x).join(' and no ')
          const timedOut = { afterMs: o.timeoutMs, missing, members: members.map((m) => `${m.name}: ${m === victim ? 'killed' : m.running ? 'running' : 'exited'}`).join('; ') }
          out.reps.push({ writeMs, leaderCheckMs, timedOut })
          progress('failover', `${what}: ${timeoutText(timedOut)} (${load.acks} writes acknowledged)`)
        }
      } finally {
        await load.stop()
      }
      // The cluster is whole again before the next kill (not after the last one: it is torn down).
      if (rep + 1 < o.reps) {
        await victim.child.exited
        victim.start(['--data-dir', victim.dataDir])
        await victim.waitUp()
        await cluster.waitFormed(3)
      }
    }
  } finally {
    http.close()
    await cluster.destroy()
  }
}

const ETCD_LABEL = 'etcd, defaults (heartbeat 100 ms, election 1000 ms)'

async function etcdFailover(o: FailoverOptions, etcdPath: string, out: Run): Promise<void> {
  const cluster = await EtcdCluster.start(etcdPath, join(o.dir, 'etcd-failover'))
  const value = randomBytes(256)
  try {
    const members = cluster.members
    for (let rep = 0; rep < o.reps; rep++) {
      const load = new FailoverLoad(members.length, o.writers, (ep, key, timeoutMs) => cluster.httpPut(members[ep]!, key, value, timeoutMs))
      let victim: EtcdMember | undefined
      try {
        await sleep(o.settleMs)
        // Every member running and agreeing on the leader: a member lost earlier would leave no quorum after the kill.
        victim = await cluster.leader()
        const killedAt = performance.now()
        victim.child.proc.kill('SIGKILL')
        const ack = await pollUntil(() => load.firstAckAfter(killedAt), o.timeoutMs, 5)
        const what = `${ETCD_LABEL}, rep ${rep + 1}/${o.reps}`
        if (ack !== undefined) {
          const r = { writeMs: round3(ack - killedAt) }
          out.reps.push(r)
          progress('failover', `${what}: write after ${r.writeMs.toFixed(0)} ms (${load.acks} writes acknowledged)`)
        } else {
          const timedOut = { afterMs: o.timeoutMs, missing: 'acknowledged write', members: (await cluster.describe()).replace(`${victim.name}: exited (SIGKILL)`, `${victim.name}: killed`) }
          out.reps.push({ writeMs: null, timedOut })
          progress('failover', `${what}: ${timeoutText(timedOut)} (${load.acks} writes acknowledged)`)
        }
      } finally {
        await load.stop()
      }
      if (rep + 1 < o.reps) {
        await victim.child.exited
        await cluster.restart(victim)
      }
    }
  } finally {
    await cluster.destroy()
  }
}

/**
 * Every system's series, in order. A system that fails (other than by timed-out repetitions)
 * keeps the repetitions it had and its error, and the next system still runs.
 */
export async function runFailover(o: FailoverOptions): Promise<FailoverSeries[]> {
  const systems: Array<[string, (out: Run) => Promise<void>]> = o.timings.map((timing, n) => [timing.label, (out) => holdfastFailover(o, timing, n, out)])
  const etcd = o.etcd
  if (etcd) systems.push([ETCD_LABEL, (out) => etcdFailover(o, etcd, out)])
  const result: FailoverSeries[] = []
  for (const [label, measure] of systems) {
    const out: Run = { reps: [] }
    try {
      await measure(out)
    } catch (err) {
      out.error = err instanceof Error ? err.message : String(err)
      progress('failover', `${label}: FAILED: ${out.error}`)
    }
    result.push(series(label, out.reps, out.error))
  }
  return result
}
