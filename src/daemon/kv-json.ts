/**
 * The JSON forms of stored keys and changes in the HTTP API. Values written over HTTP are JSON;
 * a value a service stored as raw bytes through the library is sent as base64 with
 * `"encoding":"base64"`, so every stored value can be read.
 */
import type { Change, KeyValue, Value } from '../state/index.js'

/** A value and, for bytes, how it is encoded. */
function valueFields(value: Value | undefined): { value?: unknown; encoding?: 'base64' } {
  if (value === undefined) return {}
  if (value instanceof Uint8Array) return { value: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'), encoding: 'base64' }
  return { value }
}

/** A key as GET /v1/kv/{key} and the list answer it: `revision` is the key's modRevision. */
export function kvJson(kv: KeyValue): Record<string, unknown> {
  return {
    key: kv.key,
    ...valueFields(kv.value),
    revision: kv.modRevision,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
  }
}

/** One change as a watch event's data. */
export function changeJson(c: Change): Record<string, unknown> {
  return {
    type: c.type,
    key: c.key,
    ...valueFields(c.value),
    revision: c.revision,
    seq: c.seq,
    createRevision: c.createRevision,
    version: c.version,
    prevRevision: c.prevRevision,
  }
}
