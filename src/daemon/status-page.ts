/**
 * The status page served at GET / on every daemon node: one self-contained HTML document (inline
 * CSS and JS, no external resources, no framework) that shows the cluster live. It polls
 * GET /v1/status (ClusterStatus) and GET /v1/events ({ events: HoldfastEvent[] }) about once a
 * second, from the node that served it.
 *
 * Invariants the page keeps:
 * - Every value from the API reaches the DOM through textContent or setAttribute (never innerHTML),
 *   and a member URL becomes a link only when it is http(s).
 * - The bearer token (read from the URL fragment `#token=...`, kept in sessionStorage) is sent only
 *   to the origin that served the page: requests use relative URLs, do not follow redirects, and the
 *   Content-Security-Policy allows connections to 'self' only.
 * - A failed poll shows "node unreachable" and polling goes on; polls never overlap.
 *
 * Elements carry data-testid attributes (see the markup) for the headless-browser test.
 */
import { createHash } from 'node:crypto'

const CSS = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #e3e6eb;
  --accent: #2563eb; --ok: #16a34a; --bad: #dc2626; --warn: #d97706; --hl: #eef4ff;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #111418; --card: #1a1f26; --fg: #e6e8eb; --muted: #98a2b3; --line: #2b323c; --hl: #1b2740; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; padding: 1rem 1.5rem .5rem; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .6rem; }
