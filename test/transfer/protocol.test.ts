/** The transfer defaults fit the receiver's limits, so a sender using them is never refused for its pace. */
import t from 'tap'
import { DEFAULT_TRANSFER_CHUNK_BYTES, DEFAULT_TRANSFER_WINDOW, MAX_TRANSFER_CHUNK_BYTES, MAX_UNWRITTEN_BYTES } from '../../src/transfer/protocol.js'
import { MAX_FRAME_BYTES } from '../../src/transport/frames.js'

t.test('a default chunk is within what a receiver and a frame accept', async (t) => {
  t.ok(DEFAULT_TRANSFER_CHUNK_BYTES <= MAX_TRANSFER_CHUNK_BYTES, 'no larger than a receiver accepts')
  // The chunk travels msgpack-encoded inside an RPC envelope: leave room for both.
  t.ok(DEFAULT_TRANSFER_CHUNK_BYTES + 64 * 1024 <= MAX_FRAME_BYTES, 'fits in one transport frame with its envelope')
})

t.test('a full default window is within the bytes a receiver holds unwritten', async (t) => {
  // A receiver refuses a chunk when accepted-but-unwritten bytes would exceed MAX_UNWRITTEN_BYTES;
  // a sender has at most `window` chunks unacknowledged, and each is acknowledged once written.
  t.ok(DEFAULT_TRANSFER_WINDOW * DEFAULT_TRANSFER_CHUNK_BYTES <= MAX_UNWRITTEN_BYTES, `${DEFAULT_TRANSFER_WINDOW} x ${DEFAULT_TRANSFER_CHUNK_BYTES} <= ${MAX_UNWRITTEN_BYTES}`)
  t.ok(DEFAULT_TRANSFER_WINDOW >= 2, 'chunks are pipelined')
})
