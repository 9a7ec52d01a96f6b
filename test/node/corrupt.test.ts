/**
 * A damaged data file at the embedding API (issue 3): createNode() refuses it with CORRUPT_DATA,
 * naming the file, instead of serving wrong data; the intact file still opens with all its data.
 * (The storage-level cases, page by page, are in test/storage/lmdb.test.ts.)
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import { createNode, type HoldfastNode } from '../../src/node.js'
import type { NodeOptions } from '../../src/options.js'
import type { KeyValue } from '../../src/state/index.js'
import { DATA_FILE } from '../../src/storage/lmdb.js'
import { MemoryNetwork } from '../../src/transport/memory.js'

const KEYS = 300

function options(dataDir: string, extra: Partial<NodeOptions> = {}): NodeOptions {
  return {
    id: 'solo',
    dataDir,
    transport: new MemoryNetwork().createTransport('solo'),
    bootstrap: { voters: ['solo'], learners: [] },
    tickMs: 5,
    electionTicks: 4,
    ...extra,
  }
}

/** A findable, unique string inside key i's value. */
function marker(i: number): string {
  return `holdfast-marker-${String(i).padStart(6, '0')}`
}

function occurrences(hay: Buffer, needle: string): number[] {
  const out: number[] = []
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) out.push(at)
  return out
}

interface Written {
  dir: string
  path: string
  /** The closed, intact data file. */
  intact: Buffer
  /** Everything list() returned before closing. */
  expected: KeyValue[]
}

/** A closed node directory holding KEYS keys, each value carrying marker(i). */
async function writtenNode(t: Test, extra: Partial<NodeOptions> = {}): Promise<Written> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-corrupt-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const node = await createNode(options(dir, extra))
  try {
    // Concurrent writes, so entries hold several keys' values and pages fill unevenly.
    for (let i = 0; i < KEYS; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => node.put(`k${i + k}`, { marker: marker(i + k), pad: 'p'.repeat(200) })))
    }
  } finally {
    await node.close()
  }
  const again = await createNode(options(dir, extra))
  const expected = again.list({ limit: KEYS + 1 })
  await again.close()
  const path = join(dir, DATA_FILE)
  return { dir, path, intact: await readFile(path), expected }
}

/** createNode() must reject with CORRUPT_DATA, naming the data file. */
async function rejectsCorrupt(t: Test, w: Written, what: string, extra: Partial<NodeOptions> = {}): Promise<void> {
  let node: HoldfastNode | undefined
  try {
    node = await createNode(options(w.dir, extra))
    t.fail(`${what}: opened, expected CORRUPT_DATA`, { sample: node.getLocal('k137') })
  } catch (err) {
    t.ok(isHoldfastError(err, 'CORRUPT_DATA'), `${what}: CORRUPT_DATA`, { error: err })
    t.comment(`${what}: ${(err as Error).message}`)
    t.match((err as Error).message, w.path, `${what}: the message names the file`)
  } finally {
    await node?.close()
  }
}

/** Puts the intact file back and checks the node opens with every key as it was. */
async function reopensIntact(t: Test, w: Written, what: string, extra: Partial<NodeOptions> = {}): Promise<void> {
  await writeFile(w.path, w.intact)
  const node = await createNode(options(w.dir, extra))
  try {
    t.same(node.list({ limit: KEYS + 1 }), w.expected, `after ${what}: the intact file opens with all its data`)
    const r = await node.put('after', 'more')
    t.ok(r.revision > 0, `after ${what}: the intact node takes writes`)
  } finally {
    await node.close()
  }
  // Leave the file as written (the put above added to it) for the next case.
  await writeFile(w.path, w.intact)
}

t.test('a truncated data file is refused at open, naming the file', async (t) => {
  const w = await writtenNode(t)
  const size = w.intact.byteLength
  t.equal((await stat(w.path)).size, size)
  for (const [label, length] of [
    ['half', Math.floor(size / 2)],
    ['one page', 4096],
    ['a few bytes', 10],
    ['nothing', 0],
  ] as const) {
    await truncate(w.path, length)
    await rejectsCorrupt(t, w, `truncated to ${label} (${length} of ${size} bytes)`)
    await reopensIntact(t, w, `truncation to ${label}`)
  }
})

// LMDB may leave the file's last pages free (freed by the transaction that allocated them), so a
// file short of them is healthy: either refused, or opened with every key.
t.test('a file short of its last pages: CORRUPT_DATA or the whole state, never wrong data', async (t) => {
  const w = await writtenNode(t)
  const pages = w.intact.byteLength / 4096
  let refused = 0
  for (let keep = pages - 1; keep >= pages - 8; keep--) {
    await truncate(w.path, keep * 4096)
    let node: HoldfastNode | undefined
    try {
      node = await createNode(options(w.dir))
      t.same(node.list({ limit: KEYS + 1 }), w.expected, `${keep} of ${pages} pages: opened with every key`)
    } catch (err) {
      refused++
      t.ok(isHoldfastError(err, 'CORRUPT_DATA') && err.message.includes(w.path), `${keep} of ${pages} pages: CORRUPT_DATA naming the file`, { error: err })
    } finally {
      await node?.close()
    }
    await writeFile(w.path, w.intact)
  }
  t.ok(refused > 0, `${refused} of 8 truncations refused`)
})