main { padding: 0 1.5rem 2rem; display: grid; gap: 1rem; }
.muted { color: var(--muted); }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; overflow-x: auto; }
#conn { padding: .55rem 1rem; border-radius: 6px; border: 1px solid var(--line); background: var(--card); }
#conn[data-state="ok"]::before { content: "● "; color: var(--ok); }
#conn[data-state="connecting"]::before { content: "● "; color: var(--muted); }
#conn[data-state="unreachable"], #conn[data-state="error"] { border-color: var(--bad); color: var(--bad); font-weight: 600; }
#conn[data-state="unauthorized"] { border-color: var(--warn); }
#token-form { display: flex; gap: .5rem; margin-top: .5rem; }
#token-form[hidden] { display: none; }
input, button { font: inherit; padding: .3rem .6rem; border-radius: 5px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
button { cursor: pointer; }
body.stale .live { opacity: .45; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .75rem; }
.stat { display: flex; flex-direction: column; }
.stat .label { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.stat .value { font-size: 1.15rem; font-weight: 600; overflow-wrap: anywhere; }
.changed { animation: flash 1.5s ease-out; }
@keyframes flash { from { background: #fde68a; color: #1d2330; } to { background: transparent; } }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.details { white-space: normal; overflow-wrap: anywhere; }
tr.is-leader { background: var(--hl); }
.badge { display: inline-block; padding: 0 .45rem; margin-left: .35rem; border-radius: 999px; font-size: .75rem;
  font-weight: 600; border: 1px solid currentColor; }
.badge.leader { color: var(--accent); }
.badge.acting { color: var(--ok); }
.badge.self { color: var(--muted); }
.yes { color: var(--ok); }
.no { color: var(--bad); font-weight: 600; }
a { color: var(--accent); }
`

/*
 * The browser script. It is a plain string (the project's TypeScript has no DOM types), so it must
 * not contain backticks or "${": it builds strings by concatenation.
 */
const SCRIPT = String.raw`
'use strict';
(function () {
  var POLL_MS = 1000;
  var TIMEOUT_MS = 4000;
  var MAX_EVENTS = 100;
  var TOKEN_KEY = 'holdfast.token';

  /** Values whose change is worth a flash. */
  var FLASH = { leader: 1, acting: 1, term: 1 };
  function $(id) { return document.querySelector('[data-testid="' + id + '"]'); }
  /** Builds an element; children are nodes or strings (always text nodes, never parsed). */
  function el(tag, attrs) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k]));
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  var shown = {};
  function setText(id, text, title) {
    var e = $(id);
    var s = String(text);
    if (FLASH[id] && id in shown && shown[id] !== s) { e.classList.remove('changed'); void e.offsetWidth; e.classList.add('changed'); }
    shown[id] = s;
    e.textContent = s;
    if (title !== undefined) e.title = title; else e.removeAttribute('title');
    return e;
  }
  /** A node id stat: the short id (full id on hover and in data-node-id), or 'none'. */
  function setNode(testid, id, selfId) {
    var e = setText(testid, id ? short(id) : 'none', id || undefined);
    e.dataset.nodeId = id || '';
    if (id && id === selfId) e.appendChild(el('span', { class: 'badge self' }, 'this node'));
  }
  function short(id) { return id && id.length > 12 ? id.slice(0, 8) + '\u2026' : String(id); }
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function clock(ms) {
    var d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    var m = d.getMilliseconds();
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds()) + '.' + (m < 100 ? (m < 10 ? '00' : '0') : '') + m;
  }
  function numOrDash(n) { return typeof n === 'number' ? String(n) : '\u2014'; }
  /** A member URL becomes a link only when it is http(s): never javascript: or data:. */
  function safeHref(url) {
    try { var u = new URL(url); return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null; } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- token
  function takeTokenFromFragment() {
    var m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
    if (!m) return;
    var t;
    try { t = decodeURIComponent(m[1]); } catch (e) { t = m[1]; }
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { memoryToken = t; }
    // Out of the address bar, history and anything copied from it.
    history.replaceState(null, '', location.pathname + location.search);
  }
  var memoryToken = null;
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || memoryToken; } catch (e) { return memoryToken; }
  }

  // ---------------------------------------------------------------- requests
  /** GET a same-origin API path: { status, body } or throws when the node does not answer. */
  async function api(path) {
    var headers = { Accept: 'application/json' };
    var t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    try {
      // Relative path: same origin only. redirect 'error': the token never follows a redirect.
      var res = await fetch(path, { headers: headers, cache: 'no-store', redirect: 'error', signal: ctl.signal });
      var body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      return { status: res.status, body: body };
    } finally {
      clearTimeout(timer);
    }
  }
  function apiError(r) {
    var err = r.body && r.body.error;
    return 'HTTP ' + r.status + (err && err.code ? ' ' + err.code : '') + (err && err.message ? ': ' + err.message : '');
  }

  // ---------------------------------------------------------------- connection state
  var lastOk = null;
  var downSince = null;
  function setConnection(state, text) {
    var c = $('connection');
    c.dataset.state = state;
    c.textContent = text;
    document.body.classList.toggle('stale', state !== 'ok');
    $('token-form').hidden = state !== 'unauthorized';
  }
  function markDown(state, reason) {
    if (downSince === null) downSince = Date.now();
    if (state === 'unreachable') {
      setConnection(state, 'Node unreachable \u2014 retrying every second (since ' + clock(downSince) +
        (lastOk ? '; data shown is from ' + clock(lastOk) : '') + ')' + (reason ? ': ' + reason : ''));
    } else if (state === 'unauthorized') {
      setConnection(state, token()
        ? 'The node refused the bearer token. Enter the right one below, or open this page as /#token=YOUR_TOKEN.'
        : 'This node needs a bearer token. Enter it below, or open this page as /#token=YOUR_TOKEN.');
    } else {
      setConnection(state, 'The node answered with an error: ' + reason + ' \u2014 retrying every second');
    }
  }

  // ---------------------------------------------------------------- rendering
  var lastStatusJson = '';
  var lastEventsJson = '';

  function renderStatus(s) {
    var json = JSON.stringify(s);
    if (json === lastStatusJson) return;
    lastStatusJson = json;
    document.title = 'holdfast \u00b7 ' + s.cluster + ' \u00b7 ' + s.role;
    setText('cluster', s.cluster);
    var self = setText('self', short(s.id), s.id);
    self.dataset.nodeId = s.id;
    setText('self-role', s.role);
    setNode('leader', s.leader, s.id);
    setNode('acting', s.actingId, s.id);
    setText('term', s.term);
    setText('commit', s.commitIndex);
    setText('applied', s.appliedIndex);
    setText('fence', s.fence);
    setText('ready', s.ready ? 'yes' : 'no');
    setText('view', s.view === 'leader' ? "leader's view" : 'local view (leader not reached)');
    renderMembers(s);
  }

  function yesNo(v) { return el('span', { class: v ? 'yes' : 'no' }, v ? 'yes' : 'no'); }

  function renderMembers(s) {
    var rows = s.members.map(function (m) {
      var href = m.url ? safeHref(m.url) : null;
      var url = m.url === null ? el('span', { class: 'muted' }, 'not registered')
        : href ? el('a', { href: href, rel: 'noreferrer noopener' }, m.url) : el('span', { class: 'mono' }, m.url);
      return el('tr', {
        'data-testid': 'member', 'data-member-id': m.id, 'data-role': m.role, 'data-reachable': String(m.reachable),
        class: m.id === s.leader ? 'is-leader' : null,
      },
        el('td', { 'data-field': 'id', class: 'mono', title: m.id }, short(m.id),
          m.id === s.leader ? el('span', { class: 'badge leader' }, 'leader') : null,
          m.id === s.actingId ? el('span', { class: 'badge acting' }, 'acting') : null,
          m.id === s.id ? el('span', { class: 'badge self' }, 'this node') : null),
        el('td', { 'data-field': 'url' }, url),
        el('td', { 'data-field': 'role' }, m.role),
        el('td', { 'data-field': 'voter' }, m.voter ? 'voter' : 'learner'),
        el('td', { 'data-field': 'learner-only' }, m.learnerOnly ? 'learner only' : ''),
        el('td', { 'data-field': 'reachable' }, yesNo(m.reachable)),
        el('td', { 'data-field': 'match', class: 'num' }, numOrDash(m.matchIndex)),
        el('td', { 'data-field': 'lag', class: 'num' }, numOrDash(m.lag)));
    });
    if (rows.length === 0) rows = [el('tr', null, el('td', { colspan: 8, class: 'muted' }, 'no members'))];
    $('members').replaceChildren.apply($('members'), rows);
  }

  var BASE = { time: 1, type: 1, node: 1, term: 1 };
  function fieldText(k, v) {
    if (typeof v === 'string' && /^[0-9a-f]{40,}$/.test(v)) v = short(v);
    else if (v !== null && typeof v === 'object') v = JSON.stringify(v);
    return k + '=' + v;
  }
  function eventDetails(e) {
    switch (e.type) {
      case 'role':
        return e.previous + ' \u2192 ' + e.role + (e.leaderId ? ', leader ' + short(e.leaderId) : ', no leader');
      case 'actingStart':
        return 'token ' + e.token + ', started in ' + Math.round(e.startMs) + ' ms, ' + e.handlers + ' handler(s)';
      case 'actingStop':
        return 'token ' + e.token + ', ' + e.reason + (e.wasActing ? '' : ' (while starting)');
      case 'actingStopped':
        return 'token ' + e.token + ', stopped in ' + Math.round(e.stopMs) + ' ms' + (e.late && e.late.length ? ', late: ' + e.late.join(', ') : '');
      default:
        return Object.keys(e).filter(function (k) { return !BASE[k]; }).map(function (k) { return fieldText(k, e[k]); }).join(' ');
    }
  }

  function renderEvents(events) {
    var json = JSON.stringify(events);
    if (json === lastEventsJson) return;
    lastEventsJson = json;
    var rows = events.slice(-MAX_EVENTS).reverse().map(function (e) {
      return el('tr', { 'data-testid': 'event', 'data-type': e.type, 'data-time': e.time },
        el('td', { class: 'mono', title: new Date(e.time).toISOString() }, clock(e.time)),
        el('td', { 'data-field': 'type' }, e.type),
        el('td', { class: 'mono', title: e.node }, short(e.node)),
        el('td', { class: 'num' }, numOrDash(e.term)),
        el('td', { 'data-field': 'details', class: 'details' }, eventDetails(e)));
    });
    if (rows.length === 0) rows = [el('tr', null, el('td', { colspan: 5, class: 'muted' }, 'no events yet'))];
    $('events').replaceChildren.apply($('events'), rows);
  }

  // ---------------------------------------------------------------- polling
  async function poll() {
    var results;
    try {
      results = await Promise.all([api('/v1/status'), api('/v1/events').catch(function (e) { return e; })]);
    } catch (e) {
      markDown('unreachable', e && e.name === 'AbortError' ? 'no answer in ' + TIMEOUT_MS / 1000 + ' s' : '');
      return;
    }
    var st = results[0];
    var ev = results[1];
    if (st.status === 401) return markDown('unauthorized');
    if (st.status !== 200 || !st.body) return markDown('error', apiError(st));
    renderStatus(st.body);
    var evNote = $('events-note');
    if (ev instanceof Error) evNote.textContent = 'Could not load events: ' + ev.message;
    else if (ev.status !== 200 || !ev.body || !Array.isArray(ev.body.events)) evNote.textContent = 'Could not load events: ' + apiError(ev);
    else { evNote.textContent = ''; renderEvents(ev.body.events); }
    lastOk = Date.now();
    downSince = null;
    setConnection('ok', 'Live \u00b7 updated ' + clock(lastOk));
  }

  var timer = null;
  async function loop() {
    timer = null;
    try { await poll(); } catch (e) { markDown('error', String(e && e.message || e)); }
    timer = setTimeout(loop, POLL_MS);
  }
  function pollNow() { if (timer !== null) { clearTimeout(timer); loop(); } }

  takeTokenFromFragment();
  window.addEventListener('hashchange', function () { takeTokenFromFragment(); pollNow(); });
  $('token-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var input = $('token-input');
    var t = input.value.trim();
    input.value = '';
    if (!t) return;
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { memoryToken = t; }
    pollNow();
  });
  loop();
})();
`

const BODY = `
<header>
  <h1>holdfast</h1>
  <span class="muted">cluster <strong data-testid="cluster">…</strong></span>
  <span class="muted">this node <strong class="mono" data-testid="self">…</strong> (<span data-testid="self-role">…</span>)</span>
