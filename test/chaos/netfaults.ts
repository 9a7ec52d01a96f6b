/**
 * Network faults inside the daemons' namespaces:
 *
 * - partitions: an nftables table `chaos` per namespace dropping traffic to and from the daemons
 *   it must not see (both directions, on both sides). The client and the DHT bootstrap stay
 *   reachable from everywhere, so clients keep talking to every side of a partition;
 * - a link taken down (`ip link set eth0 down`): the host is cut from everyone, clients included;
 * - slow links on a host's eth0: loss, delay and reordering with tc netem where the kernel has it.
 *   Where it does not (sch_netem not built, as on some CI kernels) they are emulated: loss by
 *   nftables (numgen random ... drop), delay and reordering by sending a random share of the
 *   packets through a narrow HTB class, so they queue behind each other while the rest overtake
 *   them. `netemAvailable()` says which one runs; the campaign counts the fault either way.
 */
import { execFile } from 'node:child_process'
import type { NetnsRun } from '../netns/netns.js'

function exec(argv: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')}: ${stderr.trim() || err.message}`))
      else resolve(stdout)
    })
    if (input !== undefined) child.stdin!.end(input)
  })
}

const nft = (ns: string, script: string): Promise<string> => exec(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], script)
const tc = (ns: string, args: string[]): Promise<string> => exec(['ip', 'netns', 'exec', ns, 'tc', ...args])

let netem: boolean | undefined

/** Whether tc netem works here (probed once, in a namespace of the run). */
export async function netemAvailable(run: NetnsRun, ns: string): Promise<boolean> {
  if (netem !== undefined) return netem
  try {
    await exec(['ip', '-n', ns, 'link', 'add', 'name', 'probe0', 'type', 'dummy'])
    await tc(ns, ['qdisc', 'add', 'dev', 'probe0', 'root', 'netem', 'delay', '1ms'])
    netem = true
  } catch {
    netem = false
  } finally {
    await exec(['ip', '-n', ns, 'link', 'del', 'probe0']).catch(() => {})
  }
  void run
  return netem
}

/** How a host's link misbehaves. */
export interface SlowLink {
  lossPct: number
  delayMs: number
  /** Share of packets delayed (and so reordered against the rest), in percent. */
  reorderPct: number
}

/** Per-namespace network state, rebuilt in full on every change so that healing is one call. */
export class NetFaults {
  /** Namespace → IPs it must not exchange packets with. */
  readonly #blocked = new Map<string, string[]>()
  readonly #slow = new Map<string, SlowLink>()
  readonly #down = new Set<string>()

  constructor(readonly run: NetnsRun) {}

  /**
   * Partitions the daemons' hosts: each group sees its own members only; `bridges` see everyone
   * (and everyone sees them). Hosts in no group and no bridge are untouched.
   */
  async partition(groups: ReadonlyArray<ReadonlyArray<{ ns: string; ip: string }>>, bridges: ReadonlyArray<{ ns: string; ip: string }> = []): Promise<void> {
    const all = groups.flat()
    const jobs: Promise<void>[] = []
    for (const g of groups) {
      const inside = new Set(g.map((h) => h.ip))
      const others = all.filter((h) => !inside.has(h.ip)).map((h) => h.ip)
      for (const h of g) jobs.push(this.#setBlocked(h.ns, others))
    }
    for (const b of bridges) jobs.push(this.#setBlocked(b.ns, []))
    await Promise.all(jobs)
  }

  async linkDown(ns: string): Promise<void> {
    this.#down.add(ns)
    await exec(['ip', '-n', ns, 'link', 'set', 'eth0', 'down'])
  }

  async slow(ns: string, link: SlowLink): Promise<void> {
    this.#slow.set(ns, link)
    if (await netemAvailable(this.run, ns)) {
      await tc(ns, ['qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${link.delayMs}ms`, `${Math.round(link.delayMs / 2)}ms`, 'loss', `${link.lossPct}%`, 'reorder', `${100 - link.reorderPct}%`])
      return
    }
    // The narrow class's rate makes a 1 kB packet wait about delayMs behind an empty queue.
    const kbit = Math.max(8, Math.round((8 * 1000) / link.delayMs))
    await tc(ns, ['qdisc', 'replace', 'dev', 'eth0', 'root', 'handle', '1:', 'htb', 'default', '10', 'r2q', '1000'])
    await tc(ns, ['class', 'replace', 'dev', 'eth0', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1gbit'])
    await tc(ns, ['class', 'replace', 'dev', 'eth0', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', `${kbit}kbit`, 'ceil', `${kbit}kbit`])
    await tc(ns, ['qdisc', 'replace', 'dev', 'eth0', 'parent', '1:20', 'pfifo', 'limit', '100'])
    await this.#apply(ns)
  }

  /** Removes every fault from every host. */
  async healAll(): Promise<void> {
    const hosts = [...this.run.hosts.values()].filter((h) => h.name !== 'client')
    this.#blocked.clear()
    const slow = [...this.#slow.keys()]
    this.#slow.clear()
    const down = [...this.#down]
    this.#down.clear()
    await Promise.all([
      ...hosts.map((h) => this.#apply(h.ns)),
      ...slow.map((ns) => tc(ns, ['qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => {})),
      ...down.map((ns) => exec(['ip', '-n', ns, 'link', 'set', 'eth0', 'up'])),
    ])
  }

  /** Whether any fault is in force. */
  get active(): boolean {
    return [...this.#blocked.values()].some((b) => b.length > 0) || this.#slow.size > 0 || this.#down.size > 0
  }

  async #setBlocked(ns: string, ips: string[]): Promise<void> {
    this.#blocked.set(ns, ips)
    await this.#apply(ns)
  }

  /** Rebuilds the namespace's `chaos` table from the recorded state. */
  async #apply(ns: string): Promise<void> {
    const blocked = this.#blocked.get(ns) ?? []
    const slow = this.#slow.get(ns)
    const lines = ['table inet chaos {}', 'delete table inet chaos', 'table inet chaos {']
    lines.push('  chain input { type filter hook input priority -10; policy accept;')
    if (blocked.length > 0) lines.push(`    ip saddr { ${blocked.join(', ')} } drop`)
    lines.push('  }')
    lines.push('  chain output { type filter hook output priority -10; policy accept;')
    if (blocked.length > 0) lines.push(`    ip daddr { ${blocked.join(', ')} } drop`)
    if (slow && !netem) {
      if (slow.lossPct > 0) lines.push(`    numgen random mod 100 < ${slow.lossPct} drop`)
      if (slow.reorderPct > 0) lines.push(`    meta priority set numgen random mod 100 map { 0-${slow.reorderPct - 1} : 1:20, ${slow.reorderPct}-99 : 1:10 }`)
    }
    lines.push('  }', '}')
    await nft(ns, lines.join('\n') + '\n')
  }
}
