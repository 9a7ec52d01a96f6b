/**
 * An embedded member: a holdfast daemon (startDaemon, the same code `holdfast start` runs, with
 * the same arguments) whose process also runs the benchmark's writers, so the "embedded" rows
 * measure node.put() called inside the leader's process. The benchmark forks it and drives it
 * over IPC (ipc.ts). It exits when the benchmark goes away.
 */
import { randomBytes } from 'node:crypto'
import { loadStartConfig } from '../src/daemon/config.js'
import { startDaemon, type Daemon } from '../src/daemon/daemon.js'
import type { TxnOp } from '../src/state/commands.js'
import type { Envelope, FillRequest, FillResult, LoadRequest, LoadResult, MemberMessage } from './ipc.js'
import { drive } from './load.js'

function send(m: MemberMessage): void {
  process.send?.(m)
}

async function load(daemon: Daemon, r: LoadRequest): Promise<LoadResult> {
  const value = new Uint8Array(randomBytes(r.valueSize))
  const node = daemon.node
  return drive(
    async (key) => {
      await node.put(key, value)
    },
    r.prefix,
    r.concurrency,
    r.ms,
  )
}

/** Writes r.count keys through `concurrency` transaction writers; a failed transaction fails the fill. */
async function fill(daemon: Daemon, r: FillRequest): Promise<FillResult> {
  const value = new Uint8Array(randomBytes(r.valueSize))
  const start = performance.now()
  let next = 0
  let entries = 0
  const writer = async (): Promise<void> => {
    while (next < r.count) {
      const first = next
      const n = Math.min(r.perTxn, r.count - first)
      next += n
      const ops: TxnOp[] = []
      for (let j = 0; j < n; j++) ops.push({ type: 'put', key: `${r.prefix}${first + j}`, value })
      await daemon.node.transaction(ops, { timeoutMs: 60_000 })
      entries++
    }
  }
  await Promise.all(Array.from({ length: r.concurrency }, () => writer()))
  return { seconds: (performance.now() - start) / 1000, entries, bytes: r.count * r.valueSize }
}

async function main(): Promise<void> {
  const config = await loadStartConfig(process.argv.slice(2), process.env)
  const daemon = await startDaemon(config)
  daemon.node.on('snapshotInstalled', (e: { index: number; bytes: number }) => send({ type: 'snapshotInstalled', index: e.index, bytes: e.bytes, atMs: Date.now() }))
  // The benchmark gone (killed or crashed): nothing is left to serve.
  process.on('disconnect', () => process.exit(0))
  process.on('message', (m: Envelope) => {
    const run = async (): Promise<unknown> => {
      if (m.op === 'load') return load(daemon, m)
      if (m.op === 'fill') return fill(daemon, m)
      await daemon.stop()
      return null
    }
    run().then(
      (result) => {
        send({ type: 'reply', id: m.id, ok: true, result })
        if (m.op === 'stop') setTimeout(() => process.exit(0), 50)
      },
      (err: unknown) => send({ type: 'reply', id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    )
  })
  send({ type: 'ready', nodeId: daemon.node.id, url: config.advertiseUrl })
}

main().catch((err: unknown) => {
  process.stderr.write(`embedded member: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