</header>
<main>
  <section>
    <div id="conn" data-testid="connection" data-state="connecting" role="status" aria-live="polite">Connecting…</div>
    <form id="token-form" data-testid="token-form" hidden autocomplete="off">
      <input id="token-input" data-testid="token-input" type="password" placeholder="bearer token" aria-label="bearer token">
      <button type="submit">Use token</button>
    </form>
  </section>
  <section class="card live">
    <div class="summary">
      <div class="stat"><span class="label">Leader</span><span class="value mono" data-testid="leader">…</span></div>
      <div class="stat"><span class="label">Acting</span><span class="value mono" data-testid="acting">…</span></div>
      <div class="stat"><span class="label">Term</span><span class="value" data-testid="term">…</span></div>
      <div class="stat"><span class="label">Commit index</span><span class="value" data-testid="commit">…</span></div>
      <div class="stat"><span class="label">Applied index</span><span class="value" data-testid="applied">…</span></div>
      <div class="stat"><span class="label">Fence</span><span class="value" data-testid="fence">…</span></div>
      <div class="stat"><span class="label">Ready</span><span class="value" data-testid="ready">…</span></div>
      <div class="stat"><span class="label">Members from</span><span class="value" data-testid="view">…</span></div>
    </div>
  </section>
  <section class="card live">
    <h2>Members</h2>
    <table>
      <thead><tr><th>id</th><th>url</th><th>role</th><th>kind</th><th>flags</th><th>reachable</th>
        <th class="num">match index</th><th class="num">lag</th></tr></thead>
      <tbody data-testid="members"></tbody>
    </table>
  </section>
  <section class="card live">
    <h2>Recent events <span class="muted">(this node and the leader, newest first)</span></h2>
    <p class="muted" data-testid="events-note"></p>
    <table>
      <thead><tr><th>time</th><th>type</th><th>node</th><th class="num">term</th><th>details</th></tr></thead>
      <tbody data-testid="events"></tbody>
    </table>
  </section>
</main>
`

const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64')

/**
 * The page's Content-Security-Policy (also in a meta element of the page): its own inline script and
 * style only, connections to the serving origin only, nothing else. The HTTP layer may send it as a
 * header too.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(SCRIPT)}'`,
  `style-src 'sha256-${sha256(CSS)}'`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ')

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${STATUS_PAGE_CSP}">
<meta name="referrer" content="no-referrer">
<title>holdfast</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`

/** The status page's HTML (the same string on every call). Serve it as text/html; charset=utf-8. */
export function statusPageHtml(): string {
  return HTML
}
