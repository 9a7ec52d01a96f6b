/**
 * The daemon's VIP and SIGTERM in Linux network namespaces (issue 6: "SIGTERM: hand leadership
 * over, release the VIP, flush, exit 0"). The same network as vip.test.ts (three node hosts and a
 * client host on one bridge, 10.77.0.0/24; the bridge and a `holdfast dht` bootstrap process at
 * 10.77.0.1 in a switch namespace), but every node is a real `holdfast start` process using only
 * its own flags: the first with --init --voters 3, each with --vip 10.77.0.100/24 --vip-device eth0,
 * its HTTP API on 0.0.0.0:8080 (so also on the VIP), and 100 ms ticks with 40 election ticks.
 *
 * The election timeout (4-8 s) outlasts the VIP's kernel lifetime (the daemon's 2 s default) plus
 * ~1 s of kernel rounding, the rule of the README's VIP section. A SIGTERM does not need it (the
 * daemon removes the VIP itself), but a daemon configured like this is safe against SIGKILL too.
 *
 * The story, seen from the client host (daemon-hosts.ts), which probes
 * http://10.77.0.100:8080/v1/leader-check every 20 ms and writes keys through the VIP one after
 * the other, while `ip -o addr show dev eth0` is sampled in the three node namespaces every 50 ms:
 * 1. once the cluster has formed, the VIP is held by exactly the acting node (its status, and
 *    leader-check 200 on its own address only), and the client reaching the VIP gets a 200 from
 *    /v1/leader-check with that node's X-Holdfast-Node-Id;
 * 2. the acting daemon gets SIGTERM: it exits 0; its own log (DEBUG=holdfast:vip) shows it removed
 *    the VIP between the SIGTERM and its exit, and no sample from its exit on shows the VIP in its
 *    namespace (a process that just exited would leave it to expire); no sample ever shows two
 *    holders; another node acts in the next term (a hand-over, not an election: the term rises by
 *    exactly one), holds the VIP, and the client reaches it again. A sample without a holder is
 *    allowed only in that hand-over, or while a holder's lease had lapsed (between its actingStop
 *    and actingStart events); a 503 through the VIP only from the new holder before it acts;
 * 3. every write acknowledged through the VIP, before and around the SIGTERM, is read back
 *    through the VIP afterwards.
 *
 * Printed (t.comment, and one JSON line): the times from the SIGTERM to the VIP's removal, the exit,
 * the new node acting and adding the VIP, and the client reaching the VIP again; how long the
 * client could not reach it.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): fails with the reason on a machine that cannot create
 * namespaces, unless HOLDFAST_SKIP_NETNS=1 opts out. Namespaces, processes and directories are
 * removed at the end, on a failure, on SIGINT/SIGTERM/SIGHUP and at exit (netns.ts).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { ClusterStatus } from '../../src/daemon/types.js'
import { iproute2HasAddress, parseVipAddress } from '../../src/vip/address.js'
import { DHT_PORT, wallNow } from './children.js'
import type { ClientHostConfig, FromClient, HttpOutcome, LeaderProbe, ToClient, WriteOutcome } from './daemon-hosts.js'
import { NetnsRun, netnsTest, sampleAddresses, sweepStale } from './netns.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const CLIENT_HOST = fileURLToPath(new URL('./daemon-hosts.ts', import.meta.url))
const VIP = parseVipAddress('10.77.0.100/24')
const NODE_IPS = { n1: '10.77.0.11', n2: '10.77.0.12', n3: '10.77.0.13' } as const
type NodeName = keyof typeof NODE_IPS
const NODE_NAMES = Object.keys(NODE_IPS) as NodeName[]
const CLIENT_IP = '10.77.0.20'
const PORT = 8080
const VIP_URL = `http://${VIP.ip}:${PORT}`
/** The daemon's VIP lifetime (VipManager's default; the daemon has no flag for it) and the election timing that outlasts it. */
const VIP_LIFETIME_SEC = 2
const TICK_MS = 100
const ELECTION_TICKS = 40
const SAMPLE_EVERY_MS = 50
const PROBE_EVERY_MS = 20
/** Against hangs only. */
const DEADLINE_MS = 30_000

