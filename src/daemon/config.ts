/**
 * The configuration of `holdfast start`: flags, then HOLDFAST_* environment variables, then a JSON
 * config file (--config), then what the data directory remembers from earlier starts, then
 * defaults. The first start records the settings in `<dataDir>/daemon.json`, so a restart needs
 * nothing but --data-dir. Every problem is one ConfigError naming the setting; nothing is
 * started or written until the whole configuration is valid.
 */
import { readFile, stat, writeFile, rename, mkdir } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { DEFAULT_TICK_MS } from '../options.js'
import { DEFAULT_VIP_LIFETIME_SEC } from '../vip/manager.js'

/** A configuration problem: the message is one line naming the setting. The command exits 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** The effective configuration of one daemon. */
export interface StartConfig {
  readonly dataDir: string
  readonly cluster: string
  readonly secretFile: string
  /** The secret's bytes, read from secretFile. */
  readonly secret: Uint8Array
  readonly http: HostPort
  /** The base URL other nodes and clients are told to use for this node. */
  readonly advertiseUrl: string
  readonly bootstrap: readonly HostPort[]
  /** The local address this node's DHT binds to (127.0.0.1 when every bootstrap is on loopback). */
  readonly dhtHost: string | undefined
  readonly dhtPort: number | undefined
  /** Create the cluster with this node as its only voter (ignored once the data dir holds a cluster). */
  readonly init: boolean
  /** Learners are promoted automatically until the cluster has this many voters (set at --init). */
  readonly voters: number
  /** Stay a learner: never promoted automatically. */
  readonly learner: boolean
  readonly tokenFile: string | undefined
  readonly token: string | undefined
  readonly maxValueBytes: number
  readonly tickMs: number | undefined
  readonly electionTicks: number | undefined
  readonly vip: { readonly address: string; readonly device: string } | undefined
}

type Kind = 'string' | 'int' | 'bool' | 'hostport' | 'hostports' | 'path'

interface OptionSpec {
  readonly name: string
  readonly kind: Kind
  readonly arg?: string
  readonly help: string
  /** Remembered in daemon.json for restarts. */
  readonly remembered: boolean
}

/** Every option of `holdfast start`, in help order. The env name is HOLDFAST_ + NAME_IN_CAPS. */
export const START_OPTIONS: readonly OptionSpec[] = [
  { name: 'data-dir', kind: 'path', arg: 'DIR', help: 'data directory (LMDB files, identity key, daemon.json); required', remembered: false },
  { name: 'cluster', kind: 'string', arg: 'NAME', help: 'cluster name (first start)', remembered: true },
  { name: 'secret-file', kind: 'path', arg: 'FILE', help: 'file holding the cluster secret, at least 16 bytes (first start)', remembered: true },
  { name: 'http', kind: 'hostport', arg: 'HOST:PORT', help: 'HTTP API address (default 127.0.0.1:8080)', remembered: true },
  { name: 'advertise-url', kind: 'string', arg: 'URL', help: 'base URL given to peers and clients (default http://HOST:PORT of --http)', remembered: true },
  { name: 'bootstrap', kind: 'hostports', arg: 'HOST:PORT,...', help: 'DHT bootstrap nodes (see `holdfast dht`); default: the public DHT', remembered: true },
  { name: 'dht-host', kind: 'string', arg: 'ADDR', help: 'address the DHT binds to (default 127.0.0.1 when every bootstrap is on loopback)', remembered: true },
  { name: 'dht-port', kind: 'int', arg: 'PORT', help: 'UDP port the DHT binds to (default: any)', remembered: true },
  { name: 'init', kind: 'bool', help: 'create the cluster with this node as its first voter (exactly one node, once)', remembered: false },
  { name: 'voters', kind: 'int', arg: 'N', help: 'promote learners until the cluster has N voters (with --init; default 3)', remembered: true },
  { name: 'learner', kind: 'bool', help: 'stay a learner: never promoted automatically', remembered: true },
  { name: 'token-file', kind: 'path', arg: 'FILE', help: 'file holding a bearer token required by the HTTP API (except health and leader-check)', remembered: true },
  { name: 'max-value-bytes', kind: 'int', arg: 'N', help: 'largest value a PUT accepts (default 1048576)', remembered: true },
  { name: 'tick-ms', kind: 'int', arg: 'MS', help: 'Raft tick (default 100)', remembered: true },
  { name: 'election-ticks', kind: 'int', arg: 'N', help: 'election timeout in ticks, randomized up to twice that (default 10)', remembered: true },
  { name: 'vip', kind: 'string', arg: 'CIDR', help: 'virtual IP held by the acting node, e.g. 10.0.0.100/24 (needs --vip-device, root; raises the default election timeout above 3 s)', remembered: true },
  { name: 'vip-device', kind: 'string', arg: 'DEV', help: 'network device for --vip', remembered: true },
  { name: 'config', kind: 'path', arg: 'FILE', help: 'JSON file with any of these options (keys as the flag names)', remembered: false },
]

