/**
 * The closed-loop load every write row uses, whatever the system: `concurrency` writers, each
 * writing fresh keys back to back (the next write starts when the previous one is acknowledged),
 * so exactly `concurrency` writes are in flight. Writes started before the deadline are awaited
 * and counted; the interval ends with the last acknowledgement.
 */

/** Durably writes one key; rejects when the write failed. */
export type Writer = (key: string, w: number) => Promise<void>

/** What one interval of load measured. */
export interface DriveResult {
  /** Latency of every acknowledged write, ms, in completion order. */
  readonly latencies: Float64Array
  readonly seconds: number
  /** Failed writes (not in latencies). */
  readonly errors: number
  /** The first failure's message, to explain a row with errors. */
  readonly firstError?: string
}

/**
 * Runs `concurrency` writers for `ms` on keys `<prefix>.<writer>.<i>`. A failed write is counted
 * and the writer goes on; after `maxErrors` failures the interval ends early (a broken system
 * must not spin for the whole interval).
 */
export async function drive(write: Writer, prefix: string, concurrency: number, ms: number, maxErrors = 1000): Promise<DriveResult> {
  let latencies = new Float64Array(1 << 14)
  let n = 0
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const deadline = start + ms
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; performance.now() < deadline && errors < maxErrors; i++) {
      const t0 = performance.now()
      try {
        await write(`${prefix}.${w}.${i}`, w)
      } catch (err) {
        errors++
        firstError ??= err instanceof Error ? err.message : String(err)
        continue
      }
      const t = performance.now() - t0
      if (n === latencies.length) {
        const grown = new Float64Array(latencies.length * 2)
        grown.set(latencies)
        latencies = grown
      }
      latencies[n++] = t
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => writer(w)))
  return { latencies: latencies.slice(0, n), seconds: (performance.now() - start) / 1000, errors, ...(firstError !== undefined ? { firstError } : {}) }
}

/** `size` bytes of printable random text, so the same value is valid JSON (quoted) and raw bytes. */
export function randomText(size: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
  let s = ''
  for (let i = 0; i < size; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)]
  return s
}
