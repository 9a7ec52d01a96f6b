/**
 * The client subcommands against real `holdfast start` processes (test/daemon/harness.ts): a
 * three-daemon cluster with a bearer token, and an endpoint list that starts with a dead endpoint
 * (connection refused) and a follower. Writes and reads through runClientCommand() with captured
 * streams, human and --json output, exit codes, a watch that survives the loss of the daemon
 * serving it (SIGKILLed, or frozen with SIGSTOP), leadership transfer, a client that finds the
 * new leader after the old one is SIGKILLed, and a write to a frozen leader reported as of
 * unknown outcome; the `holdfast` command itself as a process.
 */
import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import t from 'tap'
import { EXIT } from '../../src/cli/client-args.js'
import { runClientCommand } from '../../src/cli/client-commands.js'
import { HoldfastClient } from '../../src/cli/client.js'
import { DaemonCluster, MAIN, waitFor, type DaemonProcess } from '../daemon/harness.js'

const TOKEN = 'client-test-token-0123456789'
/**
 * An endpoint that refuses connections: a privileged port nothing here listens on (a port
 * released by a test could be taken by another test's daemon meanwhile; this one cannot).
 */
const DEAD = 'http://127.0.0.1:2'

/** A stream that keeps what is written to it. */
class Capture extends Writable {
  text = ''
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString()
    done()
  }
  lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '')
  }
}

interface Run {
  code: number
  out: string
  err: string
}

/** Runs `holdfast ARGS` as a process (from the sources, as the harness runs the daemons). */
async function holdfast(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...process.env, DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const code = await new Promise<number | null>((resolve) => proc.on('close', (c) => resolve(c)))
  return { code: code ?? -1, out, err }
}

