import t from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import { COMMAND_FORMAT, DEFAULT_BUCKET, MAX_KEY_BYTES, decodeCommand, encodeCommand, packr } from '../../src/state/commands.js'
import type { Command } from '../../src/state/commands.js'

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isHoldfastError(err) ? err.code : `non-HoldfastError: ${String(err)}`
  }
  return undefined
}

t.test('every command round-trips, with defaults filled in', async (t) => {
  const cases: [Command, unknown][] = [
    [{ type: 'put', key: 'k', value: { a: [1, 'x', null, true, 2.5] } }, { type: 'put', bucket: DEFAULT_BUCKET, key: 'k', value: { a: [1, 'x', null, true, 2.5] }, ifRevision: undefined, fence: undefined }],
    [{ type: 'put', bucket: 'b', key: 'k', value: 'v', ifRevision: 0, fence: 7 }, { type: 'put', bucket: 'b', key: 'k', value: 'v', ifRevision: 0, fence: 7 }],
    [{ type: 'delete', key: 'k', ifRevision: 3 }, { type: 'delete', bucket: DEFAULT_BUCKET, key: 'k', ifRevision: 3, fence: undefined }],
    [
      { type: 'txn', compare: [{ key: 'a', revision: 0 }], success: [{ type: 'put', key: 'a', value: 1 }, { type: 'delete', bucket: 'x', key: 'b', ifRevision: 2 }], fence: 1 },
      {
        type: 'txn',
        compare: [{ bucket: DEFAULT_BUCKET, key: 'a', revision: 0 }],
        success: [
          { type: 'put', bucket: DEFAULT_BUCKET, key: 'a', value: 1, ifRevision: undefined },
          { type: 'delete', bucket: 'x', key: 'b', ifRevision: 2 },
        ],
        failure: [],
        fence: 1,
      },
    ],
    [{ type: 'call', name: 'inc', args: { by: 2 } }, { type: 'call', name: 'inc', args: { by: 2 }, fence: undefined }],
    [{ type: 'call', name: 'noargs' }, { type: 'call', name: 'noargs', args: undefined, fence: undefined }],
    [{ type: 'call', name: 'nullargs', args: null }, { type: 'call', name: 'nullargs', args: null, fence: undefined }],
    [{ type: 'setFence', token: 42 }, { type: 'setFence', token: 42 }],
  ]
  for (const [cmd, expected] of cases) {
    const bytes = encodeCommand(cmd)
    t.equal(bytes[0], COMMAND_FORMAT, `${cmd.type}: format byte`)
    t.same(decodeCommand(bytes), expected, `${cmd.type} round-trips`)
  }
})

t.test('raw bytes and JSON values are told apart on decode', async (t) => {
  const bytes = decodeCommand(encodeCommand({ type: 'put', key: 'k', value: new Uint8Array([1, 2, 3]) }))
  t.ok(bytes.type === 'put' && bytes.value instanceof Uint8Array, 'bytes come back as a Uint8Array')
  t.equal(bytes.type === 'put' && (bytes.value as Uint8Array).constructor, Uint8Array, 'a plain Uint8Array, not a Buffer')
  t.same(bytes.type === 'put' && [...(bytes.value as Uint8Array)], [1, 2, 3])
  const arr = decodeCommand(encodeCommand({ type: 'put', key: 'k', value: [1, 2, 3] }))
  t.ok(arr.type === 'put' && Array.isArray(arr.value), 'a JSON array stays an array')
  const big = decodeCommand(encodeCommand({ type: 'put', key: 'k', value: [2 ** 53 - 1, -(2 ** 40), 1e300, 0.1] }))
  t.same(big.type === 'put' && big.value, [2 ** 53 - 1, -(2 ** 40), 1e300, 0.1], 'numbers survive exactly')
})

