/**
 * Linearizability checker: the Wing & Gong search with Lowe's memoisation (the algorithm Porcupine
 * implements), written for holdfast. Generic over a sequential {@link Model}; a key-value register
 * model is built in.
 *
 * A history is split into partitions (per key for the KV model; linearizability is local, so a history
 * is linearizable iff every partition is). In each, call and return events sorted by time form a
 * doubly linked list; the search linearizes the earliest call whose model step succeeds, lifts its
 * events out of the list and restarts from the head. Reaching a return event means that op missed its
 * deadline: the last choice is undone (events relinked in place, dancing-links style). Explored
 * (linearized set, state) pairs are memoised, which keeps common cases polynomial; the worst case is
 * exponential in the number of concurrent ops per partition, hence the deterministic step budget. The
 * search is a loop over an explicit stack, so long histories cannot overflow the call stack.
 */

/** One client operation as observed from outside the system. */
export interface Operation<I, O> {
  client: number | string
  input: I
  /**
   * The observed result; `undefined` when the outcome is unknown (e.g. the client timed out). With a
   * finite `return` the op is still taken to have been applied (as the model's step decides) in time.
   */
  output: O | undefined
  /** Time of invocation. */
  call: number
  /**
   * Time of response; `Infinity` when the outcome is unknown (the operation may take effect at any
   * point after its call, or never). Events at equal times are treated as concurrent.
   */
  return: number
}

/** A sequential specification of the replicated object. */
export interface Model<S, I, O> {
  init(): S
  /** The state after applying `input` with observed `output` to `state`, or undefined if impossible. */
  step(state: S, input: I, output: O | undefined): S | undefined
  /** A string that identifies the state, for memoisation. Equal keys must mean equal states. */
  key(state: S): string
  /** Split a history into independently checkable parts (e.g. per key). Optional. */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][]
  /**
   * True if the op can never change the state: whenever `step` accepts it, it returns the state
   * unchanged (a read, a failed CAS). Optional; lets the search commit to such ops instead of
   * branching on them. Must not say true for an op that changes some state (the check becomes unsound).
   */
  readOnly?(input: I, output: O | undefined): boolean
  /** Human-readable rendering of an operation, for violation reports. */
  describe?(input: I, output: O | undefined): string
}

export interface CheckOptions {
  /** Budget of model steps per partition; when exceeded the result is `timeout`. Deterministic. */
  maxSteps?: number
}

/** Default per-partition budget of model steps. */
export const DEFAULT_MAX_STEPS = 5_000_000

/** The verdict of {@link checkOperations}. `operations` counts the ops given, before partitioning. */
export type CheckResult<I = unknown, O = unknown> =
  | { status: 'ok'; operations: number; partitions: number }
  | {
      status: 'violation'
      operations: number
      partitions: number
      /** Index of the first non-linearizable partition. */
      partitionIndex: number
      message: string
      /** The operations of that partition, sorted by call time. */
      failingOps: Operation<I, O>[]
      /** The longest linearizable prefix the search found, in linearization order. */
      longestPrefix: Operation<I, O>[]
      /** The operation whose return was reached, after that prefix, before it could be linearized. */
      stuckAt: Operation<I, O>
    }
  | { status: 'timeout'; operations: number; partitions: number; partitionIndex: number }

type PartitionVerdict<I, O> =
  | { status: 'ok' }
  | { status: 'timeout' }
  | { status: 'violation'; longest: Operation<I, O>[]; stuck: Operation<I, O> }

