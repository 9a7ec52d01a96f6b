/** The replicated key-value state machine (see kv.ts). */
export { KvStateMachine, DEFAULT_CHANGE_RETENTION } from './kv.js'
export type {
  ApplyResult,
  CallResult,
  ChangePosition,
  ChangesOptions,
  CommandHandler,
  CommandResult,
  FenceResult,
  KvEvent,
  KvOptions,
  KvSnapshot,
  TxnResult,
} from './kv.js'
export type { CommandTx, DeleteResult, KeyValue, ListOptions, PutResult } from './tx.js'
export {
  DEFAULT_BUCKET,
  DEFAULT_MAX_COMMAND_SIZE,
  DEFAULT_MAX_VALUE_SIZE,
  MAX_BUCKET_BYTES,
  MAX_KEY_BYTES,
  decodeCommand,
  encodeCommand,
  resolveCommand,
} from './commands.js'
export type { Command, Compare, EncodeOptions, JsonValue, ResolvedCommand, TxnOp, Value, WriteOptions } from './commands.js'
export type { Change } from './layout.js'
export type { KvSnapshotMeta } from './snapshot.js'
export { watch } from './watch.js'
export type { WatchOptions } from './watch.js'
