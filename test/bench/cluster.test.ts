/**
 * Ports of the benchmark's holdfast cluster: members started together get different ports, and a
 * member whose HTTP port was taken between being picked and being bound is started again on
 * another port instead of failing the run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Dht, HoldfastCluster } from '../../benchmarks/holdfast-cluster.js'
import { freeTcpPort } from '../../benchmarks/procs.js'

t.test('freeTcpPort never hands out a port twice (the kernel readily reuses a just-released one)', async (t) => {
  const ports: number[] = []
  for (let i = 0; i < 200; i++) ports.push(await freeTcpPort())
  t.equal(new Set(ports).size, ports.length, `${ports.length} distinct ports`)
})

t.test('a member whose port is taken is started again on a free one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-bench-cluster-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dht = await Dht.start()
  t.teardown(() => dht.stop())
  // Another process holds the port the member is told to use.
  const squatter = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())))
  const taken = (squatter.address() as { port: number }).port
  const cluster = await HoldfastCluster.create({ dir, name: 'rebind', dht, voters: 1, tickMs: 50 })
  t.teardown(() => cluster.destroy())
  const m = await cluster.add('daemon', { init: true, port: taken })
  t.equal(m.url, `http://127.0.0.1:${taken}`, 'first told to use the taken port')
  const status = await m.waitUp(90_000)
  t.ok(m.running, 'the member runs')
  t.not(m.url, `http://127.0.0.1:${taken}`, 'it moved to another port')
  t.equal(status.id, m.id, 'and answers there')
  const formed = await cluster.waitFormed(1, 60_000)
  t.equal(formed, m, 'the cluster formed with it')
})
