/**
 * The hardware floor's first half: raw lmdb-js durable puts, opened as holdfast opens its own
 * environment (overlappingSync on Linux). Each write awaits its put and the `flushed` of the batch
 * that carries it (the fdatasync that covers it), so concurrent writes share one commit and one
 * fsync per batch, as holdfast's group commit does. `flushed` names the latest batch when its
 * `then` is called, so it is called in the same tick as the put; awaiting it after the put
 * resolved could wait for a later batch.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'

/** An open raw environment. */
export interface RawLmdb {
  /** Durably writes one key. */
  put(key: string, value: Uint8Array): Promise<void>
  close(): Promise<void>
}

export async function openRawLmdb(dir: string): Promise<RawLmdb> {
  await mkdir(dir, { recursive: true })
  // The options holdfast's LmdbStorage uses for its environment.
  const root: RootDatabase = openLmdb(join(dir, 'raw.mdb'), { noSubdir: true, maxDbs: 64, overlappingSync: process.platform !== 'win32' })
  const db: Database<Uint8Array, string> = root.openDB<Uint8Array, string>('bench', { encoding: 'binary' })
  return {
    put: async (key, value) => {
      const committed = db.put(key, value)
      // Called now: names the flush of the batch this put joined (see the module comment).
      const durable = new Promise<void>((resolve, reject) => {
        root.flushed.then(() => resolve(), reject)
      })
      await Promise.all([committed, durable])
    },
    close: () => root.close(),
  }
}
