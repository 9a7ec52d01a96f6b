import { spawn } from 'node:child_process'
import { mkdtemp, open as openFile, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { open as openLmdb } from 'lmdb'
import { isHoldfastError } from '../../src/errors.js'
import type { Entry } from '../../src/core/types.js'
import { Prng } from '../sim/prng.js'
import { DATA_FILE, LmdbStorage, LOG_DB, META_DB } from '../../src/storage/lmdb.js'
import type { LmdbStorageOptions } from '../../src/storage/lmdb.js'
import { decodeEntry, decodeHardState, decodeSnapshotMeta, encodeEntry, encodeFormat, encodeHardState, encodeSnapshotMeta } from '../../src/storage/codec.js'
import { MemoryStorage } from '../../src/storage/memory.js'
import type { LogStorage, LogUpdate } from '../../src/storage/types.js'
import { entry, logStorageCompliance, run, snap, view } from './compliance.js'

const LMDB_MODULE = fileURLToPath(new URL('../../src/storage/lmdb.ts', import.meta.url))

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-lmdb-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Opens storage in `dir` and closes it at teardown (closing twice is harmless). */
async function openIn(t: Test, dir: string, options?: LmdbStorageOptions): Promise<LmdbStorage> {
  const s = await LmdbStorage.open(dir, options)
  t.teardown(() => s.close())
  return s
}

async function rejectsCorrupt(t: Test, p: Promise<unknown>, message: string, pattern?: RegExp): Promise<void> {
  try {
    const s = await p
    if (s instanceof LmdbStorage) await s.close()
    t.fail(`${message}: expected CORRUPT_DATA, opened`)
  } catch (err) {
    t.ok(isHoldfastError(err, 'CORRUPT_DATA'), `${message}: CORRUPT_DATA`, { error: err })
    if (pattern && err instanceof Error) t.match(err.message, pattern, 'the message says what and where')
  }
}

/** The project's seeded PRNG (test/sim/prng.ts), so random tests replay from their printed seed. */
function prng(seed: number): () => number {
  const p = new Prng(seed)
  return () => p.next()
}

function seedFor(t: Test, name: string): number {
  // Fixed by default so `npm test` is deterministic; HOLDFAST_SEED=random explores.
  const seed = process.env.HOLDFAST_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.HOLDFAST_SEED ?? 20261122)
  t.comment(`${name}: seed ${seed} (replay with HOLDFAST_SEED=${seed})`)
  return seed
}

logStorageCompliance(t, 'lmdb', {
  open: async (t) => openIn(t, await tempDir(t)),
  reopen: async (t, s) => {
    const dir = join((s as LmdbStorage).path, '..')
    await s.close()
    return openIn(t, dir)
  },
})

t.test('one environment with named sub-databases, open to the state machine', async (t) => {
  const dir = await tempDir(t)
  const s = await openIn(t, dir)
  const kv = s.openDb<string, string>('state.kv', { encoding: 'json' })
  const applied = s.openDb<number, string>('state.applied')
  await s.save({ entries: run(1, 3, 1) }, true)
  // Effects and applied index commit together, in the same environment as the log.
  await s.env.childTransaction(() => {
    kv.putSync('x', 'one')
    applied.putSync('index', 3)
  })
  t.throws(() => s.openDb('raft.other'), { code: 'INVALID_ARGUMENT' }, 'raft.* names are reserved')
  await s.close()
  const files = (await import('node:fs')).readdirSync(dir).sort()
  t.same(files, [DATA_FILE, `${DATA_FILE}-lock`], 'one data file and its lock file')
  const again = await openIn(t, dir)
  t.equal(again.openDb<string, string>('state.kv', { encoding: 'json' }).get('x'), 'one')
  t.equal(again.openDb<number, string>('state.applied').get('index'), 3)
  t.same(again.entries(1, 4), run(1, 3, 1))
})