t.test('a corrupted record is refused at open, naming the file', async (t) => {
  const w = await writtenNode(t)
  const bytes = Buffer.from(w.intact)
  const hits = occurrences(bytes, marker(137))
  t.ok(hits.length >= 2, `key 137's value is in the file (${hits.length} copies: the log entry and the state machine)`)
  // Copy-on-write may leave stale copies in free pages: flip a byte in every copy, so the live ones are hit.
  for (const at of hits) bytes[at + 10] = bytes[at + 10]! ^ 0x01
  await writeFile(w.path, bytes)
  await rejectsCorrupt(t, w, 'a flipped byte in every copy of a value')
  await reopensIntact(t, w, 'the flipped byte')
})

t.test('a file of garbage is refused at open, naming the file', async (t) => {
  const w = await writtenNode(t)
  await writeFile(w.path, randomBytes(w.intact.byteLength))
  await rejectsCorrupt(t, w, 'random bytes of the same size')
  await writeFile(w.path, Buffer.alloc(w.intact.byteLength, 'garbage '))
  await rejectsCorrupt(t, w, 'text of the same size')
  await reopensIntact(t, w, 'garbage')
})

/**
 * Opens `dir` after replacing its data file with the intact meta pages followed by seeded garbage
 * of the intact size, once per seed, and prints `<seed> <error code or 'opened'> <message>`. Runs
 * in a child process because LMDB may abort the process on such a file.
 */
const GARBAGE_CHILD = `
import { readFile, writeFile } from 'node:fs/promises'
import { createNode } from ${JSON.stringify(fileURLToPath(new URL('../../src/node.ts', import.meta.url)))}
import { MemoryNetwork } from ${JSON.stringify(fileURLToPath(new URL('../../src/transport/memory.ts', import.meta.url)))}
const [dir, path, ...seeds] = process.argv.slice(1)
const intact = await readFile(path)
for (const seed of seeds.map(Number)) {
  let a = seed
  const garbage = Buffer.alloc(intact.byteLength - 2 * 4096)
  for (let i = 0; i < garbage.byteLength; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0
    garbage[i] = a >>> 24
  }
  await writeFile(path, Buffer.concat([intact.subarray(0, 2 * 4096), garbage]))
  const opts = { id: 'solo', dataDir: dir, transport: new MemoryNetwork().createTransport('solo'), bootstrap: { voters: ['solo'], learners: [] } }
  try {
    const node = await createNode(opts)
    await node.close()
    process.stdout.write(seed + ' opened\\n')
  } catch (err) {
    process.stdout.write(seed + ' ' + (err.code ?? 'non-holdfast') + ' ' + JSON.stringify(err.message) + '\\n')
  }
}
`

// With the file's size intact, only the live-page walk (on by default: NodeOptions.verifyOnOpen)
// finds the damage; without it LMDB reads the garbage pages itself and may abort the process
// (SIGABRT). So every file here must be refused with CORRUPT_DATA, in a child that survives.
t.test('intact meta pages, garbage after them', async (t) => {
  const w = await writtenNode(t)
  const seeds = Array.from({ length: 8 }, (_, i) => i + 1)
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', GARBAGE_CHILD, w.dir, w.path, ...seeds.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (c, s) => resolve([c, s]))
  })
  const lines = stdout.split('\n').filter((l) => l !== '')
  t.same({ code, signal }, { code: 0, signal: null }, 'the process survives every file', { stderr: stderr.slice(-2000), results: lines })
  for (const seed of seeds) {
    const line = lines.find((l) => l.startsWith(`${seed} `))
    t.ok(line?.startsWith(`${seed} CORRUPT_DATA `) && line.includes(w.path), `seed ${seed}: CORRUPT_DATA naming the file`, { result: line ?? 'none' })
  }
  await reopensIntact(t, w, 'garbage')
})

// Once the log is compacted past a key's entry, its value is stored only in the state machine.
// Its value records carry a CRC-32 bound to their key (src/state/layout.ts), verified at every read
// (not at open: that would read the whole state): the node opens, and reading the damaged key, or
// a range holding it, is CORRUPT_DATA naming the file; the other keys still read.
t.test('a corrupted state-machine record after log compaction', async (t) => {
  const extra = { logTail: 20 }
  const w = await writtenNode(t, extra)
  const bytes = Buffer.from(w.intact)
  const hits = occurrences(bytes, marker(37))
  t.ok(hits.length >= 1, `key 37's value is in the file (${hits.length} copies)`)
  for (const at of hits) bytes[at + 10] = bytes[at + 10]! ^ 0x01
  await writeFile(w.path, bytes)
  let node: HoldfastNode | undefined
  try {
    node = await createNode(options(w.dir, extra))
    const opened = node
    const attempt = (fn: () => unknown): unknown => {
      try {
        return fn()
      } catch (err) {
        return err
      }
    }
    for (const [what, read] of [
      ['getLocal', attempt(() => opened.getLocal('k37')?.value)],
      ['list', attempt(() => opened.list({ limit: KEYS + 1 }))],
    ] as const) {
      t.ok(isHoldfastError(read, 'CORRUPT_DATA'), `${what} of the damaged key is CORRUPT_DATA, not wrong data`, { read })
      t.match((read as Error).message, w.path, `${what}: the message names the file`)
      t.match((read as Error).message, "'default'/'k37'", `${what}: and the key`)
    }
    t.same(opened.getLocal('k36'), w.expected.find((kv) => kv.key === 'k36'), 'an intact key still reads')
  } catch (err) {
    t.fail('the node opens (records are verified when read)', { error: err })
  } finally {
    await node?.close()
  }
  await reopensIntact(t, w, 'the flipped byte', extra)
})
