import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError, envName, hostPort, loadStartConfig, rememberConfig, startHelp } from '../../src/daemon/config.js'

const dir = await mkdtemp(join(tmpdir(), 'holdfast-config-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const secretFile = join(dir, 'secret')
await writeFile(secretFile, 'sixteen bytes at least, yes\n')
const base = ['--data-dir', join(dir, 'data'), '--cluster', 'c1', '--secret-file', secretFile]

async function refused(t: Test, args: string[], env: NodeJS.ProcessEnv, pattern: RegExp): Promise<void> {
  const err = await loadStartConfig(args, env, dir).then(() => undefined, (e: unknown) => e)
  t.type(err, ConfigError, `refused: ${args.join(' ')} ${JSON.stringify(env)}`)
  t.match((err as Error).message, pattern)
  t.notOk((err as Error).message.includes('\n'), 'one line')
}

t.test('defaults and flags', async (t) => {
  const c = await loadStartConfig([...base, '--bootstrap', '127.0.0.1:49737', '--init', '--voters', '5'], {}, dir)
  t.equal(c.cluster, 'c1')
  t.same(Buffer.from(c.secret).toString(), 'sixteen bytes at least, yes', 'trailing newline dropped')
  t.same(c.http, { host: '127.0.0.1', port: 8080 })
  t.equal(c.advertiseUrl, 'http://127.0.0.1:8080')
  t.same(c.bootstrap, [{ host: '127.0.0.1', port: 49737 }])
  t.equal(c.dhtHost, '127.0.0.1', 'loopback bootstrap → DHT bound to loopback')
  t.equal(c.init, true)
  t.equal(c.voters, 5)
  t.equal(c.learner, false)
  t.equal(c.token, undefined)
  t.equal(c.vip, undefined)
})

t.test('precedence: flags over environment over config file', async (t) => {
  const file = join(dir, 'conf.json')
  await writeFile(file, JSON.stringify({ http: '127.0.0.1:1111', voters: 7, 'tick-ms': 20, bootstrap: ['10.0.0.1:1', '10.0.0.2:2'] }))
  const env = { [envName('http')]: '127.0.0.1:2222', [envName('tick-ms')]: '30' }
  const c = await loadStartConfig([...base, '--config', file, '--http', '127.0.0.1:3333'], env, dir)
  t.same(c.http, { host: '127.0.0.1', port: 3333 }, 'flag wins')
  t.equal(c.tickMs, 30, 'environment beats the file')
  t.equal(c.voters, 7, 'file beats the default')
  t.equal(c.bootstrap.length, 2)
  t.equal(c.dhtHost, undefined, 'not loopback: DHT binds where hyperdht chooses')
})

t.test('a restart needs only the data dir', async (t) => {
  const dataDir = join(dir, 'remember')
  const first = await loadStartConfig(['--data-dir', dataDir, '--cluster', 'c2', '--secret-file', secretFile, '--http', '127.0.0.1:4444', '--voters', '5', '--learner'], {}, dir)
  await rememberConfig(first)
  const again = await loadStartConfig(['--data-dir', dataDir], {}, dir)
  t.equal(again.cluster, 'c2')
  t.same(again.http, first.http)
  t.equal(again.learner, true)
  t.equal(again.voters, 5)
  t.equal(again.init, false, '--init is not remembered')
  const stored = JSON.parse(await readFile(join(dataDir, 'daemon.json'), 'utf8'))
  t.notOk('secret' in stored, 'the secret itself is not copied into the data dir')
  await refused(t, ['--data-dir', dataDir, '--cluster', 'other'], {}, /differs from "c2"/)
  await writeFile(join(dataDir, 'daemon.json'), '{ not json')
  await refused(t, ['--data-dir', dataDir], {}, /not valid JSON/)
})

t.test('invalid configuration is one clear line', async (t) => {
  await refused(t, [], {}, /--data-dir is required/)
  await refused(t, ['--data-dir', join(dir, 'x')], {}, /--cluster is required/)
  await refused(t, ['--data-dir', join(dir, 'x'), '--cluster', 'c'], {}, /--secret-file is required/)
  await refused(t, [...base, '--bogus'], {}, /unknown option --bogus/)
  await refused(t, [...base, 'stray'], {}, /unexpected argument "stray"/)
  await refused(t, [...base, '--http'], {}, /--http needs a value/)
  await refused(t, [...base, '--http', 'nonsense'], {}, /--http: expected HOST:PORT/)
  await refused(t, [...base, '--http', '127.0.0.1:70000'], {}, /--http: expected HOST:PORT/)
  await refused(t, [...base, '--bootstrap', '127.0.0.1:0'], {}, /--bootstrap: expected HOST:PORT/)
  await refused(t, [...base, '--voters', '0'], {}, /--voters: expected an integer from 1/)
  await refused(t, [...base, '--voters', 'three'], {}, /--voters/)
  await refused(t, [...base, '--init', '--learner'], {}, /exclude each other/)
  await refused(t, [...base, '--vip', '10.0.0.1/24'], {}, /--vip and --vip-device go together/)
  await refused(t, [...base, '--vip', '10.0.0.1', '--vip-device', 'eth0'], {}, /--vip: expected an address with a prefix length/)
  await refused(t, [...base, '--vip', '10.0.0.1/24', '--vip-device', 'eth0; rm -rf /'], {}, /not a network device name/)
  await refused(t, [...base, '--vip', '10.0.0.1/24', '--vip-device', 'eth0', '--election-ticks', '30'], {}, /--vip needs an election timeout over 3000 ms .*: use --election-ticks 31 or more/)
  await refused(t, [...base, '--advertise-url', 'ftp://x'], {}, /--advertise-url/)
  await refused(t, [...base, '--dht-host', 'not-an-ip'], {}, /--dht-host/)
  await refused(t, [...base, '--cluster', 'c1'], {}, /given twice/)
  await refused(t, [...base], { [envName('learner')]: 'maybe' }, /HOLDFAST_LEARNER: expected true or false/)
  const short = join(dir, 'short')
  await writeFile(short, 'tiny\n')
  await refused(t, ['--data-dir', join(dir, 'x'), '--cluster', 'c', '--secret-file', short], {}, /at least 16 are needed/)
  await refused(t, ['--data-dir', join(dir, 'x'), '--cluster', 'c', '--secret-file', join(dir, 'missing')], {}, /cannot read it \(ENOENT\)/)
  const conf = join(dir, 'bad.json')
  await writeFile(conf, JSON.stringify({ nope: 1 }))
  await refused(t, [...base, '--config', conf], {}, /unknown option "nope"/)
  await writeFile(conf, JSON.stringify([1]))
  await refused(t, [...base, '--config', conf], {}, /expected a JSON object/)
})

t.test('a VIP gets an election timeout longer than its expiry', async (t) => {
  const c = await loadStartConfig([...base, '--vip', '10.0.0.1/24', '--vip-device', 'eth0'], {}, dir)
  t.same(c.vip, { address: '10.0.0.1/24', device: 'eth0' })
  t.equal(c.electionTicks, 31, 'default 100 ms ticks: 31 ticks, over 3 s')
  const fast = await loadStartConfig([...base, '--vip', '10.0.0.1/24', '--vip-device', 'eth0', '--tick-ms', '50'], {}, dir)
  t.equal(fast.electionTicks, 61)
  const explicit = await loadStartConfig([...base, '--vip', '10.0.0.1/24', '--vip-device', 'eth0', '--election-ticks', '40'], {}, dir)
  t.equal(explicit.electionTicks, 40, 'an explicit long enough value is kept')
  const none = await loadStartConfig(base, {}, dir)
  t.equal(none.electionTicks, undefined, 'without a VIP the library default stands')
})

t.test('helpers', async (t) => {
  t.same(hostPort('x', '[::1]:80', false), { host: '::1', port: 80 })
  t.equal(envName('secret-file'), 'HOLDFAST_SECRET_FILE')
  for (const flag of ['--data-dir', '--init', '--voters', '--learner', '--vip', '--token-file', '--bootstrap']) t.match(startHelp(), flag)
})
