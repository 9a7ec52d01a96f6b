/**
 * The test side of net.sh: a run of test hosts in network namespaces, named hft-<pid>-<tag>-<host>,
 * that is always removed: at teardown, on SIGINT/SIGTERM/SIGHUP, and at process exit (synchronously),
 * whichever comes first. A run left behind by a process that died without any of those (SIGKILL)
 * is removed by the next run's sweep, which deletes only runs whose owner process is gone.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createInterface } from 'node:readline'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const NET_SH = `${HERE}net.sh`
const ENSURE_TOOLS = `${HERE}ensure-tools.sh`

/** Set to 1 to skip the network-namespace tests on a machine that cannot create namespaces. Never set in CI. */
export const OPT_OUT_ENV = 'HOLDFAST_SKIP_NETNS'

/**
 * Runs `fn` as the subtest `name` when network namespaces can be created here. Otherwise the file
 * fails with the reason, unless OPT_OUT_ENV=1 opts out on purpose (then it plans nothing).
 * `what` names the test in that message ("The VIP test").
 */
export function netnsTest(t: Test, what: string, name: string, fn: (t: Test) => Promise<void>): void {
  const unavailable = netnsUnavailable()
  if (unavailable === undefined) {
    t.test(name, fn)
  } else if (process.env[OPT_OUT_ENV] === '1') {
    t.comment(`SKIPPED: network namespaces are unavailable here (${unavailable}); ${OPT_OUT_ENV}=1 opted out`)
    t.plan(0, `${OPT_OUT_ENV}=1: network namespaces unavailable`)
  } else {
    t.fail(
      `${what} needs Linux network namespaces and cannot create them here: ${unavailable}. ` +
        `Run it as root (CAP_NET_ADMIN and CAP_SYS_ADMIN), or set ${OPT_OUT_ENV}=1 to skip it on purpose on a machine that cannot.`,
    )
  }
}

/**
 * Installs the tools if missing and checks that namespaces can be created. Returns undefined when
 * the tests can run, or the reason they cannot.
 */
export function netnsUnavailable(): string | undefined {
  const tools = spawnSync('bash', [ENSURE_TOOLS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 })
  if (tools.status !== 0) return `test/netns/ensure-tools.sh failed (${tools.status ?? tools.signal}): ${tools.stderr.trim().split('\n').slice(-5).join(' | ')}`
  const check = spawnSync('bash', [NET_SH, 'check'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
  if (check.status !== 0) return check.stderr.trim() || `net.sh check failed (${check.status ?? check.signal})`
  return undefined
}

/** Deletes namespaces of earlier runs whose owner process is gone. */
export function sweepStale(): void {
  execFileSync('bash', [NET_SH, 'sweep'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 })
}

const live = new Set<NetnsRun>()
let hooked = false

/** Removes every live run synchronously: the last resort on a signal or at exit. */
function removeAllNow(): void {
  for (const run of live) run.removeSync()
}

function hookProcess(): void {
  if (hooked) return
  hooked = true
  process.on('exit', removeAllNow)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      removeAllNow()
      // Die of the same signal, as if we had not caught it.
      process.kill(process.pid, sig)
    })
  }
}

/** One host of a run. */
export interface NetnsHost {
  /** Its short name ('n1', 'client'). */
  readonly name: string
  /** Its namespace. */
  readonly ns: string
  /** Its address on the bridge, without the prefix length. */
  readonly ip: string
}

/** A set of hosts on one bridge, in namespaces of their own. */
export class NetnsRun {
  readonly prefix: string
  readonly hosts: ReadonlyMap<string, NetnsHost>
  /** The bridge's address, in the switch namespace PREFIX-sw. */
  readonly bridgeIp: string
  readonly switchNs: string
  #removed = false
  readonly #cleanups: Array<() => void> = []

  private constructor(prefix: string, hosts: Map<string, NetnsHost>, bridgeIp: string) {
    this.prefix = prefix
    this.hosts = hosts
    this.bridgeIp = bridgeIp
    this.switchNs = `${prefix}-sw`
  }

