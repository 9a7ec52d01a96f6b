/**
 * The fault schedule: during the fault phase a new fault starts every few hundred milliseconds of
 * virtual time and most undo themselves after a random duration, so a few overlap at any moment.
 * healAll() ends them all at once. Every choice comes from the run's Prng.
 */
import type { NodeId } from '../../src/core/types.js'
import type { Prng } from './prng.js'
import type { SimNode, World } from './world.js'

export const FAULT_TYPES = [
  'isolateLeader',
  'splitMajority',
  'bridge',
  'oneWay',
  'crashNode',
  'crashLeader',
  'crashMajority',
  'lossRate',
  'clockDrift',
  'addLearner',
  'promoteLearner',
  'demoteVoter',
  'removeVoter',
  'removeLeader',
  'transferLeader',
] as const

export type FaultType = (typeof FAULT_TYPES)[number]

const WEIGHTS: Record<FaultType, number> = {
  isolateLeader: 8,
  splitMajority: 8,
  bridge: 7,
  oneWay: 7,
  crashNode: 8,
  crashLeader: 7,
  crashMajority: 4,
  lossRate: 7,
  clockDrift: 4,
  addLearner: 5,
  promoteLearner: 5,
  demoteVoter: 3,
  removeVoter: 3,
  removeLeader: 3,
  transferLeader: 6,
}

/** Fault settings of one run. */
export interface FaultOptions {
  /** Total nodes (members or not) the run may create. */
  readonly maxNodes: number
  /** Gap between fault starts and fault duration, ms. */
  readonly gapMs: readonly [number, number]
  readonly durationMs: readonly [number, number]
  /** Upper bound of per-node clock drift (fraction); drift is uniform in [-maxDrift, maxDrift]. */
  readonly maxDrift: number
  readonly maxLoss: number
}

export class Faults {
  /** Faults that took effect (membership changes: accepted by the leader), by type. */
  readonly injected = Object.fromEntries(FAULT_TYPES.map((t) => [t, 0])) as Record<FaultType, number>
  readonly #world: World
  readonly #rng: Prng
  readonly #opts: FaultOptions
  /** Bumped by healAll(): undo actions scheduled before it are void. */
  #generation = 0
  #lossGeneration = 0
  #nextId: number

  constructor(world: World, rng: Prng, opts: FaultOptions) {
    this.#world = world
    this.#rng = rng
    this.#opts = opts
    this.#nextId = world.nodes.size + 1
  }

  /** Schedules fault starts in [from, to). */
  schedule(from: number, to: number): void {
    let t = from
    for (;;) {
      t += this.#rng.range(...this.#opts.gapMs)
      if (t >= to) return
      this.#world.queue.push(t, () => this.#start())
    }
  }

  /** Ends every fault now: links, loss, crashed nodes. Membership changes and drift stay. */
  healAll(): void {
    this.#generation++
    this.#world.healAll()
    this.#world.trace('heal all')
  }

