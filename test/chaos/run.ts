/**
 * One seeded run of the fault campaign (see README "The real-process fault campaign"):
 *
 * 1. a 3- or 5-daemon cluster, each `holdfast start` in its own namespace on a bridge (plus a
 *    spare host for a daemon that joins and leaves), the DHT bootstrap node in the switch
 *    namespace, and the driver with the clients in a client namespace;
 * 2. the clients and the leader-check sampler run throughout; a schedule drawn from the seed
 *    applies one or two faults at a time (schedule.ts), holds them, and undoes them;
 * 3. then every fault is healed, and the run measures the time to the first acknowledged write and
 *    until every node has caught up, against RECOVERY bounds;
 * 4. the checks: the history is linearizable, every acknowledged write-once key is on every node,
 *    all nodes hold the same final values, no two nodes passed the leader check at once, no
 *    daemon exited unless the campaign killed it, and every hostile peer and bad HTTP request was
 *    refused (and counted by the daemon).
 *
 * A run that fails keeps its folder: run.json (settings, timeline, verdicts), history.json,
 * samples.json and every process's log. A run that passes removes it (unless keep is set).
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NetnsRun } from '../netns/netns.js'
import { Prng } from '../sim/prng.js'
import { abuseHttp } from './abuse.js'
import { Daemon, DHT_PORT, Driver, spawnHoldfast } from './env.js'
import { checkHistory } from './history.js'
import { errorCode } from './http.js'
import { judgeLeases } from './leases.js'
import { NetFaults } from './netfaults.js'
import { wallNow, type LeaseSample, type PeerAttack, type PeerAttackResult, type RecordedOp, type Target } from './protocol.js'
import { keyName, WRITE_ONCE_PREFIX } from './workload.js'

/** The documented recovery bounds, from the end of the faults. */
export const RECOVERY = {
  /** To the first acknowledged write. */
  firstWriteMs: 20_000,
  /** Until every daemon is a member, the voters are back to target and every node applied that write. */
  caughtUpMs: 45_000,
} as const

export const CLIENTS = 8
export const KEYS = 5
const TICK_MS = 100
const ELECTION_TICKS = 10
const OP_TIMEOUT_MS = 4_000
const SAMPLE_EVERY_MS = 75
/** Against hangs only. */
const FORM_DEADLINE_MS = 90_000

export interface RunOptions {
  seed: number
  nodes: 3 | 5
  /** How long faults are injected. */
  faultMs: number
  /** Parent folder of the run folders. */
  outDir: string
  /** Keep the folder of a passing run too. */
  keep?: boolean
  log?: (line: string) => void
}

export interface RunResult {
  seed: number
  nodes: number
  ok: boolean
  /** The kept folder (a failing run, or keep). */
  folder?: string
  faults: Record<string, number>
  operations: { recorded: number; checked: number; acknowledged: number; unknown: number; proxied: number; status: string }
  leaseSamples: { samples: number; passing: number }
  recovery?: { firstWriteMs: number; caughtUpMs: number }
  security: Record<string, number>
  violations: string[]
  durationMs: number
}

interface Timeline {
  at: number
  what: string
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls until `pred` gives a value, or undefined after `ms`. */
async function poll<T>(pred: () => Promise<T | undefined>, ms: number, everyMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v !== undefined) return v
    if (Date.now() > deadline) return undefined
    await sleep(everyMs)
  }
}

interface Status {
  id: string
  role: string
  term: number
  leader: string | null
  commitIndex: number
  appliedIndex: number
  members: Array<{ id: string; voter: boolean; reachable: boolean; matchIndex: number | null; lag: number | null }>
  view: string
  targetVoters: number
}