t.test('size limits are checked at encode time', async (t) => {
  t.equal(code(() => encodeCommand({ type: 'put', key: 'k', value: new Uint8Array(1024 * 1024 + 1) })), 'TOO_LARGE', 'default 1 MiB for bytes')
  t.equal(code(() => encodeCommand({ type: 'put', key: 'k', value: new Uint8Array(1024 * 1024) })), undefined, 'exactly 1 MiB passes')
  t.equal(code(() => encodeCommand({ type: 'put', key: 'k', value: 'x'.repeat(200) }, { maxValueSize: 100 })), 'TOO_LARGE', 'configurable, JSON measured encoded')
  t.equal(code(() => encodeCommand({ type: 'call', name: 'c', args: 'x'.repeat(200) }, { maxValueSize: 100 })), 'TOO_LARGE', 'call args too')
  t.equal(
    code(() => encodeCommand({ type: 'txn', success: [{ type: 'put', key: 'a', value: 'x'.repeat(200) }] }, { maxValueSize: 100 })),
    'TOO_LARGE',
    'txn op values too',
  )
  const ops = Array.from({ length: 10 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: 'x'.repeat(90) }))
  t.equal(code(() => encodeCommand({ type: 'txn', success: ops }, { maxValueSize: 100, maxCommandSize: 500 })), 'TOO_LARGE', 'whole command limit')
})

t.test('invalid commands are refused with INVALID_ARGUMENT', async (t) => {
  const bad: [string, unknown][] = [
    ['empty key', { type: 'put', key: '', value: 1 }],
    ['non-string key', { type: 'put', key: 5, value: 1 }],
    ['key over the byte limit', { type: 'put', key: 'é'.repeat(MAX_KEY_BYTES / 2 + 1), value: 1 }],
    ['lone surrogate in key', { type: 'put', key: 'a\ud800', value: 1 }],
    ['empty bucket', { type: 'put', bucket: '', key: 'k', value: 1 }],
    ['NUL in bucket', { type: 'put', bucket: 'a\0b', key: 'k', value: 1 }],
    ['long bucket', { type: 'put', bucket: 'b'.repeat(129), key: 'k', value: 1 }],
    ['undefined value', { type: 'put', key: 'k', value: undefined }],
    ['NaN', { type: 'put', key: 'k', value: NaN }],
    ['Date', { type: 'put', key: 'k', value: new Date(0) }],
    ['Map', { type: 'put', key: 'k', value: new Map() }],
    ['nested bytes', { type: 'put', key: 'k', value: { b: new Uint8Array(1) } }],
    ['function', { type: 'put', key: 'k', value: { f: () => 1 } }],
    ['bigint', { type: 'put', key: 'k', value: 1n }],
    ['negative ifRevision', { type: 'put', key: 'k', value: 1, ifRevision: -1 }],
    ['fractional fence', { type: 'delete', key: 'k', fence: 1.5 }],
    ['unknown type', { type: 'frobnicate', key: 'k' }],
    ['txn op without type', { type: 'txn', success: [{ key: 'k', value: 1 }] }],
    ['txn compare without revision', { type: 'txn', compare: [{ key: 'k' }], success: [] }],
    ['call without name', { type: 'call', name: '' }],
    ['setFence without token', { type: 'setFence' }],
  ]
  for (const [what, cmd] of bad) t.equal(code(() => encodeCommand(cmd as Command)), 'INVALID_ARGUMENT', what)
  let deep: unknown = 1
  for (let i = 0; i < 100; i++) deep = [deep]
  t.equal(code(() => encodeCommand({ type: 'put', key: 'k', value: deep as never })), 'INVALID_ARGUMENT', 'too deep')
})

t.test('malformed data decodes to a typed error, never a throw of something else', async (t) => {
  const withFormat = (x: unknown): Uint8Array => {
    const body = packr.pack(x)
    const out = new Uint8Array(body.byteLength + 1)
    out[0] = COMMAND_FORMAT
    out.set(body, 1)
    return out
  }
  const cases: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'DECODE_ERROR'],
    ['unknown format', new Uint8Array([9, 0x90]), 'DECODE_ERROR'],
    ['truncated msgpack', encodeCommand({ type: 'put', key: 'key', value: 'value' }).subarray(0, 8), 'DECODE_ERROR'],
    ['not an array', withFormat({ a: 1 }), 'DECODE_ERROR'],
    ['unknown tag', withFormat(['z', 1]), 'DECODE_ERROR'],
    ['bad key in a well-formed frame', withFormat(['p', 'default', 7, 1, null, null]), 'INVALID_ARGUMENT'],
    ['timestamp extension as value', withFormat(['p', 'default', 'k', new Date(0), null, null]), 'INVALID_ARGUMENT'],
    ['txn parts not arrays', withFormat(['t', 1, 2, 3, null]), 'DECODE_ERROR'],
  ]
  for (const [what, data, expected] of cases) t.equal(code(() => decodeCommand(data)), expected, what)
})
