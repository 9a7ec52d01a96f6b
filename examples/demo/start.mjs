#!/usr/bin/env node
// The `npm start` demo: a local three-node holdfast cluster as real processes on an embedded
// loopback DHT. It builds the project if dist/ is missing or older than src/, then:
//   starts a DHT bootstrap node and three daemons, waits for the election and shows who acts,
//   writes keys through the CLI, SIGKILLs the leader and measures the failover, restarts the
//   killed node and shows it catch up, and prints the status page's URL and a summary.
// In a terminal it then keeps the cluster up for the status page until Ctrl-C; without one (CI,
// pipes) or with --no-wait it stops at once. Either way every process it started is stopped and
// its temporary directory removed.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = join(ROOT, 'dist', 'cli', 'main.js')
const DEADLINE_MS = 60_000
const wait = !process.argv.includes('--no-wait') && process.stdout.isTTY === true && process.env.CI !== 'true'

const children = new Set()
let workDir
let cleaning

function say(line = '') {
  process.stdout.write(line + '\n')
}

function step(title) {
  say(`\n== ${title}`)
}

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

function buildIfNeeded() {
  if (existsSync(BIN) && statSync(BIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) return
  step('building (dist/ is missing or older than src/)')
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error('the build failed')
}

/** `n` distinct free TCP ports: all listeners stay open until every port is chosen, so none repeats. */
async function freeTcpPorts(n) {
  const servers = []
  for (let i = 0; i < n; i++) {
    const server = createServer()
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
  }
  const ports = servers.map((s) => s.address().port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

async function freeUdpPort() {
  const socket = createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise((resolve) => socket.close(resolve))
  return port
}

/** Starts a long-running `holdfast` process; its output goes to a log file in the work dir. */
function startProcess(name, args) {
  const log = join(workDir, `${name}.log`)
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d) => {
    output = (output + d.toString()).slice(-20_000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const proc = {
    name,
    args,
    child,
    log,
    get output() {
      return output
    },
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  }
  child.on('exit', () => {
    children.delete(proc)
    writeFileSync(log, output)
  })
  children.add(proc)
  return proc
}

/** Runs one CLI command to completion and returns its output. */
function cli(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const proc = { name: `holdfast ${args[0]}`, child, output: '', exited: new Promise((r) => child.on('exit', r)) }
    children.add(proc)
    child.on('exit', () => children.delete(proc))
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

async function waitFor(pred, what, ms = DEADLINE_MS) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function getJson(url, timeoutMs = 2_000) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    return { status: res.status, body: await res.json().catch(() => undefined) }
  } catch {
    return undefined
  }
}

const short = (id) => (id ? id.slice(0, 8) : '-')

async function statuses(nodes) {
  return Promise.all(nodes.map(async (n) => (n.child.exitCode === null && n.child.signalCode === null ? (await getJson(`${n.url}/v1/status`))?.body : undefined)))
}

/** Waits until the live nodes agree on a leader whose view has `voters` voters; returns the leader's node. */
async function waitForLeader(nodes, voters) {
  return waitFor(async () => {
    const live = nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null)
    const ss = await statuses(live)
    const i = ss.findIndex((s) => s?.role === 'leader' && s.view === 'leader' && s.members.filter((m) => m.voter).length === voters)
    if (i < 0) return undefined
    return ss.every((s) => s?.leader === ss[i].id) ? live[i] : undefined
  }, 'a leader that every live node agrees on')
}

function printMembers(status, nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n.name]))
  for (const m of status.members) {
    const flags = [m.role, m.voter ? 'voter' : 'learner', m.reachable ? 'reachable' : 'unreachable', m.id === status.actingId ? 'ACTING' : ''].filter(Boolean).join(', ')
    say(`   ${(byId.get(m.id) ?? '?').padEnd(6)} ${short(m.id)}  ${String(m.url).padEnd(24)} ${flags}; match ${m.matchIndex ?? '-'}, lag ${m.lag ?? '-'}`)
  }
}

