/**
 * The VIP for real, in Linux network namespaces (issue 5). Three node hosts and a client host,
 * each a namespace with eth0 on one bridge (10.77.0.0/24; the bridge, at 10.77.0.1, is in a switch
 * namespace of its own, which also runs the DHT bootstrap node). Each node host runs a holdfast
 * node process (createSwarmNode with `vip: { address: '10.77.0.100/24', device: 'eth0',
 * lifetimeSec: 1 }`, 100 ms ticks and a 3-6 s election timeout, see below) and an HTTP server
 * answering its node id; the client host GETs http://10.77.0.100:8080/ every 20 ms on a fresh
 * connection.
 *
 * The story: the client reaches the acting node through the VIP; that node's process is
 * SIGKILLed; its address, a kernel lease of 1 s that nothing refreshes any more, expires by itself;
 * the VIP moves to the new acting node and the client reaches it; the killed node is restarted on
 * its data directory and finds no stale VIP (or removes one). All along, `ip -o addr show dev
 * eth0` is sampled in the three node namespaces every 50 ms.
 *
 * The literal requirement, asserted: at every sample from the first acquisition, at most one
 * namespace holds the VIP, and none only in the failover gap (from the kill until the new holder
 * is first seen). It holds because the killed node's address expires (lifetime + kernel rounding,
 * measured at about 1.0-1.2 s with a 1 s lifetime) before any other node can be elected: the
 * election timeout here is 30 ticks of 100 ms, at least 3 s after the last heartbeat.
 *
 * The rules of holders.ts (with their own unit test) are checked as well. A SIGKILLed process
 * cannot remove its address, and its namespace, its host, lives on: the kernel there keeps the
 * address until its lifetime runs out and answers ARP for it meanwhile. So an address held by a
 * namespace whose process is dead (or restarted and not yet reconciled) is *orphaned*, and every
 * other one is *live*. At every sample after the
 * first acquisition: never two live holders; never two nodes acting (by their events); the node
 * acting is the one live holder; an orphan only in the killed node's namespace, and here only
 * until it expires. The test checks that the client's neighbour entry moved to the new holder's
 * MAC (gratuitous ARP), and that every probe after the switch reached the new node.
 *
 * Measured and printed (t.comment and one JSON line): kill → orphan last seen / first seen gone,
 * → new node acting, → VIP added on it, → the client reaching the VIP again.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): it fails, with the reason, on a machine that cannot
 * create namespaces, unless HOLDFAST_SKIP_NETNS=1 opts out. iproute2 and iputils-arping are
 * installed by test/netns/ensure-tools.sh when missing. Namespaces are removed at the end, on a
 * failure, on SIGINT/SIGTERM/SIGHUP and at exit (netns.ts); a run killed outright is swept by
 * the next one.
 */
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { NodeId } from '../../src/core/types.js'
import { loadOrCreateIdentity } from '../../src/identity.js'
import { iproute2HasAddress, parseVipAddress } from '../../src/vip/address.js'
import { DHT_PORT, HTTP_PORT, wallNow, type ChildMessage, type ClientConfig, type DhtConfig, type NodeConfig, type Probe } from './children.js'
import { judgeHolders, type NodeLife, type Sample } from './holders.js'
import { NetnsRun, netnsTest, sampleAddresses, sweepStale } from './netns.js'

const CHILDREN = fileURLToPath(new URL('./children.ts', import.meta.url))
const VIP = parseVipAddress('10.77.0.100/24')
const NODE_IPS = { n1: '10.77.0.11', n2: '10.77.0.12', n3: '10.77.0.13' } as const
type NodeName = keyof typeof NODE_IPS
const NODE_NAMES = Object.keys(NODE_IPS) as NodeName[]
const CLIENT_IP = '10.77.0.20'
const SAMPLE_EVERY_MS = 50
/** The VIP's kernel lifetime, and the election timing that must outlast it (see the header). */
const LIFETIME_SEC = 1
const TICK_MS = 100
const ELECTION_TICKS = 30
const PROBE_EVERY_MS = 20
/** Against hangs only. */
const DEADLINE_MS = 30_000

type EventOf = Extract<ChildMessage, { type: 'event' }>['event']

/** A process of the test, inside a namespace, talking over IPC. */
class Proc {
  readonly messages: ChildMessage[] = []
  readonly exited: Promise<void>
  #output = ''
  #alive = true
  #listeners = new Set<() => void>()
  readonly #child: ChildProcess