export class ChaosRun {
  readonly rng: Prng
  readonly folder: string
  readonly timeline: Timeline[] = []
  readonly faults: Record<string, number> = {}
  readonly security: Record<string, number> = {}
  readonly violations: string[] = []
  readonly cluster = `chaos-${randomBytes(3).toString('hex')}`
  readonly secret = randomBytes(24).toString('hex')
  readonly token = randomBytes(16).toString('hex')
  run!: NetnsRun
  driver!: Driver
  net!: NetFaults
  daemons: Daemon[] = []
  spare!: Daemon
  /** Admin work that must finish before the cluster counts as recovered (removals, re-promotions). */
  pending = new Set<Promise<void>>()
  /** Ids the schedule tried to demote: promoted back by the recovery whenever they are learners. */
  readonly demoted = new Set<string>()
  /** The undos of the faults still in force when the fault phase ended (run by the heal). */
  readonly finalUndos: Array<() => Promise<void>> = []
  #dht: ReturnType<typeof spawnHoldfast> | undefined
  readonly #start = Date.now()

  constructor(readonly options: RunOptions) {
    this.rng = new Prng(options.seed)
    this.folder = join(options.outDir, `seed-${options.seed}-${options.nodes}n-${new Date().toISOString().replace(/[:.]/g, '')}`)
  }

