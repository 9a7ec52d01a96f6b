/**
 * One simulation run: a seed picks the cluster shape, core settings, network, faults and client
 * workload; the run goes warm-up -> faults -> heal -> liveness -> catch-up -> drain, checking the
 * safety invariants after every event and the client history for linearizability at the end.
 */
import { checkKvHistory, formatViolation, kvModel } from '../../src/testing/linearizability.js'
import { Clients } from './clients.js'
import { Faults, type FaultType } from './faults.js'
import { SimViolation } from './invariants.js'
import { Prng } from './prng.js'
import { World, type CoreSettings, type Sabotage, type WorldConfig } from './world.js'

/**
 * Liveness bound, in election rounds: one round is an election timeout plus a message round trip
 * (electionTicks * tickMs + 2 * the maximum one-way latency). Once every fault is healed (all links
 * open, no loss, every node up), a leader must emerge and commit a new entry within this many
 * rounds. Restarted nodes refuse votes for one election timeout, and pre-vote and vote each wait up
 * to 2x the timeout; most runs need less than one round. The tail is split votes, geometric: the
 * worst is 2 voters on a WAN-like link (latency near the timeout's randomization), where the two
 * pre-votes cross in flight and both campaign. Over 30,000 seeds the slowest took 7.6 rounds (seed
 * 24353); 20 rounds keeps a false alarm improbable while a real stall (findings 1 and 2) still fails.
 */
export const LIVENESS_ROUNDS = 20
/** After that commit, a member below it must advance at least once in this many rounds... */
export const CATCHUP_STALL_ROUNDS = 3
/** ...and apply it within this many rounds (generous: a lag of hundreds of one-entry appends over one slot). */
export const CATCHUP_MAX_ROUNDS = 400

/** The shape of one run, derived from its seed. */
export interface Scenario {
  voters: number
  learners: number
  maxNodes: number
  tickMs: number
  core: Required<Pick<CoreSettings, 'electionTicks' | 'heartbeatTicks'>> & CoreSettings
  /** One-way message latency, ms (LAN-like or WAN-like). */
  netMs: [number, number]
  initialMaxDrift: number
  maxDrift: number
  maxLoss: number
  faultStartMs: number
  faultEndMs: number
  faultGapMs: [number, number]
  faultDurationMs: [number, number]
  /** During the fault phase: the long tail of message latency (late, reordered messages) and of disk writes. */
  faultNetTailMs: number
  faultSlowDiskMs: number
  clients: number
  keys: number
  clientTimeoutMs: number
}

export interface RunOptions {
  /** Record a full event trace (slow; for replays and the determinism test). */
  trace?: boolean
  sabotage?: Sabotage
  /** Overrides of the seed's scenario. */
  scenario?: Partial<Scenario>
  /** Called with the world when the run ends (after a violation too): for debugging a replay. */
  onEnd?: (world: World) => void
}

export interface RunSummary {
  seed: number
  voters: number
  learners: number
  nodes: number
  virtualMs: number
  events: number
  faults: Record<FaultType, number>
  elections: number
  commits: number
  applied: number
  messages: number
  snapshotsInstalled: number
  crashes: number
  clientOps: number
  clientOpsOk: number
  clientOpsUnknown: number
  linearizability: 'ok' | 'timeout' | 'violation' | 'skipped'
  livenessTicks: number
  /** The same in election rounds, to compare with LIVENESS_ROUNDS. */
  livenessRounds: number
  violation?: { kind: string; message: string }
  trace?: string[]
}

/** Draws a scenario: 3 or 5 voters most of the time, 1 to 7 sometimes; small log tails in most runs. */
export function makeScenario(rng: Prng): Scenario {
  const voters = rng.weighted({ '1': 4, '2': 4, '3': 36, '4': 8, '5': 34, '6': 5, '7': 9 })
  const v = Number(voters)
  const learners = rng.chance(0.2) ? rng.int(1, 2) : 0
  const faultStartMs = 300
  // Most runs use electionTicks 10 with the default lease margin; some a longer timeout with the
  // margin scaled so the lease still tolerates +-5% drift (see RaftOptions.leaseMarginTicks).
  const electionTicks = rng.chance(0.75) ? 10 : rng.int(15, 30)
  const hb = rng.weighted({ one: 55, few: 35, many: 10 })
  return {
    voters: v,
    learners,
    maxNodes: Math.min(9, v + learners + 2),
    tickMs: 10,
    core: {
      electionTicks,
      heartbeatTicks: hb === 'one' ? 1 : hb === 'few' ? rng.int(2, 4) : rng.int(5, Math.floor(electionTicks / 2) + 4),
      ...(electionTicks > 10 ? { leaseMarginTicks: Math.ceil(electionTicks / 5) } : {}),
      logTail: { tiny: rng.int(1, 4), small: rng.int(5, 50), default: 1000 }[rng.weighted({ tiny: 15, small: 50, default: 35 })],
      ...(rng.chance(0.3) ? { maxMsgBytes: rng.int(100, 600) } : {}),
      ...(rng.chance(0.3) ? { maxInflightMsgs: rng.int(1, 8) } : {}),
      ...(rng.chance(0.2) ? { maxApplyBytes: rng.int(60, 400) } : {}),
    },
    netMs: rng.chance(0.8) ? [0.2, 3] : [3, 30],
    initialMaxDrift: 0.05,
    maxDrift: 0.05,
    maxLoss: 0.3,
    faultStartMs,
    faultEndMs: faultStartMs + rng.int(1500, 3000),
    faultGapMs: [80, 400],
    faultDurationMs: [100, 900],
    faultNetTailMs: rng.chance(0.2) ? 300 : 30,
    faultSlowDiskMs: rng.chance(0.2) ? 200 : 25,
    clients: rng.int(2, 6),
    keys: rng.int(1, 4),
    clientTimeoutMs: 400,
  }
}

