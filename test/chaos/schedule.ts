/**
 * The fault schedule of a run, drawn from its seed: steps of one fault, or two of different kinds
 * (a process fault with a network fault, a membership change during a partition, ...), each held
 * for a while and then undone, until the fault phase ends.
 *
 * Faults (the names counted in the summary):
 * - process: kill (SIGKILL a random daemon), killLeader, killMajority (a majority at once), each
 *   restarted at the end of the step; pauseLeader (SIGSTOP across an election, then SIGCONT);
 *   wipe (SIGKILL, delete the data directory, start again: a new node that joins as a learner,
 *   while the old id is removed through the API, as an operator would);
 * - network: isolateLeader, splitMajority (a majority and a minority), bridgePartition (two halves
 *   and one node that sees both), linkDown, slowLinks (loss, delay, reordering);
 * - membership: transfer (POST /v1/leader/transfer), demotePromote (demote a voter, promote it
 *   back at the end of the step), addMember (start a new daemon on the spare host: it joins as a
 *   learner), removeMember (remove it through the API, then stop it);
 * - security: bad HTTP input and hostile peers (run.ts securityProbe), alone in its step.
 */
import type { Daemon } from './env.js'
import { removeMember, type ChaosRun } from './run.js'

type Category = 'process' | 'net' | 'admin' | 'security'

