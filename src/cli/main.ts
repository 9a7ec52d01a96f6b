#!/usr/bin/env node
/**
 * `holdfast`: one executable with subcommands. `dht` and `start` run long-lived processes; the
 * client subcommands (client-commands.ts) talk to the daemons' HTTP API.
 *
 * Exit codes: 0 success (or stopped by SIGTERM/SIGINT), 1 failure, 2 invalid configuration or usage.
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError, hostPort, loadStartConfig, parseFlags, startHelp } from '../daemon/config.js'
import { CLIENT_COMMANDS, runClientCommand } from './client-commands.js'

interface Io {
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
  readonly env: NodeJS.ProcessEnv
}

const USAGE = `Usage: holdfast <command> [options]

Daemons:
  dht        run a DHT bootstrap node for networks without internet access
  start      run a holdfast node with its HTTP API

Client (finds the leader among --endpoints, default http://127.0.0.1:8080):
  get KEY            read a key                  put KEY VALUE   write a key
  del KEY            delete a key                list            list keys
  watch              follow changes              status          the cluster's state
  members            list or change members      transfer ID     hand leadership to ID

Run \`holdfast <command> --help\` for a command's options.`

const DHT_HELP = `Usage: holdfast dht [--host ADDR] [--port PORT]

Runs a DHT bootstrap node. Give its address to every daemon with --bootstrap ADDR:PORT.
  --host ADDR   address to bind (default 127.0.0.1)
  --port PORT   UDP port (default 49737)
  --help        this text`

/** Runs the command line; resolves with the exit code for commands that end, or never for daemons. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...args] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(USAGE + '\n')
    return command === undefined ? 2 : 0
  }
  if (command === 'dht') return runDht(args, io)
  if (command === 'start') return runStart(args, io)
  if (CLIENT_COMMANDS.includes(command)) return runClientCommand(command, args, io)
  io.stderr.write(`holdfast: unknown command "${command}" (see holdfast --help)\n`)
  return 2
}

async function runDht(args: readonly string[], io: Io): Promise<number> {
  if (args.includes('--help')) {
    io.stdout.write(DHT_HELP + '\n')
    return 0
  }
  let host = '127.0.0.1'
  let port = 49737
  try {
    const raw = parseFlags(args, [
      { name: 'host', kind: 'string', help: '', remembered: false },
      { name: 'port', kind: 'int', help: '', remembered: false },
    ])
    if (raw['host'] !== undefined) host = String(raw['host'])
    if (raw['port'] !== undefined) port = hostPort('--port', `${host}:${String(raw['port'])}`, true).port
    hostPort('--host', `${host}:1`, false)
  } catch (err) {
    return configFailure('dht', err, io)
  }
  // Loaded here, not at the top: client commands start faster without hyperswarm and LMDB.
  const { startDhtBootstrap } = await import('../transport/swarm.js')
  const dht = await startDhtBootstrap({ host, port })
  io.stdout.write(`holdfast dht: bootstrap node on ${dht.address.host}:${dht.address.port}\n`)
  await untilSignal()
  await dht.close()
  return 0
}

async function runStart(args: readonly string[], io: Io): Promise<number> {
  if (args.includes('--help')) {
    io.stdout.write(startHelp() + '\n')
    return 0
  }
  let config
  try {
    config = await loadStartConfig(args, io.env)
  } catch (err) {
    return configFailure('start', err, io)
  }
  const { startDaemon } = await import('../daemon/daemon.js')
  let daemon
  try {
    daemon = await startDaemon(config)
  } catch (err) {
    return configFailure('start', err, io)
  }
  io.stdout.write(`holdfast start: node ${daemon.node.id} in cluster "${config.cluster}", HTTP API on ${config.advertiseUrl}\n`)
  await untilSignal()
  io.stdout.write('holdfast start: stopping (handing leadership over)\n')
  await daemon.stop()
  io.stdout.write('holdfast start: stopped\n')
  return 0
}

function configFailure(command: string, err: unknown, io: Io): number {
  if (!(err instanceof ConfigError)) throw err
  io.stderr.write(`holdfast ${command}: invalid configuration: ${err.message}\n`)
  return 2
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = (): void => {
      process.on('SIGTERM', () => process.exit(1))
      process.on('SIGINT', () => process.exit(1))
      resolve()
    }
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
  })
}

function isEntryPoint(): boolean {
  const entry = process.argv[1]
  if (!entry) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
    (code) => {
      process.exitCode = code
      // Daemons leave handles (DHT sockets) that close asynchronously; do not wait on them.
      if (process.argv[2] === 'start' || process.argv[2] === 'dht') setTimeout(() => process.exit(code), 200).unref()
    },
    (err: unknown) => {
      process.stderr.write(`holdfast: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exit(1)
    },
  )
}