function worldConfig(sc: Scenario, options: RunOptions): WorldConfig {
  return {
    tickMs: sc.tickMs,
    core: sc.core,
    diskMs: [0.05, 2],
    slowDiskChance: 0.03,
    slowDiskMs: 25,
    netMs: sc.netMs,
    netTailChance: 0.05,
    netTailMs: 30,
    snapshotPointChance: 0.3,
    trace: options.trace === true,
    sabotage: options.sabotage,
  }
}

/** Runs one seed to completion and reports what happened; a broken invariant is in `violation`. */
export function runSeed(seed: number, options: RunOptions = {}): RunSummary {
  const rng = new Prng(seed)
  const sc: Scenario = { ...makeScenario(rng.fork()), ...options.scenario }
  const world = new World(worldConfig(sc, options), rng.fork())
  const ids = Array.from({ length: sc.voters + sc.learners }, (_, i) => `n${i + 1}`)
  const init = rng.fork()
  world.bootstrap({ voters: ids.slice(0, sc.voters), learners: ids.slice(sc.voters) })
  for (const n of world.nodes.values()) n.drift = init.range(-sc.initialMaxDrift, sc.initialMaxDrift)

  const faults = new Faults(world, rng.fork(), {
    maxNodes: sc.maxNodes,
    gapMs: sc.faultGapMs,
    durationMs: sc.faultDurationMs,
    maxDrift: sc.maxDrift,
    maxLoss: sc.maxLoss,
  })
  const keys = Array.from({ length: sc.keys }, (_, i) => `k${i}`)
  const clients = new Clients(world, rng.fork(), {
    count: sc.clients,
    keys,
    timeoutMs: sc.clientTimeoutMs,
    thinkMs: [2, 25],
    latencyMs: [0.1, 2],
    leaseReadChance: 0.5,
    mix: { read: 4, write: 3, cas: 3 },
  })
  clients.start(0)
  faults.schedule(sc.faultStartMs, sc.faultEndMs)
  world.queue.push(sc.faultStartMs, () => {
    world.netTailMs = sc.faultNetTailMs
    world.slowDiskMs = sc.faultSlowDiskMs
  })
  if (options.sabotage === 'secondLeader') {
    world.queue.push(sc.faultStartMs, () => {
      const l = world.leader()
      if (l !== undefined) world.checker.leaderSeen(`ghost-of-${l.id}`, l.core!.term)
    })
  }

  const roundMs = sc.core.electionTicks * sc.tickMs + 2 * sc.netMs[1]
  let livenessTicks = -1
  let livenessRounds = -1
  let linearizability: RunSummary['linearizability'] = 'skipped'
  let violation: RunSummary['violation']
  try {
    world.runUntil(sc.faultEndMs)
    faults.healAll()
    const healedAt = world.now
    const healed = { time: healedAt, messages: world.stats.messages }

    // Liveness: a leader emerges and commits a probe entry.
    const probe = { done: false, index: 0, node: '', term: 0, n: 0 }
    const tryProbe = (): void => {
      if (probe.done) return
      const l = world.leader()
      if (l !== undefined && (l.id !== probe.node || l.core!.term !== probe.term)) {
        probe.node = l.id
        probe.term = l.core!.term
        world.request(l.id, { kind: 'command', command: { t: 'p', n: probe.n++ } }, 0, (o) => {
          if (o.status === 'ok' && !probe.done) {
            probe.done = true
            probe.index = l.kv.applied // the callback runs right after the probe entry applies
          } else if (o.status !== 'ok') probe.node = '' // refused or lost: propose again
        })
      }
      world.queue.push(world.now + sc.tickMs, tryProbe)
    }
    tryProbe()
    world.runUntil(healedAt + LIVENESS_ROUNDS * roundMs, () => probe.done)
    if (!probe.done) {
      const l = world.leader()
      throw new SimViolation(
        'liveness',
        `no commit within ${LIVENESS_ROUNDS} election rounds after healing [${diagnoseLiveness(world, healed)}] (leader: ${l ? `${l.id}@${l.core!.term}` : 'none'}; ${describeNodes(world)})`,
      )
    }
    livenessTicks = Math.ceil((world.now - healedAt) / sc.tickMs)
    livenessRounds = Math.round(((world.now - healedAt) / roundMs) * 100) / 100

    // Catch-up: clients stop, so the log soon stops growing; every member must then apply the probe
    // entry, advancing at least once every CATCHUP_STALL_ROUNDS. How long it takes depends on the
    // lag and on the replication window (one small append per round trip is legitimate): a stall
    // is what this looks for.
    clients.stopAt(world.now)
    const lagging = (): string[] => {
      const m = world.membership()
      return [...m.voters, ...m.learners].filter((id) => (world.nodes.get(id)?.kv.applied ?? 0) < probe.index)
    }
    const progress = new Map<string, { applied: number; stalled: number }>()
    for (let round = 1; lagging().length > 0; round++) {
      world.runUntil(world.now + roundMs, () => lagging().length === 0)
      for (const id of lagging()) {
        const applied = world.nodes.get(id)!.kv.applied
        const p = progress.get(id) ?? { applied: -1, stalled: 0 }
        p.stalled = applied > p.applied ? 0 : p.stalled + 1
        p.applied = applied
        progress.set(id, p)
        if (p.stalled >= CATCHUP_STALL_ROUNDS || round > CATCHUP_MAX_ROUNDS) {
          throw new SimViolation(
            'liveness',
            `catch-up: ${id} ${p.stalled > 0 ? `stuck at ${applied} for ${p.stalled} election rounds` : `still at ${applied} after ${round} election rounds`}, below ${probe.index} [${diagnoseLiveness(world, healed)}] (${describeNodes(world)})`,
          )
        }
      }
    }

    // Drain: operations in flight complete or time out.
    world.runUntil(world.now + sc.clientTimeoutMs + 50)

    const res = checkKvHistory(clients.history, { maxSteps: 2_000_000 })
    linearizability = res.status
    if (res.status === 'violation') throw new SimViolation('linearizability', formatViolation(res, kvModel))
  } catch (err) {
    if (err instanceof SimViolation) violation = { kind: err.kind, message: err.message }
    else violation = { kind: 'exception', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }
    world.trace(`VIOLATION ${violation.message}`)
  }

  options.onEnd?.(world)
  const s = world.stats
  return {
    seed,
    voters: sc.voters,
    learners: sc.learners,
    nodes: world.nodes.size,
    virtualMs: Math.round(world.now),
    events: s.events,
    faults: { ...faults.injected },
    elections: world.checker.leadershipsObserved,
    commits: world.checker.maxCommit,
    applied: s.applied,
    messages: s.messages,
    snapshotsInstalled: s.snapshotsInstalled,
    crashes: s.crashes,
    clientOps: clients.history.length,
    clientOpsOk: clients.stats.ok,
    clientOpsUnknown: clients.stats.unknown,
    linearizability,
    livenessTicks,
    livenessRounds,
    ...(violation ? { violation } : {}),
    ...(options.trace ? { trace: world.traceLines } : {}),
  }
}