t.test('indices past 2^32 keep numeric order', async (t) => {
  const dir = await tempDir(t)
  const s = await openIn(t, dir)
  const base = 2 ** 32 - 3
  await s.save({ snapshot: snap(base, 5), entries: run(base + 1, base + 8, 5) }, true)
  t.same(s.entries(base + 1, base + 9), run(base + 1, base + 8, 5))
  await s.save({ entries: run(2 ** 40, 2 ** 40, 6) }, true).then(
    () => t.fail('gap accepted'),
    (err: unknown) => t.ok(isHoldfastError(err, 'CONTRACT_VIOLATION')),
  )
  await s.close()
  const again = await openIn(t, dir)
  t.equal(again.firstIndex(), base + 1)
  t.equal(again.lastIndex(), base + 8)
  t.same(again.entries(base + 1, base + 9), run(base + 1, base + 8, 5))
})

t.test('reads while a save is in flight see the old state until it commits', async (t) => {
  const s = await openIn(t, await tempDir(t))
  await s.save({ entries: run(1, 5, 1), hardState: { term: 1, vote: null, commit: 0 } }, true)
  const p = s.save({ entries: run(3, 8, 2), hardState: { term: 2, vote: 'b', commit: 1 } }, true)
  // Called, not committed: still the old state, and entries() agrees with term().
  t.equal(s.lastIndex(), 5)
  t.same(s.hardState(), { term: 1, vote: null, commit: 0 })
  t.same(s.entries(1, 6), run(1, 5, 1))
  await p
  t.equal(s.lastIndex(), 8)
  t.same(s.entries(1, 9), [...run(1, 2, 1), ...run(3, 8, 2)])
  // Between the commit and save() resolving, reads see one state or the other, never a mix.
  const states = new Set<string>()
  let mixed = 0
  for (let round = 0; round < 20; round++) {
    const before = JSON.stringify(view(s))
    const from = s.lastIndex() - 2
    let settled = false
    const q = s.save({ entries: run(from, from + 5, 3 + round), hardState: { term: 3 + round, vote: null, commit: from } }, round % 2 === 0).then(() => (settled = true))
    while (!settled) {
      const now = JSON.stringify(view(s))
      if (now !== before) states.add(now)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await q
    const after = JSON.stringify(view(s))
    for (const seen of states) if (seen !== after) mixed++
    states.clear()
  }
  t.equal(mixed, 0, 'every read saw the old or the new state')
})

t.test('one storage per data directory in a process', async (t) => {
  const dir = await tempDir(t)
  const s = await openIn(t, dir)
  await t.rejects(LmdbStorage.open(dir), { code: 'CONTRACT_VIOLATION' })
  await s.close()
  const again = await openIn(t, dir)
  t.equal(again.lastIndex(), 0, 'opens again once closed')
})

t.test('after close', async (t) => {
  const s = await openIn(t, await tempDir(t))
  await s.save({ entries: run(1, 2, 1) }, true)
  const pending = s.save({ entries: run(3, 4, 1) }, true)
  await s.close()
  await pending
  t.equal(s.lastIndex(), 4, 'saves accepted before close complete')
  await s.save({ entries: run(5, 5, 1) }, true).then(
    () => t.fail('saved after close'),
    (err: unknown) => t.ok(isHoldfastError(err, 'CLOSED'), 'save: CLOSED'),
  )
  t.throws(() => s.entries(1, 2), { code: 'CLOSED' }, 'entries: CLOSED')
  await s.close()
})

t.test('random updates agree with MemoryStorage, across reopens', async (t) => {
  const seed = seedFor(t, 'differential')
  const rand = prng(seed)
  const int = (n: number): number => Math.floor(rand() * n)
  const dir = await tempDir(t)
  let lmdb = await openIn(t, dir)
  const mem = new MemoryStorage()
  let term = 1
  for (let step = 0; step < 400; step++) {
    const u: { -readonly [K in keyof LogUpdate]: LogUpdate[K] } = {}
    const roll = rand()
    const last = mem.lastIndex()
    if (roll < 0.05) {
      // Snapshot: sometimes matching the log, sometimes not, sometimes past it.
      const index = Math.max(0, last - 5 + int(15))
      u.snapshot = snap(index, mem.term(index) ?? (rand() < 0.5 ? term : term + 1))
    }
    if (rand() < 0.8) {
      const from = Math.max(mem.firstIndex(), last + 1 - int(4) + (rand() < 0.03 ? 3 : 0)) // rarely a gap
      if (rand() < 0.2) term++
      u.entries = Array.from({ length: 1 + int(6) }, (_, i): Entry => ({
        index: from + i,
        term,
        type: rand() < 0.1 ? 'membership' : 'normal',
        data: new Uint8Array(int(rand() < 0.05 ? 20000 : 200)).fill(step & 0xff),
      }))
    }
    if (rand() < 0.5) u.hardState = { term, vote: rand() < 0.5 ? null : `n${int(3)}`, commit: int(last + 1) }
    if (rand() < 0.08) {
      const index = mem.firstIndex() - 1 + int(last - mem.firstIndex() + 3)
      u.compact = snap(index, (rand() < 0.9 ? mem.term(index) : undefined) ?? term)
    }
    const memErr = await mem.save(u, true).then(() => undefined, (err: unknown) => err)
    const lmdbErr = await lmdb.save(u, rand() < 0.5).then(() => undefined, (err: unknown) => err)
    if (isHoldfastError(memErr) !== isHoldfastError(lmdbErr) || (isHoldfastError(memErr) && isHoldfastError(lmdbErr) && memErr.code !== lmdbErr.code)) {
      t.fail(`step ${step}: memory ${String(memErr)}, lmdb ${String(lmdbErr)}`)
      return
    }
    if (rand() < 0.05) {
      await lmdb.close()
      lmdb = await openIn(t, dir)
    }
    const a = view(lmdb)
    const b = view(mem)
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      t.same(a, b, `step ${step}: same state`)
      return
    }
  }
  t.pass('400 random updates, identical state throughout')
})

