/**
 * The client subcommands' command lines: options, help texts and exit codes. Pure (no I/O): the
 * token file and stdin are read by client-commands.ts.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { JsonValue } from '../state/commands.js'
import { normalizeEndpoint, type Consistency } from './client.js'

/** Exit codes of the client subcommands. */
export const EXIT = {
  OK: 0,
  /** The daemon refused or failed the request (`error CODE: message` on stderr). */
  API_ERROR: 1,
  /** Bad command line or configuration (one line on stderr). */
  USAGE: 2,
  /** A write was sent but no answer came: it may or may not have taken effect. */
  UNKNOWN_OUTCOME: 3,
} as const

/** The subcommands this module serves. */
export const CLIENT_COMMAND_NAMES = ['get', 'put', 'del', 'list', 'watch', 'status', 'members', 'transfer'] as const
export type ClientCommandName = (typeof CLIENT_COMMAND_NAMES)[number]

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:8080'

/** Options every client subcommand takes. */
export interface CommonOptions {
  readonly endpoints: readonly string[]
  /** The token itself (from --token or HOLDFAST_TOKEN). */
  readonly token: string | undefined
  /** A file holding the token (from --token-file or HOLDFAST_TOKEN_FILE), read before running. */
  readonly tokenFile: string | undefined
  readonly json: boolean
  readonly timeoutMs: number | undefined
}

/** What a command line asks for. */
export type Operation =
  | { readonly op: 'get'; readonly key: string; readonly consistency: Consistency }
  /** `value` is undefined with `stdin`: read it from standard input, then parseValue(). */
  | { readonly op: 'put'; readonly key: string; readonly value: JsonValue | undefined; readonly stdin: boolean; readonly asString: boolean; readonly ifRevision: number | undefined }
  | { readonly op: 'del'; readonly key: string }
  | { readonly op: 'list'; readonly prefix: string | undefined; readonly limit: number | undefined }
  | { readonly op: 'watch'; readonly prefix: string | undefined; readonly fromRevision: number | undefined }
  | { readonly op: 'status' }
  | { readonly op: 'members' }
  | { readonly op: 'promote' | 'demote' | 'remove'; readonly id: string }
  | { readonly op: 'transfer'; readonly to: string }

export type ParsedCommand =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'usage'; readonly message: string }
  | { readonly kind: 'run'; readonly common: CommonOptions; readonly operation: Operation }

type Options = NonNullable<ParseArgsConfig['options']>