async function waitUntil<T>(pred: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A process inside a namespace: its output kept, its exit recorded with the wall-clock time. */
class Proc {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  readonly child: ChildProcess
  #output = ''
  #alive = true

  constructor(
    readonly name: string,
    run: NetnsRun,
    ns: string,
    argv: string[],
    options: { ipc?: boolean; env?: NodeJS.ProcessEnv } = {},
  ) {
    this.child = run.spawnIn(ns, argv, { stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])], env: { ...process.env, ...options.env } })
    const keep = (d: Buffer): void => {
      this.#output = (this.#output + d.toString()).slice(-60_000)
    }
    this.child.stdout!.on('data', keep)
    this.child.stderr!.on('data', keep)
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.#alive = false
        resolve({ code, signal, at: wallNow() })
      }),
    )
  }

  get alive(): boolean {
    return this.#alive
  }

  get output(): string {
    return this.#output
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#alive) this.child.kill(signal)
  }
}

/** The client host's process (daemon-hosts.ts), driven over IPC. */
class ClientHost extends Proc {
  readonly probes: LeaderProbe[] = []
  readonly writes: WriteOutcome[] = []
  #ready = false
  #writeStopped = false
  #nextId = 0
  readonly #pending = new Map<number, (o: HttpOutcome) => void>()

  constructor(run: NetnsRun, ns: string, config: ClientHostConfig) {
    super('client', run, ns, [process.execPath, '--import', 'tsx', CLIENT_HOST, JSON.stringify(config)], { ipc: true })
    this.child.on('message', (m: FromClient) => {
      if (m.type === 'ready') this.#ready = true
      else if (m.type === 'probe') this.probes.push(m.probe)
      else if (m.type === 'write') this.writes.push(m.write)
      else if (m.type === 'writeStopped') this.#writeStopped = true
      else if (m.type === 'http') {
        this.#pending.get(m.id)?.(m.outcome)
        this.#pending.delete(m.id)
      }
    })
  }

  ready(): Promise<true> {
    return waitUntil(() => this.#ready || (!this.alive && Promise.reject(new Error(`client host exited:\n${this.output}`))), 'the client host')
  }

  #send(m: ToClient): void {
    this.child.send(m)
  }

  /** An HTTP request made from the client host. */
  http(method: string, url: string, body?: string): Promise<HttpOutcome> {
    const id = this.#nextId++
    return new Promise((resolve) => {
      this.#pending.set(id, resolve)
      this.#send({ type: 'http', id, method, url, ...(body !== undefined ? { body } : {}) })
    })
  }

  /** GET url as JSON, or undefined when there is no 200 answer. */
  async json<T>(url: string): Promise<T | undefined> {
    const o = await this.http('GET', url)
    if (o.status !== 200 || o.body === undefined) return undefined
    return JSON.parse(o.body) as T
  }

  startWriting(url: string, prefix: string): void {
    this.#writeStopped = false
    this.#send({ type: 'writeStart', url, prefix })
  }

  async stopWriting(): Promise<void> {
    this.#send({ type: 'writeStop' })
    await waitUntil(() => this.#writeStopped, 'the writer to stop')
  }
}

netnsTest(t, 'The daemon VIP test', 'holdfast start daemons: the VIP on the acting node, and SIGTERM hands it over, seen from a client host', daemonVip)

async function daemonVip(t: Test): Promise<void> {
  sweepStale()
  const run = NetnsRun.create({ ...NODE_IPS, client: CLIENT_IP })
  // Named after the run, so that `net.sh sweep` removes it too if this process is killed outright.
  const dir = mkdtempSync(join(tmpdir(), `${run.prefix}-daemons-`))
  run.onRemove(() => rmSync(dir, { recursive: true, force: true }))
  const procs: Proc[] = []
  let stopSampler = async (): Promise<void> => {}
  let cleaning: Promise<void> | undefined
  // Idempotent; also the teardown, so a throw anywhere still removes everything.
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await stopSampler()
      for (const p of procs) p.kill()
      await Promise.all(procs.map((p) => p.exited))
      run.removeSync()
    })())
  t.teardown(cleanup)
  try {
    await scenario(t, run, dir, procs, (stop) => (stopSampler = stop))
  } finally {
    if (!t.passing()) for (const p of procs) t.comment(`--- ${p.name} (${p.alive ? 'running' : 'exited'}):\n${p.output.slice(-4000)}`)
    await cleanup()
    t.same(run.remaining(), [], 'every namespace of the run is gone, and with them its veths and bridge')
  }
}

