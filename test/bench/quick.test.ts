/**
 * The CI smoke test of the benchmark harness: `npm run bench -- --quick` as a process, writing
 * into temporary directories. It checks that every section ran and reported (the JSON has every
 * section with figures in it, the tables and progress were printed, the SVGs were written) and
 * that the run left no data directory behind. It asserts nothing about speed.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { BenchResult } from '../../benchmarks/result.js'

const RUN = fileURLToPath(new URL('../../benchmarks/run.ts', import.meta.url))

function bench(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env }
    delete env['DEBUG']
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

t.test('usage: --help exits 0, a bad option exits 2 with the usage', async (t) => {
  const help = await bench(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--quick/)
  const bad = await bench(['--only', 'nonsense'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown section "nonsense"/)
})

t.test('npm run bench -- --quick runs every section and reports it', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-data-'))
  const outDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-out-'))
  t.teardown(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(outDir, { recursive: true, force: true })]))
  const run = await bench(['--quick', '--dir', dataDir, '--out-dir', outDir])
  t.equal(run.code, 0, `the run succeeds\n${run.stderr.slice(-4000)}`)

  for (const title of ['Durable writes', 'Hardware floor', 'Failover', 'Restore', 'Formation over hyperswarm', 'Memory of the nodes', 'Targets']) {
    t.match(run.stdout, title, `the ${title} table is printed`)
  }
  for (const section of ['writes', 'floor', 'failover', 'restore', 'scale']) {
    t.match(run.stderr, new RegExp(`^\\[ *[0-9.]+s\\] ${section}: `, 'm'), `progress of ${section} while it runs`)
  }

  const r = JSON.parse(await readFile(join(outDir, 'result.json'), 'utf8')) as BenchResult
  t.equal(r.quick, true)
  t.ok(r.machine.cores > 0 && r.machine.etcd, 'the machine and the etcd version are recorded')

  t.same(r.writes?.rows.map((w) => w.concurrency), [1, 16, 64, 256], 'a write row per writer count')
  for (const w of r.writes?.rows ?? []) {
    for (const s of ['raw', 'embedded', 'http', 'etcd'] as const) {
      const m = w.systems[s]
      t.ok(m && m.writes > 0 && m.p50Ms > 0 && m.p999Ms >= m.p99Ms && m.p99Ms >= m.p50Ms, `${s} x${w.concurrency} measured writes and percentiles`)
    }
    t.ok(Number.isFinite(w.vsEtcd?.embedded.throughput) && Number.isFinite(w.vsEtcd?.http.p99), `x${w.concurrency} has holdfast/etcd ratios`)
  }

  t.ok(r.floor && r.floor.fdatasync.p50Ms > 0 && r.floor.loopbackRtt.p50Ms > 0, 'fdatasync and round-trip latencies')
  t.ok(Number.isFinite(r.floor?.embeddedVsLmdbRtt), 'the single-writer ratio to the floor')

  t.same(r.failover?.map((s) => s.system.split(',')[0]), ['holdfast', 'holdfast', 'etcd'], 'failover of both holdfast timings and of etcd')
  for (const s of r.failover ?? []) {
    t.equal(s.reps.length, 2, `${s.system}: two repetitions`)
    t.ok(s.reps.every((x) => x.writeMs > 0) && s.writeMedianMs > 0 && s.writeMaxMs >= s.writeMedianMs, `${s.system}: times to the next write`)
    if (s.system.startsWith('holdfast')) t.ok(s.reps.every((x) => x.leaderCheckMs! > 0), `${s.system}: times to leader-check 200`)
  }

  t.equal(r.restore?.length, 1, 'one restore size')
  const restore = r.restore![0]!
  t.ok(restore.stateBytes >= 4e6 && restore.restoreMs > 0 && restore.cpSyncMs > 0 && restore.speedVsCp > 0, 'a restore timed against cp')
  t.not(restore.snapshotBytes, null, 'the restored node received a snapshot')

  t.same(r.scale?.formation?.map((f) => f.nodes), [3, 5, 7], 'formation of 3, 5 and 7 nodes')
  t.ok(r.scale?.formation?.every((f) => f.formedMs > 0 && f.convergedMs >= f.formedMs && f.joinConvergedMs > 0), 'formation and convergence times')
  t.ok((r.scale?.rss?.keys ?? 0) >= 50_000 && r.scale?.rss?.members.length === 3 && r.scale.rss.members.every((m) => m.rssBytes > 0), 'RSS of the three nodes holding the keys')

  t.ok((r.targets?.length ?? 0) >= 10 && r.targets!.every((x) => x.met !== null), 'every target checked')

  const files = await readdir(outDir)
  for (const f of ['throughput.svg', 'latency-1.svg', 'latency-256.svg', 'failover.svg']) {
    t.ok(files.includes(f), `${f} written`)
    if (files.includes(f)) t.match(await readFile(join(outDir, f), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*(<polyline|<circle)[\s\S]*<\/svg>\n$/, `${f} is an SVG with data`)
  }
  t.same(await readdir(dataDir), [], 'no data directory is left behind')
  t.same(await processesUnder(dataDir), [], 'no process it started is left running')
})

/** Processes whose command line names `dir` (every daemon and etcd member is given its data directory). */
async function processesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(dir)) out.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`)
  }
  return out
}
