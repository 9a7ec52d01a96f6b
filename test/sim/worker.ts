/** A simulator worker thread: runs the seeds it is sent and posts back their summaries. */
import { parentPort } from 'node:worker_threads'
import { runSeed, type RunOptions, type RunSummary } from './run.js'

export interface WorkerRequest {
  readonly seeds: readonly number[]
  readonly options: RunOptions
}

export interface WorkerReply {
  readonly summaries: RunSummary[]
}

// Clients hit non-leaders all the time and each refusal is a HoldfastError: capturing its stack
// costs ~10% of a run. A worker's failures are reported as messages; replay a seed with
// `npm run sim -- --seed N` (main thread, full stacks) to debug an exception.
Error.stackTraceLimit = 0

const port = parentPort
if (port === null) throw new Error('worker.ts must run in a worker thread')
port.on('message', (req: WorkerRequest) => {
  const summaries = req.seeds.map((seed) => runSeed(seed, req.options))
  port.postMessage({ summaries } satisfies WorkerReply)
})
