/**
 * The client subcommands' command lines: options, precedence of flags over the environment,
 * usage errors as one line, help on every subcommand, and how VALUE becomes a JSON value.
 */
import t from 'tap'
import { CLIENT_COMMAND_NAMES, DEFAULT_ENDPOINT, EXIT, parseClientArgs, parseEndpoints, parseValue, type ParsedCommand } from '../../src/cli/client-args.js'
import { runClientCommand } from '../../src/cli/client-commands.js'
import { PassThrough } from 'node:stream'

function run(parsed: ParsedCommand): Extract<ParsedCommand, { kind: 'run' }> {
  if (parsed.kind !== 'run') throw new Error(`expected a runnable command, got ${JSON.stringify(parsed)}`)
  return parsed
}

function usageMessage(parsed: ParsedCommand): string {
  if (parsed.kind !== 'usage') throw new Error(`expected a usage error, got ${JSON.stringify(parsed)}`)
  return parsed.message
}

t.test('VALUE is JSON when it parses, otherwise a string; --string keeps it a string', async (t) => {
  t.equal(parseValue('42', false), 42)
  t.equal(parseValue('true', false), true)
  t.equal(parseValue('null', false), null)
  t.same(parseValue('{"a":[1,2]}', false), { a: [1, 2] })
  t.equal(parseValue('"42"', false), '42', 'a quoted JSON string is that string')
  t.equal(parseValue('hello world', false), 'hello world')
  t.equal(parseValue('{not json', false), '{not json')
  t.equal(parseValue('', false), '')
  t.equal(parseValue('42', true), '42')
  t.equal(parseValue('{"a":1}', true), '{"a":1}')
})

t.test('put KEY VALUE with --if-revision, and put KEY --stdin', async (t) => {
  const p = run(parseClientArgs('put', ['k', '{"x":1}', '--if-revision', '0'], {}))
  t.same(p.operation, { op: 'put', key: 'k', value: { x: 1 }, stdin: false, asString: false, ifRevision: 0 })
  const s = run(parseClientArgs('put', ['k', '--stdin', '--string'], {}))
  t.same(s.operation, { op: 'put', key: 'k', value: undefined, stdin: true, asString: true, ifRevision: undefined })
  const neg = run(parseClientArgs('put', ['k', '--', '-1'], {}))
  t.equal((neg.operation as { value: unknown }).value, -1, 'a value starting with - goes after --')
  t.match(usageMessage(parseClientArgs('put', ['k'], {})), /missing VALUE/)
  t.match(usageMessage(parseClientArgs('put', ['k', 'v', 'w'], {})), /unexpected argument "w"/)
  t.match(usageMessage(parseClientArgs('put', ['k', 'v', '--if-revision', 'x'], {})), /--if-revision must be an integer/)
  t.match(usageMessage(parseClientArgs('put', ['k', '-1'], {})), /Unknown option/)
})

t.test('each command takes its own arguments', async (t) => {
  t.same(run(parseClientArgs('get', ['a/b', '--consistency', 'stale'], {})).operation, { op: 'get', key: 'a/b', consistency: 'stale' })
  t.same(run(parseClientArgs('get', ['a'], {})).operation, { op: 'get', key: 'a', consistency: 'linearizable' })
  t.match(usageMessage(parseClientArgs('get', ['a', '--consistency', 'eventual'], {})), /--consistency must be one of linearizable, lease, stale/)
  t.match(usageMessage(parseClientArgs('get', [], {})), /get: missing KEY/)
  t.match(usageMessage(parseClientArgs('get', [''], {})), /KEY is empty/)
  t.same(run(parseClientArgs('del', ['k'], {})).operation, { op: 'del', key: 'k' })
  t.same(run(parseClientArgs('list', ['--prefix', 'app/', '--limit', '5'], {})).operation, { op: 'list', prefix: 'app/', limit: 5 })
  t.match(usageMessage(parseClientArgs('list', ['--limit', '0'], {})), /--limit must be an integer of at least 1/)
  t.same(run(parseClientArgs('watch', ['--from-revision', '7'], {})).operation, { op: 'watch', prefix: undefined, fromRevision: 7 })
  t.same(run(parseClientArgs('status', [], {})).operation, { op: 'status' })
  t.match(usageMessage(parseClientArgs('status', ['x'], {})), /unexpected argument "x"/)
  t.same(run(parseClientArgs('members', [], {})).operation, { op: 'members' })
  t.same(run(parseClientArgs('members', ['promote', 'ab12'], {})).operation, { op: 'promote', id: 'ab12' })
  t.same(run(parseClientArgs('members', ['remove', 'ab12'], {})).operation, { op: 'remove', id: 'ab12' })
  t.match(usageMessage(parseClientArgs('members', ['kick', 'ab12'], {})), /unknown action "kick"/)
  t.match(usageMessage(parseClientArgs('members', ['demote'], {})), /missing ID/)
  t.same(run(parseClientArgs('transfer', ['ab12'], {})).operation, { op: 'transfer', to: 'ab12' })
  t.match(usageMessage(parseClientArgs('frobnicate', [], {})), /unknown command/)
  t.match(usageMessage(parseClientArgs('list', ['--prefix'], {})), /argument missing/)
})

