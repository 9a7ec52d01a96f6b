/**
 * Scale: cluster formation over hyperswarm for several sizes, membership convergence against the
 * member count, and the memory of a node holding many keys.
 *
 * holdfast has no gossip layer: membership travels in the Raft log and members' URLs in the
 * replicated directory. "Convergence" is therefore measured as the time until every node's
 * /v1/status lists every member with its URL, at formation and when one more node joins.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ClusterStatus } from '../../src/daemon/types.js'
import { DATA_FILE } from '../../src/storage/lmdb.js'
import { HoldfastCluster, type Dht, type Member } from '../holdfast-cluster.js'
import { rss, waitFor } from '../procs.js'
import { progress } from '../report/progress.js'
import { round3 } from '../stats.js'

export interface FormationResult {
  readonly nodes: number
  /** Spawn of every process to every one answering /v1/status, ms. */
  readonly upMs: number
  /** Spawn to a leader with every node a voter (learners promoted), every node agreeing, ms. */
  readonly formedMs: number
  /** Spawn to every node's status listing every member with its URL, ms. */
  readonly convergedMs: number
  /** One more node (a learner): its spawn to every node listing it with its URL, ms. */
  readonly joinConvergedMs: number
}

/** Every member listed, with a URL, in every status. */
function converged(statuses: ReadonlyArray<ClusterStatus | undefined>, ids: readonly string[]): boolean {
  return statuses.every((s) => s !== undefined && ids.every((id) => s.members.some((m) => m.id === id && m.url !== null)))
}

async function allStatuses(members: readonly Member[]): Promise<Array<ClusterStatus | undefined>> {
  return Promise.all(members.map((m) => m.status()))
}

export async function runFormation(sizes: readonly number[], dir: string, dht: Dht): Promise<FormationResult[]> {
  const out: FormationResult[] = []
  for (const n of sizes) {
    const cluster = await HoldfastCluster.create({ dir, name: `scale${n}`, dht, voters: n })
    try {
      const t0 = performance.now()
      for (let i = 0; i < n; i++) await cluster.add('daemon', { init: i === 0 })
      await Promise.all(cluster.members.map((m) => m.waitUp()))
      const upMs = performance.now() - t0
      await cluster.waitFormed(n, 300_000)
      const formedMs = performance.now() - t0
      const ids = cluster.members.map((m) => m.id)
      await waitFor(async () => converged(await allStatuses(cluster.members), ids), `${n} nodes to list every member`, 300_000, 20)
      const convergedMs = performance.now() - t0
      const extra = await cluster.add('daemon', { learner: true })
      await extra.waitUp()
      const withExtra = [...ids, extra.id]
      await waitFor(async () => converged(await allStatuses(cluster.members), withExtra), `${n} nodes to list the joining node`, 300_000, 20)
      const joinConvergedMs = performance.now() - extra.startedAt
      const r = { nodes: n, upMs: round3(upMs), formedMs: round3(formedMs), convergedMs: round3(convergedMs), joinConvergedMs: round3(joinConvergedMs) }
      out.push(r)
      progress('scale', `${n} nodes: all up after ${(upMs / 1000).toFixed(2)} s, formed after ${(formedMs / 1000).toFixed(2)} s, every member listed everywhere after ${(convergedMs / 1000).toFixed(2)} s; a joining learner listed everywhere ${(joinConvergedMs / 1000).toFixed(2)} s after its start`)
    } finally {
      await cluster.destroy()
    }
  }
  return out
}

export interface RssResult {
  /** Keys in the state (written by the write rows and the fill). */
  readonly keys: number
  readonly valueSize: number
  readonly fillSeconds: number
  readonly members: ReadonlyArray<{
    readonly kind: string
    readonly role: string
    /** Before the write rows and after the fill, bytes. */
    readonly rssBeforeBytes: number | null
    readonly rssBytes: number
    /** Heaps and other private memory. */
    readonly anonBytes: number
    /** File-backed pages: the LMDB map's resident pages, and the node executable and libraries. */
    readonly fileBytes: number
    readonly lmdbFileBytes: number
  }>
}

/**
 * Fills the cluster up to `keys` keys of `valueSize` bytes (on top of `written`, the keys already
 * there) and reads every member's resident memory once the followers have applied everything.
 */
export async function runRss(cluster: HoldfastCluster, leader: Member, keys: number, written: number, valueSize: number, before: ReadonlyMap<Member, number>): Promise<RssResult> {
  const count = Math.max(0, keys - written)
  progress('scale', `filling to ${keys} keys (${count} more, ${valueSize}-byte values, 100 per transaction)`)
  const f = count > 0 ? await leader.request({ op: 'fill', prefix: 'rss/', count, valueSize, perTxn: 100, concurrency: 8 }) : { seconds: 0 }
  await cluster.waitFormed(3, 600_000)
  const statuses = await allStatuses(cluster.members)
  const members = []
  for (const [i, m] of cluster.members.entries()) {
    const r = rss(m.pid)
    if (!r) continue
    members.push({
      kind: m.kind === 'embedded' ? 'embedded (benchmark writers in its process)' : 'holdfast start',
      role: statuses[i]?.role ?? 'unknown',
      rssBeforeBytes: before.get(m) ?? null,
      rssBytes: r.rssBytes,
      anonBytes: r.anonBytes,
      fileBytes: r.fileBytes,
      lmdbFileBytes: (await stat(join(m.dataDir, DATA_FILE))).size,
    })
  }
  const result = { keys: written + count, valueSize, fillSeconds: round3(f.seconds), members }
  for (const m of members) progress('scale', `${m.kind}, ${m.role}: RSS ${(m.rssBytes / 2 ** 20).toFixed(0)} MiB (anonymous ${(m.anonBytes / 2 ** 20).toFixed(0)} MiB, file-backed ${(m.fileBytes / 2 ** 20).toFixed(0)} MiB) with ${result.keys} keys`)
  return result
}