async function cleanup() {
  cleaning ??= (async () => {
    for (const p of children) p.child.kill('SIGTERM')
    const grace = new Promise((r) => setTimeout(r, 5_000).unref())
    await Promise.race([Promise.all([...children].map((p) => p.exited)), grace])
    for (const p of children) p.child.kill('SIGKILL')
    await Promise.all([...children].map((p) => p.exited))
    if (workDir) rmSync(workDir, { recursive: true, force: true })
  })()
  return cleaning
}

async function main() {
  const started = Date.now()
  buildIfNeeded()
  workDir = mkdtempSync(join(tmpdir(), 'holdfast-demo-'))
  const secretFile = join(workDir, 'secret')
  writeFileSync(secretFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })

  step('starting a DHT bootstrap node and three daemons')
  say(`   working directory ($DEMO): ${workDir}`)
  const dhtPort = await freeUdpPort()
  const dht = startProcess('dht', ['dht', '--host', '127.0.0.1', '--port', String(dhtPort)])
  await waitFor(() => dht.output.includes('bootstrap node on'), 'the DHT bootstrap node')
  say(`   DHT bootstrap node on 127.0.0.1:${dhtPort}`)
  const nodes = []
  const ports = await freeTcpPorts(3)
  for (let i = 1; i <= 3; i++) {
    const port = ports[i - 1]
    const dataDir = join(workDir, `node${i}`)
    const args = ['start', '--data-dir', dataDir, '--cluster', 'demo', '--secret-file', secretFile, '--http', `127.0.0.1:${port}`, '--bootstrap', `127.0.0.1:${dhtPort}`, '--tick-ms', '50', '--election-ticks', '10', ...(i === 1 ? ['--init', '--voters', '3'] : [])]
    const p = startProcess(`node${i}`, args)
    p.url = `http://127.0.0.1:${port}`
    p.dataDir = dataDir
    nodes.push(p)
    say(`   node${i}: holdfast ${args.join(' ').replaceAll(workDir, '$DEMO')}`)
  }
  await waitFor(async () => {
    const gone = nodes.find((n) => n.child.exitCode !== null || n.child.signalCode !== null)
    if (gone) throw new Error(`${gone.name} exited at start:\n${gone.output}`)
    return (await statuses(nodes)).every((s) => s?.id)
  }, 'every daemon to answer')
  for (const [i, s] of (await statuses(nodes)).entries()) nodes[i].id = s.id
  const endpoints = nodes.map((n) => n.url).join(',')

  step('waiting for the election (node1 creates the cluster; node2 and node3 join as learners and are promoted)')
  const t0 = Date.now()
  let leader = await waitForLeader(nodes, 3)
  const formedMs = Date.now() - t0
  let ls = (await getJson(`${leader.url}/v1/status`)).body
  say(`   formed in ${formedMs} ms: ${leader.name} leads in term ${ls.term} and acts (fencing token ${ls.fence})`)
  printMembers(ls, nodes)

  step('writing keys through the CLI (holdfast put ... --endpoints <all three>)')
  for (let i = 1; i <= 5; i++) {
    const r = await cli(['put', `demo/key${i}`, JSON.stringify({ n: i, at: new Date().toISOString() }), '--endpoints', endpoints])
    if (r.code !== 0) throw new Error(`holdfast put failed: ${r.stderr}`)
    say(`   $ holdfast put demo/key${i} ...   ${r.stdout.trim()}`)
  }
  const listed = await cli(['list', '--prefix', 'demo/', '--endpoints', endpoints])
  say('   $ holdfast list --prefix demo/')
  for (const line of listed.stdout.trimEnd().split('\n')) say(`     ${line}`)

  step(`killing the leader (${leader.name}) with SIGKILL`)
  const killed = leader
  const oldTerm = ls.term
  const killedAt = performance.now()
  killed.child.kill('SIGKILL')
  await killed.exited
  const others = nodes.filter((n) => n !== killed)
  // Failover: the first write acknowledged after the kill, and the first 200 from leader-check.
  let writeMs
  let checkMs
  let attempt = 0
  await Promise.all([
    waitFor(async () => {
      const codes = await Promise.all(others.map(async (n) => (await getJson(`${n.url}/v1/leader-check`, 500))?.status))
      if (codes.includes(200)) return (checkMs = performance.now() - killedAt)
    }, 'a node to pass leader-check'),
    waitFor(async () => {
      const r = await cli(['put', 'demo/after-failover', String(++attempt), '--endpoints', others.map((n) => n.url).join(','), '--timeout', '3000'])
      if (r.code === 0) return (writeMs = performance.now() - killedAt)
    }, 'a write to be acknowledged after the kill'),
  ])
  leader = await waitForLeader(others, 3)
  ls = (await getJson(`${leader.url}/v1/status`)).body
  say(`   ${leader.name} leads in term ${ls.term} (was ${oldTerm}) and acts with fencing token ${ls.fence}`)
  say(`   failover: next acknowledged write ${Math.round(writeMs)} ms after the kill (through the CLI, process start included); leader-check 200 after ${Math.round(checkMs)} ms`)
  for (let i = 6; i <= 10; i++) {
    const r = await cli(['put', `demo/key${i}`, JSON.stringify({ n: i, whileDown: killed.name }), '--endpoints', endpoints])
    if (r.code !== 0) throw new Error(`holdfast put failed: ${r.stderr}`)
  }
  say(`   wrote demo/key6..key10 while ${killed.name} is down (the CLI skips the dead endpoint)`)
  printMembers(ls, nodes)

  step(`restarting ${killed.name} with nothing but its data directory`)
  const restartedAt = performance.now()
  const revived = startProcess(killed.name, ['start', '--data-dir', killed.dataDir])
  Object.assign(revived, { url: killed.url, dataDir: killed.dataDir, id: killed.id })
  nodes[nodes.indexOf(killed)] = revived
  const target = (await getJson(`${leader.url}/v1/status`)).body.commitIndex
  const caughtUp = await waitFor(async () => {
    const s = (await getJson(`${revived.url}/v1/status`))?.body
    return s && s.appliedIndex >= target && s.leader === leader.id ? s : undefined
  }, `${killed.name} to catch up`)
  const catchUpMs = performance.now() - restartedAt
  say(`   ${killed.name} is back as a ${caughtUp.role} and applied index ${caughtUp.appliedIndex} (leader's commit ${target}) ${Math.round(catchUpMs)} ms after its restart, process start included`)
  const local = await cli(['get', 'demo/key10', '--consistency', 'stale', '--endpoints', revived.url])
  say(`   $ holdfast get demo/key10 --consistency stale --endpoints ${revived.url}   (read from ${killed.name}'s own copy)`)
  for (const line of local.stdout.trimEnd().split('\n')) say(`     ${line}`)
  await waitForLeader(nodes, 3)
  ls = (await getJson(`${leader.url}/v1/status`)).body
  printMembers(ls, nodes)

  step('summary')
  say(`   cluster formed:            ${formedMs} ms (3 voters)`)
  say(`   keys written:              11 through the CLI, each acknowledged by a majority (${attempt} attempt${attempt === 1 ? '' : 's'} for the first after the kill)`)
  say(`   failover after SIGKILL:    ${Math.round(writeMs)} ms to the next acknowledged write, ${Math.round(checkMs)} ms to leader-check 200`)
  say(`   restart and catch-up:      ${Math.round(catchUpMs)} ms`)
  say(`   leader now:                ${leader.name} (${short(leader.id)}), term ${ls.term}, commit index ${ls.commitIndex}`)
  say(`   status page:               ${leader.url}/  (any node serves it: ${nodes.map((n) => n.url + '/').join(' ')})`)
  say(`   logs and data:             ${workDir} (removed on exit)`)
  say(`   total:                     ${((Date.now() - started) / 1000).toFixed(1)} s`)
  if (wait) {
    say('\nThe cluster keeps running for the status page. Press Ctrl-C to stop it.')
    await new Promise(() => {})
  }
}

let exiting = false
async function exit(code) {
  if (exiting) return
  exiting = true
  await cleanup()
  say(code === 0 ? '\nstopped every process and removed the demo directory' : '')
  process.exit(code)
}

process.on('SIGINT', () => void exit(0))
process.on('SIGTERM', () => void exit(0))
main().then(
  () => exit(0),
  (err) => {
    process.stderr.write(`\ndemo failed: ${err.message}\n`)
    for (const p of children) process.stderr.write(`--- ${p.name} (last output)\n${p.output.slice(-2000)}\n`)
    void exit(1)
  },
)