// --- bad data ---------------------------------------------------------------------------------

t.test('records: round trip; every bit flip and every truncation is CORRUPT_DATA', async (t) => {
  const e: Entry = { index: 2 ** 40 + 3, term: 77, type: 'membership', data: new TextEncoder().encode('payload') }
  const hs = { term: 9, vote: 'nøde-ä', commit: 5 }
  const meta = snap(12, 3, ['a', 'b'])
  t.same(decodeEntry(encodeEntry(e), 'entry', e.index), e)
  t.same(decodeHardState(encodeHardState(hs), 'hs'), hs)
  t.same(decodeHardState(encodeHardState({ term: 0, vote: null, commit: 0 }), 'hs'), { term: 0, vote: null, commit: 0 })
  t.same(decodeSnapshotMeta(encodeSnapshotMeta(meta), 'snap'), meta)
  const cases: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
    ['entry', encodeEntry(e), (b) => decodeEntry(b, 'entry', e.index)],
    ['hard state', encodeHardState(hs), (b) => decodeHardState(b, 'hs')],
    ['snapshot meta', encodeSnapshotMeta(meta), (b) => decodeSnapshotMeta(b, 'snap')],
  ]
  for (const [name, record, decode] of cases) {
    let undetected = 0
    for (let bit = 0; bit < record.byteLength * 8; bit++) {
      const bad = Uint8Array.from(record)
      bad[bit >> 3]! ^= 1 << (bit & 7)
      try {
        decode(bad)
        undetected++
      } catch (err) {
        if (!isHoldfastError(err, 'CORRUPT_DATA')) throw err
      }
    }
    t.equal(undetected, 0, `${name}: all ${record.byteLength * 8} single-bit flips detected`)
    let truncations = 0
    for (let n = 0; n < record.byteLength; n++) {
      try {
        decode(record.subarray(0, n))
        truncations++
      } catch (err) {
        if (!isHoldfastError(err, 'CORRUPT_DATA')) throw err
      }
    }
    t.equal(truncations, 0, `${name}: every truncation detected`)
  }
  t.throws(() => decodeEntry(encodeEntry(e), 'entry', e.index + 1), { code: 'CORRUPT_DATA' }, 'an entry under the wrong key')
  t.throws(() => decodeHardState(encodeEntry(e), 'hs'), { code: 'CORRUPT_DATA' }, 'a record of another kind')
  t.throws(() => encodeEntry({ ...e, index: 2 ** 53 }), { code: 'INVALID_ARGUMENT' }, 'an index past 2^53')
})

/** The byte offsets of every occurrence of `needle` in `hay`. */
function occurrences(hay: Uint8Array, needle: Uint8Array): number[] {
  const out: number[] = []
  const buf = Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength)
  for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at + 1)) out.push(at)
  return out
}

