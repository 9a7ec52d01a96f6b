/**
 * The core must stay pure: no I/O, timers, wall clock or global randomness, so that a seed replays
 * any run exactly. This test reads every file in src/core and fails on a forbidden import or call.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const coreDir = fileURLToPath(new URL('../../src/core/', import.meta.url))

const FORBIDDEN: [RegExp, string][] = [
  [/from\s+['"]node:/, 'imports a node: module'],
  [/from\s+['"](fs|path|os|net|dgram|crypto|child_process|timers|worker_threads|events)['"]/, 'imports a Node built-in'],
  [/from\s+['"](lmdb|hyperswarm|hyperdht|protobufjs|p-queue|debug)['"]/, 'imports an I/O dependency'],
  [/import\(/, 'uses a dynamic import'],
  [/\brequire\(/, 'uses require'],
  [/Date\.now|new Date\b|performance\.now|process\.hrtime/, 'reads the clock'],
  [/Math\.random/, 'uses global randomness'],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask|process\.nextTick)\b/, 'schedules timers'],
  [/\bprocess\./, 'touches the process'],
  [/\b(fetch|XMLHttpRequest|WebSocket)\b\s*\(/, 'does network I/O'],
  [/\bcrypto\./, 'uses global crypto'],
]

/** Strips comments so documentation may mention what the code must not do. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1')
}

const files = readdirSync(coreDir).filter((f) => f.endsWith('.ts'))

t.ok(files.length >= 5, 'src/core has the core files')
for (const f of files) {
  const text = code(readFileSync(join(coreDir, f), 'utf8'))
  for (const [re, why] of FORBIDDEN) {
    t.notMatch(text, re, `src/core/${f} must not have code that ${why}`)
  }
  // Only relative imports of other pure modules.
  for (const m of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
    const spec = m[1]!
    t.ok(spec.startsWith('./') || spec === '../errors.js', `src/core/${f} imports only pure local modules (${spec})`)
  }
}

t.test('the checker itself catches a forbidden call', async (t) => {
  const bad = code('const x = Date.now() // fine in a comment: Math.random\nimport fs from "node:fs"')
  t.match(bad, FORBIDDEN[0]![0])
  t.match(bad, FORBIDDEN[5]![0])
  t.notMatch(code('// Math.random() in a comment only'), FORBIDDEN[6]![0])
})
