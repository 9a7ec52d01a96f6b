/**
 * Human-readable output of the client commands: aligned tables, short ids, one line per change.
 * Pure functions (no I/O), so they are unit-tested directly. Machine output is plain JSON and
 * needs none of this.
 */
import type { ClusterMember, ClusterStatus } from '../daemon/types.js'
import type { KvItem, ListResult, WatchChange } from './client.js'

/** How many leading characters of a node id are shown. Node ids are 64 hex characters. */
export const SHORT_ID_LENGTH = 8
/** Values longer than this are cut in tables and watch lines. */
export const MAX_CELL_CHARS = 60

/** The first SHORT_ID_LENGTH characters of a node id; '-' for none. */
export function shortId(id: string | null | undefined): string {
  if (!id) return '-'
  return id.length > SHORT_ID_LENGTH ? id.slice(0, SHORT_ID_LENGTH) : id
}

/**
 * Rows under a header, each column as wide as its widest cell, two spaces apart; the last column
 * is not padded (no trailing blanks).
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows]
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)))
  return all.map((r) => header.map((_, c) => (c === header.length - 1 ? (r[c] ?? '') : (r[c] ?? '').padEnd(widths[c]!))).join('  ').trimEnd()).join('\n')
}

/**
 * A value for people: a string as itself, anything else as compact JSON. With `max`, cut to that
 * many characters (ending in '…'), and newlines shown as \n so a value stays on one line.
 */
export function formatValue(value: unknown, max?: number): string {
  let text = typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value)
  if (max === undefined) return text
  text = text.replace(/\r?\n/g, '\\n')
  return text.length > max ? text.slice(0, Math.max(0, max - 1)) + '…' : text
}

/** `get`: the value alone (base64 values say so), so that `$(holdfast get k)` is the value. */
export function formatGet(item: KvItem & { encoding?: unknown }): string {
  return formatValue(item.value) + (item.encoding === 'base64' ? '\n(base64-encoded bytes)' : '')
}

/** `list`: KEY, REVISION and VALUE (cut), or a line saying there is nothing. */
export function formatList(result: ListResult): string {
  if (result.items.length === 0) return '(no keys)'
  const rows = result.items.map((i) => [i.key, String(i.revision), formatValue(i.value, MAX_CELL_CHARS)])
  const table = formatTable(['KEY', 'REVISION', 'VALUE'], rows)
  return result.more ? `${table}\n(more keys follow${result.next !== undefined ? `, from ${result.next}` : ''}: raise --limit)` : table
}

/** `watch`: one line per change: revision, type and key, and the value of a put. */
export function formatChange(change: WatchChange): string {
  const rev = typeof change.seq === 'number' && change.seq > 0 ? `${change.revision}.${change.seq}` : String(change.revision)
  const head = `${rev}  ${change.type === 'delete' ? 'DEL' : 'PUT'}  ${change.key}`
  return change.type === 'delete' ? head : `${head} = ${formatValue(change.value, MAX_CELL_CHARS)}`
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no'
}

function orDash(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : String(n)
}

/** `members`: one row per member; the acting member's role is marked with '*'. */
export function formatMembers(members: readonly ClusterMember[], actingId?: string | null): string {
  const rows = members.map((m) => [
    shortId(m.id),
    m.role + (m.id === actingId ? '*' : '') + (m.learnerOnly ? ' (fixed)' : ''),
    yesNo(m.voter),
    yesNo(m.reachable),
    orDash(m.matchIndex),
    orDash(m.lag),
    m.url ?? '-',
  ])
  let text = formatTable(['ID', 'ROLE', 'VOTER', 'REACHABLE', 'MATCH', 'LAG', 'URL'], rows)
  if (actingId && members.some((m) => m.id === actingId)) text += '\n* acting'
  return text
}

/** `status`: a few summary lines, then the members table. */
export function formatStatus(s: ClusterStatus): string {
  const voters = s.members.filter((m) => m.voter).length
  const lines = [
    `cluster  ${s.cluster}  term ${s.term}  commit ${s.commitIndex}  applied ${s.appliedIndex}`,
    `node     ${shortId(s.id)}  ${s.role}  ${s.url}${s.ready ? '' : '  (not ready)'}`,
    `leader   ${s.leader ? `${shortId(s.leader)}  ${s.leaderUrl ?? '-'}` : 'none known'}`,
    `acting   ${s.actingId ? shortId(s.actingId) : 'none'}  (fence ${s.fence})`,
    `voters   ${voters} of ${s.targetVoters} wanted, ${s.members.length - voters} learner${s.members.length - voters === 1 ? '' : 's'}`,
    '',
    formatMembers(s.members, s.actingId),
  ]
  if (s.view === 'local') lines.push('(as this node sees them: the leader could not be asked)')
  return lines.join('\n')
}

/**
 * The member a user means by `given`: an exact id, or a prefix of exactly one member's id (as
 * shortId prints them). An id matching no member is passed on as given (the daemon judges it);
 * a prefix of several members' ids is an error.
 */
export function resolveMemberId(members: readonly Pick<ClusterMember, 'id'>[], given: string): { id: string } | { error: string } {
  if (members.some((m) => m.id === given)) return { id: given }
  const matches = given === '' ? [] : members.filter((m) => m.id.startsWith(given))
  if (matches.length === 1) return { id: matches[0]!.id }
  if (matches.length === 0) return { id: given }
  return { error: `"${given}" is ambiguous: it starts ${matches.map((m) => shortId(m.id)).join(', ')}` }
}