  #start(): void {
    for (let attempt = 0; attempt < 4; attempt++) {
      const type = this.#rng.weighted(WEIGHTS)
      if (this.#inject(type)) {
        this.#world.trace(`fault ${type}`)
        return
      }
    }
  }

  /** Runs `undo` after a random duration unless healAll() came first. */
  #later(undo: () => void): void {
    const gen = this.#generation
    this.#world.queue.push(this.#world.now + this.#rng.range(...this.#opts.durationMs), () => {
      if (gen === this.#generation) undo()
    })
  }

  #count(type: FaultType): true {
    this.injected[type]++
    return true
  }

  /** Blocks every link between the groups (both directions) until the fault ends. */
  #cut(a: readonly NodeId[], b: readonly NodeId[]): void {
    const w = this.#world
    for (const x of a) for (const y of b) (w.block(x, y), w.block(y, x))
    this.#later(() => {
      for (const x of a) for (const y of b) (w.unblock(x, y), w.unblock(y, x))
    })
  }

  #crash(n: SimNode): void {
    this.#world.crash(n)
    this.#later(() => this.#world.restart(n))
  }

  #inject(type: FaultType): boolean {
    const w = this.#world
    const rng = this.#rng
    const ids = [...w.nodes.keys()]
    const up = [...w.nodes.values()].filter((n) => n.up)
    const leader = w.leader()
    const m = w.membership()
    switch (type) {
      case 'isolateLeader': {
        if (leader === undefined) return false
        this.#cut([leader.id], ids.filter((i) => i !== leader.id))
        return this.#count(type)
      }
      case 'splitMajority': {
        if (ids.length < 2) return false
        // The minority side holds fewer than a majority of voters; the rest of the nodes split randomly.
        const voters = rng.shuffle(m.voters)
        const minority = voters.slice(0, rng.int(0, Math.floor((voters.length - 1) / 2)))
        for (const id of ids) if (!m.voters.includes(id) && rng.chance(0.5)) minority.push(id)
        const majority = ids.filter((i) => !minority.includes(i))
        if (minority.length === 0 || majority.length === 0) return false
        this.#cut(minority, majority)
        return this.#count(type)
      }
      case 'bridge': {
        // One node sees both halves; the halves do not see each other (Cloudflare, November 2020).
        if (ids.length < 3) return false
        const order = rng.shuffle(ids)
        const rest = order.slice(1)
        const cut = rng.int(1, rest.length - 1)
        this.#cut(rest.slice(0, cut), rest.slice(cut))
        return this.#count(type)
      }
      case 'oneWay': {
        if (ids.length < 2) return false
        const links: [NodeId, NodeId][] = []
        for (let k = rng.int(1, 3); k > 0; k--) {
          const [a, b] = rng.shuffle(ids)
          const from = leader !== undefined && rng.chance(0.4) ? leader.id : a!
          const to = from === a ? b! : a!
          links.push(rng.chance(0.5) ? [from, to] : [to, from])
        }
        for (const [a, b] of links) w.block(a, b)
        this.#later(() => {
          for (const [a, b] of links) w.unblock(a, b)
        })
        return this.#count(type)
      }
      case 'crashNode': {
        const n = rng.pick(up)
        if (n === undefined) return false
        this.#crash(n)
        return this.#count(type)
      }
      case 'crashLeader': {
        if (leader === undefined) return false
        this.#crash(leader)
        return this.#count(type)
      }
      case 'crashMajority': {
        const voters = rng.shuffle(m.voters).slice(0, Math.floor(m.voters.length / 2) + 1)
        let any = false
        for (const id of voters) {
          const n = w.nodes.get(id)
          if (n?.up) (this.#crash(n), (any = true))
        }
        return any && this.#count(type)
      }
      case 'lossRate': {
        w.loss = rng.range(0, this.#opts.maxLoss)
        w.dup = rng.chance(0.5) ? rng.range(0, 0.1) : 0
        const gen = ++this.#lossGeneration
        this.#later(() => {
          if (gen === this.#lossGeneration) (w.loss = 0), (w.dup = 0)
        })
        return this.#count(type)
      }
      case 'clockDrift': {
        const n = rng.pick([...w.nodes.values()])
        if (n === undefined) return false
        n.drift = rng.range(-this.#opts.maxDrift, this.#opts.maxDrift)
        return this.#count(type)
      }
      case 'addLearner': {
        // Retry a node added earlier whose addLearner was refused, before making another.
        let id = ids.find((i) => !m.voters.includes(i) && !m.learners.includes(i) && w.nodes.get(i)!.storage.lastIndex() === 0)
        if (id === undefined) {
          if (w.nodes.size >= this.#opts.maxNodes) return false
          id = `n${this.#nextId++}`
          w.addEmptyNode(id)
        }
        return this.#change(type, leader, { type: 'addLearner', node: id })
      }
      case 'promoteLearner': {
        if (leader === undefined || m.voters.length >= 7) return false
        const core = leader.core!
        const ready = core.status().progress.filter((p) => !p.voter && p.match + 5 >= core.commitIndex)
        const p = rng.pick(ready)
        return p !== undefined && this.#change(type, leader, { type: 'promote', node: p.id })
      }
      case 'demoteVoter':
      case 'removeVoter': {
        if (leader === undefined || m.voters.length < 2) return false
        const others = m.voters.filter((v) => v !== leader.id)
        const target = type === 'demoteVoter' && rng.chance(0.3) ? leader.id : rng.pick(others)!
        return this.#change(type, leader, { type: type === 'demoteVoter' ? 'demote' : 'remove', node: target })
      }
      case 'removeLeader': {
        if (leader === undefined || m.voters.length < 2) return false
        return this.#change(type, leader, { type: 'remove', node: leader.id })
      }
      case 'transferLeader': {
        if (leader === undefined) return false
        const to = rng.pick(m.voters.filter((v) => v !== leader.id))
        if (to === undefined) return false
        w.admin(leader.id, `transfer ${to}`, (core) => {
          core.transferLeadership(to)
          this.#count(type)
        })
        return true
      }
    }
  }

  /** Proposes a membership change on the leader; counted only if the leader accepts it. */
  #change(type: FaultType, leader: SimNode | undefined, change: Parameters<NonNullable<SimNode['core']>['changeMembership']>[0]): boolean {
    if (leader === undefined) return false
    this.#world.admin(leader.id, `${change.type} ${change.node}`, (core) => {
      core.changeMembership(change)
      this.#count(type)
    })
    return true
  }
}
