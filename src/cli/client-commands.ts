/**
 * The client subcommands of `holdfast` (get, put, del, list, watch, status, members, transfer):
 * parse the command line (client-args.ts), call the daemons through HoldfastClient, print the
 * answer for people (format.ts) or as JSON (--json), and map the outcome to an exit code (EXIT).
 */
import { readFile } from 'node:fs/promises'
import { EXIT, CLIENT_COMMAND_NAMES, parseClientArgs, parseValue, type CommonOptions, type Operation } from './client-args.js'
import { ClientError, HoldfastClient } from './client.js'
import { formatChange, formatGet, formatList, formatMembers, formatStatus, resolveMemberId, shortId } from './format.js'

/** The subcommands runClientCommand() serves. */
export const CLIENT_COMMANDS: readonly string[] = CLIENT_COMMAND_NAMES

/** Where a client command reads and writes. */
export interface ClientIo {
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
  readonly env: NodeJS.ProcessEnv
  /** For `put --stdin`. @default process.stdin */
  readonly stdin?: NodeJS.ReadableStream | undefined
  /**
   * Stops a running `watch` (which then exits 0). Without it, `watch` stops on SIGINT or SIGTERM
   * of this process.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * Runs one client subcommand with its arguments (those after the command name) and resolves with
 * the exit code (see EXIT): usage errors print one line on stderr; failures print
 * `error CODE: message`. Never rejects.
 */
export async function runClientCommand(command: string, args: readonly string[], io: ClientIo): Promise<number> {
  const parsed = parseClientArgs(command, args, io.env)
  if (parsed.kind === 'help') {
    io.stdout.write(parsed.text + '\n')
    return EXIT.OK
  }
  if (parsed.kind === 'usage') {
    io.stderr.write(`holdfast: ${parsed.message}\n`)
    return EXIT.USAGE
  }
  const { common, operation } = parsed
  let token = common.token
  if (common.tokenFile !== undefined) {
    try {
      token = (await readFile(common.tokenFile, 'utf8')).trim()
    } catch (err) {
      io.stderr.write(`holdfast: ${command}: cannot read the token file ${common.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`)
      return EXIT.USAGE
    }
    if (token === '') {
      io.stderr.write(`holdfast: ${command}: the token file ${common.tokenFile} is empty\n`)
      return EXIT.USAGE
    }
  }
  const client = new HoldfastClient({ endpoints: common.endpoints, token, timeoutMs: common.timeoutMs })
  try {
    return await execute(client, operation, common, io)
  } catch (err) {
    if (err instanceof ClientError) {
      io.stderr.write(`error ${err.code}: ${oneLine(err.message)}\n`)
      return err.outcomeUnknown ? EXIT.UNKNOWN_OUTCOME : EXIT.API_ERROR
    }
    io.stderr.write(`error INTERNAL: ${oneLine(err instanceof Error ? err.message : String(err))}\n`)
    return EXIT.API_ERROR
  }
}

async function execute(client: HoldfastClient, operation: Operation, common: CommonOptions, io: ClientIo): Promise<number> {
  const print = (human: () => string, json: unknown): number => {
    io.stdout.write((common.json ? JSON.stringify(json) : human()) + '\n')
    return EXIT.OK
  }
  switch (operation.op) {
    case 'get': {
      const item = await client.get(operation.key, { consistency: operation.consistency })
      if (item === null) throw new ClientError('NOT_FOUND', `key ${JSON.stringify(operation.key)} does not exist`, { status: 404 })
      return print(() => formatGet(item), item)
    }
    case 'put': {
      const value = operation.stdin ? parseValue(dropNewline(await readAll(io.stdin ?? process.stdin)), operation.asString) : operation.value!
      const result = await client.put(operation.key, value, { ifRevision: operation.ifRevision })
      return print(() => `OK revision ${result.revision}`, result)
    }
    case 'del': {
      const result = await client.del(operation.key)
      return print(() => {
        if (result['deleted'] === false) return `${operation.key} did not exist`
        return typeof result['revision'] === 'number' ? `deleted ${operation.key} (revision ${result['revision']})` : `deleted ${operation.key}`
      }, result)
    }
    case 'list': {
      const result = await client.list({ prefix: operation.prefix, limit: operation.limit })
      return print(() => formatList(result), result)
    }
    case 'watch':
      return watch(client, operation, common, io)
    case 'status': {
      const status = await client.status()
      return print(() => formatStatus(status), status)
    }
    case 'members': {
      const status = await client.status()
      return print(() => formatMembers(status.members, status.actingId), { members: status.members })
    }
    case 'promote':
    case 'demote':
    case 'remove': {
      const id = await resolve(client, operation.id)
      const result = await client[operation.op](id)
      const done = { promote: 'promoted', demote: 'demoted', remove: 'removed' }[operation.op]
      return print(() => `${done} ${shortId(id)}`, { ok: true, action: operation.op, id, ...result })
    }
    case 'transfer': {
      const to = await resolve(client, operation.to)
      const result = await client.transfer(to)
      return print(() => `leadership handed over to ${shortId(to)}`, { ok: true, to, ...result })
    }
  }
}

/** Prints changes until the signal (or SIGINT/SIGTERM) stops the watch: exit 0. */
async function watch(client: HoldfastClient, operation: Extract<Operation, { op: 'watch' }>, common: CommonOptions, io: ClientIo): Promise<number> {
  const stop = new AbortController()
  const onSignal = (): void => stop.abort()
  const signal = io.signal ? AbortSignal.any([io.signal, stop.signal]) : stop.signal
  if (!io.signal) {
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  try {
    for await (const change of client.watch({ prefix: operation.prefix, fromRevision: operation.fromRevision, signal })) {
      io.stdout.write((common.json ? JSON.stringify(change) : formatChange(change)) + '\n')
    }
    return EXIT.OK
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** A member id or a unique prefix of one, as the daemons know them. */
async function resolve(client: HoldfastClient, given: string): Promise<string> {
  const members = await client.members()
  const r = resolveMemberId(members, given)
  if ('error' in r) throw new ClientError('INVALID_ARGUMENT', r.error)
  return r.id
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}

/** Drops one trailing newline (what `echo` and editors add). */
function dropNewline(text: string): string {
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ')
}