  /**
   * Creates the hosts: `{ n1: '10.77.0.11', ... }` on 10.77.0.0/24, the bridge at 10.77.0.1 in
   * the switch namespace. Cleanup hooks are in place before the first namespace exists.
   */
  static create(hosts: Record<string, string>, { prefixLen = 24, bridgeIp = '10.77.0.1' } = {}): NetnsRun {
    const prefix = `hft-${process.pid}-${randomBytes(3).toString('hex')}`
    const map = new Map<string, NetnsHost>(Object.entries(hosts).map(([name, ip]) => [name, { name, ns: `${prefix}-${name}`, ip }]))
    const run = new NetnsRun(prefix, map, bridgeIp)
    hookProcess()
    live.add(run)
    const specs = [...map.values()].map((h) => `${h.name}=${h.ip}/${prefixLen}`)
    try {
      execFileSync('bash', [NET_SH, 'up', prefix, ...specs], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, BRIDGE_ADDR: `${bridgeIp}/${prefixLen}` },
        timeout: 60_000,
      })
    } catch (err) {
      run.removeSync()
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? ''
      throw new Error(`net.sh up failed: ${stderr.trim() || (err as Error).message}`)
    }
    return run
  }

  host(name: string): NetnsHost {
    const h = this.hosts.get(name)
    if (!h) throw new Error(`no host ${name}`)
    return h
  }

  /** Spawns `argv` inside a namespace (`ip netns exec` execs it, so the child's pid is the program's). */
  spawnIn(ns: string, argv: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', ns, ...argv], options)
  }

  /** Runs `ip -n NS ARGS...`; resolves with stdout, rejects on a non-zero exit. */
  ip(ns: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('ip', ['-n', ns, ...args], { encoding: 'utf8', timeout: 5_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`ip -n ${ns} ${args.join(' ')}: ${stderr.trim() || err.message}`))
        else resolve(stdout)
      })
    })
  }

  /** Registers a synchronous cleanup (temporary directories, say) that removeSync() runs too, also on a signal. */
  onRemove(fn: () => void): void {
    this.#cleanups.push(fn)
  }

  /** Removes the run: ends processes left inside its namespaces, then deletes them. Idempotent. */
  removeSync(): void {
    if (this.#removed) return
    this.#removed = true
    live.delete(this)
    for (const fn of this.#cleanups.splice(0)) {
      try {
        fn()
      } catch (err) {
        process.stderr.write(`cleanup of ${this.prefix} failed: ${(err as Error).message}\n`)
      }
    }
    try {
      execFileSync('bash', [NET_SH, 'down', this.prefix], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 })
    } catch (err) {
      process.stderr.write(`netns cleanup of ${this.prefix} failed: ${(err as Error).message}\n`)
    }
  }

  /** The namespaces of this run that still exist (for the cleanup assertion). */
  remaining(): string[] {
    const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    return out
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${this.prefix}-`))
  }
}

/** One look at the addresses of a device in several namespaces. Times are wall-clock ms. */
export interface AddressSample {
  start: number
  end: number
  /** `ip -o addr show dev DEVICE` output per namespace. */
  outputs: Map<string, string>
}

/**
 * Samples `ip -o addr show dev DEVICE` in each namespace, one after the other, then waits
 * `everyMs`, from a bash loop: no process start per sample but the `ip` runs themselves, so the
 * cadence holds on a loaded machine better than spawning from Node. The loop ends when its stdin
 * closes, so it cannot outlive this process, however this process ends.
 */
export function sampleAddresses(namespaces: readonly string[], device: string, everyMs: number, onSample: (s: AddressSample) => void): { stop(): Promise<void>; error(): string | undefined } {
  const script = [
    'dev=$1; every=$2; shift 2',
    'while :; do',
    '  s=$EPOCHREALTIME',
    '  for ns in "$@"; do printf \'>%s\\n\' "$ns"; ip -n "$ns" -o addr show dev "$dev" 2>&1 || printf \'!%s\\n\' "$ns"; done',
    '  printf \'@%s %s\\n\' "$s" "$EPOCHREALTIME"',
    // A timeout (status > 128) is the pause; end of input (the test is gone) ends the loop.
    '  read -r -t "$every" _; rc=$?; [ "$rc" -gt 128 ] || exit 0',
    'done',
  ].join('\n')
  const child = spawn('bash', ['-c', script, 'sampler', device, (everyMs / 1000).toFixed(3), ...namespaces], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, LC_ALL: 'C' },
  })
  let failure: string | undefined
  let outputs = new Map<string, string>()
  let current: string | undefined
  const lines = createInterface({ input: child.stdout! })
  lines.on('line', (line) => {
    if (line.startsWith('>')) {
      current = line.slice(1)
      outputs.set(current, '')
    } else if (line.startsWith('!')) {
      failure ??= `ip -n ${line.slice(1)} -o addr show dev ${device} failed: ${outputs.get(line.slice(1))?.trim()}`
    } else if (line.startsWith('@')) {
      const [start, end] = line.slice(1).split(' ').map((x) => Number(x) * 1000)
      onSample({ start: start!, end: end!, outputs })
      outputs = new Map()
      current = undefined
    } else if (current !== undefined) {
      outputs.set(current, `${outputs.get(current)}${line}\n`)
    }
  })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  return {
    async stop() {
      child.stdin!.end()
      await exited
    },
    error: () => failure,
  }
}