t.test('the client subcommands against a cluster of daemon processes', async (t) => {
  const cluster = await DaemonCluster.start(t, { token: TOKEN })
  const leader = await cluster.leader()
  const followers = cluster.live().filter((d) => d !== leader)
  const dead = DEAD
  const order: DaemonProcess[] = [followers[0]!, followers[1]!, leader]
  const endpoints = [dead, ...order.map((d) => d.url)]
  const env = { HOLDFAST_ENDPOINTS: endpoints.join(','), HOLDFAST_TOKEN: TOKEN }

  async function cli(command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
    const stdout = new Capture()
    const stderr = new Capture()
    const code = await runClientCommand(command, args, { stdout, stderr, env: { ...env, ...extraEnv } })
    return { code, out: stdout.text, err: stderr.text }
  }

  await t.test('put, get, list and del through a dead endpoint and a follower', async (t) => {
    const put = await cli('put', ['app/greeting', 'hello world'])
    t.same(put, { code: 0, out: put.out, err: '' })
    t.match(put.out, /^OK revision \d+\n$/)
    const stored = await leader.http('GET', '/v1/kv/app%2Fgreeting')
    t.equal(stored.body.value, 'hello world', 'the leader has the value (a string: VALUE is not JSON)')

    t.equal((await cli('put', ['app/count', '42'])).code, 0)
    t.equal((await leader.http('GET', '/v1/kv/app%2Fcount')).body.value, 42, 'VALUE that parses as JSON is stored as JSON')

    t.same(await cli('get', ['app/greeting']), { code: 0, out: 'hello world\n', err: '' })
    t.same(await cli('get', ['app/count', '--consistency', 'stale']), { code: 0, out: '42\n', err: '' })

    const json = await cli('get', ['app/count', '--json'])
    t.equal(json.code, 0)
    const item = JSON.parse(json.out) as { key: string; value: unknown; revision: number }
    t.match(item, { key: 'app/count', value: 42, revision: Number })

    const list = await cli('list', ['--prefix', 'app/'])
    t.equal(list.code, 0)
    t.match(list.out, /^KEY +REVISION +VALUE\napp\/count +\d+ +42\napp\/greeting +\d+ +hello world\n$/)
    const listJson = JSON.parse((await cli('list', ['--prefix', 'app/', '--json'])).out) as { items: { key: string }[]; count: number }
    t.same(listJson.items.map((i) => i.key), ['app/count', 'app/greeting'])
    t.equal(listJson.count, 2)
    const limited = await cli('list', ['--prefix', 'app/', '--limit', '1'])
    t.match(limited.out, /^KEY +REVISION +VALUE\napp\/count +\d+ +42\n\(more keys follow, from app\/greeting: raise --limit\)\n$/)

    const del = await cli('del', ['app/count'])
    t.equal(del.code, 0)
    t.match(del.out, /^deleted app\/count \(revision \d+\)\n$/)
    t.equal((await leader.http('GET', '/v1/kv/app%2Fcount')).status, 404, 'gone on the leader')
    t.same(await cli('del', ['app/count']), { code: 0, out: 'app/count did not exist\n', err: '' })
  })

  await t.test('exit codes: usage error 2, API errors 1 with "error CODE: message"', async (t) => {
    const usage = await cli('put', ['only-a-key'])
    t.same(usage, { code: EXIT.USAGE, out: '', err: 'holdfast: put: missing VALUE (see holdfast put --help)\n' })

    const missing = await cli('get', ['no/such/key'])
    t.same(missing, { code: EXIT.API_ERROR, out: '', err: 'error NOT_FOUND: key "no/such/key" does not exist\n' })

    const first = JSON.parse((await cli('put', ['cas', '1', '--json'])).out) as { revision: number }
    const stale = await cli('put', ['cas', '2', '--if-revision', String(first.revision + 1000)])
    t.equal(stale.code, EXIT.API_ERROR)
    t.match(stale.err, /^error REVISION_MISMATCH: .+\n$/)
    t.equal((await cli('put', ['cas', '3', '--if-revision', String(first.revision)])).code, 0, 'a matching compare writes')
    t.same(await cli('get', ['cas']), { code: 0, out: '3\n', err: '' })

    const noToken = await cli('get', ['cas'], { HOLDFAST_TOKEN: '' })
    t.equal(noToken.code, EXIT.API_ERROR)
    t.match(noToken.err, /^error UNAUTHORIZED: /)
  })

  await t.test('status and members, for people and as JSON', async (t) => {
    const status = await cli('status', [])
    t.equal(status.code, 0)
    t.match(status.out, new RegExp(`^cluster  ${cluster.name}  term \\d+`))
    t.match(status.out, new RegExp(`\\nleader   ${leader.id.slice(0, 8)}  ${leader.url}\\n`))
    for (const d of order) t.match(status.out, new RegExp(`\\n${d.id.slice(0, 8)}  (leader|follower)`), `member ${d.name} listed`)
    const json = JSON.parse((await cli('status', ['--json'])).out) as { id: string; leader: string; members: unknown[] }
    t.equal(json.id, followers[0]!.id, 'status comes from the first endpoint that answers')
    t.equal(json.leader, leader.id)
    t.equal(json.members.length, 3)
    const members = JSON.parse((await cli('members', ['--json'])).out) as { members: { id: string; voter: boolean }[] }
    t.same(members.members.map((m) => m.id).sort(), order.map((d) => d.id).sort())
    t.ok(members.members.every((m) => m.voter))
  })

  await t.test('the client learns the leader from the answers of a follower', async (t) => {
    const client = new HoldfastClient({ endpoints, token: TOKEN })
    t.equal(client.leader, undefined)
    await client.put('learn', { a: 1 })
    t.equal(client.leader, leader.url)
    t.equal(client.leaderId, leader.id)
    t.same((await client.get('learn'))?.value, { a: 1 })
    t.equal(await client.get('learn-missing'), null)
  })

  await t.test('watch: one change per line; survives the loss of the daemon serving it without gaps or repeats', async (t) => {
    const start = JSON.parse((await cli('put', ['w/a', '"first"', '--json'])).out) as { revision: number }
    const stdout = new Capture()
    const stderr = new Capture()
    const stop = new AbortController()
    const running = runClientCommand('watch', ['--json', '--prefix', 'w/', '--from-revision', String(start.revision)], { stdout, stderr, env, signal: stop.signal })
    const keys = (): string[] => stdout.lines().map((l) => (JSON.parse(l) as { key: string }).key)
    await waitFor(() => keys().includes('w/a'), `the watch to print w/a (stderr: ${stderr.text})`)
    t.equal((await cli('put', ['w/b', '2'])).code, 0)
    await waitFor(() => keys().includes('w/b'), 'the watch to print w/b')

    // The watch streams from the first live endpoint, the follower listed after the dead one.
    const serving = order[0]!
    await serving.kill()
    t.equal((await cli('put', ['w/c', '3'])).code, 0)
    t.equal((await cli('del', ['w/a'])).code, 0)
    await waitFor(() => keys().length >= 4, `the watch to resume elsewhere and print w/c and the delete (stderr: ${stderr.text})`)
    stop.abort()
    t.equal(await running, 0, 'stopping the watch exits 0')
    const changes = stdout.lines().map((l) => JSON.parse(l) as { key: string; type: string; value?: unknown; revision: number })
    t.same(changes.map((c) => [c.type, c.key, c.value]), [
      ['put', 'w/a', 'first'],
      ['put', 'w/b', 2],
      ['put', 'w/c', 3],
      ['delete', 'w/a', undefined],
    ], 'every change once, in order')
    t.equal(stderr.text, '')

    const human = new Capture()
    const stop2 = new AbortController()
    const running2 = runClientCommand('watch', ['--prefix', 'w/', '--from-revision', String(start.revision)], { stdout: human, stderr, env, signal: stop2.signal })
    await waitFor(() => human.lines().length >= 4, 'the human-readable watch to replay the history')
    stop2.abort()
    t.equal(await running2, 0)
    t.match(human.lines(), [/^\d+ {2}PUT {2}w\/a = first$/, /^\d+ {2}PUT {2}w\/b = 2$/, /^\d+ {2}PUT {2}w\/c = 3$/, /^\d+ {2}DEL {2}w\/a$/])

    serving.restart()
    await serving.waitUp()
    await cluster.waitFormed(3)
  })

  await t.test('a watch on a frozen (SIGSTOPped) daemon gives it up when it falls silent and resumes elsewhere', async (t) => {
    const current = await cluster.leader()
    const frozen = cluster.live().find((d) => d !== current)!
    const writer = new HoldfastClient({ endpoints: [current.url], token: TOKEN })
    const from = await writer.put('frz/a', 1)
    const client = new HoldfastClient({ endpoints: [frozen.url, current.url], token: TOKEN, watchIdleMs: 1500 })
    const stop = new AbortController()
    t.teardown(() => {
      stop.abort()
      frozen.signal('SIGCONT')
    })
    const seen: string[] = []
    const watching = (async () => {
      for await (const c of client.watch({ prefix: 'frz/', fromRevision: from.revision, signal: stop.signal })) seen.push(`${c.type} ${c.key}`)
    })()
    await waitFor(() => seen.length === 1, 'the watch to deliver frz/a')
    frozen.signal('SIGSTOP')
    await writer.put('frz/b', 2)
    await waitFor(() => seen.length === 2, 'the watch to resume on the other endpoint and deliver frz/b')
    frozen.signal('SIGCONT')
    stop.abort()
    await watching
    t.same(seen, ['put frz/a', 'put frz/b'])
    await cluster.waitFormed(3)
  })

  await t.test('the holdfast command as a process: exit codes, and watch stops on SIGINT with exit 0', async (t) => {
    const get = await holdfast(['get', 'cas'], env)
    t.same(get, { code: 0, out: '3\n', err: '' })
    const usage = await holdfast(['get'], env)
    t.same(usage, { code: EXIT.USAGE, out: '', err: 'holdfast: get: missing KEY (see holdfast get --help)\n' })
    const missing = await holdfast(['get', 'no/such/key'], env)
    t.same(missing, { code: EXIT.API_ERROR, out: '', err: 'error NOT_FOUND: key "no/such/key" does not exist\n' })

    const from = JSON.parse((await cli('put', ['sig/a', '1', '--json'])).out) as { revision: number }
    const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, 'watch', '--prefix', 'sig/', '--from-revision', String(from.revision)], {
      env: { ...process.env, DEBUG: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)))
    t.teardown(() => void proc.kill('SIGKILL'))
    let out = ''
    let err = ''
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
    await waitFor(() => out.includes('sig/a'), `the watch process to print sig/a (stderr: ${err})`)
    proc.kill('SIGINT')
    t.equal(await exited, 0, 'SIGINT ends the watch with exit 0')
    t.match(out, /^\d+ {2}PUT {2}sig\/a = 1\n$/)
    t.equal(err, '')
  })

  await t.test('transfer hands leadership to a member named by its short id', async (t) => {
    const from = await cluster.leader()
    const to = cluster.live().find((d) => d !== from)!
    const run = await cli('transfer', [to.id.slice(0, 8)])
    t.same(run, { code: 0, out: `leadership handed over to ${to.id.slice(0, 8)}\n`, err: '' })
    t.equal(await cluster.leader(), to, 'the daemons agree on the new leader')
    const json = await cli('transfer', [from.id, '--json'])
    t.equal(json.code, 0, json.err)
    t.match(JSON.parse(json.out), { ok: true, to: from.id })
    t.equal(await cluster.leader(), from)
  })

  await t.test('after the leader is SIGKILLed the client finds the new one', async (t) => {
    const leader = await cluster.leader()
    const followers = cluster.live().filter((d) => d !== leader)
    const client = new HoldfastClient({ endpoints: [dead, leader.url, ...followers.map((d) => d.url)], token: TOKEN, timeoutMs: 30_000 })
    await client.put('failover', 'before')
    t.equal(client.leader, leader.url, 'the client knows the old leader')
    await leader.kill()
    // A linearizable read may be retried anywhere: it waits out the election.
    t.equal((await client.get('failover'))?.value, 'before', 'a linearizable read right after the kill')
    const next = await cluster.leader()
    t.not(next, leader)
    await client.put('failover', 'after')
    t.equal(client.leader, next.url, 'the client learned the new leader')
    const run = await cli('get', ['failover'])
    t.same(run, { code: 0, out: 'after\n', err: '' }, 'the CLI, whose endpoints list the dead leader, reads the new value')
    const put = await cli('put', ['failover', '"again"'])
    t.equal(put.code, 0, `the CLI writes (stderr: ${put.err})`)
  })

  await t.test('a write sent to a frozen leader has an unknown outcome: exit 3', async (t) => {
    const frozen = await cluster.leader()
    frozen.signal('SIGSTOP')
    t.teardown(() => frozen.signal('SIGCONT'))
    const run = await cli('put', ['frozen', '1', '--timeout', '1500'], { HOLDFAST_ENDPOINTS: frozen.url })
    frozen.signal('SIGCONT')
    t.equal(run.code, EXIT.UNKNOWN_OUTCOME)
    t.match(run.err, /^error TIMEOUT: .*may or may not have taken effect\n$/)
    t.equal(run.out, '')
  })
})
