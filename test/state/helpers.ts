/** Shared fixtures of the state machine tests: real LMDB environments in temp dirs, entry builders. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { open } from 'lmdb'
import type { RootDatabase } from 'lmdb'
import type { Entry } from '../../src/core/types.js'
import { encodeCommand } from '../../src/state/commands.js'
import type { Command } from '../../src/state/commands.js'
import { KvStateMachine } from '../../src/state/kv.js'
import type { ApplyResult, KvOptions } from '../../src/state/kv.js'

export async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-state-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Opens an LMDB environment as LmdbStorage does (one file, overlappingSync); closed at teardown. */
export function openEnv(t: Test, dir: string): RootDatabase {
  const env = open(join(dir, 'holdfast.mdb'), { noSubdir: true, maxDbs: 16, overlappingSync: true })
  // Closing twice is harmless in lmdb-js, so tests may close early (to reopen) as well.
  t.teardown(() => env.close())
  return env
}

/** A fresh state machine in a fresh environment. */
export async function freshKv(t: Test, options?: KvOptions): Promise<{ kv: KvStateMachine; env: RootDatabase; dir: string }> {
  const dir = await tempDir(t)
  const env = openEnv(t, dir)
  const kv = KvStateMachine.open(env, options)
  t.teardown(() => kv.close())
  return { kv, env, dir }
}

/** A normal entry carrying `command`. */
export function entry(index: number, command: Command | Uint8Array, term = 1): Entry {
  return { index, term, type: 'normal', data: command instanceof Uint8Array ? command : encodeCommand(command) }
}

/** Applies commands as consecutive entries after the applied index; returns their results. */
export function applyCommands(kv: KvStateMachine, ...commands: Command[]): ApplyResult[] {
  const first = kv.appliedIndex() + 1
  return kv.apply(commands.map((c, i) => entry(first + i, c)))
}

/** Applies one command and returns its result, failing the test harness if it did not succeed. */
export function applyOk(kv: KvStateMachine, command: Command): unknown {
  const [r] = applyCommands(kv, command)
  if (!r?.ok) throw new Error(`command failed: ${r && !r.ok ? r.error.message : 'no result'}`)
  return r.result
}

/** Collects an async iterable of chunks. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of chunks) out.push(c)
  return out
}

/** An async iterable over given chunks. */
export async function* from(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c
}

/** The error `fn` throws, or undefined when it returns. */
export function catchErr(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}
