/**
 * The daemon's replicated directory, kept in the cluster's own state (bucket DIRECTORY_BUCKET, out
 * of the way of user keys, which live in the default bucket):
 *
 *   cluster          { voters }                  the voter target set by the node started with --init
 *   member/<id>      { url, learnerOnly }        each node's advertised URL and whether it may be promoted
 *   removed/<id>     { at }                      ids removed through the API: never re-admitted by join
 *
 * Every replica reads it locally (stale reads are fine: it steers, it does not decide safety).
 */
import type { NodeId } from '../core/types.js'
import type { HoldfastNode } from '../node.js'

export const DIRECTORY_BUCKET = 'holdfast.daemon'

export interface MemberRecord {
  readonly url: string
  /** Never promoted automatically (started with --learner, or demoted through the API). */
  readonly learnerOnly: boolean
}

export interface ClusterRecord {
  readonly voters: number
}

/** Reads and writes the directory through a node (writes go to the leader like any other). */
export class Directory {
  constructor(readonly node: HoldfastNode) {}

  member(id: NodeId): MemberRecord | undefined {
    const v = this.node.getLocal(`member/${id}`, { bucket: DIRECTORY_BUCKET })?.value
    return isMemberRecord(v) ? v : undefined
  }

  clusterRecord(): ClusterRecord | undefined {
    const v = this.node.getLocal('cluster', { bucket: DIRECTORY_BUCKET })?.value
    return typeof v === 'object' && v !== null && typeof (v as { voters?: unknown }).voters === 'number' ? (v as unknown as ClusterRecord) : undefined
  }

  isRemoved(id: NodeId): boolean {
    return this.node.getLocal(`removed/${id}`, { bucket: DIRECTORY_BUCKET }) !== undefined
  }

  async putMember(id: NodeId, record: MemberRecord): Promise<void> {
    await this.node.put(`member/${id}`, { url: record.url, learnerOnly: record.learnerOnly }, { bucket: DIRECTORY_BUCKET })
  }

  async putCluster(record: ClusterRecord): Promise<void> {
    // ifRevision 0: only the first leader's write counts, so a later --voters cannot silently change it.
    await this.node.put('cluster', { voters: record.voters }, { bucket: DIRECTORY_BUCKET, ifRevision: 0 })
  }

  async markRemoved(id: NodeId): Promise<void> {
    await this.node.put(`removed/${id}`, { at: new Date().toISOString() }, { bucket: DIRECTORY_BUCKET })
  }
}

function isMemberRecord(v: unknown): v is MemberRecord {
  return typeof v === 'object' && v !== null && typeof (v as MemberRecord).url === 'string' && typeof (v as MemberRecord).learnerOnly === 'boolean'
}