t.test('common options: flags over the environment over the defaults', async (t) => {
  const d = run(parseClientArgs('status', [], {}))
  t.same(d.common, { endpoints: [DEFAULT_ENDPOINT], token: undefined, tokenFile: undefined, json: false, timeoutMs: undefined })
  const env = { HOLDFAST_ENDPOINTS: 'http://a:1, b:2', HOLDFAST_TOKEN: 'envtoken', HOLDFAST_TIMEOUT: '500' }
  const e = run(parseClientArgs('status', [], env))
  t.same(e.common, { endpoints: ['http://a:1', 'http://b:2'], token: 'envtoken', tokenFile: undefined, json: false, timeoutMs: 500 })
  const f = run(parseClientArgs('status', ['--endpoints', 'http://c:3/', '--token-file', '/tok', '--json', '--timeout', '2000'], env))
  t.same(f.common, { endpoints: ['http://c:3'], token: undefined, tokenFile: '/tok', json: true, timeoutMs: 2000 }, 'a token file flag wins over the token in the environment')
  t.equal(run(parseClientArgs('status', [], { HOLDFAST_TOKEN_FILE: '/t' })).common.tokenFile, '/t')
  t.match(usageMessage(parseClientArgs('status', ['--token', 'a', '--token-file', 'b'], {})), /not both/)
  t.match(usageMessage(parseClientArgs('status', ['--timeout', '0'], {})), /--timeout must be an integer of at least 1/)
  t.match(usageMessage(parseClientArgs('status', [], { HOLDFAST_TIMEOUT: 'soon' })), /HOLDFAST_TIMEOUT must be an integer/)
  t.match(usageMessage(parseClientArgs('status', ['--endpoints', 'ftp://x'], {})), /--endpoints: not an http\(s\) endpoint/)
  t.match(usageMessage(parseClientArgs('status', ['--endpoints', ','], {})), /--endpoints is empty/)
})

t.test('endpoints: host:port gets http://, trailing slashes go, paths stay', async (t) => {
  t.same(parseEndpoints('127.0.0.1:8080,https://x.example/holdfast/', 'e'), ['http://127.0.0.1:8080', 'https://x.example/holdfast'])
  t.throws(() => parseEndpoints('http://a:1/?q=1', 'e'), /no query/)
})

t.test('--help on every subcommand: the usage, the common options and the exit codes, exit 0', async (t) => {
  for (const command of CLIENT_COMMAND_NAMES) {
    const p = parseClientArgs(command, ['--help'], {})
    t.equal(p.kind, 'help', command)
    const text = p.kind === 'help' ? p.text : ''
    t.match(text, new RegExp(`^Usage: holdfast ${command}`), `${command} usage line`)
    t.match(text, /--endpoints/)
    t.match(text, /3 {2}a write was sent but no answer came/)
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    let out = ''
    stdout.on('data', (d: Buffer) => (out += d.toString()))
    const code = await runClientCommand(command, ['-h', '--bogus-is-ignored-after-help'], { stdout, stderr, env: {} })
    // An unknown option is reported even next to --help: parseArgs is strict.
    t.equal(code, EXIT.USAGE, `${command}: an unknown option is a usage error even with -h`)
    t.equal(await runClientCommand(command, ['-h'], { stdout, stderr, env: {} }), EXIT.OK, `${command} -h exits 0`)
    t.match(out, `Usage: holdfast ${command}`)
  }
})

t.test('a usage error is one line on stderr and exit 2; nothing is sent', async (t) => {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let err = ''
  stderr.on('data', (d: Buffer) => (err += d.toString()))
  const code = await runClientCommand('get', [], { stdout, stderr, env: { HOLDFAST_ENDPOINTS: 'http://127.0.0.1:9' } })
  t.equal(code, 2)
  t.equal(err, 'holdfast: get: missing KEY (see holdfast get --help)\n')
  err = ''
  t.equal(await runClientCommand('status', ['--token-file', '/nonexistent/token'], { stdout, stderr, env: {} }), 2)
  t.match(err, /^holdfast: status: cannot read the token file \/nonexistent\/token: ENOENT\n$/)
})