interface Fault {
  name: string
  category: Category
  weight: number
  /** Applies the fault; returns its undo (run at the end of the step), or undefined when it did not apply. */
  apply(run: ChaosRun): Promise<(() => Promise<void>) | undefined>
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const hostOf = (d: Daemon): { ns: string; ip: string } => ({ ns: d.host.ns, ip: d.host.ip })

async function restartAll(run: ChaosRun, ds: Daemon[]): Promise<void> {
  for (const d of ds) if (!d.running) d.start()
  run.log(`restarted ${ds.map((d) => d.name).join(', ')}`)
}

async function killSome(run: ChaosRun, ds: Daemon[], what: string): Promise<() => Promise<void>> {
  await Promise.all(ds.map((d) => d.kill()))
  run.log(`${what}: SIGKILL ${ds.map((d) => d.name).join(', ')}`)
  return () => restartAll(run, ds)
}

/** The daemons of the core hosts that run and are not paused. */
const liveCore = (run: ChaosRun): Daemon[] => run.daemons.filter((d) => d.running && !d.paused)

const FAULTS: Fault[] = [
  {
    name: 'kill',
    category: 'process',
    weight: 2,
    async apply(run) {
      const d = run.rng.pick(liveCore(run))
      return d ? killSome(run, [d], 'kill') : undefined
    },
  },
  {
    name: 'killLeader',
    category: 'process',
    weight: 2,
    async apply(run) {
      const d = await run.leader()
      return d && run.daemons.includes(d) ? killSome(run, [d], 'killLeader') : undefined
    },
  },
  {
    name: 'killMajority',
    category: 'process',
    weight: 1,
    async apply(run) {
      const n = Math.floor(run.daemons.length / 2) + 1
      const ds = run.rng.shuffle(liveCore(run)).slice(0, n)
      return ds.length === n ? killSome(run, ds, 'killMajority') : undefined
    },
  },
  {
    name: 'pauseLeader',
    category: 'process',
    weight: 2,
    async apply(run) {
      const d = await run.leader()
      if (!d || !run.daemons.includes(d)) return undefined
      d.signal('SIGSTOP')
      run.log(`pauseLeader: SIGSTOP ${d.name}`)
      // Held past an election: at most 2 s of election timeout, and a new leader's first commit.
      await sleep(3_500)
      return async () => {
        d.signal('SIGCONT')
        run.log(`SIGCONT ${d.name}`)
      }
    },
  },
  {
    name: 'wipe',
    category: 'process',
    weight: 1,
    async apply(run) {
      // A wipe destroys a voter's copy for good. Only when the voters are back at target, all of
      // them running, and no earlier removal is pending: otherwise the wipe could leave no majority
      // (say, one of two voters), which no product survives: an operator's mistake, not a fault.
      const s = await run.leaderStatus()
      if (!s || run.pending.size > 0) return undefined
      const voters = s.members.filter((m) => m.voter)
      if (voters.length < s.targetVoters || !voters.every((m) => run.byId(m.id)?.running)) return undefined
      const d = run.rng.pick(liveCore(run).filter((x) => x.id))
      if (!d) return undefined
      const old = d.id!
      await d.wipe()
      run.log(`wipe: ${d.name} (was ${old.slice(0, 8)}) killed and its data directory deleted`)
      return async () => {
        d.start()
        run.log(`wipe: ${d.name} started on an empty data directory`)
        run.retryAdmin(`remove ${d.name}'s old id ${old.slice(0, 8)}`, () => removeMember(run, old))
      }
    },
  },
  {
    name: 'isolateLeader',
    category: 'net',
    weight: 2,
    async apply(run) {
      const l = await run.leader()
      if (!l) return undefined
      const rest = run.all().filter((d) => d !== l).map(hostOf)
      await run.net.partition([[hostOf(l)], rest])
      run.log(`isolateLeader: ${l.name} cut off from the other daemons`)
      return () => run.net.healAll()
    },
  },
  {
    name: 'splitMajority',
    category: 'net',
    weight: 2,
    async apply(run) {
      const ds = run.rng.shuffle(run.daemons)
      const minority = ds.slice(0, Math.floor(ds.length / 2))
      const majority = ds.slice(minority.length)
      await run.net.partition([minority.map(hostOf), [...majority, run.spare].map(hostOf)])
      run.log(`splitMajority: [${minority.map((d) => d.name)}] | [${majority.map((d) => d.name)}]`)
      return () => run.net.healAll()
    },
  },
  {
    name: 'bridgePartition',
    category: 'net',
    weight: 1,
    async apply(run) {
      const ds = run.rng.shuffle(run.daemons)
      const bridge = ds[0]!
      const rest = ds.slice(1)
      const a = rest.slice(0, Math.ceil(rest.length / 2))
      const b = rest.slice(a.length)
      await run.net.partition([a.map(hostOf), [...b, run.spare].map(hostOf)], [hostOf(bridge)])
      run.log(`bridgePartition: [${a.map((d) => d.name)}] | [${b.map((d) => d.name)}], ${bridge.name} sees both`)
      return () => run.net.healAll()
    },
  },
  {
    name: 'linkDown',
    category: 'net',
    weight: 1,
    async apply(run) {
      const d = run.rng.pick(run.daemons)!
      await run.net.linkDown(d.host.ns)
      run.log(`linkDown: ${d.name}'s eth0 down`)
      return () => run.net.healAll()
    },
  },
  {
    name: 'slowLinks',
    category: 'net',
    weight: 2,
    async apply(run) {
      const ds = run.rng.shuffle(run.daemons).slice(0, run.rng.int(1, run.daemons.length))
      const link = { lossPct: run.rng.int(1, 15), delayMs: run.rng.int(20, 200), reorderPct: run.rng.int(5, 40) }
      for (const d of ds) await run.net.slow(d.host.ns, link)
      run.log(`slowLinks: ${ds.map((d) => d.name)} with ${JSON.stringify(link)}`)
      return () => run.net.healAll()
    },
  },
  {
    name: 'transfer',
    category: 'admin',
    weight: 2,
    async apply(run) {
      const s = await run.leaderStatus()
      const to = run.rng.pick(s?.members.filter((m) => m.voter && m.id !== s.id) ?? [])
      if (!to) return undefined
      const r = await run.admin('POST', '/v1/leader/transfer', { to: to.id })
      run.log(`transfer to ${run.nameOf(to.id)}: ${r.status} ${r.code ?? ''}`)
      return async () => {}
    },
  },
  {
    name: 'demotePromote',
    category: 'admin',
    weight: 1,
    async apply(run) {
      const s = await run.leaderStatus()
      const m = run.rng.pick(s?.members.filter((x) => x.voter && x.id !== s.id && run.byId(x.id)) ?? [])
      if (!m) return undefined
      // An answer lost to a fault (a timeout) does not mean the demotion did not happen: from here
      // on the node counts as demoted, and the recovery promotes it back whenever it is a learner.
      run.demoted.add(m.id)
      const r = await run.admin('POST', `/v1/members/${m.id}/demote`)
      run.log(`demote ${run.nameOf(m.id)}: ${r.status} ${r.code ?? ''}`)
      if (r.status >= 400 && r.status < 500) return undefined
      return async () => {
        run.retryAdmin(`promote ${run.nameOf(m.id)}`, () => run.promoteBack(m.id))
      }
    },
  },
  {
    name: 'addMember',
    category: 'admin',
    weight: 1,
    async apply(run) {
      if (run.spare.running) return undefined
      await run.spare.wipe()
      run.spare.start()
      run.log('addMember: a new daemon on x1 joins')
      await run.updateTargets()
      return async () => {}
    },
  },
  {
    name: 'removeMember',
    category: 'admin',
    weight: 1,
    async apply(run) {
      const x = run.spare
      if (!x.running || x.paused || !(await run.statusOf(x))) return undefined
      const id = x.id!
      run.log(`removeMember: x1 (${id.slice(0, 8)})`)
      run.retryAdmin(`remove x1 ${id.slice(0, 8)}`, async () => {
        if (!(await removeMember(run, id))) return false
        await x.wipe()
        await run.updateTargets()
        return true
      })
      return async () => {}
    },
  },
  {
    name: 'security',
    category: 'security',
    weight: 1,
    async apply(run) {
      await run.securityProbe()
      return async () => {}
    },
  },
]

export const FAULT_NAMES = FAULTS.map((f) => f.name)
const SECURITY = FAULTS.find((f) => f.category === 'security')!

function pickFault(run: ChaosRun, from: readonly Fault[]): Fault {
  const total = from.reduce((s, f) => s + f.weight, 0)
  let x = run.rng.next() * total
  for (const f of from) if ((x -= f.weight) < 0) return f
  return from[from.length - 1]!
}

/** Runs fault steps until `until` (epoch ms); the security probe runs at least once per run. */
export async function runSchedule(run: ChaosRun, until: number): Promise<void> {
  let securityDone = false
  while (Date.now() < until) {
    // The security probe runs once per run, at a random step (at the latest when time runs short).
    const security = !securityDone && (Date.now() > until - 15_000 || run.rng.chance(0.25))
    const first = security ? SECURITY : pickFault(run, FAULTS.filter((f) => f.category !== 'security'))
    const step = [first]
    if (first.category !== 'security' && run.rng.chance(0.5)) {
      step.push(pickFault(run, FAULTS.filter((f) => f.category !== first.category && f.category !== 'security')))
    }
    const undos: Array<() => Promise<void>> = []
    for (const f of step) {
      const undo = await f.apply(run).catch((err: unknown) => {
        run.log(`${f.name} failed to apply: ${(err as Error).message}`)
        return undefined
      })
      if (undo) {
        run.count(f.name)
        undos.push(undo)
        if (f.category === 'security') securityDone = true
      }
    }
    await sleep(run.rng.int(1_000, 3_000))
    if (Date.now() >= until && securityDone) {
      // The last step's faults stay in force: the heal undoes them, and the recovery is timed from there.
      run.finalUndos.push(...undos.reverse())
      return
    }
    for (const u of undos.reverse()) await u()
    await run.updateTargets()
    await sleep(run.rng.int(300, 1_000))
  }
  if (!securityDone) {
    await SECURITY.apply(run)
    run.count(SECURITY.name)
  }
}
