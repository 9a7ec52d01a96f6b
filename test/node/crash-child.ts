/**
 * The process crash.test.ts kills: a single-node cluster in the data directory given as argv[2],
 * under a write load of CRASH_WRITERS concurrent writers, each alternating a put of a fresh key
 * and a call of the 'bump' command with a fresh id. Round argv[3] names this run's keys and ids,
 * so every key and id is written once over the whole test.
 *
 * It opens the node once the parent writes a line to its stdin. On stdout it prints one line per
 * event, each with one synchronous write to the pipe (Node writes pipes synchronously on Linux),
 * so a line printed before SIGKILL reaches the parent:
 *   `O <appliedIndex>`   the node opened, having applied this much
 *   `P <key> <revision>` put(key, putValue(key)) was acknowledged at that revision
 *   `C <id> <revision>`  call('bump', id) was acknowledged, applied at that revision
 * Nothing is printed for a write before its promise resolves.
 */
import { pathToFileURL } from 'node:url'
import { createNode, type HoldfastNode } from '../../src/node.js'
import type { NodeOptions } from '../../src/options.js'
import type { CommandTx } from '../../src/state/index.js'
import { MemoryNetwork } from '../../src/transport/memory.js'

/** The node's id, in the child and when the parent reopens the data directory. */
export const CRASH_NODE_ID = 'solo'
/** Concurrent writers in the child. */
export const CRASH_WRITERS = 16
/** A short log tail, so compaction runs (and is crashed into) during the test. */
export const CRASH_LOG_TAIL = 200
export const PUT_BUCKET = 'puts'
export const CALL_BUCKET = 'calls'
export const META_BUCKET = 'meta'

/** Node settings shared by the child and the parent's reopenings: fast single-node elections. */
export function crashNodeOptions(dataDir: string): NodeOptions {
  return {
    id: CRASH_NODE_ID,
    dataDir,
    transport: new MemoryNetwork().createTransport(CRASH_NODE_ID),
    bootstrap: { voters: [CRASH_NODE_ID], learners: [] },
    tickMs: 5,
    electionTicks: 4,
    logTail: CRASH_LOG_TAIL,
    operationTimeoutMs: 30_000,
  }
}

/** The value put under `key`: derived from the key alone, so any stored value can be checked. */
export function putValue(key: string): { key: string; pad: string } {
  return { key, pad: 'x'.repeat(key.length * 7) }
}

/** What 'bump' stores under its id: how often it ran for the id (1, unless applied twice) and where. */
export type BumpRecord = { n: number; revision: number }

/**
 * The deterministic command: counts, per id and in total, how often it was applied. An entry
 * applied twice would leave n = 2 for its id, and the total above the sum of ids.
 */
export function registerBump(node: HoldfastNode): void {
  node.command('bump', (tx: CommandTx, args) => {
    if (typeof args !== 'string') throw new Error('bump takes an id')
    const prev = tx.get(args, { bucket: CALL_BUCKET })?.value as BumpRecord | undefined
    const record: BumpRecord = { n: (prev?.n ?? 0) + 1, revision: tx.revision }
    tx.put(args, record, { bucket: CALL_BUCKET })
    const total = (tx.get('total', { bucket: META_BUCKET })?.value as number | undefined) ?? 0
    tx.put('total', total + 1, { bucket: META_BUCKET })
    return tx.revision
  })
}

async function main(): Promise<void> {
  const [dataDir, round] = process.argv.slice(2)
  if (dataDir === undefined || round === undefined) throw new Error('usage: crash-child.ts <dataDir> <round>')
  // The parent starts the next child while it checks the last round, and says 'go' when the data
  // directory is free: start-up (loading the modules) overlaps the check. Stdin closing (the parent
  // is gone) ends the child.
  process.stdin.on('end', () => process.exit(2))
  await new Promise((resolve) => process.stdin.once('data', resolve))
  const node = await createNode(crashNodeOptions(dataDir))
  registerBump(node)
  process.stdout.write(`O ${node.status().appliedIndex}\n`)
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const name = `r${round}.w${w}.${i}`
      if (i % 2 === 0) {
        const { revision } = await node.put(name, putValue(name), { bucket: PUT_BUCKET })
        process.stdout.write(`P ${name} ${revision}\n`)
      } else {
        const revision = await node.call('bump', name)
        process.stdout.write(`C ${name} ${String(revision)}\n`)
      }
    }
  }
  // The parent ends this process with SIGKILL; a failed write is a test failure it reports.
  await Promise.all(Array.from({ length: CRASH_WRITERS }, (_, w) => writer(w)))
}

// Imported by the test for the shared helpers; run only as the child.
if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`crash-child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  })
}
