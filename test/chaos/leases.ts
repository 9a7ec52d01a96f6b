/**
 * The judgement of the leader-check samples: at most one node passes /v1/leader-check at any
 * moment. A 200 means the node held a valid lease at some instant between the probe's send and
 * receive times, so two 200s from different nodes whose windows overlap may have been
 * simultaneous: that is counted as a violation. (It is the strict reading: two leases that
 * follow each other within the overlap would be flagged too. The library's guarantee leaves a
 * gap of at least the lease's clock-drift margin between holders, and a window here is the
 * probe's round trip, a few milliseconds on the bridge, so a correct cluster does not trip it in
 * practice; a report names both nodes, their windows and fencing tokens to study it.)
 */
import type { LeaseSample } from './protocol.js'

export interface LeaseVerdict {
  samples: number
  passing: number
  violations: string[]
}

export function judgeLeases(samples: readonly LeaseSample[]): LeaseVerdict {
  const passing = samples.filter((s) => s.status === 200).sort((a, b) => a.start - b.start)
  const violations: string[] = []
  // Sweep by start time: compare each passing sample with the earlier ones still open at its start.
  const open: LeaseSample[] = []
  for (const s of passing) {
    for (let i = open.length - 1; i >= 0; i--) if (open[i]!.end < s.start) open.splice(i, 1)
    for (const o of open) {
      if (o.node !== s.node) {
        violations.push(
          `${o.node} (id ${o.id?.slice(0, 8)}, fence ${o.fence}) passed the leader check in [${o.start.toFixed(1)}, ${o.end.toFixed(1)}] ` +
            `and ${s.node} (id ${s.id?.slice(0, 8)}, fence ${s.fence}) in [${s.start.toFixed(1)}, ${s.end.toFixed(1)}]: overlapping`,
        )
      }
    }
    open.push(s)
  }
  return { samples: samples.length, passing: passing.length, violations }
}