/**
 * Check that `ops` is linearizable with respect to `model`. Partitions are checked in order; the
 * first violation wins, otherwise the first partition whose search ran out of budget gives `timeout`.
 * @throws RangeError on malformed times (non-finite call, NaN, or return before call).
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS
  for (const op of ops) {
    if (!Number.isFinite(op.call) || Number.isNaN(op.return) || op.return < op.call) {
      throw new RangeError(`bad operation times: call=${op.call} return=${op.return}`)
    }
  }
  const parts = model.partition ? model.partition(ops) : [ops.slice()]
  const base = { operations: ops.length, partitions: parts.length }
  let timedOut = -1
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? []
    const verdict = searchPartition(model, part, maxSteps)
    if (verdict.status === 'violation') {
      const { longest: longestPrefix, stuck: stuckAt } = verdict
      return {
        status: 'violation',
        ...base,
        partitionIndex: i,
        message:
          `partition ${i} (${part.length} ops) is not linearizable: longest linearizable prefix has ` +
          `${longestPrefix.length} ops, after which ${describeOp(model, stuckAt)} cannot be linearized`,
        failingOps: part.slice().sort(byTime),
        longestPrefix,
        stuckAt,
      }
    }
    if (verdict.status === 'timeout' && timedOut < 0) timedOut = i
  }
  return timedOut >= 0 ? { status: 'timeout', ...base, partitionIndex: timedOut } : { status: 'ok', ...base }
}

const NIL = -1
const MAIN = 0 // scanning the main list
const LOST = 1 // scanning the lost list

/** A choice on the search stack, with what is needed to undo it. */
interface Frame<S> {
  cand: number // candidate code: a main-list call node, or 2F + index in the lost list
  state: S // state before the choice
  key: string
  f: number
  hi: number
  /** The scan cursor of the config, positioned after `cand`. */
  boundary: number
  phase: number
  entry: number
  lostCursor: number
  /** A read-only op: if the config after it fails, so does the one before. */
  forced: boolean
}

/**
 * Search one partition for a linearization.
 *
 * Finite ops (known return) are in a doubly linked list of call/return events; unknown-outcome ("lost",
 * return = ∞) ops have no return event and sit in a second list, by call time. At a configuration
 * (linearized set, state) the candidates are the finite calls before the first return event R, then
 * the lost ops called no later than R. If none works, R's op cannot be linearized in time: backtrack.
 *
 * Sound reductions on top of plain WGL (each preserves: if a config admits a completion, so does some
 * config the search explores in full):
 *  - A finite op the model declares read-only (a read, a failed CAS) is committed once its step
 *    succeeds: it can be moved to the front of any completion (no pending op returned before its
 *    call, and it changes no state wherever it sits), so if the config after it fails, the config
 *    before it fails too and its siblings are not tried. Identity at the current state alone is not
 *    enough: a write of the current value is a no-op now but not where a completion may need it.
 *  - A lost op that leaves the current state unchanged is not linearized here: dropping it from the
 *    front of a completion leaves a shorter one, so some minimal completion never starts with it.
 *  - A lost op must be needed by the op linearized right after it: if that op yields the same state
 *    with or without it, dropping the lost op gives a shorter completion. (Read-only successors that
 *    did not need it were committed before it was ever tried.)
 *  - Memo subsumption: a config with the same finite set and state as an explored one, but a superset
 *    of its lost ops, has no completion the explored one lacks (lost ops are optional): pruned.
 */