  constructor(
    readonly name: string,
    run: NetnsRun,
    ns: string,
    role: 'dht' | 'node' | 'client',
    config: DhtConfig | NodeConfig | ClientConfig,
  ) {
    this.#child = run.spawnIn(ns, [process.execPath, '--import', 'tsx', CHILDREN, role, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    const keep = (d: Buffer): void => {
      this.#output = (this.#output + d.toString()).slice(-10_000)
    }
    this.#child.stdout!.on('data', keep)
    this.#child.stderr!.on('data', keep)
    this.#child.on('message', (m: ChildMessage) => {
      this.messages.push(m)
      this.#notify()
    })
    this.exited = new Promise((resolve) =>
      this.#child.on('exit', () => {
        this.#alive = false
        this.#notify()
        resolve()
      }),
    )
  }

  get alive(): boolean {
    return this.#alive
  }

  get output(): string {
    return this.#output
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l()
  }

  /** Resolves with the first message (received so far or later) that `pred` accepts. */
  waitMessage<M extends ChildMessage>(pred: (m: ChildMessage) => m is M, what: string, ms?: number): Promise<M>
  waitMessage(pred: (m: ChildMessage) => boolean, what: string, ms?: number): Promise<ChildMessage>
  waitMessage(pred: (m: ChildMessage) => boolean, what: string, ms = DEADLINE_MS): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      let seen = 0
      const check = (): void => {
        for (; seen < this.messages.length; seen++) {
          const m = this.messages[seen]!
          if (m.type === 'fatal') return done(new Error(`${this.name} failed: ${m.message}`))
          if (pred(m)) return done(undefined, m)
        }
        if (!this.#alive) done(new Error(`${this.name} exited while waiting for ${what}:\n${this.#output}`))
      }
      const done = (err?: Error, m?: ChildMessage): void => {
        clearTimeout(timer)
        this.#listeners.delete(check)
        if (err) reject(err)
        else resolve(m!)
      }
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what} from ${this.name}:\n${this.#output}`)), ms)
      this.#listeners.add(check)
      check()
    })
  }

  ready(): Promise<Extract<ChildMessage, { type: 'ready' }>> {
    return this.waitMessage((m): m is Extract<ChildMessage, { type: 'ready' }> => m.type === 'ready', 'ready')
  }

  /** Events of a node child. */
  events(): Array<Extract<ChildMessage, { type: 'event' }>['event']> {
    return this.messages.flatMap((m) => (m.type === 'event' ? [m.event] : []))
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.#alive) this.#child.kill(signal)
    return this.exited
  }
}

async function waitUntil(pred: () => boolean, what: string, ms = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

netnsTest(t, 'The VIP test', 'the VIP follows the acting node across a SIGKILL, seen from a client host', vipFailover)

async function vipFailover(t: Test): Promise<void> {
  sweepStale()
  const run = NetnsRun.create({ ...NODE_IPS, client: CLIENT_IP })
  const procs = new Set<Proc>()
  const dirs: string[] = []
  let stopSampler = async (): Promise<void> => {}
  let cleaning: Promise<void> | undefined
  // Idempotent; also the teardown, so a throw anywhere still removes everything.
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await stopSampler()
      await Promise.all([...procs].map((p) => p.kill()))
      run.removeSync()
    })())
  t.teardown(cleanup)
  // The nodes' data directories go with the run, also when a signal ends the test.
  run.onRemove(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  const spawn = (name: string, ns: string, role: 'dht' | 'node' | 'client', config: DhtConfig | NodeConfig | ClientConfig): Proc => {
    const p = new Proc(name, run, ns, role, config)
    procs.add(p)
    return p
  }

  try {
    await scenario(t, run, spawn, dirs, (stop) => (stopSampler = stop))
  } finally {
    if (!t.passing()) {
      // Enough to explain a failure: what every process reported, and its output.
      for (const p of procs) {
        const events = p.events().map((e) => JSON.stringify(e))
        t.comment(`--- ${p.name} (${p.alive ? 'running' : 'exited'}): events:\n${events.join('\n')}\noutput:\n${p.output.slice(-3000)}`)
      }
    }
    await cleanup()
    t.same(run.remaining(), [], 'every namespace of the run is gone, and with them its veths and bridge')
  }
}