const COMMON_OPTIONS: Options = {
  endpoints: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

const COMMAND_OPTIONS: Record<ClientCommandName, Options> = {
  get: { consistency: { type: 'string' } },
  put: { 'if-revision': { type: 'string' }, stdin: { type: 'boolean' }, string: { type: 'boolean' } },
  del: {},
  list: { prefix: { type: 'string' }, limit: { type: 'string' } },
  watch: { prefix: { type: 'string' }, 'from-revision': { type: 'string' } },
  status: {},
  members: {},
  transfer: {},
}

const COMMON_HELP = `Common options:
  --endpoints URL[,URL...]  daemons to ask, tried in order; the leader is found from their answers
                            (env HOLDFAST_ENDPOINTS; default ${DEFAULT_ENDPOINT})
  --token TOKEN             bearer token (env HOLDFAST_TOKEN)
  --token-file FILE         read the bearer token from FILE (env HOLDFAST_TOKEN_FILE)
  --timeout MS              give up after MS milliseconds, retries included (env HOLDFAST_TIMEOUT;
                            default 10000)
  --json                    machine-readable output: one JSON object (watch: one per line)
  -h, --help                this text

Exit codes:
  0  success
  1  the daemon refused or failed the request ("error CODE: message" on stderr)
  2  bad command line or configuration
  3  a write was sent but no answer came: it may or may not have taken effect`

const HELP: Record<ClientCommandName, string> = {
  get: `Usage: holdfast get KEY [--consistency linearizable|lease|stale]

Prints the key's value (a string as itself, other values as JSON); --json prints
{"key","value","revision",...}. A missing key is an error (NOT_FOUND, exit 1).
  --consistency C   linearizable (default) and lease read on the leader; stale reads whichever
                    endpoint answers first, possibly behind`,
  put: `Usage: holdfast put KEY VALUE [--if-revision N] [--string]
       holdfast put KEY --stdin [--if-revision N] [--string]

Writes KEY. VALUE is taken as JSON when it parses as JSON (42, true, null, {"a":1}, "quoted"),
otherwise as a string: \`put k hello\` stores "hello", \`put k 42\` stores the number 42.
A VALUE starting with '-' goes after --: \`holdfast put k -- -1\`.
  --string          store VALUE as a string even if it parses as JSON
  --stdin           read VALUE from standard input (one trailing newline dropped)
  --if-revision N   write only if the key's revision is N (0: only if the key does not exist);
                    otherwise REVISION_MISMATCH (exit 1)`,
  del: `Usage: holdfast del KEY

Deletes KEY.`,
  list: `Usage: holdfast list [--prefix P] [--limit N]

Lists keys with their revisions and values (cut to fit a line; --json for the whole values).
  --prefix P   only keys starting with P
  --limit N    at most N keys`,
  watch: `Usage: holdfast watch [--prefix P] [--from-revision N]

Prints one line per change ("REVISION PUT key = value" or "REVISION DEL key"; --json: one change
object per line) until interrupted (Ctrl-C), then exits 0. When the daemon serving it goes away
(or stays silent for 45 s) the watch continues on another endpoint without losing or repeating
changes; it fails (exit 1) when no endpoint takes it within --timeout.
  --prefix P           only keys starting with P
  --from-revision N    start with the changes of revision N (from history), not only new ones`,
  status: `Usage: holdfast status

Shows the cluster as the first endpoint that answers sees it: term, commit index, the leader and
the acting node, and each member's role, voter flag, reachability and replication lag.`,
  members: `Usage: holdfast members
       holdfast members promote|demote|remove ID

Lists the members, or changes one: promote a learner to voter, demote a voter to learner,
remove a member. ID is a node id or a prefix of exactly one (as the table shows them).`,
  transfer: `Usage: holdfast transfer ID

Hands leadership over to the member ID (a node id or a prefix of exactly one).`,
}

/** The --help text of a client subcommand. */
export function clientHelp(command: ClientCommandName): string {
  return `${HELP[command]}\n\n${COMMON_HELP}`
}

export function isClientCommand(command: string): command is ClientCommandName {
  return (CLIENT_COMMAND_NAMES as readonly string[]).includes(command)
}

/**
 * Parses a client subcommand's arguments (after the command name). Flags take precedence over
 * the environment, which takes precedence over the defaults. Never throws: a bad command line is
 * `{ kind: 'usage', message }` with a one-line message.
 */
export function parseClientArgs(command: string, args: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  if (!isClientCommand(command)) return usage(`unknown command "${command}"`)
  let values: Record<string, string | boolean | undefined>
  let positionals: string[]
  try {
    const parsed = parseArgs({
      args: [...args],
      options: { ...COMMON_OPTIONS, ...COMMAND_OPTIONS[command] },
      allowPositionals: true,
      strict: true,
    })
    values = parsed.values as Record<string, string | boolean | undefined>
    positionals = parsed.positionals
  } catch (err) {
    return usage(`${command}: ${firstLine(err instanceof Error ? err.message : String(err))}`)
  }
  if (values['help'] === true) return { kind: 'help', text: clientHelp(command) }
  try {
    const common = commonOptions(command, values, env)
    const operation = parseOperation(command, values, positionals)
    return { kind: 'run', common, operation }
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message)
    throw err
  }
}

/**
 * A value from the command line or stdin: JSON when it parses, otherwise the text itself;
 * always the text with `asString`.
 */
export function parseValue(text: string, asString: boolean): JsonValue {
  if (asString) return text
  try {
    return JSON.parse(text) as JsonValue
  } catch {
    return text
  }
}

/** The comma (or blank) separated endpoint list, normalised; throws UsageError on a bad one. */
export function parseEndpoints(text: string, origin: string): string[] {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '')
  if (parts.length === 0) throw new UsageError(`${origin} is empty`)
  return parts.map((p) => {
    try {
      return normalizeEndpoint(p)
    } catch (err) {
      throw new UsageError(`${origin}: ${err instanceof Error ? err.message : String(err)}`)
    }
  })
}

class UsageError extends Error {}

function usage(message: string): ParsedCommand {
  return { kind: 'usage', message }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s
}

function str(values: Record<string, string | boolean | undefined>, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

function envStr(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]
  return v === undefined || v === '' ? undefined : v
}