function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  part: readonly Operation<I, O>[],
  maxSteps: number,
): PartitionVerdict<I, O> {
  // Op ids: the F finite ops in call order, then the U lost ones in call order.
  const sorted = part.slice().sort(byTime)
  const ops = [...sorted.filter((o) => o.return !== Infinity), ...sorted.filter((o) => o.return === Infinity)]
  const F = sorted.filter((o) => o.return !== Infinity).length
  const U = ops.length - F
  const op = (id: number): Operation<I, O> => ops[id] as Operation<I, O>

  // Finite events: 2*id is the call, 2*id+1 the return. At equal times calls sort first, so ops that
  // merely touch are concurrent (the permissive, false-alarm-free choice).
  const time = (e: number): number => (e & 1 ? op(e >> 1).return : op(e >> 1).call)
  const events = Array.from({ length: 2 * F }, (_, e) => e)
  events.sort((a, b) => {
    const ta = time(a)
    const tb = time(b)
    return ta < tb ? -1 : ta > tb ? 1 : (a & 1) - (b & 1) || a - b
  })

  // Main list over nodes 0..2F-1 (positions in `events`), head sentinel 2F. Lost list over 0..U-1
  // (op id F + j), head sentinel U. Lifting and relinking happen in LIFO order, dancing-links style.
  const HEAD = 2 * F
  const LHEAD = U
  const idOf = new Int32Array(2 * F)
  const isCall = new Uint8Array(2 * F)
  const match = new Int32Array(2 * F) // call node -> its return node
  const retNode = new Int32Array(F)
  events.forEach((e, k) => {
    idOf[k] = e >> 1
    isCall[k] = e & 1 ? 0 : 1
    if (e & 1) retNode[e >> 1] = k
  })
  for (let k = 0; k < 2 * F; k++) if (isCall[k]) match[k] = retNode[idOf[k] as number] as number
  const makeList = (len: number): [Int32Array, Int32Array] => {
    const next = new Int32Array(len + 1)
    const prev = new Int32Array(len + 1)
    for (let k = 0; k < len; k++) {
      prev[k] = k === 0 ? len : k - 1
      next[k] = k + 1 < len ? k + 1 : NIL
    }
    next[len] = len > 0 ? 0 : NIL
    return [next, prev]
  }
  const [next, prev] = makeList(2 * F)
  const [lnext, lprev] = makeList(U)
  const unlink = (nx: Int32Array, pv: Int32Array, x: number): void => {
    const q = nx[x] as number
    nx[pv[x] as number] = q
    if (q !== NIL) pv[q] = pv[x] as number
  }
  const relink = (nx: Int32Array, pv: Int32Array, x: number): void => {
    const q = nx[x] as number
    nx[pv[x] as number] = x
    if (q !== NIL) pv[q] = x
  }
  const idOfCand = (c: number): number => (c < HEAD ? (idOf[c] as number) : F + c - HEAD)
  const lift = (c: number): void => {
    if (c >= HEAD) return unlink(lnext, lprev, c - HEAD)
    unlink(next, prev, c)
    unlink(next, prev, match[c] as number)
  }
  const unlift = (c: number): void => {
    if (c >= HEAD) return relink(lnext, lprev, c - HEAD)
    relink(next, prev, match[c] as number)
    relink(next, prev, c)
  }

  // The linearized set: finite ids in bitset words [0, FW), lost ones in [FW, FW + LW). The finite
  // part is also tracked by an incremental Zobrist hash (two 32-bit lanes).
  const FW = (F + 31) >>> 5
  const LW = (U + 31) >>> 5
  const bits = new Uint32Array(FW + LW)
  const bitOf = (id: number): number => (id < F ? id : FW * 32 + id - F)
  const has = (id: number): boolean => (((bits[id >>> 5] as number) >>> (id & 31)) & 1) === 1 // finite ids only
  let h1 = 0
  let h2 = 0
  const toggle = (id: number): void => {
    const b = bitOf(id)
    bits[b >>> 5] = (bits[b >>> 5] as number) ^ (1 << (b & 31))
    if (id < F) {
      h1 ^= mix32(2 * b + 1)
      h2 ^= mix32(2 * b + 0x9e3779b9)
    }
  }
  // f = lowest unlinearized finite id, hi = highest linearized one (-1 if none); both restored from the
  // stack. Every linearized finite op was called before f's return (the scan never passes f's return
  // event), so hi - f is bounded by the concurrency around f, and the finite set is canonically "all
  // ids < f, plus words f/32 ..= hi/32". The memo stores that slice plus the lost words, not the whole
  // bitset, so memory per entry stays small on long histories.
  let f = 0
  let hi = -1
  const snapshot = (): Uint32Array => {
    const lo = f >>> 5
    const top = hi >= 0 && hi >>> 5 >= lo ? (hi >>> 5) + 1 : lo
    const out = new Uint32Array(top - lo + LW)
    out.set(bits.subarray(lo, top))
    out.set(bits.subarray(FW), top - lo)
    return out
  }
  /** `a` was explored and makes `b` redundant: same finite set, lost(a) ⊆ lost(b). */
  const subsumes = (a: Uint32Array, b: Uint32Array): boolean => {
    if (a.length !== b.length) return false
    const finEnd = a.length - LW
    for (let w = 0; w < finEnd; w++) if (a[w] !== b[w]) return false
    for (let w = finEnd; w < a.length; w++) if (((a[w] as number) & ~(b[w] as number)) !== 0) return false
    return true
  }
  const memo = new Map<string, Uint32Array[]>()
  /** Record the current (set, state) unless an explored config subsumes it; false if it does. */
  const visit = (stateKey: string): boolean => {
    const key = `${h1},${h2},${f >>> 5},${stateKey}`
    const cur = snapshot()
    const bucket = memo.get(key)
    if (!bucket) {
      memo.set(key, [cur])
      return true
    }
    if (bucket.some((b) => subsumes(b, cur))) return false
    const kept = LW === 0 ? bucket : bucket.filter((b) => !subsumes(cur, b))
    kept.push(cur)
    if (kept !== bucket) memo.set(key, kept)
    return true
  }

  let finiteLeft = F // the search succeeds once every finite op is linearized
  const stack: Frame<S>[] = []
  let state = model.init()
  let sKey = model.key(state)
  let steps = 0
  // Deepest prefix, snapshotted at dead ends only: the first dead end after reaching a new depth
  // happens at that depth, so this finds the maximum without copying on every push.
  let longest: number[] | undefined
  let stuck = NIL
  // Scan cursor within the current config: the next candidate is `entry` in the main list (phase
  // MAIN) until the first return event is met, which becomes `boundary`; then `lostCursor` in the lost
  // list (phase LOST).
  let phase = MAIN
  let entry = next[HEAD] as number
  let boundary = NIL
  let lostCursor = NIL

  /** Undo choices until one has untried siblings, and resume after it; false if the stack empties. */
  const backtrack = (): boolean => {
    for (let fr = stack.pop(); fr; fr = stack.pop()) {
      const id = idOfCand(fr.cand)
      toggle(id)
      if (id < F) finiteLeft++
      unlift(fr.cand)
      ;({ state, key: sKey, f, hi, boundary, phase, entry, lostCursor } = fr)
      if (!fr.forced) return true
    }
    return false
  }

  const violation = (): PartitionVerdict<I, O> => ({
    status: 'violation',
    longest: (longest ?? []).map(op),
    stuck: op(stuck === NIL ? 0 : stuck), // a dead end always precedes failure, so stuck is set
  })

  while (finiteLeft > 0) {
    let cand: number
    if (phase === MAIN) {
      // While finite ops are pending a return event lies ahead, so `entry` never runs off the list.
      if (!isCall[entry]) {
        phase = LOST
        boundary = entry
        lostCursor = lnext[LHEAD] as number
        continue
      }
      cand = entry
      entry = next[entry] as number
    } else if (lostCursor !== NIL && op(F + lostCursor).call <= op(idOf[boundary] as number).return) {
      cand = HEAD + lostCursor
      lostCursor = lnext[lostCursor] as number
    } else {
      // Dead end: the op owning `boundary` cannot be linearized before its return.
      if (longest === undefined || stack.length > longest.length) {
        longest = stack.map((fr) => idOfCand(fr.cand))
        stuck = idOf[boundary] as number
      }
      if (!backtrack()) return violation()
      continue
    }

    if (++steps > maxSteps) return { status: 'timeout' }
    const id = idOfCand(cand)
    const after = model.step(state, op(id).input, op(id).output)
    if (after === undefined) continue
    const aKey = model.key(after)
    const same = aKey === sKey
    if (same && id >= F) continue
    const top = stack[stack.length - 1]
    if (top !== undefined && top.cand >= HEAD) {
      // This config was entered through a lost op: only a successor that depends on it may follow.
      const without = model.step(top.state, op(id).input, op(id).output)
      if (without !== undefined && model.key(without) === aKey) continue
    }
    const forced = same && id < F && model.readOnly?.(op(id).input, op(id).output) === true
    const [oldF, oldHi] = [f, hi]
    toggle(id)
    if (id < F) {
      hi = Math.max(hi, id)
      while (f < F && has(f)) f++
    }
    if (visit(aKey)) {
      stack.push({ cand, state, key: sKey, f: oldF, hi: oldHi, boundary, phase, entry, lostCursor, forced })
      state = after
      sKey = aKey
      lift(cand)
      if (id < F) finiteLeft--
      phase = MAIN
      entry = next[HEAD] as number
      continue
    }
    toggle(id)
    f = oldF
    hi = oldHi
    // A committed (read-only) successor that is known to fail makes this config fail: skip siblings.
    if (forced && !backtrack()) return violation()
  }
  return { status: 'ok' }
}

