import t from 'tap'
import { encodeFrame, FrameDecoder } from '../../src/transport/frames.js'

const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]))

t.test('with a frame callback the limit can be raised between two frames of one chunk', async (t) => {
  const small = encodeFrame(new Uint8Array(10).fill(1))
  const big = encodeFrame(new Uint8Array(5000).fill(2))
  const d = new FrameDecoder({ maxFrameBytes: 100 })
  const got: number[] = []
  const out = d.push(concat(small, big), (f) => {
    got.push(f.byteLength)
    d.maxFrameBytes = 10_000 // the first frame admitted the peer
  })
  t.same(out, [], 'frames go to the callback')
  t.same(got, [10, 5000], 'the second frame was read under the raised limit')

  const strict = new FrameDecoder({ maxFrameBytes: 100 })
  t.throws(() => strict.push(concat(small, big), () => {}), { code: 'DECODE_ERROR' }, 'without raising it, the big frame is refused')
  t.throws(() => strict.push(small), { code: 'DECODE_ERROR' }, 'and the decoder stays failed')
  t.equal(strict.buffered, 0, 'holding nothing')
})