  log(line: string): void {
    this.timeline.push({ at: Date.now() - this.#start, what: line })
    this.options.log?.(`[seed ${this.options.seed}] ${line}`)
  }

  count(fault: string): void {
    this.faults[fault] = (this.faults[fault] ?? 0) + 1
  }

  countSecurity(what: string, n = 1): void {
    this.security[what] = (this.security[what] ?? 0) + n
  }

  // ------------------------------------------------------------------ set-up

  async setUp(): Promise<void> {
    const { nodes } = this.options
    mkdirSync(join(this.folder, 'logs'), { recursive: true })
    const hosts: Record<string, string> = { client: '10.77.0.20', x1: '10.77.0.30' }
    for (let i = 1; i <= nodes; i++) hosts[`n${i}`] = `10.77.0.${10 + i}`
    this.run = NetnsRun.create(hosts)
    this.net = new NetFaults(this.run)
    const secretFile = join(this.folder, 'secret')
    const tokenFile = join(this.folder, 'token')
    writeFileSync(secretFile, this.secret + '\n', { mode: 0o600 })
    writeFileSync(tokenFile, this.token + '\n', { mode: 0o600 })
    const dhtLog = join(this.folder, 'logs', 'dht.log')
    this.#dht = spawnHoldfast(this.run, this.run.switchNs, ['dht', '--host', this.run.bridgeIp, '--port', String(DHT_PORT)], dhtLog)
    this.driver = new Driver(this.run, this.run.host('client').ns, this.token, join(this.folder, 'logs', 'driver.log'))
    const settings = {
      cluster: this.cluster,
      secretFile,
      tokenFile,
      dhtBootstrap: `${this.run.bridgeIp}:${DHT_PORT}`,
      voters: nodes,
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
    }
    for (let i = 1; i <= nodes; i++) this.daemons.push(new Daemon(`n${i}`, this.run.host(`n${i}`), this.run, this.folder, settings))
    this.spare = new Daemon('x1', this.run.host('x1'), this.run, this.folder, settings)
    await this.driver.ready
    const dhtUp = await poll(async () => (existsSync(dhtLog) && readFileSync(dhtLog, 'utf8').includes('bootstrap node on') ? true : undefined), 30_000)
    if (!dhtUp) throw new Error(`the DHT bootstrap node did not start:\n${readFileSync(dhtLog, 'utf8')}`)
    this.daemons[0]!.start({ init: true })
    if (!(await this.statusOf(this.daemons[0]!, 30_000))) throw new Error('n1 did not answer /v1/status')
    for (const d of this.daemons.slice(1)) d.start()
    const formed = await poll(async () => {
      const s = await this.leaderStatus()
      if (!s || s.members.filter((m) => m.voter).length !== nodes) return undefined
      const ids = await Promise.all(this.daemons.map((d) => this.statusOf(d)))
      return ids.every((x) => x !== undefined) ? s : undefined
    }, FORM_DEADLINE_MS, 250)
    if (!formed) throw new Error(`the ${nodes}-daemon cluster did not form within ${FORM_DEADLINE_MS} ms`)
    this.log(`cluster of ${nodes} formed, leader ${this.nameOf(formed.leader)}`)
    await this.updateTargets()
  }

  /** Every daemon host with a daemon started, the spare while it runs. */
  targets(): Target[] {
    return [...this.daemons, ...(this.spare.running ? [this.spare] : [])].map((d) => ({ name: d.name, url: d.url }))
  }

  async updateTargets(): Promise<void> {
    await this.driver.call({ op: 'targets', targets: this.targets() })
  }

  all(): Daemon[] {
    return [...this.daemons, this.spare]
  }

  nameOf(id: string | null | undefined): string {
    return this.all().find((d) => d.id !== undefined && d.id === id)?.name ?? (id ? `gone:${id.slice(0, 8)}` : 'none')
  }

  byId(id: string | null | undefined): Daemon | undefined {
    return id ? this.all().find((d) => d.id === id) : undefined
  }

  /** GET /v1/status of one daemon (records its id), or undefined. */
  async statusOf(d: Daemon, waitMs = 0): Promise<Status | undefined> {
    const once = async (): Promise<Status | undefined> => {
      if (!d.running || d.paused) return undefined
      const a = await this.driver.http({ url: `${d.url}/v1/status`, method: 'GET', timeoutMs: 2_000 })
      if (a.status !== 200) return undefined
      const s = a.body as Status
      if (d.id !== s.id) d.id = s.id
      return s
    }
    return waitMs > 0 ? poll(once, waitMs, 200) : once()
  }

  /** The status of the daemon that leads in the highest term seen, or undefined. */
  async leaderStatus(): Promise<Status | undefined> {
    const all = await Promise.all(this.all().map((d) => this.statusOf(d)))
    const leaders = all.filter((s): s is Status => s?.role === 'leader' && s.view === 'leader')
    return leaders.sort((a, b) => b.term - a.term)[0]
  }

  async leader(): Promise<Daemon | undefined> {
    return this.byId((await this.leaderStatus())?.id)
  }

  // ------------------------------------------------------------------ admin through the API

  /** An admin request to a random running daemon (forwarded to the leader there). */
  async admin(method: string, path: string, body?: unknown): Promise<{ status: number; code?: string }> {
    const live = this.all().filter((d) => d.running && !d.paused)
    const d = this.rng.pick(live)
    if (!d) return { status: 0, code: 'no daemon' }
    const a = await this.driver.http({ url: `${d.url}${path}`, method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), timeoutMs: 6_000 })
    const code = errorCode(a) ?? a.error
    return { status: a.status, ...(code !== undefined ? { code } : {}) }
  }

  /** Retries an admin request in the background until it succeeds (or is moot); recovery waits for it. */
  retryAdmin(what: string, attempt: () => Promise<boolean>): void {
    const p = (async () => {
      const deadline = Date.now() + FORM_DEADLINE_MS
      while (Date.now() < deadline) {
        if (await attempt().catch(() => false)) {
          this.log(`${what}: done`)
          return
        }
        await sleep(500)
      }
      this.log(`${what}: gave up`)
    })()
    this.pending.add(p)
    void p.finally(() => this.pending.delete(p))
  }

  /** Promotes a demoted node back unless it is a voter or no member (any more); true when nothing is left to do. */
  async promoteBack(id: string): Promise<boolean> {
    const s = await this.leaderStatus()
    const m = s?.members.find((x) => x.id === id)
    if (!s) return false
    if (!m || m.voter) return true
    const p = await this.admin('POST', `/v1/members/${id}/promote`)
    return p.status === 200
  }

  // ------------------------------------------------------------------ the run

  async execute(schedule: (run: ChaosRun, until: number) => Promise<void>): Promise<RunResult> {
    let ops: RecordedOp[] = []
    let samples: LeaseSample[] = []
    let recovery: RunResult['recovery']
    try {
      await this.setUp()
      await this.driver.call({ op: 'samplerStart', everyMs: SAMPLE_EVERY_MS })
      await this.driver.call({
        op: 'workloadStart',
        config: { clients: CLIENTS, keys: KEYS, token: this.token, opTimeoutMs: OP_TIMEOUT_MS, seed: this.rng.u32(), writeOnceShare: 0.1 },
      })
      await sleep(1_000)
      await schedule(this, Date.now() + this.options.faultMs)
      recovery = await this.healAndRecover()
      await sleep(1_000)
      ops = await this.driver.call<RecordedOp[]>({ op: 'workloadStop' })
      ops.push(...(await this.finalReads()))
      samples = await this.driver.call<LeaseSample[]>({ op: 'samplerStop' })
      await this.checkReplicas(ops)
      this.checkExits()
    } catch (err) {
      this.violations.push(`run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    } finally {
      await this.tearDown()
    }
    const verdict = checkHistory(ops)
    this.violations.push(...verdict.violations)
    const leases = judgeLeases(samples)
    this.violations.push(...leases.violations.slice(0, 20))
    const ok = this.violations.length === 0
    const result: RunResult = {
      seed: this.options.seed,
      nodes: this.options.nodes,
      ok,
      faults: this.faults,
      operations: {
        recorded: ops.length,
        checked: verdict.checked,
        acknowledged: ops.filter((o) => o.outcome === 'ok' || o.outcome === 'fail').length,
        unknown: ops.filter((o) => o.outcome === 'unknown' && o.kind !== 'read').length,
        proxied: ops.filter((o) => o.proxied).length,
        status: verdict.status,
      },
      leaseSamples: { samples: leases.samples, passing: leases.passing },
      ...(recovery ? { recovery } : {}),
      security: this.security,
      violations: this.violations,
      durationMs: Date.now() - this.#start,
    }
    if (!ok || this.options.keep) {
      result.folder = this.folder
      writeFileSync(join(this.folder, 'run.json'), JSON.stringify({ options: { ...this.options, log: undefined }, result, timeline: this.timeline }, null, 1))
      writeFileSync(join(this.folder, 'history.json'), JSON.stringify(ops))
      writeFileSync(join(this.folder, 'samples.json'), JSON.stringify(samples))
    } else {
      rmSync(this.folder, { recursive: true, force: true })
    }
    return result
  }

  /** Removes every fault, restarts what is down, and measures the recovery. */
  async healAndRecover(): Promise<RunResult['recovery']> {
    const healAt = wallNow()
    for (const undo of this.finalUndos.splice(0)) await undo()
    await this.net.healAll()
    for (const d of this.daemons) {
      if (d.paused) d.signal('SIGCONT')
      if (!d.running) d.start()
    }
    if (this.spare.paused) this.spare.signal('SIGCONT')
    this.log('healed: faults removed, every daemon running')
    await this.updateTargets()
    // The first acknowledged write, through any daemon.
    let n = 0
    const probe = await poll(async () => {
      const d = this.rng.pick(this.all().filter((x) => x.running))!
      const a = await this.driver.http({ url: `${d.url}/v1/kv/probe`, method: 'PUT', body: JSON.stringify(`probe-${n++}`), timeoutMs: 2_000 })
      const revision = (a.body as { revision?: number } | undefined)?.revision
      return a.status === 200 && typeof revision === 'number' ? { revision, at: wallNow() } : undefined
    }, RECOVERY.firstWriteMs + 10_000)
    if (!probe) {
      this.violations.push(`recovery: no write acknowledged within ${RECOVERY.firstWriteMs + 10_000} ms of the heal`)
      return undefined
    }
    const firstWriteMs = probe.at - healAt
    // Every daemon a member, former ids gone, voters at target, every node applied the probe.
    const caught = await poll(async () => {
      if (this.pending.size > 0) return undefined
      const leader = await this.leaderStatus()
      if (!leader) return undefined
      // A demotion that took effect after its answer was lost: promote it back, as an operator would.
      for (const id of this.demoted) if (leader.members.some((m) => m.id === id && !m.voter)) void this.promoteBack(id).catch(() => {})
      const running = this.all().filter((d) => d.running)
      const statuses = await Promise.all(running.map((d) => this.statusOf(d)))
      if (statuses.some((s) => s === undefined || s.appliedIndex < probe.revision)) return undefined
      const members = new Set(leader.members.map((m) => m.id))
      if (running.some((d) => !members.has(d.id!))) return undefined
      if (this.all().some((d) => d.formerIds.some((id) => members.has(id)))) return undefined
      if (leader.members.filter((m) => m.voter).length < leader.targetVoters) return undefined
      return wallNow()
    }, RECOVERY.caughtUpMs + 15_000, 200)
    if (caught === undefined) {
      const leader = await this.leaderStatus()
      this.violations.push(`recovery: not caught up within ${RECOVERY.caughtUpMs + 15_000} ms (pending admin ${this.pending.size}; leader view ${JSON.stringify(leader?.members)})`)
      return undefined
    }
    const caughtUpMs = caught - healAt
    this.log(`recovered: first write after ${Math.round(firstWriteMs)} ms, caught up after ${Math.round(caughtUpMs)} ms`)
    if (firstWriteMs > RECOVERY.firstWriteMs) this.violations.push(`recovery: first write after ${Math.round(firstWriteMs)} ms, over the bound of ${RECOVERY.firstWriteMs} ms`)
    if (caughtUpMs > RECOVERY.caughtUpMs) this.violations.push(`recovery: caught up after ${Math.round(caughtUpMs)} ms, over the bound of ${RECOVERY.caughtUpMs} ms`)
    return { firstWriteMs, caughtUpMs }
  }

  /** A linearizable read of each key after the workload, retried until answered: part of the history. */
  async finalReads(): Promise<RecordedOp[]> {
    const out: RecordedOp[] = []
    for (let k = 0; k < KEYS; k++) {
      const key = keyName(k)
      const op = await poll(async () => {
        const d = this.rng.pick(this.all().filter((x) => x.running))!
        const call = wallNow()
        const a = await this.driver.http({ url: `${d.url}/v1/kv/${key}`, method: 'GET', timeoutMs: 3_000 })
        const ret = wallNow()
        const value = (a.body as { value?: unknown } | undefined)?.value
        const revision = (a.body as { revision?: unknown } | undefined)?.revision
        if (a.status === 200 && typeof value === 'string') return { client: 1000, kind: 'read', key, node: d.name, call, ret, outcome: 'ok', readValue: value, ...(typeof revision === 'number' ? { revision } : {}) } satisfies RecordedOp
        if (a.status === 404) return { client: 1000, kind: 'read', key, node: d.name, call, ret, outcome: 'ok', readValue: null, revision: 0 } satisfies RecordedOp
        return undefined
      }, 20_000)
      if (!op) this.violations.push(`final read of ${key} never answered`)
      else out.push(op)
    }
    return out
  }

  /** Every node holds the final values and every acknowledged write-once key (stale reads, after catch-up). */
  async checkReplicas(ops: readonly RecordedOp[]): Promise<void> {
    const final = new Map(ops.filter((o) => o.client === 1000).map((o) => [o.key, o.readValue ?? null]))
    const acked = ops.filter((o) => o.kind === 'write' && o.key.startsWith(WRITE_ONCE_PREFIX) && o.outcome === 'ok')
    for (const d of this.all().filter((x) => x.running)) {
      for (const [key, value] of final) {
        const a = await this.driver.http({ url: `${d.url}/v1/kv/${key}?consistency=stale`, method: 'GET', timeoutMs: 3_000 })
        const got = a.status === 404 ? null : (a.body as { value?: unknown } | undefined)?.value
        if (got !== value) this.violations.push(`${d.name} holds ${JSON.stringify(got)} for ${key}, the cluster ${JSON.stringify(value)} (${a.status})`)
      }
      const a = await this.driver.http({ url: `${d.url}/v1/kv?prefix=${WRITE_ONCE_PREFIX}&consistency=stale&limit=10000`, method: 'GET', timeoutMs: 5_000 })
      const items = (a.body as { items?: Array<{ key: string; value: unknown }> } | undefined)?.items
      if (!items) {
        this.violations.push(`${d.name}: listing ${WRITE_ONCE_PREFIX} failed (${a.status} ${a.error ?? ''})`)
        continue
      }
      const held = new Map(items.map((i) => [i.key, i.value]))
      const lost = acked.filter((o) => held.get(o.key) !== o.value)
      if (lost.length > 0) this.violations.push(`${d.name} lacks ${lost.length} acknowledged write(s): ${lost.slice(0, 5).map((o) => o.key).join(', ')}`)
    }
    this.log(`replicas checked: ${final.size} keys and ${acked.length} acknowledged write-once keys on every node`)
  }

  /** A daemon that exited without being killed by the campaign crashed. */
  checkExits(): void {
    for (const d of this.all()) {
      for (const e of d.exitLog) {
        if (!e.expected) this.violations.push(`${d.name} exited by itself (code ${e.code}, signal ${e.signal}); see ${d.logFile}`)
      }
    }
  }

  async tearDown(): Promise<void> {
    await this.driver?.stop().catch(() => {})
    for (const d of this.all()) await d.kill().catch(() => {})
    this.#dht?.kill('SIGKILL')
    this.run?.removeSync()
    if (existsSync(join(this.folder, 'data')) && this.violations.length === 0 && !this.options.keep) rmSync(join(this.folder, 'data'), { recursive: true, force: true })
  }

  // ------------------------------------------------------------------ security

  /** Bad HTTP input against a random daemon, and hostile peers against another. */
  async securityProbe(): Promise<void> {
    // Targets that answer now (a daemon restarted a moment ago may not listen yet).
    const candidates = this.all().filter((d) => d.running && !d.paused)
    const answering = await Promise.all(candidates.map((d) => this.statusOf(d)))
    const live = candidates.filter((_, i) => answering[i] !== undefined)
    const target = this.rng.pick(live)
    if (!target) return
    const abuse = await abuseHttp(this.driver, target.url, this.token, `${this.options.seed}-${Date.now()}`)
    this.countSecurity('httpBadRequests', abuse.sent)
    this.countSecurity('httpRefused', abuse.refused)
    if (abuse.counted !== undefined) this.countSecurity('httpCountedByDaemon', abuse.counted)
    for (const p of abuse.problems) this.violations.push(`HTTP abuse of ${target.name}: ${p}`)
    this.log(`HTTP abuse of ${target.name}: ${abuse.refused}/${abuse.sent} refused, ${abuse.counted ?? '?'} counted`)

    const kinds = this.rng.shuffle<PeerAttack['kind']>(['strangerRaft', 'randomFrames', 'truncatedFrame', 'oversizedFrame', 'admittedGarbage']).slice(0, 2)
    const peerTarget = this.rng.pick(live)!
    const attacks = (['wrongSecret', ...kinds] as const).map((kind) =>
      this.driver.call<PeerAttackResult>({
        op: 'peerAttack',
        attack: {
          kind,
          targetId: peerTarget.id!,
          dhtBootstrap: { host: this.run.bridgeIp, port: DHT_PORT },
          localHost: this.run.host('client').ip,
          cluster: this.cluster,
          secret: this.secret,
        },
      }),
    )
    for (const r of await Promise.all(attacks)) {
      this.countSecurity(`peer:${r.kind}`)
      const okay = r.refused && (r.kind === 'wrongSecret' || r.kind === 'strangerRaft' || r.kind === 'randomFrames' || r.kind === 'truncatedFrame' ? !r.admitted : true)
      if (okay) this.countSecurity('peerRefused')
      else if (!peerTarget.running || peerTarget.paused) this.log(`peer attack ${r.kind}: inconclusive, ${peerTarget.name} was stopped meanwhile`)
      else this.violations.push(`peer attack ${r.kind} on ${peerTarget.name}: ${r.detail}`)
      this.log(`peer attack ${r.kind} on ${peerTarget.name}: ${r.detail}`)
    }
  }
}

/** Removes a member by id through the API (any daemon forwards to the leader); true when gone. */
export async function removeMember(run: ChaosRun, id: string): Promise<boolean> {
  const r = await run.admin('DELETE', `/v1/members/${id}`)
  if (r.status === 200) return true
  // Not a member (any more): done as well.
  return r.status === 409 && r.code === 'INVALID_MEMBERSHIP_CHANGE' && !(await run.leaderStatus())?.members.some((m) => m.id === id)
}