/** murmur3 finaliser: a well-mixed 32-bit value per integer, for Zobrist hashing. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

function byTime(a: Operation<unknown, unknown>, b: Operation<unknown, unknown>): number {
  return a.call - b.call || (a.return === b.return ? 0 : a.return < b.return ? -1 : 1)
}

function describeOp<I, O>(model: Pick<Model<unknown, I, O>, 'describe'>, op: Operation<I, O>): string {
  const what = model.describe
    ? model.describe(op.input, op.output)
    : `${JSON.stringify(op.input)} -> ${op.output === undefined ? '?' : JSON.stringify(op.output)}`
  return `[client ${op.client}] ${what} @[${op.call}, ${op.return}]`
}

/**
 * Render a check result for humans. For a violation, lists the failing partition's operations in time
 * order with call/return times; `#k` marks an op's position in the longest linearizable prefix and
 * `<-- stuck` the op that could not be linearized after it. Long partitions are cut to a window of
 * `limit` ops around the stuck op.
 */
export function formatViolation<I, O>(
  result: CheckResult<I, O>,
  model: Pick<Model<unknown, I, O>, 'describe'> = {},
  limit = 60,
): string {
  if (result.status === 'ok') return `linearizable (${result.operations} ops, ${result.partitions} partitions)`
  if (result.status === 'timeout') {
    return `inconclusive: search budget exceeded in partition ${result.partitionIndex} (${result.operations} ops)`
  }
  const order = new Map(result.longestPrefix.map((op, i) => [op, i] as const))
  const ops = result.failingOps
  const at = Math.max(0, ops.indexOf(result.stuckAt))
  const from = Math.max(0, Math.min(at - (limit >> 1), ops.length - limit))
  const shown = ops.slice(from, from + limit)
  const lines = [result.message]
  if (from > 0) lines.push(`  ... ${from} earlier ops`)
  for (const op of shown) {
    const pos = order.get(op)
    const mark = pos === undefined ? '   ' : `#${pos}`.padStart(3)
    lines.push(`  ${mark.padEnd(6)} ${describeOp(model, op)}${op === result.stuckAt ? '  <-- stuck' : ''}`)
  }
  const rest = ops.length - from - shown.length
  if (rest > 0) lines.push(`  ... ${rest} later ops`)
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------------
// Key-value register model

/** An operation on the KV store. `cas` with `expect: null` requires the key to be absent. */
export type KvInput =
  | { kind: 'read'; key: string }
  | { kind: 'write'; key: string; value: string }
  | { kind: 'cas'; key: string; expect: string | null; value: string }

/** The observed result; a read of an absent key returns `null`. */
export type KvOutput = { kind: 'read'; value: string | null } | { kind: 'write' } | { kind: 'cas'; ok: boolean }

/**
 * Per-key register model; the state of a partition is the key's value (`null` = absent). Unknown
 * outcomes: a write applies; a CAS applies iff its expectation holds (otherwise it is a no-op, which
 * is the same as "never happened"); an unknown read constrains nothing and is dropped by `partition`.
 */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.kind) {
      case 'read':
        if (output === undefined) return state
        return output.kind === 'read' && output.value === state ? state : undefined
      case 'write':
        return output === undefined || output.kind === 'write' ? input.value : undefined
      case 'cas': {
        const holds = state === input.expect
        if (output === undefined) return holds ? input.value : state
        if (output.kind !== 'cas' || output.ok !== holds) return undefined
        return holds ? input.value : state
      }
    }
  },
  readOnly: (input, output) => input.kind === 'read' || (output?.kind === 'cas' && !output.ok),
  // Prefix so that the absent key and any string value never collide.
  key: (state) => (state === null ? '-' : `=${state}`),
  partition(ops) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>()
    for (const op of ops) {
      if (op.input.kind === 'read' && op.output === undefined) continue
      let list = byKey.get(op.input.key)
      if (!list) byKey.set(op.input.key, (list = []))
      list.push(op)
    }
    return [...byKey.values()]
  },
  describe(input, output) {
    const res = (s: string): string => (output === undefined ? `${s} -> ?` : s)
    const show = (v: string | null): string => (v === null ? 'nil' : JSON.stringify(v))
    switch (input.kind) {
      case 'read':
        return `read(${input.key}) -> ${output?.kind === 'read' ? show(output.value) : '?'}`
      case 'write':
        return res(`write(${input.key}, ${show(input.value)})`)
      case 'cas':
        return `cas(${input.key}, ${show(input.expect)} => ${show(input.value)}) -> ${
          output?.kind === 'cas' ? (output.ok ? 'ok' : 'fail') : '?'
        }`
    }
  },
}

/** {@link checkOperations} with {@link kvModel}. */
export function checkKvHistory(
  ops: readonly Operation<KvInput, KvOutput>[],
  options?: CheckOptions,
): CheckResult<KvInput, KvOutput> {
  return checkOperations(kvModel, ops, options)
}
