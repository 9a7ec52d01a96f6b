/**
 * The hardware floor's second half: the fdatasync latency of the data disk, and one loopback
 * round trip between two processes. holdfast's single-writer latency is compared with one fsync
 * plus one round trip (the leader's fsync and the followers' overlap; a majority needs one
 * follower's round trip, which contains that follower's fsync).
 */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Child, waitFor } from '../procs.js'
import { percentile, round3 } from '../stats.js'

export interface FloorResult {
  /** In-place 4 KiB page write + fdatasync on the data disk, ms. */
  readonly fdatasync: { readonly samples: number; readonly p50Ms: number; readonly p99Ms: number; readonly meanMs: number }
  /** A 64-byte TCP message and its echo between two processes on 127.0.0.1, ms. */
  readonly loopbackRtt: { readonly samples: number; readonly p50Ms: number; readonly p99Ms: number }
}

function stats(samples: Float64Array): { samples: number; p50Ms: number; p99Ms: number; meanMs: number } {
  samples.sort()
  return { samples: samples.length, p50Ms: round3(percentile(samples, 50)), p99Ms: round3(percentile(samples, 99)), meanMs: round3(samples.reduce((a, b) => a + b, 0) / samples.length) }
}

/** `n` in-place 4 KiB writes, each followed by fdatasync, on a preallocated file in `dir`. */
export function measureFdatasync(dir: string, n: number): FloorResult['fdatasync'] {
  const file = join(dir, 'fdatasync.bin')
  const pages = 256
  const page = Buffer.alloc(4096, 7)
  const fd = openSync(file, 'w+')
  try {
    // Preallocated and synced first: the measured syncs flush data only, no size change.
    for (let i = 0; i < pages; i++) writeSync(fd, page, 0, page.length, i * page.length)
    fdatasyncSync(fd)
    const t = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      page.writeUInt32LE(i, 0)
      const t0 = performance.now()
      writeSync(fd, page, 0, page.length, (i % pages) * page.length)
      fdatasyncSync(fd)
      t[i] = performance.now() - t0
    }
    return stats(t)
  } finally {
    closeSync(fd)
    rmSync(file, { force: true })
  }
}

// The echo server runs in its own process, as a follower does.
const ECHO = `const s=require('net').createServer(c=>{c.setNoDelay(true);c.on('data',d=>c.write(d))});s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port))`

/** `n` sequential round trips of a 64-byte message to an echo server in another process. */
export async function measureLoopbackRtt(n: number): Promise<FloorResult['loopbackRtt']> {
  const server = new Child('echo', process.execPath, ['-e', ECHO])
  let socket: Socket | undefined
  try {
    const port = Number(/port (\d+)/.exec(await waitFor(() => (/port \d+/.test(server.output) ? server.output : undefined), 'the echo server', 30_000))![1])
    const s = connect(port, '127.0.0.1')
    socket = s
    s.setNoDelay(true)
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject))
    const msg = Buffer.alloc(64, 1)
    const t = new Float64Array(n)
    for (let i = -100; i < n; i++) {
      const t0 = performance.now()
      await new Promise<void>((resolve) => {
        let got = 0
        const onData = (d: Buffer): void => {
          got += d.length
          if (got >= msg.length) {
            s.off('data', onData)
            resolve()
          }
        }
        s.on('data', onData)
        s.write(msg)
      })
      // The first 100 warm up the JIT and the connection.
      if (i >= 0) t[i] = performance.now() - t0
    }
    const r = stats(t)
    return { samples: r.samples, p50Ms: r.p50Ms, p99Ms: r.p99Ms }
  } finally {
    socket?.destroy()
    await server.kill()
  }
}
