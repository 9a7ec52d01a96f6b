/**
 * The README's `npm start`: the demo runs to its summary with real processes, and Ctrl-C at any
 * point stops every process it started and removes its directory.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const DEMO = fileURLToPath(new URL('../../examples/demo/start.mjs', import.meta.url))

function startDemo(): { pid: number; output: () => string; exited: Promise<number | null>; kill: (s: NodeJS.Signals) => void } {
  const p = spawn(process.execPath, [DEMO, '--no-wait'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (d: Buffer) => (out += d.toString()))
  p.stderr.on('data', (d: Buffer) => (out += d.toString()))
  return { pid: p.pid!, output: () => out, exited: new Promise((resolve) => p.on('exit', (code) => resolve(code))), kill: (s) => p.kill(s) }
}

function workDirOf(output: string): string {
  const m = /working directory \(\$DEMO\): (\S+)/.exec(output)
  if (!m) throw new Error(`no working directory in:\n${output}`)
  return m[1]!
}

/** Processes whose command line mentions `dir` (the demo's daemons do, through --data-dir). */
function processesUsing(dir: string): string[] {
  const r = spawnSync('pgrep', ['-af', dir], { encoding: 'utf8' })
  return r.stdout.split('\n').filter((l) => l.trim() !== '' && !l.includes('pgrep'))
}

/** The pids of `parent`'s children. */
function childrenOf(parent: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' })
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('npm start runs the demo to its summary and leaves nothing behind', async (t) => {
  const demo = startDemo()
  const code = await demo.exited
  const out = demo.output()
  t.equal(code, 0, `exit code 0\n${out}`)
  for (const pattern of [
    /formed in \d+ ms: node\d leads in term \d+ and acts/,
    /\$ holdfast put demo\/key5 \.\.\. +OK revision \d+/,
    /demo\/key5 +\d+ +\{"n":5/,
    /killing the leader \(node\d\) with SIGKILL/,
    /failover: next acknowledged write \d+ ms after the kill/,
    /node\d is back as a (follower|learner) and applied index \d+/,
    /"whileDown":"node\d"/,
    /status page: +http:\/\/127\.0\.0\.1:\d+\//,
    /stopped every process and removed the demo directory/,
  ]) t.match(out, pattern)
  const dir = workDirOf(out)
  t.notOk(existsSync(dir), 'the demo directory is removed')
  t.same(processesUsing(dir), [], 'no process of the demo is left running')
})

t.test('Ctrl-C in the middle stops everything', async (t) => {
  const demo = startDemo()
  const deadline = Date.now() + 60_000
  while (!demo.output().includes('== writing keys')) {
    if (Date.now() > deadline) throw new Error(`the demo did not reach the writes:\n${demo.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const dir = workDirOf(demo.output())
  const started = childrenOf(demo.pid)
  t.ok(started.length >= 4, 'the DHT node and three daemons (and maybe a CLI command) are running')
  demo.kill('SIGINT')
  t.equal(await demo.exited, 0, 'exit code 0 after Ctrl-C')
  t.same(started.filter(alive), [], 'each of them has exited')
  t.notOk(existsSync(dir), 'the demo directory is removed')
  t.same(processesUsing(dir), [], 'no process of the demo is left running')
})