async function scenario(
  t: Test,
  run: NetnsRun,
  spawn: (name: string, ns: string, role: 'dht' | 'node' | 'client', config: DhtConfig | NodeConfig | ClientConfig) => Proc,
  dirs: string[],
  setSamplerStop: (stop: () => Promise<void>) => void,
): Promise<void> {
  // The DHT bootstrap node, on the bridge's address in the switch namespace.
  const dht = spawn('dht', run.switchNs, 'dht', { host: run.bridgeIp, port: DHT_PORT })
  await dht.ready()

  const ids = {} as Record<NodeName, NodeId>
  const configs = {} as Record<NodeName, NodeConfig>
  for (const name of NODE_NAMES) {
    // Named after the run, so that `net.sh sweep` removes them too if this process is killed outright.
    const dataDir = await mkdtemp(join(tmpdir(), `${run.prefix}-${name}-`))
    dirs.push(dataDir)
    ids[name] = (await loadOrCreateIdentity(dataDir)).id
  }
  for (const name of NODE_NAMES) {
    configs[name] = {
      name,
      dataDir: dirs[NODE_NAMES.indexOf(name)]!,
      cluster: 'vip-netns',
      secret: 'a long random secret for the VIP namespace test',
      host: NODE_IPS[name],
      dhtBootstrap: [{ host: run.bridgeIp, port: DHT_PORT }],
      bootstrap: { voters: NODE_NAMES.map((n) => ids[n]), learners: [] },
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      vip: { address: VIP.address, device: 'eth0', lifetimeSec: LIFETIME_SEC },
    }
  }
  const nameOf = (id: string | undefined): NodeName | undefined => NODE_NAMES.find((n) => ids[n] === id)

  // Every node process, in start order; `liveFrom` as holders.ts defines it.
  const lives: Array<{ name: NodeName; proc: Proc; liveFrom: number; diedAt: number }> = []
  const start = (name: NodeName, config: NodeConfig, label: string = name): Proc => {
    const proc = spawn(label, run.host(name).ns, 'node', config)
    lives.push({ name, proc, liveFrom: wallNow(), diedAt: Infinity })
    return proc
  }
  for (const name of NODE_NAMES) start(name, configs[name])
  await Promise.all(lives.map((l) => l.proc.ready()))
  const current = (name: NodeName): Proc => lives.filter((l) => l.name === name).at(-1)!.proc
  const events = (name: NodeName, type?: string): EventOf[] => current(name).events().filter((e) => type === undefined || e.type === type)
  /** The node whose latest acting event is an actingStart, if any. */
  const actingNow = (): NodeName | undefined => NODE_NAMES.find((n) => current(n).alive && events(n).filter((e) => e.type === 'actingStart' || e.type === 'actingStop').at(-1)?.type === 'actingStart')
  const macs = {} as Record<NodeName, string>
  for (const name of NODE_NAMES) macs[name] = /link\/ether (\S+)/.exec(await run.ip(run.host(name).ns, ['link', 'show', 'dev', 'eth0']))![1]!

  // Sample the three namespaces every 50 ms (plus the time the three `ip` take) until the end.
  const samples: Sample[] = []
  const sampler = sampleAddresses(
    NODE_NAMES.map((n) => run.host(n).ns),
    'eth0',
    SAMPLE_EVERY_MS,
    (s) => samples.push({ start: s.start, end: s.end, holders: NODE_NAMES.filter((n) => iproute2HasAddress(s.outputs.get(run.host(n).ns) ?? '', VIP)) }),
  )
  setSamplerStop(() => sampler.stop())

  const client = spawn('client', run.host('client').ns, 'client', { url: `http://${VIP.ip}:${HTTP_PORT}/`, everyMs: PROBE_EVERY_MS, timeoutMs: 250 })
  await client.ready()
  const probes = (): Probe[] => client.messages.flatMap((m) => (m.type === 'probe' ? [m.probe] : []))
  const clientNeighbour = async (): Promise<string | undefined> => /lladdr (\S+)/.exec(await run.ip(run.host('client').ns, ['neigh', 'show', VIP.ip]))?.[1]

  // 1. A node acts, holds the VIP, and the client reaches it through the VIP.
  const t0 = wallNow()
  let first: NodeName | undefined
  await waitUntil(() => {
    first = actingNow()
    const since = first && events(first, 'actingStart').at(-1)!.at
    return first !== undefined && probes().some((p) => p.at > since! && p.id === ids[first!])
  }, 'a node acting and the client reaching it through the VIP')
  const firstName = first!
  const firstToken = events(firstName, 'actingStart').at(-1)!.token as number
  t.comment(`${firstName} acts (token ${firstToken}), and the client reaches it through the VIP, ${Math.round(wallNow() - t0)} ms after the nodes were up`)
  t.equal(await clientNeighbour(), macs[firstName], `the client's neighbour entry for the VIP is ${firstName}'s MAC`)
  t.match(events(firstName, 'vip').filter((e) => e.action === 'added'), [{ type: 'vip', action: 'added', address: VIP.address, device: 'eth0' }], `${firstName} reported adding the VIP`)

  // 2. SIGKILL the acting node's process.
  const tKill = wallNow()
  const killed = lives.filter((l) => l.name === firstName).at(-1)!
  killed.diedAt = tKill
  await killed.proc.kill('SIGKILL')
  t.comment(`SIGKILLed ${firstName}'s process`)

  // 3. Another node acts, takes the VIP, and the client reaches it.
  let second: NodeName | undefined
  await waitUntil(() => (second = NODE_NAMES.find((n) => n !== firstName && events(n, 'actingStart').some((e) => e.at > tKill))) !== undefined, 'a new acting node')
  const secondName = second!
  const secondStart = events(secondName, 'actingStart').find((e) => e.at > tKill)!
  const secondToken = secondStart.token as number
  t.ok(secondToken > firstToken, `the new acting node's token ${secondToken} is greater than ${firstToken}`)
  await waitUntil(() => probes().some((p) => p.at > tKill && p.id === ids[secondName]), `the client reaching ${secondName} through the VIP`)
  const recovered = probes().find((p) => p.at > tKill && p.id === ids[secondName])!
  const added = events(secondName, 'vip').find((e) => e.at > tKill && (e.action === 'added' || e.action === 'adopted'))!
  t.match(added, { action: 'added', why: 'acquire', token: secondToken }, `${secondName} added the VIP under its token`)
  await waitUntil(() => events(secondName, 'vip').some((e) => e.at > tKill && e.action === 'announced'), `${secondName} announcing the VIP`)
  const orphanNow = iproute2HasAddress(await run.ip(run.host(firstName).ns, ['-o', 'addr', 'show', 'dev', 'eth0']), VIP)
  t.notOk(orphanNow, `the killed node's address expired by itself, without a restart`)
  t.equal(await clientNeighbour(), macs[secondName], `the client's neighbour entry for the VIP is ${secondName}'s MAC`)
  // After the switch every probe reaches the new node: none goes to the orphan's closed port.
  await waitUntil(() => probes().filter((p) => p.at > recovered.at).length >= 10, 'ten more probes')
  t.same(
    probes()
      .filter((p) => p.at > recovered.at && p.id !== ids[secondName])
      .map((p) => p.error ?? nameOf(p.id)),
    [],
    `every probe after the switch reached ${secondName}`,
  )

  // 4. Restart the killed node on its data directory: it finds no stale VIP (it expired), or its
  // start-up reconcile removes one.
  const { bootstrap: _bootstrap, ...restartConfig } = configs[firstName]
  const tRestart = wallNow()
  const restarted = start(firstName, restartConfig, `${firstName}-restarted`)
  const restartedLife = lives.at(-1)!
  restartedLife.liveFrom = Infinity // until it is up and has reconciled (below)
  await restarted.ready()
  await restarted.waitMessage((m) => m.type === 'event' && m.event.type === 'vip', 'a first VIP event', 3000).catch(() => undefined)
  const stale = restarted.events().find((e) => e.type === 'vip' && e.action === 'removedStale')
  restartedLife.liveFrom = stale?.at ?? tRestart
  t.comment(stale ? `the restarted ${firstName} removed a stale VIP` : `the restarted ${firstName} found no stale VIP`)
  const tAllUp = wallNow()
  await waitUntil(() => samples.filter((s) => s.start > tAllUp).length >= 20, 'twenty samples after the restart')
  await sampler.stop()
  t.equal(actingNow(), secondName, `${secondName} still acts after the restart; the restarted node does not`)
  t.notOk(sampler.error(), 'every sample was taken')

  // The judgement (holders.ts).
  const nodeLives: NodeLife[] = lives.map((l) => {
    const evs = l.proc.events()
    return {
      node: l.name,
      liveFrom: l.liveFrom,
      diedAt: l.diedAt,
      acting: evs
        .filter((e) => e.type === 'actingStart')
        .map((s) => ({ token: s.token as number, from: s.at, to: evs.find((e) => e.type === 'actingStop' && e.token === s.token && e.at >= s.at)?.at ?? Infinity })),
    }
  })
  const verdict = judgeHolders(samples, nodeLives, { node: firstName, at: tKill })
  t.same(verdict.violations, [], `the rules hold at each of ${verdict.samples} samples`)
  // The literal requirement: at most one holder at every sample; none only in the failover gap.
  const judged = samples.slice(samples.findIndex((s) => s.holders.length > 0))
  const newHolderSeen = judged.find((s) => s.start > tKill && s.holders.includes(secondName))!.start
  const literal = judged.flatMap((s) => {
    const at = `${Math.round(s.start - tKill)} ms from the kill`
    if (s.holders.length > 1) return [`${s.holders.join(' and ')} both hold the VIP at ${at}`]
    if (s.holders.length === 0 && !(s.end > tKill && s.start < newHolderSeen)) return [`no namespace holds the VIP outside the failover gap at ${at}`]
    return []
  })
  t.same(literal, [], `at each of ${judged.length} samples at most one namespace holds the VIP, and none only in the failover gap`)
  const orphanSamples = judged.filter((s) => s.end > tKill && s.holders.includes(firstName))
  const orphanGone = judged.find((s) => s.start > tKill && !s.holders.includes(firstName))!
  const orphanLastSeenMs = orphanSamples.length > 0 ? Math.round(orphanSamples.at(-1)!.end - tKill) : 0
  t.ok(orphanSamples.every((s) => s.start < newHolderSeen), `the killed node's address expired (last seen ${orphanLastSeenMs} ms after the kill) before ${secondName} held the VIP`)
  t.notOk(stale, `the restarted ${firstName} found no stale VIP: it had expired`)
  const after = samples.filter((s) => s.start > restartedLife.liveFrom)
  t.ok(after.length >= 20 && after.every((s) => s.holders.length === 1 && s.holders[0] === secondName), `after the restart only ${secondName} holds the VIP (${after.length} samples)`)
  // On a loaded machine (CI runs two test files at once) the sampler stalls at times. The bounds
  // only make sure it sampled throughout; the numbers are printed.
  const meanIntervalMs = (samples.at(-1)!.start - samples[0]!.start) / (samples.length - 1)
  t.ok(meanIntervalMs < 250 && verdict.maxIntervalMs < 2000, `a sample every ${Math.round(meanIntervalMs)} ms on average, at most ${Math.round(verdict.maxIntervalMs)} ms apart`)
  const leaseLosses = lives.flatMap((l) => l.proc.events().filter((e) => e.type === 'actingStop' && e.reason !== 'close').map((e) => `${l.name}:${String(e.reason)}`))

  const result = {
    metric: 'vip-failover',
    killed: firstName,
    newActing: secondName,
    tokens: [firstToken, secondToken],
    lifetimeSec: LIFETIME_SEC,
    electionTimeoutMs: [TICK_MS * ELECTION_TICKS, 2 * TICK_MS * ELECTION_TICKS],
    orphanLastSeenMs,
    orphanGoneBySampleMs: Math.round(orphanGone.start - tKill),
    actingStartMs: Math.round(secondStart.at - tKill),
    vipAddedMs: Math.round(added.at - tKill),
    clientBackMs: Math.round(recovered.at + recovered.ms - tKill),
    restartedRemovedStale: stale !== undefined,
    samples: verdict.samples,
    meanSampleIntervalMs: Math.round(meanIntervalMs),
    maxSampleIntervalMs: Math.round(verdict.maxIntervalMs),
    failoverGapSamples: verdict.failoverGap,
    otherGapSamples: verdict.otherGaps,
    orphanSamples: verdict.orphaned,
    actingStops: leaseLosses,
    probes: probes().length,
  }
  t.comment(
    `kill → ${firstName}'s address last seen ${orphanLastSeenMs} ms (gone by the sample at ${result.orphanGoneBySampleMs} ms), ` +
      `${secondName} acting ${result.actingStartMs} ms, VIP added ${result.vipAddedMs} ms, client reaches the VIP again ${result.clientBackMs} ms`,
  )
  if (verdict.otherGaps > 0) t.comment(`${verdict.otherGaps} samples without a live holder outside the failover gap, while no node acted (stops: ${leaseLosses.join(', ')})`)
  t.comment(JSON.stringify(result))
}