/** When the daemon's debug log (DEBUG=holdfast:vip) says it removed the VIP, wall-clock ms, each time. */
function vipRemovalsLogged(output: string): number[] {
  return output
    .split('\n')
    .filter((l) => l.includes('holdfast:vip') && l.includes(`removed ${VIP.address} on eth0`))
    .map((l) => Date.parse(l.split(' ')[0] ?? ''))
    .filter((at) => !Number.isNaN(at))
}

async function scenario(t: Test, run: NetnsRun, dir: string, procs: Proc[], setSamplerStop: (stop: () => Promise<void>) => void): Promise<void> {
  const secretFile = join(dir, 'secret')
  writeFileSync(secretFile, 'a long random secret for the daemon VIP namespace test\n', { mode: 0o600 })
  const holdfast = (name: string, ns: string, args: string[]): Proc => {
    // DEBUG=holdfast:vip: the daemon's own record of when it removed the VIP (ISO times on stderr).
    const p = new Proc(name, run, ns, [process.execPath, '--import', 'tsx', MAIN, ...args], { env: { DEBUG: 'holdfast:vip' } })
    procs.push(p)
    return p
  }

  const dht = holdfast('dht', run.switchNs, ['dht', '--host', run.bridgeIp, '--port', String(DHT_PORT)])
  await waitUntil(() => dht.output.includes('bootstrap node on') || (!dht.alive && Promise.reject(new Error(`holdfast dht exited:\n${dht.output}`))), 'the DHT bootstrap node')

  const client = new ClientHost(run, run.host('client').ns, { probeUrl: `${VIP_URL}/v1/leader-check`, probeEveryMs: PROBE_EVERY_MS, probeTimeoutMs: 250, timeoutMs: 5_000 })
  procs.push(client)
  await client.ready()

  // Sample the three namespaces from before the first daemon starts until the end.
  const samples: Array<{ start: number; end: number; holders: NodeName[] }> = []
  const sampler = sampleAddresses(
    NODE_NAMES.map((n) => run.host(n).ns),
    'eth0',
    SAMPLE_EVERY_MS,
    (s) => samples.push({ start: s.start, end: s.end, holders: NODE_NAMES.filter((n) => iproute2HasAddress(s.outputs.get(run.host(n).ns) ?? '', VIP)) }),
  )
  setSamplerStop(() => sampler.stop())

  // Three daemons, started together: n2 and n3 join the cluster n1 creates.
  const t0 = wallNow()
  const daemons = {} as Record<NodeName, Proc>
  for (const name of NODE_NAMES) {
    const ip = NODE_IPS[name]
    // The flags a user would give, nothing else.
    daemons[name] = holdfast(name, run.host(name).ns, [
      'start',
      '--data-dir', join(dir, name),
      '--cluster', 'daemon-vip',
      '--secret-file', secretFile,
      '--http', `0.0.0.0:${PORT}`,
      '--advertise-url', `http://${ip}:${PORT}`,
      '--bootstrap', `${run.bridgeIp}:${DHT_PORT}`,
      '--dht-host', ip,
      '--tick-ms', String(TICK_MS),
      '--election-ticks', String(ELECTION_TICKS),
      '--vip', VIP.address,
      '--vip-device', 'eth0',
      ...(name === 'n1' ? ['--init', '--voters', '3'] : []),
    ])
  }
  const status = (name: NodeName): Promise<ClusterStatus | undefined> => client.json<ClusterStatus>(`http://${NODE_IPS[name]}:${PORT}/v1/status`)
  const statuses = async (names: readonly NodeName[]): Promise<Map<NodeName, ClusterStatus | undefined>> => new Map(await Promise.all(names.map(async (n) => [n, await status(n)] as const)))
  const failIfExited = (): void => {
    for (const n of NODE_NAMES) if (!daemons[n].alive) throw new Error(`${n} exited:\n${daemons[n].output}`)
  }

  // The cluster formed: one leader with three voters, every daemon a member agreeing on it, and acting.
  let firstLeaderAt: number | undefined
  const formed = await waitUntil(async () => {
    failIfExited()
    const all = await statuses(NODE_NAMES)
    const leader = NODE_NAMES.find((n) => all.get(n)?.role === 'leader')
    if (leader) firstLeaderAt ??= wallNow()
    const ls = leader && all.get(leader)
    if (!leader || !ls || !ls.acting || ls.members.filter((m) => m.voter).length !== 3) return undefined
    return NODE_NAMES.every((n) => all.get(n)?.leader === ls.id) ? { leader, all, at: wallNow() } : undefined
  }, 'three voters agreeing on an acting leader')
  const ids = {} as Record<NodeName, string>
  for (const n of NODE_NAMES) ids[n] = formed.all.get(n)!.id
  const nameOf = (id: string | undefined): NodeName | undefined => NODE_NAMES.find((n) => ids[n] === id)
  const first = formed.leader
  const formMs = { leader: Math.round(firstLeaderAt! - t0), formed: Math.round(formed.at - t0) }
  t.comment(`three daemons started: a leader ${formMs.leader} ms later (a single voter's first election), three voters agreeing on it and acting ${formMs.formed} ms later`)
  type Ev = { type: string; time: number; action?: string; token?: number; reason?: string }
  const eventsOf = async (url: string): Promise<Ev[]> => (await client.json<{ events: Ev[] }>(`${url}/v1/events`))?.events ?? []
  /**
   * When a node did not act although it led: from an actingStop to its next actingStart (a lease
   * that lapsed and was renewed, say under load). The VIP is rightly absent then.
   */
  const quietPeriods = (events: readonly Ev[]): Array<{ from: number; to: number }> =>
    events.flatMap((e, i) => (e.type === 'actingStop' ? [{ from: e.time, to: events.slice(i + 1).find((x) => x.type === 'actingStart')?.time ?? Infinity }] : []))
  // While the cluster grew (one voter, then two, then three) the first node may have stopped acting
  // for a moment (printed, not asserted: the rules below start once the cluster has formed).
  const formingStops = (await eventsOf(`http://${NODE_IPS[first]}:${PORT}`)).filter((e) => e.type === 'actingStop').map((e) => `${e.reason ?? '?'} (token ${e.token ?? '?'})`)
  const formingGaps = samples.filter((s, i) => s.start < formed.at && s.holders.length === 0 && samples.slice(0, i).some((p) => p.holders.length > 0)).length
  if (formingStops.length > 0) t.comment(`while the cluster formed, ${first} stopped acting: ${formingStops.join(', ')}; ${formingGaps} samples without a holder then`)

  // 1. Exactly the acting node holds the VIP, and the client reaching the VIP reaches it.
  // From here on (the acting node reported acting, so its VIP was added before) the rules hold.
  const heldFrom = formed.at
  await waitUntil(() => client.probes.some((p) => p.at > heldFrom && p.status === 200), 'the client reaching the VIP')
  const probeOk = client.probes.find((p) => p.at > heldFrom && p.status === 200)!
  t.equal(nameOf(probeOk.nodeId), first, `GET ${VIP_URL}/v1/leader-check answers 200 with X-Holdfast-Node-Id naming ${first}`)
  const fs1 = (await status(first))!
  t.match(fs1, { role: 'leader', acting: true, leaderCheck: true, actingId: ids[first] }, `${first}'s status: it leads and acts`)
  const termBefore = fs1.term
  const direct = await Promise.all(NODE_NAMES.map(async (n) => [n, (await client.http('GET', `http://${NODE_IPS[n]}:${PORT}/v1/leader-check`)).status] as const))
  t.same(Object.fromEntries(direct), Object.fromEntries(NODE_NAMES.map((n) => [n, n === first ? 200 : 503])), 'on the nodes\' own addresses, leader-check answers 200 only on the acting node')
  const viaVip = await client.json<ClusterStatus>(`${VIP_URL}/v1/status`)
  t.equal(viaVip?.id, ids[first], 'GET /v1/status through the VIP is answered by the acting node')
  const tHeld = wallNow()
  await waitUntil(() => samples.filter((s) => s.start > tHeld).length >= 10, 'ten samples')

  // Writes through the VIP, one after the other, from before the SIGTERM until after the hand-over.
  client.startWriting(VIP_URL, 'w')
  const acked = (): WriteOutcome[] => client.writes.filter((w) => w.status === 200)
  await waitUntil(() => acked().length >= 20, 'twenty writes through the VIP')

  // 2. SIGTERM the acting daemon (its events first: its HTTP API closes on the SIGTERM).
  const firstQuiet = quietPeriods((await eventsOf(`http://${NODE_IPS[first]}:${PORT}`)).filter((e) => e.time >= formed.at))
  const tTerm = wallNow()
  daemons[first].kill('SIGTERM')
  let hang: NodeJS.Timeout | undefined
  const exit = await Promise.race([daemons[first].exited, new Promise<undefined>((r) => (hang = setTimeout(() => r(undefined), DEADLINE_MS)))])
  clearTimeout(hang)
  t.ok(exit, `${first} exited after SIGTERM`)
  if (!exit) return
  t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `${first} exited with code 0, ${Math.round(exit.at - tTerm)} ms after the SIGTERM`)
  t.match(daemons[first].output, /holdfast start: stopped/, `${first} said it stopped`)
  const others = NODE_NAMES.filter((n) => n !== first)

  // Another node acts and holds the VIP; the client reaches it through the VIP.
  const next = await waitUntil(async () => {
    const all = await statuses(others)
    return others.find((n) => all.get(n)?.acting === true && all.get(n)?.leaderCheck === true)
  }, 'another node acting')
  const newFrom = await waitUntil(() => samples.find((s) => s.start > tTerm && s.holders.includes(next))?.start, `${next} holding the VIP`)
  await waitUntil(() => client.probes.some((p) => p.at > tTerm && p.status === 200 && p.nodeId === ids[next]), `the client reaching ${next} through the VIP`)
  const back = client.probes.find((p) => p.at > tTerm && p.status === 200 && p.nodeId === ids[next])!
  // Writes go on through the VIP after the hand-over.
  const ackedBeforeBack = acked().length
  await waitUntil(() => acked().length >= ackedBeforeBack + 20, 'twenty more writes through the VIP after the hand-over')
  await client.stopWriting()
  const tDone = wallNow()
  await waitUntil(() => samples.filter((s) => s.start > tDone).length >= 10, 'ten more samples')
  await sampler.stop()
  t.notOk(sampler.error(), 'every sample was taken')

  const ns = (await status(next))!
  t.equal(ns.term, termBefore + 1, `${next} leads in term ${ns.term}: exactly one term after ${termBefore}, a hand-over and not an election`)
  t.equal(ns.fence, termBefore + 1, `${next} acts under the fencing token ${termBefore + 1}`)
  t.equal(ns.role, 'leader', `${next} leads`)
  const direct2 = await Promise.all(others.map(async (n) => [n, (await client.http('GET', `http://${NODE_IPS[n]}:${PORT}/v1/leader-check`)).status] as const))
  t.same(Object.fromEntries(direct2), Object.fromEntries(others.map((n) => [n, n === next ? 200 : 503])), `leader-check answers 200 only on ${next} now`)

  // The samples: never two holders; the stopped daemon's VIP gone by its exit; then only the new holder.
  const judged = samples.filter((s) => s.start >= heldFrom)
  t.same(samples.filter((s) => s.holders.length > 1).map((s) => `${s.holders.join(' and ')} at ${Math.round(s.start - tTerm)} ms from the SIGTERM`), [], `at none of ${samples.length} samples (from before the first daemon started) do two namespaces hold the VIP`)
  const oldSeen = judged.filter((s) => s.holders.includes(first))
  const oldLast = oldSeen.at(-1)!
  t.same(
    judged.filter((s) => s.start >= exit.at && s.holders.includes(first)).map((s) => Math.round(s.start - tTerm)),
    [],
    `no sample taken after ${first} exited shows the VIP in its namespace (removed before the exit, not left to expire)`,
  )
  const removedAt = vipRemovalsLogged(daemons[first].output).find((at) => at >= tTerm)
  t.ok(removedAt !== undefined && removedAt <= exit.at, `${first} logged removing the VIP between the SIGTERM and its exit`)
  t.ok(oldLast.end < newFrom, `${first}'s VIP was last seen before ${next}'s was first seen`)
  t.same(
    judged.filter((s) => s.start < tTerm && s.holders.some((h) => h !== first)).map((s) => `[${s.holders.join()}] at ${Math.round(s.start - tTerm)} ms`),
    [],
    `until the SIGTERM only ${first}, the acting node, holds the VIP (from the cluster's formation on)`,
  )
  t.same(
    judged.filter((s) => s.start >= newFrom && s.holders.some((h) => h !== next)).map((s) => `[${s.holders.join()}] at ${Math.round(s.start - tTerm)} ms`),
    [],
    `from ${next}'s first sample on, only ${next}, the acting node, holds the VIP`,
  )
  // The new node's own record: when it started acting and added the VIP, and any lapse since.
  const nextEvents = await eventsOf(`http://${NODE_IPS[next]}:${PORT}`)
  const actingStart = nextEvents.find((e) => e.type === 'actingStart' && e.time >= tTerm)
  const vipAdded = nextEvents.find((e) => e.type === 'vip' && e.action === 'added' && e.time >= tTerm)
  const nextQuiet = quietPeriods(nextEvents.filter((e) => e.time >= tTerm))
  const quiet = [...firstQuiet, ...nextQuiet]
  const inQuiet = (from: number, to: number): boolean => quiet.some((q) => to >= q.from && from <= q.to)
  // Without a holder: in the hand-over (from the SIGTERM until the new holder is seen), or while the holder did not act.
  const gapSamples = judged.filter((s) => s.holders.length === 0 && s.end > tTerm && s.start < newFrom)
  const otherGaps = judged.filter((s) => s.holders.length === 0 && !(s.end > tTerm && s.start < newFrom))
  t.same(
    otherGaps.filter((s) => !inQuiet(s.start, s.end)).map((s) => `no holder at ${Math.round(s.start - tTerm)} ms`),
    [],
    `no sample without a holder but ${gapSamples.length} in the hand-over${otherGaps.length > 0 ? ` and ${otherGaps.length} while the holder's lease had lapsed` : ''}`,
  )

  // The client's view: the stopped node until its HTTP API closed, then nothing, then the new node only.
  const after = client.probes.filter((p) => p.at > tTerm)
  // A 503 is right from the new holder before it reports acting (the VIP is added first), or in a lapse.
  const notYetActing = (p: LeaderProbe): boolean => p.nodeId === ids[next] && (actingStart === undefined || p.at < actingStart.time || inQuiet(p.at, p.at + p.ms))
  const early503 = after.filter((p) => p.status === 503 && notYetActing(p))
  t.same(
    after.filter((p) => p.status !== undefined && !(p.status === 200 && (p.nodeId === ids[first] || p.nodeId === ids[next])) && !early503.includes(p)).map((p) => `${p.status} from ${nameOf(p.nodeId) ?? p.nodeId} at ${Math.round(p.at - tTerm)} ms`),
    [],
    `every answer the client got through the VIP after the SIGTERM was a 200 from ${first} or ${next}${early503.length > 0 ? ` (and ${early503.length} 503 from ${next} not yet acting)` : ''}`,
  )
  const afterBack = after.filter((p) => p.at >= back.at)
  // Errors (the 250 ms probe timeout on a loaded machine) are counted, not judged: who answers is.
  const probeErrorsAfterBack = afterBack.filter((p) => p.status === undefined).length
  t.same(
    afterBack.filter((p) => p.status !== undefined && !(p.status === 200 && p.nodeId === ids[next]) && !early503.includes(p)).map((p) => `${p.status} from ${nameOf(p.nodeId) ?? '-'} at ${Math.round(p.at - tTerm)} ms`),
    [],
    `after the client first reached ${next}, every answer (${afterBack.length - probeErrorsAfterBack}, ${probeErrorsAfterBack} probes unanswered) came from ${next} with 200`,
  )
  const lastOld = [...client.probes].reverse().find((p) => p.status === 200 && p.nodeId === ids[first])!
  const backAt = back.at + back.ms
  const unreachableMs = Math.round(backAt - (lastOld.at + lastOld.ms))

  // 3. Every acknowledged write is read back through the VIP: those before the SIGTERM and after.
  const ackedWrites = acked()
  const ackedBeforeTerm = ackedWrites.filter((w) => w.at + w.ms < tTerm)
  const list = await client.json<{ items: Array<{ key: string; value: unknown }>; more: boolean }>(`${VIP_URL}/v1/kv?prefix=w&limit=10000`)
  t.ok(list && !list.more, 'listed every w key through the VIP')
  const stored = new Map((list?.items ?? []).map((kv) => [kv.key, kv.value]))
  t.same(ackedWrites.filter((w) => JSON.stringify(stored.get(w.key)) !== JSON.stringify({ n: w.n })).map((w) => w.key), [], `all ${ackedWrites.length} acknowledged writes (${ackedBeforeTerm.length} before the SIGTERM) read back through the VIP`)
  const lastBefore = ackedBeforeTerm.at(-1)!
  const got = await client.json<{ value: unknown }>(`${VIP_URL}/v1/kv/${lastBefore.key}`)
  t.same(got?.value, { n: lastBefore.n }, `the last write acknowledged before the SIGTERM (${lastBefore.key}, ${Math.round(tTerm - lastBefore.at - lastBefore.ms)} ms before it) reads back with a linearizable GET through the VIP`)
  const unknown = client.writes.filter((w) => w.status !== 200)

  t.match(actingStart, { token: termBefore + 1 }, `${next} reported actingStart under token ${termBefore + 1}`)
  t.ok(vipAdded && removedAt !== undefined && vipAdded.time >= removedAt, `${next} added the VIP after ${first} had removed it`)

  const ms = (x: number | undefined): number | null => (x === undefined ? null : Math.round(x - tTerm))
  const meanIntervalMs = (samples.at(-1)!.start - samples[0]!.start) / (samples.length - 1)
  const maxIntervalMs = Math.max(...samples.slice(1).map((s, i) => s.start - samples[i]!.start))
  t.ok(meanIntervalMs < 250 && maxIntervalMs < 2000, `a sample every ${Math.round(meanIntervalMs)} ms on average, at most ${Math.round(maxIntervalMs)} ms apart`)
  const result = {
    metric: 'daemon-vip-sigterm',
    leaderAfterStartMs: formMs.leader,
    formedAfterStartMs: formMs.formed,
    stopped: first,
    newActing: next,
    terms: [termBefore, ns.term],
    vipLifetimeSec: VIP_LIFETIME_SEC,
    electionTimeoutMs: [TICK_MS * ELECTION_TICKS, 2 * TICK_MS * ELECTION_TICKS],
    // Milliseconds from the SIGTERM:
    vipRemovedLoggedMs: ms(removedAt),
    oldVipLastSeenMs: ms(oldLast.end),
    exitMs: ms(exit.at),
    actingStartMs: ms(actingStart?.time),
    vipAddedMs: ms(vipAdded?.time),
    newVipFirstSeenMs: ms(newFrom),
    clientBackMs: ms(backAt),
    // From the last answer of the old node to the first of the new one, as the client saw it.
    clientUnreachableMs: unreachableMs,
    gapSamples: gapSamples.length,
    samplesWithoutHolderInLapses: otherGaps.length,
    early503: early503.length,
    probeErrorsAfterBack,
    samples: judged.length,
    meanSampleIntervalMs: Math.round(meanIntervalMs),
    maxSampleIntervalMs: Math.round(maxIntervalMs),
    probes: client.probes.length,
    writesAcked: ackedWrites.length,
    writesAckedBeforeSigterm: ackedBeforeTerm.length,
    writesUnknown: unknown.length,
    actingStopsWhileForming: formingStops,
    samplesWithoutHolderWhileForming: formingGaps,
  }
  t.comment(
    `SIGTERM → ${first} removed the VIP ${result.vipRemovedLoggedMs} ms (last seen ${result.oldVipLastSeenMs} ms), exited ${result.exitMs} ms; ` +
      `${next} acting ${result.actingStartMs} ms, VIP added ${result.vipAddedMs} ms (seen ${result.newVipFirstSeenMs} ms); ` +
      `client reaches the VIP again ${result.clientBackMs} ms (unreachable for ${unreachableMs} ms)`,
  )
  t.comment(JSON.stringify(result))
}
