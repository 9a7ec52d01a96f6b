/**
 * SIGKILL during a write load (issue 3): a single node runs in a child process (crash-child.ts) on
 * real LMDB files and is killed at a random moment while 16 writers put keys and call a command.
 * After every kill the parent reopens the same data directory and checks:
 *
 * - every acknowledged put is stored with its value, at its acknowledged revision, written once
 *   (version 1; an entry applied twice would make it 2);
 * - every acknowledged call is applied exactly once at its acknowledged revision, and no call,
 *   acknowledged or not, was applied twice (per-id counts of 1, summing to the total count);
 * - the stored data is only what the writers could have written;
 * - once the reopened node has settled, its applied index equals its commit index, and neither
 *   falls below what an earlier round saw;
 * - a second reopening finds exactly the same state.
 *
 * The next round continues on the same directory, so crashes (including crashes into log
 * compaction, with a 200-entry log tail) accumulate.
 *
 * Seeded: HOLDFAST_SEED=<n> replays the kill schedule (timing still varies). HOLDFAST_CRASH_KILLS
 * sets the number of kills (default 50).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createNode, type HoldfastNode } from '../../src/node.js'
import type { KeyValue } from '../../src/state/index.js'
import { CALL_BUCKET, crashNodeOptions, META_BUCKET, PUT_BUCKET, putValue, registerBump, type BumpRecord } from './crash-child.js'
import { Prng } from '../sim/prng.js'

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url))
const KILLS = Number(process.env.HOLDFAST_CRASH_KILLS ?? 50)
/** A kill is armed once the child has acknowledged this many writes in the round... */
const MIN_ACKS = 3
/** ...and lands this many ms later, uniformly at random. */
const MAX_KILL_DELAY_MS = 300
/** Children started ahead of their round (2 measured no faster on 2 cores: they compete for the CPU). */
const AHEAD = 1
/** A child without MIN_ACKS acknowledgements this long after 'go' is stuck. */
const STUCK_MS = 30_000

/** The project's seeded PRNG (test/sim/prng.ts), so random tests replay from their printed seed. */
function prng(seed: number): () => number {
  const p = new Prng(seed)
  return () => p.next()
}

interface RoundOutput {
  /** The applied index the child reported at open. */
  openedAt: number | undefined
  puts: Map<string, number>
  calls: Map<string, number>
}

/**
 * A child process, started ahead of its round: it loads its modules, then waits for `run()` to
 * let it open the data directory (so start-up overlaps the previous round's checks).
 */
class Child {
  readonly #proc: ChildProcessByStdio<Writable, Readable, Readable>
  readonly #out: RoundOutput = { openedAt: undefined, puts: new Map(), calls: new Map() }
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #stderr = ''
  #buffered = ''
  #onAck: (() => void) | undefined

