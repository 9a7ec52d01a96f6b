/**
 * Restore: a follower is SIGKILLed, its data directory wiped and its member removed; a new node
 * started on an empty directory joins, receives the state (a snapshot once the leader's log no
 * longer holds every entry, then the log's tail) and catches up. Timed from its process start,
 * and from its first HTTP answer, to applying the leader's commit index as it was at the start.
 * Compared with `cp` of the restored node's LMDB file on the same disk, with and without a sync
 * of the copy (the restored node's data is durable; a bare cp's is not yet).
 *
 * The state is written in transactions sized so the log holds more entries than holdfast keeps
 * behind its snapshot point (logTail, 10,000, compacted in steps of 2,500), so the new node
 * restores from a snapshot and then the log's tail.
 */
import { spawnSync } from 'node:child_process'
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { DATA_FILE } from '../../src/storage/lmdb.js'
import { HoldfastCluster, type Dht, type Member } from '../holdfast-cluster.js'
import { HttpClient } from '../http-client.js'
import { waitFor } from '../procs.js'
import { progress } from '../report/progress.js'
import { round3 } from '../stats.js'

export interface RestoreOptions {
  /** Logical state sizes (bytes of values) to restore, ascending. */
  readonly sizes: readonly number[]
  readonly dir: string
  readonly dht: Dht
}

export interface RestoreResult {
  /** Bytes of values in the state. */
  readonly stateBytes: number
  readonly keys: number
  /** The leader's and the restored node's LMDB files. */
  readonly leaderFileBytes: number
  readonly restoredFileBytes: number
  /** Process start to caught up, ms. */
  readonly restoreMs: number
  /** First HTTP answer to caught up, ms (without the process's start). */
  readonly restoreFromUpMs: number
  /** Whether the state arrived as a snapshot, and its size. */
  readonly snapshotBytes: number | null
  /** cp of the restored LMDB file, and cp followed by sync of the copy, ms. */
  readonly cpMs: number
  readonly cpSyncMs: number
  /** cp+sync time / restore time (from the first HTTP answer): 1 means as fast as cp. */
  readonly speedVsCp: number
  /** Writing the state through the cluster, for reference. */
  readonly fillSeconds: number
  readonly fillEntries: number
}

/**
 * How to write `bytes` more of state: about 13,000 entries (more than the 12,500 after which the
 * leader first compacts its log, so a new node needs a snapshot) of at most 64 KiB, values of at
 * most 4 KiB.
 */
function fillPlan(bytes: number): { valueSize: number; perTxn: number; count: number } {
  const entryBytes = Math.min(65536, Math.max(256, Math.floor(bytes / 13_000)))
  const perTxn = Math.ceil(entryBytes / 4096)
  const valueSize = Math.floor(entryBytes / perTxn)
  return { valueSize, perTxn, count: Math.ceil(bytes / valueSize) }
}

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`)
  return performance.now() - t0
}

async function fileSize(dir: string): Promise<number> {
  return (await stat(join(dir, DATA_FILE))).size
}

async function restoreOnce(cluster: HoldfastCluster, leader: Member, http: HttpClient): Promise<{ member: Member; restoreMs: number; fromUpMs: number }> {
  const victim = cluster.live().find((m) => m !== leader)!
  const victimId = victim.id
  await victim.kill()
  await rm(victim.dataDir, { recursive: true, force: true })
  const removed = await http.send('DELETE', new URL(`/v1/members/${victimId}`, leader.url), undefined, 30_000)
  if (removed !== 200) throw new Error(`removing ${victim.name} answered ${removed}`)
  const fresh = await cluster.add('embedded')
  const target = (await leader.status())!.commitIndex
  await fresh.waitUp()
  const upAt = performance.now()
  const done = await waitFor(async () => {
    const s = await fresh.status()
    return s !== undefined && s.appliedIndex >= target ? performance.now() : undefined
  }, `${fresh.name} to catch up to ${target}`, 1_800_000, 10)
  return { member: fresh, restoreMs: done - fresh.startedAt, fromUpMs: done - upAt }
}

export async function runRestore(o: RestoreOptions): Promise<RestoreResult[]> {
  const cluster = await HoldfastCluster.create({ dir: o.dir, name: 'restore', dht: o.dht, voters: 3 })
  const http = new HttpClient(4)
  const out: RestoreResult[] = []
  try {
    const leader = await cluster.add('embedded', { init: true })
    await cluster.add('daemon')
    await cluster.add('daemon')
    await cluster.waitFormed(3)
    let filled = 0
    let keys = 0
    for (const size of o.sizes) {
      const plan = fillPlan(size - filled)
      progress('restore', `writing ${((size - filled) / 1e6).toFixed(0)} MB of state: ${plan.count} values of ${plan.valueSize} bytes, ${plan.perTxn} per entry`)
      const f = await leader.request({ op: 'fill', prefix: `restore/${size}/`, count: plan.count, valueSize: plan.valueSize, perTxn: plan.perTxn, concurrency: 64 })
      filled += plan.count * plan.valueSize
      keys += plan.count
      progress('restore', `written in ${f.seconds.toFixed(1)} s (${f.entries} entries, ${(f.bytes / 1e6 / f.seconds).toFixed(1)} MB/s); waiting for the followers`)
      await cluster.waitFormed(3, 1_800_000)
      const r = await restoreOnce(cluster, leader, http)
      await cluster.waitFormed(3, 600_000)
      const restoredFile = join(r.member.dataDir, DATA_FILE)
      const copy = join(o.dir, 'restore-cp.mdb')
      const cpMs = timed('cp', [restoredFile, copy])
      await rm(copy, { force: true })
      const cpSyncMs = timed('sh', ['-c', 'cp "$0" "$1" && sync "$1"', restoredFile, copy])
      await rm(copy, { force: true })
      const result: RestoreResult = {
        stateBytes: filled,
        keys,
        leaderFileBytes: await fileSize(leader.dataDir),
        restoredFileBytes: await fileSize(r.member.dataDir),
        restoreMs: round3(r.restoreMs),
        restoreFromUpMs: round3(r.fromUpMs),
        snapshotBytes: r.member.snapshots[0]?.bytes ?? null,
        cpMs: round3(cpMs),
        cpSyncMs: round3(cpSyncMs),
        speedVsCp: round3(cpSyncMs / r.fromUpMs),
        fillSeconds: round3(f.seconds),
        fillEntries: f.entries,
      }
      out.push(result)
      progress(
        'restore',
        `${(filled / 1e6).toFixed(0)} MB: restored in ${(result.restoreMs / 1000).toFixed(2)} s (${(result.restoreFromUpMs / 1000).toFixed(2)} s after its first HTTP answer; ${result.snapshotBytes === null ? 'no snapshot' : `snapshot of ${(result.snapshotBytes / 1e6).toFixed(1)} MB`}); cp ${(cpMs / 1000).toFixed(2)} s, cp+sync ${(cpSyncMs / 1000).toFixed(2)} s of ${(result.restoredFileBytes / 1e6).toFixed(0)} MB`,
      )
    }
  } finally {
    http.close()
    await cluster.destroy()
  }
  return out
}