function commonOptions(command: string, values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): CommonOptions {
  const flagEndpoints = str(values, 'endpoints')
  const envEndpoints = envStr(env, 'HOLDFAST_ENDPOINTS')
  const endpoints =
    flagEndpoints !== undefined
      ? parseEndpoints(flagEndpoints, `${command}: --endpoints`)
      : envEndpoints !== undefined
        ? parseEndpoints(envEndpoints, `${command}: HOLDFAST_ENDPOINTS`)
        : [DEFAULT_ENDPOINT]
  const flagToken = str(values, 'token')
  const flagTokenFile = str(values, 'token-file')
  if (flagToken !== undefined && flagTokenFile !== undefined) throw new UsageError(`${command}: give --token or --token-file, not both`)
  let token: string | undefined
  let tokenFile: string | undefined
  if (flagToken !== undefined) token = flagToken
  else if (flagTokenFile !== undefined) tokenFile = flagTokenFile
  else if (envStr(env, 'HOLDFAST_TOKEN') !== undefined) token = envStr(env, 'HOLDFAST_TOKEN')
  else tokenFile = envStr(env, 'HOLDFAST_TOKEN_FILE')
  if (token !== undefined && token.trim() === '') throw new UsageError(`${command}: the token is empty`)
  const timeoutText = str(values, 'timeout') ?? envStr(env, 'HOLDFAST_TIMEOUT')
  const timeoutOrigin = str(values, 'timeout') !== undefined ? '--timeout' : 'HOLDFAST_TIMEOUT'
  const timeoutMs = timeoutText === undefined ? undefined : integer(`${command}: ${timeoutOrigin}`, timeoutText, 1)
  return { endpoints, token: token?.trim(), tokenFile, json: values['json'] === true, timeoutMs }
}

function integer(what: string, text: string, min: number): number {
  const n = /^[0-9]+$/.test(text.trim()) ? Number(text.trim()) : NaN
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${what} must be an integer of at least ${min}, got ${JSON.stringify(text)}`)
  return n
}

function expectPositionals(command: string, positionals: readonly string[], names: readonly string[]): void {
  if (positionals.length < names.length) throw new UsageError(`${command}: missing ${names.slice(positionals.length).join(' ')} (see holdfast ${command} --help)`)
  if (positionals.length > names.length) throw new UsageError(`${command}: unexpected argument ${JSON.stringify(positionals[names.length])} (see holdfast ${command} --help)`)
}

function nonEmpty(command: string, what: string, value: string): string {
  if (value === '') throw new UsageError(`${command}: ${what} is empty`)
  return value
}

const CONSISTENCIES: readonly Consistency[] = ['linearizable', 'lease', 'stale']

function parseOperation(command: ClientCommandName, values: Record<string, string | boolean | undefined>, positionals: readonly string[]): Operation {
  const opt = (name: string): string | undefined => str(values, name)
  switch (command) {
    case 'get': {
      expectPositionals(command, positionals, ['KEY'])
      const consistency = (opt('consistency') ?? 'linearizable') as Consistency
      if (!CONSISTENCIES.includes(consistency)) throw new UsageError(`get: --consistency must be one of ${CONSISTENCIES.join(', ')}, got ${JSON.stringify(opt('consistency'))}`)
      return { op: 'get', key: nonEmpty(command, 'KEY', positionals[0]!), consistency }
    }
    case 'put': {
      const stdin = values['stdin'] === true
      const asString = values['string'] === true
      expectPositionals(command, positionals, stdin ? ['KEY'] : ['KEY', 'VALUE'])
      const ifText = opt('if-revision')
      const ifRevision = ifText === undefined ? undefined : integer('put: --if-revision', ifText, 0)
      const value = stdin ? undefined : parseValue(positionals[1]!, asString)
      return { op: 'put', key: nonEmpty(command, 'KEY', positionals[0]!), value, stdin, asString, ifRevision }
    }
    case 'del':
      expectPositionals(command, positionals, ['KEY'])
      return { op: 'del', key: nonEmpty(command, 'KEY', positionals[0]!) }
    case 'list': {
      expectPositionals(command, positionals, [])
      const limitText = opt('limit')
      return { op: 'list', prefix: opt('prefix'), limit: limitText === undefined ? undefined : integer('list: --limit', limitText, 1) }
    }
    case 'watch': {
      expectPositionals(command, positionals, [])
      const fromText = opt('from-revision')
      return { op: 'watch', prefix: opt('prefix'), fromRevision: fromText === undefined ? undefined : integer('watch: --from-revision', fromText, 1) }
    }
    case 'status':
      expectPositionals(command, positionals, [])
      return { op: 'status' }
    case 'members': {
      if (positionals.length === 0) return { op: 'members' }
      const action = positionals[0]!
      if (action !== 'promote' && action !== 'demote' && action !== 'remove') {
        throw new UsageError(`members: unknown action ${JSON.stringify(action)} (promote, demote or remove)`)
      }
      expectPositionals(`members ${action}`, positionals.slice(1), ['ID'])
      return { op: action, id: nonEmpty(command, 'ID', positionals[1]!) }
    }
    case 'transfer':
      expectPositionals(command, positionals, ['ID'])
      return { op: 'transfer', to: nonEmpty(command, 'ID', positionals[0]!) }
  }
}