/**
 * A short name for the state a liveness failure left behind, so that failures with a known cause
 * (see FINDINGS.md) can be told from new ones. Facts about the final state only; never a verdict.
 */
export function diagnoseLiveness(world: World, since: { time: number; messages: number }): string {
  // A healthy cluster sends a few messages per node per tick (heartbeats, appends, responses).
  const ticks = Math.max(1, (world.now - since.time) / world.config.tickMs)
  const rate = (world.stats.messages - since.messages) / ticks / world.nodes.size
  if (rate > 50) return `message-storm(${Math.round(rate)} messages per node per tick)`
  const l = world.leader()
  if (l !== undefined) {
    // Ten election timeouts after healing nothing is still in flight, so appends the leader counts
    // as in flight (next > match + 1 in replicate state) were lost and are never re-sent.
    const c = l.core!
    const stuck = c.status().progress.filter((p) => p.id !== l.id && p.state === 'replicate' && p.match < c.lastIndex && p.next > p.match + 1)
    return stuck.length > 0 ? `replication-window-stall(${stuck.map((p) => p.id).join(',')})` : 'leader-not-committing'
  }
  // No leader: is the longest log held by a node that is not a voter in its own latest configuration?
  let nonVoterLast = -1
  let voterLast = -1
  for (const n of world.nodes.values()) {
    if (!n.up) continue
    const c = n.core!
    const voters = c.membership().voters
    if (voters.includes(n.id)) voterLast = Math.max(voterLast, c.lastIndex)
    else if (voters.length > 0) nonVoterLast = Math.max(nonVoterLast, c.lastIndex)
  }
  return nonVoterLast > voterLast ? 'self-removed-leader-deadlock' : 'no-leader'
}

function describeNodes(world: World): string {
  const parts: string[] = []
  for (const n of world.nodes.values()) {
    if (!n.up) {
      parts.push(`${n.id}:down`)
      continue
    }
    const c = n.core!
    parts.push(`${n.id}:${c.role}@${c.term} commit=${c.commitIndex} applied=${n.kv.applied} last=${c.lastIndex}`)
  }
  const l = world.leader()
  const progress = l?.core!.status().progress.map((p) => `${p.id}:${p.state} match=${p.match} next=${p.next}`)
  return `membership ${JSON.stringify(world.membership())}; ${parts.join(', ')}${progress ? `; leader's progress: ${progress.join(', ')}` : ''}`
}