/** A closed storage directory holding entries 1..n whose data contains a findable marker. */
async function writtenLog(t: Test, n = 200): Promise<{ dir: string; path: string; marker: (i: number) => Uint8Array }> {
  const dir = await tempDir(t)
  const marker = (i: number): Uint8Array => new TextEncoder().encode(`<<holdfast-marker-${String(i).padStart(6, '0')}>>`)
  const s = await LmdbStorage.open(dir)
  for (let i = 1; i <= n; i += 20) {
    const es = Array.from({ length: 20 }, (_, k): Entry => ({ index: i + k, term: 1, type: 'normal', data: Buffer.concat([marker(i + k), Buffer.alloc(300, i + k)]) }))
    await s.save({ entries: es, hardState: { term: 1, vote: 'a', commit: i } }, true)
  }
  await s.close()
  return { dir, path: join(dir, DATA_FILE), marker }
}

t.test('a flipped byte in a stored entry is CORRUPT_DATA at open', async (t) => {
  const { dir, path, marker } = await writtenLog(t)
  const bytes = await readFile(path)
  const hits = occurrences(bytes, marker(137))
  t.ok(hits.length >= 1, 'the entry is in the file')
  // Copy-on-write may leave stale copies in free pages: corrupt every copy, so the live one is hit.
  for (const at of hits) bytes.writeUInt8(bytes.readUInt8(at + 5) ^ 0x20, at + 5)
  await writeFile(path, bytes)
  await rejectsCorrupt(t, LmdbStorage.open(dir), 'corrupted entry', new RegExp(`${DATA_FILE} ${LOG_DB} entry 137: record checksum mismatch`))
})

t.test('corruption after open is CORRUPT_DATA on read, never wrong data', async (t) => {
  const { dir, path, marker } = await writtenLog(t)
  const s = await openIn(t, dir)
  t.equal(s.entries(50, 51).length, 1)
  const fh = await openFile(path, 'r+')
  const bytes = await readFile(path)
  for (const at of occurrences(bytes, marker(50))) await fh.write(Buffer.from('X'), 0, 1, at + 3)
  await fh.close()
  // The file is memory-mapped: the change is visible to the next read.
  t.throws(() => s.entries(45, 55), { code: 'CORRUPT_DATA' }, 'a range including the entry')
  t.throws(() => s.entries(50, 51), { code: 'CORRUPT_DATA' }, 'the entry alone')
  t.equal(s.entries(51, 60).length, 9, 'other entries still read')
})

t.test('a truncated data file is CORRUPT_DATA at open', async (t) => {
  const { path, dir } = await writtenLog(t, 2000)
  const { size } = await stat(path)
  const original = await readFile(path)
  for (const [label, length] of [
    ['half', Math.floor(size / 2)],
    ['one meta page', 4096],
    ['a few bytes', 10],
    ['empty', 0],
  ] as const) {
    await writeFile(path, original)
    await truncate(path, length)
    await rejectsCorrupt(t, LmdbStorage.open(dir), `truncated to ${label} (${length} of ${size} bytes)`)
  }
})

t.test('truncation by any number of pages: CORRUPT_DATA or the intact state, never wrong data', async (t) => {
  const dir = await tempDir(t)
  const s = await LmdbStorage.open(dir)
  for (let i = 1; i <= 400; i += 20) {
    const es = Array.from({ length: 20 }, (_, k): Entry => ({ index: i + k, term: 1, type: 'normal', data: new Uint8Array(300 + 3000 * ((i + k) % 3)) }))
    await s.save({ entries: es }, true)
  }
  await s.save({ compact: snap(300, 1) }, true)
  await s.save({ entries: [entry(380, 2)], hardState: { term: 2, vote: 'b', commit: 300 } }, true)
  // Dropping the log frees its pages: the file's last pages are free, and LMDB need not have
  // written them, so a file short of them is healthy (the live-page walk tells which).
  await s.save({ snapshot: snap(500, 3), entries: run(501, 503, 3) }, true)
  const expected = view(s)
  await s.close()
  const path = join(dir, DATA_FILE)
  const original = await readFile(path)
  const pages = original.byteLength / 4096
  let refused = 0
  let accepted = 0
  for (let keep = pages - 1; keep >= 2; keep -= keep > pages - 16 ? 1 : 13) {
    await writeFile(path, original.subarray(0, keep * 4096))
    try {
      const again = await LmdbStorage.open(dir)
      t.same(view(again), expected, `${keep} of ${pages} pages: opened with the whole state`)
      await again.close()
      accepted++
    } catch (err) {
      if (!isHoldfastError(err, 'CORRUPT_DATA')) throw err
      refused++
    }
  }
  t.ok(refused > 0 && accepted > 0, `accepted ${accepted} and refused ${refused} truncations`)
})