export const DEFAULT_HTTP: HostPort = { host: '127.0.0.1', port: 8080 }
export const DEFAULT_VOTERS = 3
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
/** The record of earlier starts in the data directory. */
export const REMEMBERED_FILE = 'daemon.json'
const MIN_SECRET_BYTES = 16
/** How long a VIP outlives its holder's last refresh at most: its lifetime plus the kernel's rounding. */
const VIP_EXPIRY_MS = DEFAULT_VIP_LIFETIME_SEC * 1000 + 1000
const MAX_CLUSTER_NAME = 128

/** The environment variable of an option: --secret-file → HOLDFAST_SECRET_FILE. */
export function envName(option: string): string {
  return 'HOLDFAST_' + option.toUpperCase().replace(/-/g, '_')
}

/** The help text of `holdfast start`. */
export function startHelp(): string {
  const rows = START_OPTIONS.map((o) => [`--${o.name}${o.arg ? ' ' + o.arg : ''}`, o.help])
  const width = Math.max(...rows.map((r) => r[0]!.length))
  return [
    'Usage: holdfast start --data-dir DIR [options]',
    '',
    'Runs a holdfast node with its HTTP API. The first node of a cluster is started once with --init;',
    'every other node started with the same --cluster and --secret-file joins it as a learner and is',
    'promoted to voter once caught up, until the cluster has --voters voters. A restart needs only',
    '--data-dir. SIGTERM hands leadership over, releases the VIP and exits 0.',
    '',
    'Options (flags win over HOLDFAST_* environment variables, which win over --config, which wins',
    'over what the data directory remembers from earlier starts):',
    ...rows.map(([f, h]) => `  ${f!.padEnd(width)}  ${h}`),
    '  --help' + ' '.repeat(Math.max(2, width - 4)) + 'this text',
    '',
    'Exit codes: 0 stopped by SIGTERM/SIGINT, 1 failed at run time, 2 invalid configuration.',
  ].join('\n')
}

type Raw = Record<string, string | boolean>

