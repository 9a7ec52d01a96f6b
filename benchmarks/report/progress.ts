/** Progress lines on stderr while the benchmark runs, stamped with the time since it started. */
const started = performance.now()

/** Prints `[  12.3s] section: message` on stderr. */
export function progress(section: string, message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${s}s] ${section}: ${message}\n`)
}

/** Seconds since the benchmark started. */
export function elapsedSeconds(): number {
  return (performance.now() - started) / 1000
}