t.test('a corrupted hard state is CORRUPT_DATA at open', async (t) => {
  const dir = await tempDir(t)
  const vote = 'vote-marker-0123456789'
  const s = await LmdbStorage.open(dir)
  await s.save({ entries: run(1, 3, 1), hardState: { term: 1, vote, commit: 1 } }, true)
  await s.close()
  const path = join(dir, DATA_FILE)
  const bytes = await readFile(path)
  const hits = occurrences(bytes, Buffer.from(vote))
  t.ok(hits.length >= 1, 'the hard state is in the file')
  for (const at of hits) bytes.write('V', at)
  await writeFile(path, bytes)
  await rejectsCorrupt(t, LmdbStorage.open(dir), 'corrupted hard state', new RegExp(`${META_DB} record 'hardState': record checksum mismatch`))
})

t.test('the live-page walk accepts healthy files of every page kind', async (t) => {
  const dir = await tempDir(t)
  let s = await openIn(t, dir)
  const dbs = (s: LmdbStorage) => ({
    dups: s.openDb<string, string>('state.dups', { dupSort: true, encoding: 'ordered-binary' }),
    big: s.openDb<Uint8Array, number>('state.big', { encoding: 'binary' }),
  })
  let { dups, big } = dbs(s)
  const seed = seedFor(t, 'walk')
  const rand = prng(seed)
  for (let round = 0; round < 40; round++) {
    const first = s.lastIndex() + 1
    const es = Array.from({ length: 1 + Math.floor(rand() * 40) }, (_, i): Entry => ({
      index: first + i,
      term: 1,
      type: 'normal',
      data: new Uint8Array(Math.floor(rand() * (rand() < 0.1 ? 30000 : 3000))),
    }))
    await s.save({ entries: es }, true)
    if (round % 7 === 6) await s.save({ compact: snap(s.lastIndex() - 20, 1) }, true)
    await s.env.childTransaction(() => {
      for (let k = 0; k < 50; k++) dups.putSync(`k${Math.floor(rand() * 5)}`, `v${round}-${k}`)
      big.putSync(round, new Uint8Array(10000 + round))
      if (round > 5) big.removeSync(round - 5)
    })
    if (round % 10 === 9) {
      await s.close()
      s = await openIn(t, dir, { verifyPages: true })
      ;({ dups, big } = dbs(s))
    }
  }
  const stats = s.env.getStats() as { lastPageNumber: number; pageSize: number }
  t.ok(stats.lastPageNumber > 50, `a file of ${stats.lastPageNumber + 1} pages`)
  await s.close()
  s = await openIn(t, dir, { verifyPages: true })
  t.equal(s.entries(s.firstIndex(), s.lastIndex() + 1).length, s.lastIndex() - s.firstIndex() + 1)
})

async function rawEnv(t: Test, dir: string, write: (meta: ReturnType<ReturnType<typeof openLmdb>['openDB']>) => void): Promise<void> {
  const root = openLmdb(join(dir, DATA_FILE), { noSubdir: true, maxDbs: 64 })
  const meta = root.openDB(META_DB, { encoding: 'binary' })
  await root.transaction(() => write(meta))
  await root.close()
  t.pass('wrote raw records')
}

t.test('a newer layout version is CORRUPT_DATA', async (t) => {
  const { dir } = await writtenLog(t, 5)
  await rawEnv(t, dir, (meta) => meta.putSync('format', encodeFormat(2)))
  await rejectsCorrupt(t, LmdbStorage.open(dir), 'layout version 2', /layout version 2 is not supported/)
})

