/**
 * Deliberately broken codecs, one per check, so the tests can show that every check of the fuzz
 * engine fails when it should (a check that cannot fail proves nothing). Each fault misbehaves on
 * a deterministic subset of inputs, so its findings replay like real ones.
 */
import { FrameDecoder, MAX_FRAME_BYTES } from '../../src/transport/codec.js'
import { REAL_CODEC, type Codec } from './engine.js'

/** True for roughly one input in `every`, chosen by content so a replay picks the same ones. */
function hit(input: Uint8Array, every: number): boolean {
  let h = input.byteLength
  for (let i = 0; i < Math.min(8, input.byteLength); i++) h = (Math.imul(h, 31) + input[i]!) >>> 0
  return h % every === 1
}

/** Kept alive on purpose by the `leak` fault. */
const leaked: unknown[] = []

export const FAULTS = {
  /** decodeEnvelope throws a plain Error on some inputs. */
  'plain-error': (): Codec => ({
    ...REAL_CODEC,
    decodeEnvelope: (bytes, limits) => {
      if (hit(bytes, 7)) throw new Error('not a HoldfastError')
      return REAL_CODEC.decodeEnvelope(bytes, limits)
    },
  }),
  /** decodeRaftMessage gets a term wrong, so re-encoding changes the value. */
  'round-trip': (): Codec => ({
    ...REAL_CODEC,
    decodeRaftMessage: (bytes, limits) => {
      const m = REAL_CODEC.decodeRaftMessage(bytes, limits)
      return m.term < Number.MAX_SAFE_INTEGER ? { ...m, term: m.term + 1 } : m
    },
  }),
  /** decodeEnvelope copies a wire string into a key: an own "__proto__" property. */
  'own-proto-key': (): Codec => ({
    ...REAL_CODEC,
    decodeEnvelope: (bytes, limits) => {
      const m = REAL_CODEC.decodeEnvelope(bytes, limits)
      if (m.kind === 'gossip' && m.body.updates.length > 0) {
        const body = { ...m.body }
        Object.defineProperty(body, '__proto__', { value: { polluted: true }, enumerable: true, configurable: true, writable: true })
        return { kind: 'gossip', body }
      }
      return m
    },
  }),
  /** decodeEnvelope assigns through __proto__: Object.prototype gains a property. */
  pollute: (): Codec => ({
    ...REAL_CODEC,
    decodeEnvelope: (bytes, limits) => {
      const m = REAL_CODEC.decodeEnvelope(bytes, limits)
      if (m.kind === 'rpcRequest' && hit(bytes, 3)) ({} as Record<string, Record<string, unknown>>)['__proto__']!.polluted = m.body.method
      return m
    },
  }),
  /** decodeRaftMessage spins for 300 ms on some inputs. */
  slow: (): Codec => ({
    ...REAL_CODEC,
    decodeRaftMessage: (bytes, limits) => {
      if (hit(bytes, 101)) {
        const until = performance.now() + 300
        while (performance.now() < until);
      }
      return REAL_CODEC.decodeRaftMessage(bytes, limits)
    },
  }),
  /** A FrameDecoder that ignores its maximum and accepts every header. */
  'framing-max': (): Codec => ({
    ...REAL_CODEC,
    FrameDecoder: class extends FrameDecoder {
      constructor() {
        super({ maxFrameBytes: MAX_FRAME_BYTES })
      }
    },
  }),
  /** A FrameDecoder that reports fewer buffered bytes than it holds. */
  'framing-buffered': (): Codec => ({
    ...REAL_CODEC,
    FrameDecoder: class extends FrameDecoder {
      override get buffered(): number {
        return Math.max(0, super.buffered - 1)
      }
    },
  }),
  /** openEnvelope routes a raft body that decodeEnvelope would refuse (it skips the pre-scan's strictness). */
  consistency: (): Codec => ({
    ...REAL_CODEC,
    openEnvelope: (bytes, limits) => {
      const opened = REAL_CODEC.openEnvelope(bytes, limits)
      return opened.kind === 'raft' ? opened : { kind: 'raft', body: opened.body }
    },
  }),
  /** decodeEnvelope keeps 128 KiB of heap alive for every call. */
  leak: (): Codec => ({
    ...REAL_CODEC,
    decodeEnvelope: (bytes, limits) => {
      leaked.push(new Array<number>(16_384).fill(leaked.length))
      return REAL_CODEC.decodeEnvelope(bytes, limits)
    },
  }),
  /** decodeEnvelope never returns on some input. */
  hang: (): Codec => ({
    ...REAL_CODEC,
    decodeEnvelope: (bytes, limits) => {
      // eslint-disable-next-line no-empty
      if (hit(bytes, 97)) for (;;) {}
      return REAL_CODEC.decodeEnvelope(bytes, limits)
    },
  }),
  /** decodeEnvelope kills the process on some input (as a native crash or an OOM abort would). */
  crash: (): Codec => ({
    ...REAL_CODEC,
    decodeEnvelope: (bytes, limits) => {
      if (hit(bytes, 97)) process.exit(70)
      return REAL_CODEC.decodeEnvelope(bytes, limits)
    },
  }),
} satisfies Record<string, () => Codec>

export type FaultName = keyof typeof FAULTS

export function isFaultName(name: string): name is FaultName {
  return Object.hasOwn(FAULTS, name)
}