/** Splits argv into option values; unknown flags and stray arguments are errors. */
export function parseFlags(args: readonly string[], specs: readonly OptionSpec[]): Raw {
  const byName = new Map(specs.map((s) => [s.name, s]))
  const out: Raw = {}
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument "${a}"`)
    const eq = a.indexOf('=')
    const name = a.slice(2, eq < 0 ? undefined : eq)
    const spec = byName.get(name)
    if (!spec) throw new ConfigError(`unknown option --${name}`)
    if (name in out) throw new ConfigError(`--${name} given twice`)
    if (spec.kind === 'bool') {
      if (eq >= 0) out[name] = boolValue(`--${name}`, a.slice(eq + 1))
      else out[name] = true
      continue
    }
    let v: string | undefined
    if (eq >= 0) v = a.slice(eq + 1)
    else {
      v = args[i + 1]
      if (v === undefined || v.startsWith('--')) throw new ConfigError(`--${name} needs a value (${spec.arg ?? 'VALUE'})`)
      i++
    }
    out[name] = v
  }
  return out
}

function fromEnv(env: NodeJS.ProcessEnv, specs: readonly OptionSpec[]): Raw {
  const out: Raw = {}
  for (const s of specs) {
    const v = env[envName(s.name)]
    if (v === undefined || v === '') continue
    out[s.name] = s.kind === 'bool' ? boolValue(envName(s.name), v) : v
  }
  return out
}

function boolValue(what: string, v: string): boolean {
  if (/^(1|true|yes|on)$/i.test(v)) return true
  if (/^(0|false|no|off)$/i.test(v)) return false
  throw new ConfigError(`${what}: expected true or false, got "${v}"`)
}

/** Reads a JSON object of options from `file`, keys as flag names; values as strings, numbers or booleans. */
async function fromJsonFile(file: string, what: string, specs: readonly OptionSpec[]): Promise<Raw> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`${what} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${what} ${file}: not valid JSON (${(err as Error).message})`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`${what} ${file}: expected a JSON object`)
  const byName = new Map(specs.map((s) => [s.name, s]))
  const out: Raw = {}
  for (const [k, v] of Object.entries(data)) {
    const spec = byName.get(k)
    if (!spec || k === 'config') throw new ConfigError(`${what} ${file}: unknown option "${k}"`)
    if (spec.kind === 'bool') {
      if (typeof v !== 'boolean') throw new ConfigError(`${what} ${file}: "${k}" must be true or false`)
      out[k] = v
    } else if (spec.kind === 'hostports' && Array.isArray(v)) {
      out[k] = v.map(String).join(',')
    } else if (typeof v === 'string' || typeof v === 'number') {
      out[k] = String(v)
    } else {
      throw new ConfigError(`${what} ${file}: "${k}" must be a string or number`)
    }
  }
  return out
}

/**
 * Resolves the configuration of `holdfast start`. Reads the config file, the remembered settings,
 * the secret and the token; writes nothing (see rememberConfig).
 */
export async function loadStartConfig(args: readonly string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<StartConfig> {
  const flags = parseFlags(args, START_OPTIONS)
  const envRaw = fromEnv(env, START_OPTIONS)
  const configFile = (flags['config'] ?? envRaw['config']) as string | undefined
  const fileRaw = configFile ? await fromJsonFile(resolve(cwd, configFile), 'config file', START_OPTIONS) : {}
  const dataDirRaw = flags['data-dir'] ?? envRaw['data-dir'] ?? fileRaw['data-dir']
  if (typeof dataDirRaw !== 'string' || dataDirRaw === '') throw new ConfigError('--data-dir is required')
  const dataDir = resolve(cwd, dataDirRaw)
  const remembered = await readRemembered(dataDir)
  const raw: Raw = { ...remembered, ...fileRaw, ...envRaw, ...flags }

  const str = (k: string): string | undefined => (raw[k] === undefined ? undefined : String(raw[k]))
  const cluster = str('cluster')
  if (cluster === undefined) throw new ConfigError('--cluster is required on the first start (the data directory does not remember one)')
  if (cluster.length === 0 || cluster.length > MAX_CLUSTER_NAME || /[\u0000-\u001f]/.test(cluster)) throw new ConfigError(`--cluster: expected 1-${MAX_CLUSTER_NAME} printable characters`)
  if (remembered['cluster'] !== undefined && remembered['cluster'] !== cluster) {
    throw new ConfigError(`--cluster "${cluster}" differs from "${String(remembered['cluster'])}" that ${join(dataDir, REMEMBERED_FILE)} belongs to`)
  }
  const secretFileRaw = str('secret-file')
  if (secretFileRaw === undefined) throw new ConfigError('--secret-file is required on the first start (the data directory does not remember one)')
  const secretFile = resolve(cwd, secretFileRaw)
  const secret = await readSecretFile('--secret-file', secretFile, MIN_SECRET_BYTES)

  const http = raw['http'] === undefined ? DEFAULT_HTTP : hostPort('--http', String(raw['http']), true)
  const advertiseUrl = str('advertise-url') ?? `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}`
  checkUrl('--advertise-url', advertiseUrl)
  const bootstrap = raw['bootstrap'] === undefined ? [] : String(raw['bootstrap']).split(',').filter((s) => s.trim() !== '').map((s) => hostPort('--bootstrap', s.trim(), false))
  const dhtHostRaw = str('dht-host')
  if (dhtHostRaw !== undefined && isIP(dhtHostRaw) === 0) throw new ConfigError(`--dht-host: expected an IP address, got "${dhtHostRaw}"`)
  const dhtHost = dhtHostRaw ?? (bootstrap.length > 0 && bootstrap.every((b) => isLoopback(b.host)) ? '127.0.0.1' : undefined)
  const dhtPort = intOption(raw, 'dht-port', 0, 65535)

  const init = raw['init'] === true
  const learner = raw['learner'] === true
  if (init && learner) throw new ConfigError('--init and --learner exclude each other: the node that creates the cluster is its first voter')
  const voters = intOption(raw, 'voters', 1, 15) ?? DEFAULT_VOTERS

  const tokenFileRaw = str('token-file')
  const tokenFile = tokenFileRaw === undefined ? undefined : resolve(cwd, tokenFileRaw)
  const token = tokenFile === undefined ? undefined : Buffer.from(await readSecretFile('--token-file', tokenFile, 8)).toString('utf8').trim()
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new ConfigError('--token-file: the token must be printable ASCII without spaces')

  const maxValueBytes = intOption(raw, 'max-value-bytes', 1, 64 * 1024 * 1024) ?? DEFAULT_MAX_VALUE_BYTES
  const tickMs = intOption(raw, 'tick-ms', 1, 10_000)
  let electionTicks = intOption(raw, 'election-ticks', 3, 1000)

  const vipAddress = str('vip')
  const vipDevice = str('vip-device')
  if ((vipAddress === undefined) !== (vipDevice === undefined)) throw new ConfigError('--vip and --vip-device go together')
  if (vipAddress !== undefined) {
    const [ip, len, more] = vipAddress.split('/')
    const bits = isIP(ip ?? '')
    if (bits === 0 || len === undefined || more !== undefined || !/^\d+$/.test(len) || Number(len) > (bits === 4 ? 32 : 128)) throw new ConfigError(`--vip: expected an address with a prefix length (10.0.0.100/24), got "${vipAddress}"`)
    if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(vipDevice!)) throw new ConfigError(`--vip-device: "${vipDevice}" is not a network device name`)
    // A SIGKILLed holder's address expires by itself VIP_EXPIRY_MS after its last refresh; no
    // other node may be elected (and add the address) before that, so the shortest election
    // timeout must be longer.
    const tick = tickMs ?? DEFAULT_TICK_MS
    const needed = Math.floor(VIP_EXPIRY_MS / tick) + 1
    if (electionTicks === undefined) electionTicks = needed
    else if (electionTicks * tick <= VIP_EXPIRY_MS) {
      throw new ConfigError(`--vip needs an election timeout over ${VIP_EXPIRY_MS} ms (the VIP's ${DEFAULT_VIP_LIFETIME_SEC} s lifetime plus 1 s of kernel rounding): use --election-ticks ${needed} or more with --tick-ms ${tick}`)
    }
  }

  return {
    dataDir, cluster, secretFile, secret, http, advertiseUrl, bootstrap, dhtHost, dhtPort, init, voters, learner,
    tokenFile, token, maxValueBytes, tickMs, electionTicks,
    vip: vipAddress === undefined ? undefined : { address: vipAddress, device: vipDevice! },
  }
}