  constructor(dataDir: string, round: number) {
    this.#proc = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, String(round)], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.#proc.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()))
    this.#proc.stdout.on('data', (d: Buffer) => {
      this.#buffered += d.toString()
      const lines = this.#buffered.split('\n')
      this.#buffered = lines.pop() ?? ''
      lines.forEach((line) => this.#onLine(line))
    })
    // 'close' comes after stdout ended: every line the child wrote before it died has been read.
    this.#exited = new Promise((resolve, reject) => {
      this.#proc.on('error', reject)
      this.#proc.on('close', (code, signal) => resolve({ code, signal }))
    })
    this.#exited.catch(() => {})
  }

  #onLine(line: string): void {
    const [kind, name, n] = line.split(' ')
    if (kind === 'O') this.#out.openedAt = Number(name)
    else if (kind === 'P' && name !== undefined) this.#out.puts.set(name, Number(n))
    else if (kind === 'C' && name !== undefined) this.#out.calls.set(name, Number(n))
    else throw new Error(`unexpected child output: ${JSON.stringify(line)}`)
    if (this.#out.puts.size + this.#out.calls.size >= MIN_ACKS) this.#onAck?.()
  }

  /** Lets the child open the data directory, kills it `delay` ms after its MIN_ACKS-th acknowledgement, and returns what it acknowledged. */
  async run(delay: number): Promise<RoundOutput> {
    let armed = false
    this.#onAck = () => {
      if (armed) return
      armed = true
      setTimeout(() => this.#proc.kill('SIGKILL'), delay)
    }
    this.#proc.stdin.write('go\n')
    // A child that never gets its writes acknowledged is stopped, so the test fails instead of hanging.
    const stuck = setTimeout(() => this.#proc.kill('SIGKILL'), STUCK_MS)
    const { code, signal } = await this.#exited
    clearTimeout(stuck)
    if (signal !== 'SIGKILL' || !armed) throw new Error(`child exited with code ${code}, signal ${signal}, before ${MIN_ACKS} acknowledgements:\n${this.#stderr}`)
    // Lines are written whole (one synchronous write each); a torn last line would be a protocol bug.
    if (this.#buffered !== '') throw new Error(`torn output line from the child: ${JSON.stringify(this.#buffered)}`)
    return this.#out
  }

  /** Ends a child that never ran (teardown). */
  async stop(): Promise<void> {
    this.#proc.kill('SIGKILL')
    await this.#exited.catch(() => {})
  }
}

interface Reopened {
  applied: number
  commit: number
  puts: KeyValue[]
  calls: KeyValue[]
  meta: KeyValue[]
}

/**
 * Opens the data directory in this process, waits until the node leads and has applied everything
 * committed (a linearizable read is the barrier), reads the whole state and closes it.
 */
async function reopen(dataDir: string): Promise<Reopened> {
  let node: HoldfastNode | undefined
  try {
    node = await createNode(crashNodeOptions(dataDir))
    registerBump(node)
    await node.get('total', { bucket: META_BUCKET, timeoutMs: 10_000 })
    await node.settled()
    const s = node.status()
    return {
      applied: s.appliedIndex,
      commit: s.commitIndex,
      puts: node.list({ bucket: PUT_BUCKET }),
      calls: node.list({ bucket: CALL_BUCKET }),
      meta: node.list({ bucket: META_BUCKET }),
    }
  } finally {
    await node?.close()
  }
}

/** Problems with the reopened state, against every acknowledgement so far; empty when all holds. */
function check(state: Reopened, ackedPuts: ReadonlyMap<string, number>, ackedCalls: ReadonlyMap<string, number>): string[] {
  const problems: string[] = []
  const puts = new Map(state.puts.map((kv) => [kv.key, kv]))
  const calls = new Map(state.calls.map((kv) => [kv.key, kv]))
  for (const [key, revision] of ackedPuts) {
    const kv = puts.get(key)
    if (!kv) problems.push(`acknowledged put ${key}@${revision} is missing`)
    else if (kv.modRevision !== revision) problems.push(`acknowledged put ${key}@${revision} is stored at ${kv.modRevision}`)
  }
  for (const kv of state.puts) {
    // Every stored key, acknowledged or not: the writer's value, written by one entry.
    if (JSON.stringify(kv.value) !== JSON.stringify(putValue(kv.key))) problems.push(`put ${kv.key} holds ${JSON.stringify(kv.value)}`)
    if (kv.version !== 1) problems.push(`put ${kv.key} has version ${kv.version}: written ${kv.version} times`)
  }
  for (const [id, revision] of ackedCalls) {
    const kv = calls.get(id)
    const rec = kv?.value as BumpRecord | undefined
    if (!rec) problems.push(`acknowledged call ${id}@${revision} is missing`)
    else if (rec.revision !== revision) problems.push(`acknowledged call ${id}@${revision} was applied at ${rec.revision}`)
  }
  let sum = 0
  for (const kv of state.calls) {
    const rec = kv.value as BumpRecord
    sum += rec.n
    if (rec.n !== 1 || kv.version !== 1) problems.push(`call ${kv.key} was applied ${rec.n} times (version ${kv.version})`)
  }
  const total = state.meta.find((kv) => kv.key === 'total')?.value ?? 0
  if (total !== sum) problems.push(`total count of calls ${String(total)} differs from the per-id counts' sum ${sum}`)
  if (state.applied !== state.commit) problems.push(`applied index ${state.applied} differs from commit index ${state.commit}`)
  for (const [key, revision] of [...ackedPuts, ...ackedCalls]) {
    if (revision > state.applied) problems.push(`${key} was acknowledged at ${revision}, beyond the applied index ${state.applied}`)
  }
  return problems
}

t.test('SIGKILL during a write load: acknowledged writes survive, nothing is applied twice', async (t) => {
  const seed = process.env.HOLDFAST_SEED ? Number(process.env.HOLDFAST_SEED) : Math.floor(Math.random() * 2 ** 31)
  t.comment(`seed ${seed} (replay with HOLDFAST_SEED=${seed})`)
  const rand = prng(seed)
  const dataDir = await mkdtemp(join(tmpdir(), 'holdfast-crash-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const started = performance.now()

  const ackedPuts = new Map<string, number>()
  const ackedCalls = new Map<string, number>()
  let kills = 0
  let lastApplied = 0
  let failures = 0
  // Each child starts AHEAD rounds early: its start-up (about 0.8 s, mostly loading TypeScript)
  // overlaps the rounds before them.
  const ahead: Child[] = Array.from({ length: AHEAD }, (_, i) => new Child(dataDir, i))
  t.teardown(() => Promise.all(ahead.map((c) => c.stop())))
  for (let round = 0; round < KILLS; round++) {
    const delay = Math.floor(rand() * MAX_KILL_DELAY_MS)
    const child = ahead.shift()!
    ahead.push(new Child(dataDir, round + AHEAD))
    const out = await child.run(delay)
    kills++
    for (const [k, r] of out.puts) ackedPuts.set(k, r)
    for (const [k, r] of out.calls) ackedCalls.set(k, r)

    const first = await reopen(dataDir)
    const second = await reopen(dataDir)
    const problems = check(first, ackedPuts, ackedCalls)
    if ((out.openedAt ?? 0) < lastApplied) problems.push(`the child opened at applied index ${out.openedAt}, below the ${lastApplied} seen before`)
    // The data must match exactly; the indexes move on by the new leader's empty entry.
    const data = (s: Reopened): KeyValue[][] => [s.puts, s.calls, s.meta]
    if (JSON.stringify(data(first)) !== JSON.stringify(data(second))) problems.push('a second reopening found different data')
    if (second.applied !== second.commit || second.applied < first.applied) problems.push(`second reopening: applied ${second.applied}, commit ${second.commit}, first ${first.applied}`)
    lastApplied = second.applied
    const summary = `round ${round}: killed ${delay} ms after ${MIN_ACKS} acks; ${out.puts.size} puts and ${out.calls.size} calls acknowledged; applied index ${first.applied}`
    if (problems.length > 0) {
      failures++
      t.fail(summary, { problems: problems.slice(0, 20), seed })
      if (failures >= 3) break
    } else {
      t.comment(summary)
    }
  }

  const seconds = (performance.now() - started) / 1000
  t.comment(`${kills} kills, ${ackedPuts.size} acknowledged puts and ${ackedCalls.size} acknowledged calls checked, in ${seconds.toFixed(1)} s`)
  t.ok(kills >= Math.min(50, KILLS), `${kills} kills`)
  t.ok(ackedPuts.size + ackedCalls.size >= MIN_ACKS * kills && ackedCalls.size > 0, `acknowledged writes were checked: ${ackedPuts.size} puts, ${ackedCalls.size} calls`)
  t.equal(failures, 0, 'every round held')
})
