/**
 * `npm ci` (what CI runs) refuses a lock file that lacks an entry for any optional dependency of a
 * locked package, even one for another platform. The registry reachable here serves only some
 * platforms' builds of a few native packages (e.g. @msgpackr-extract/*), so `npm install` on this
 * machine can silently drop those entries. This test finds that locally, before CI does; repair by
 * adding the missing entries with their os/cpu fields (see the notes on the first issue).
 */
import { readFileSync } from 'node:fs'
import t from 'tap'

interface LockPackage {
  version?: string
  optionalDependencies?: Record<string, string>
}

const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, LockPackage> }
const keys = new Set(Object.keys(lock.packages))

/** Where npm would look for `dep` required by the package at `from`: nested first, then up the tree. */
function resolves(from: string, dep: string): boolean {
  let dir = from
  for (;;) {
    if (keys.has(`${dir ? `${dir}/` : ''}node_modules/${dep}`)) return true
    if (dir === '') return false
    const i = dir.lastIndexOf('/node_modules/')
    dir = i < 0 ? '' : dir.slice(0, i)
  }
}

const missing: string[] = []
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
    if (!resolves(path, dep)) missing.push(`${dep} (optional dependency of ${path || 'the project'})`)
  }
}
t.same(missing, [], 'every optional dependency of a locked package has a lock entry')
t.ok(keys.has('node_modules/@msgpackr-extract/msgpackr-extract-darwin-arm64'), 'the known platform entries are present')
