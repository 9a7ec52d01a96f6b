/**
 * Headless Chromium for the status page test: Debian's chromium (installed by ensure-chromium.sh
 * when missing) driven by playwright-core.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'

const ENSURE_CHROMIUM = fileURLToPath(new URL('ensure-chromium.sh', import.meta.url))

/** The chromium executable, installed first when missing. Throws with the script's reason. */
export function ensureChromium(): string {
  const r = spawnSync('bash', [ENSURE_CHROMIUM], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 })
  const path = r.stdout.trim().split('\n').pop() ?? ''
  if (r.status !== 0 || path === '') {
    throw new Error(`test/daemon/ensure-chromium.sh failed (${r.status ?? r.signal}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`)
  }
  return path
}

/** Launches headless chromium (no sandbox: tests may run as root). Close it when done. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: ensureChromium(), headless: true, args: ['--no-sandbox'] })
}

/** What went wrong inside a page: console errors and uncaught exceptions, as text. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`))
  return errors
}
