/**
 * From the clients' recorded operations to the project's linearizability checker (kvModel of
 * src/testing/linearizability.ts), and the checks on the history that need no search.
 *
 * Mapping: a read is a read of the key's value (404 is null). A write is a write. A PUT with
 * ?ifRevision=R is a compare-and-set expecting the value the key had at revision R, as the client
 * observed it (R = 0: absent). That is exact because every write stores a unique value and gets
 * a revision of its own: the key is at revision R exactly when it holds the value written at R.
 * `revisionConflicts` checks that premise on the history itself: no revision observed with two
 * values of a key, no value with two revisions.
 *
 * Outcomes: unknown writes and CASes may have applied at any time after their call (return
 * Infinity); operations that surely did not apply, and reads without an answer, are left out.
 */
import { checkKvHistory, formatViolation, kvModel, type CheckResult, type KvInput, type KvOutput, type Operation } from '../../src/testing/linearizability.js'
import type { RecordedOp } from './protocol.js'
import { WRITE_ONCE_PREFIX } from './workload.js'

export function toCheckerOps(ops: readonly RecordedOp[]): Operation<KvInput, KvOutput>[] {
  const out: Operation<KvInput, KvOutput>[] = []
  for (const op of ops) {
    if (op.key.startsWith(WRITE_ONCE_PREFIX) || op.outcome === 'notApplied') continue
    const known = op.outcome !== 'unknown' && op.ret !== null
    const ret = known ? op.ret! : Infinity
    if (op.kind === 'read') {
      if (!known) continue
      out.push({ client: op.client, input: { kind: 'read', key: op.key }, output: { kind: 'read', value: op.readValue ?? null }, call: op.call, return: ret })
    } else if (op.kind === 'write') {
      // A plain write has no definite failure: anything but ok is unknown.
      const ok = known && op.outcome === 'ok'
      out.push({ client: op.client, input: { kind: 'write', key: op.key, value: op.value! }, output: ok ? { kind: 'write' } : undefined, call: op.call, return: ok ? ret : Infinity })
    } else {
      out.push({
        client: op.client,
        input: { kind: 'cas', key: op.key, expect: op.expect ?? null, value: op.value! },
        output: known ? { kind: 'cas', ok: op.outcome === 'ok' } : undefined,
        call: op.call,
        return: ret,
      })
    }
  }
  return out
}

/** Revisions seen with two values of one key, or values seen at two revisions. */
export function revisionConflicts(ops: readonly RecordedOp[]): string[] {
  const byRevision = new Map<string, string | null>()
  const byValue = new Map<string, number>()
  const problems: string[] = []
  for (const op of ops) {
    if (op.outcome !== 'ok' || op.revision === undefined) continue
    const value = op.kind === 'read' ? (op.readValue ?? null) : op.value!
    const rk = `${op.key}@${op.revision}`
    if (byRevision.has(rk) && byRevision.get(rk) !== value) problems.push(`${op.key} revision ${op.revision} seen holding ${JSON.stringify(byRevision.get(rk))} and ${JSON.stringify(value)}`)
    byRevision.set(rk, value)
    if (value !== null) {
      const vk = `${op.key}=${value}`
      if (byValue.has(vk) && byValue.get(vk) !== op.revision) problems.push(`${op.key} value ${JSON.stringify(value)} seen at revisions ${byValue.get(vk)} and ${op.revision}`)
      byValue.set(vk, op.revision)
    }
  }
  return problems
}

export interface HistoryVerdict {
  operations: number
  checked: number
  status: CheckResult['status']
  violations: string[]
}

/** Runs the linearizability checker and the revision check. A search out of budget is reported, not passed. */
export function checkHistory(ops: readonly RecordedOp[], maxSteps?: number): HistoryVerdict {
  const checkerOps = toCheckerOps(ops)
  const result = checkKvHistory(checkerOps, maxSteps === undefined ? {} : { maxSteps })
  const violations = revisionConflicts(ops)
  if (result.status === 'violation') violations.push(formatViolation(result, kvModel))
  if (result.status === 'timeout') violations.push(formatViolation(result, kvModel))
  return { operations: ops.length, checked: checkerOps.length, status: result.status, violations }
}