/** Records the settings a restart should reuse in `<dataDir>/daemon.json` (written atomically). */
export async function rememberConfig(config: StartConfig): Promise<void> {
  const out: Record<string, string | number | boolean> = {
    cluster: config.cluster,
    'secret-file': config.secretFile,
    http: `${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${config.http.port}`,
    'advertise-url': config.advertiseUrl,
    voters: config.voters,
    learner: config.learner,
    'max-value-bytes': config.maxValueBytes,
  }
  if (config.bootstrap.length > 0) out['bootstrap'] = config.bootstrap.map((b) => `${b.host}:${b.port}`).join(',')
  if (config.dhtHost !== undefined) out['dht-host'] = config.dhtHost
  if (config.dhtPort !== undefined) out['dht-port'] = config.dhtPort
  if (config.tokenFile !== undefined) out['token-file'] = config.tokenFile
  if (config.tickMs !== undefined) out['tick-ms'] = config.tickMs
  if (config.electionTicks !== undefined) out['election-ticks'] = config.electionTicks
  if (config.vip) {
    out['vip'] = config.vip.address
    out['vip-device'] = config.vip.device
  }
  await mkdir(config.dataDir, { recursive: true })
  const file = join(config.dataDir, REMEMBERED_FILE)
  await writeFile(file + '.tmp', JSON.stringify(out, null, 2) + '\n', { mode: 0o600 })
  await rename(file + '.tmp', file)
}

async function readRemembered(dataDir: string): Promise<Raw> {
  const file = join(dataDir, REMEMBERED_FILE)
  try {
    await stat(file)
  } catch {
    return {}
  }
  const remembered = START_OPTIONS.filter((o) => o.remembered)
  return fromJsonFile(file, 'remembered settings', remembered)
}

async function readSecretFile(what: string, file: string, minBytes: number): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new ConfigError(`${what} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  // A trailing newline from `echo` or an editor is not part of the secret.
  const trimmed = bytes.subarray(0, bytes.length - (bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? 2 : 1) : 0))
  if (trimmed.length < minBytes) throw new ConfigError(`${what} ${file}: holds ${trimmed.length} bytes, at least ${minBytes} are needed`)
  return new Uint8Array(trimmed)
}

function intOption(raw: Raw, name: string, min: number, max: number): number | undefined {
  const v = raw[name]
  if (v === undefined) return undefined
  const s = String(v)
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new ConfigError(`--${name}: expected an integer from ${min} to ${max}, got "${s}"`)
  return Number(s)
}

/** Parses HOST:PORT or [IPv6]:PORT. */
export function hostPort(what: string, s: string, allowZeroPort: boolean): HostPort {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s)
  const port = m ? Number(m[2]) : NaN
  if (!m || port > 65535 || (!allowZeroPort && port === 0)) throw new ConfigError(`${what}: expected HOST:PORT, got "${s}"`)
  const host = m[1]!
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]{1,253}$/.test(host)) throw new ConfigError(`${what}: "${host}" is not a host name or IP address`)
  return { host, port }
}

function checkUrl(what: string, s: string): void {
  let u: URL
  try {
    u = new URL(s)
  } catch {
    throw new ConfigError(`${what}: "${s}" is not a URL`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${what}: expected an http:// or https:// URL, got "${s}"`)
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}