t.test('a newer record version is CORRUPT_DATA', async (t) => {
  const { dir } = await writtenLog(t, 5)
  const record = encodeFormat(1)
  record[0] = 2
  await rawEnv(t, dir, (meta) => meta.putSync('format', record))
  await rejectsCorrupt(t, LmdbStorage.open(dir), 'record version 2', /record version 2 is not supported/)
})

t.test('an environment with data but no format record is CORRUPT_DATA', async (t) => {
  const dir = await tempDir(t)
  await rawEnv(t, dir, (meta) => meta.putSync('something', Buffer.from('else')))
  await rejectsCorrupt(t, LmdbStorage.open(dir), 'foreign data', /without a format record/)
})

t.test('a file that is not LMDB is CORRUPT_DATA', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, DATA_FILE), Buffer.alloc(64 * 1024, 'garbage '))
  await rejectsCorrupt(t, LmdbStorage.open(dir), 'garbage file')
})

// --- crashes ----------------------------------------------------------------------------------

/**
 * The child appends with sync=true, several saves in flight, compacting now and then, and prints
 * "acked N" when the save ending at N resolves. Entry i's data is derived from i alone.
 */
const CHILD = `
import { LmdbStorage } from ${JSON.stringify(LMDB_MODULE)}
const s = await LmdbStorage.open(process.argv[1])
const data = (i) => new TextEncoder().encode('entry-' + i + '-' + 'x'.repeat(i % 97))
let next = s.lastIndex() + 1
const term = s.hardState().term + 1
const window = []
for (;;) {
  const n = 1 + (next % 5)
  const entries = Array.from({ length: n }, (_, k) => ({ index: next + k, term, type: 'normal', data: data(next + k) }))
  const last = next + n - 1
  next = last + 1
  const compact = last % 50 < n && last > 100 ? { index: last - 100, term: s.term(last - 100) ?? term, membership: { voters: ['a'], learners: [] } } : undefined
  const update = { entries, hardState: { term, vote: 'a', commit: last } }
  window.push(s.save(update, true).then(() => process.stdout.write('acked ' + last + '\\n')))
  if (compact && s.term(compact.index) !== undefined) window.push(s.save({ compact }, true))
  if (window.length >= 4) await window.shift()
}
`

function childData(i: number): Uint8Array {
  return new TextEncoder().encode(`entry-${i}-${'x'.repeat(i % 97)}`)
}

async function runAndKill(dir: string, killAfterMs: number): Promise<{ acked: number; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let acked = 0
  let killed = false
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  await new Promise<void>((resolve, reject) => {
    let buffered = ''
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        const m = /^acked (\d+)$/.exec(line)
        if (m) acked = Math.max(acked, Number(m[1]))
        // Kill a while after the first ack, mid-stream.
        if (!killed && acked > 0) {
          killed = true
          setTimeout(() => child.kill('SIGKILL'), killAfterMs)
        }
      }
    })
    child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code}/${signal}: ${output}`))))
    child.on('error', reject)
  })
  // Lines still unread when the child died were written before it died: count them too.
  return { acked, output }
}

t.test('acknowledged saves survive SIGKILL at a random moment', async (t) => {
  const seed = seedFor(t, 'crash')
  const rand = prng(seed)
  const dir = await tempDir(t)
  let prevAcked = 0
  for (let round = 0; round < 10; round++) {
    const killAfter = Math.floor(rand() * 150)
    const { acked } = await runAndKill(dir, killAfter)
    const s = await LmdbStorage.open(dir)
    const first = s.firstIndex()
    const last = s.lastIndex()
    const ok =
      acked > prevAcked &&
      last >= acked &&
      s.hardState().commit >= acked &&
      s.hardState().commit <= last &&
      s.term(first - 1) !== undefined
    t.ok(ok, `round ${round} (kill after ${killAfter} ms): acked ${acked}, stored ${first}..${last}, commit ${s.hardState().commit}`)
    // Every stored entry is the one the child wrote, and the log is contiguous (entries() checks).
    const es = s.entries(first, last + 1)
    const bad = es.find((e, i) => e.index !== first + i || Buffer.compare(Buffer.from(e.data), Buffer.from(childData(e.index))) !== 0)
    t.equal(bad, undefined, `round ${round}: entries ${first}..${last} intact`)
    prevAcked = acked
    await s.close()
  }
})
