/**
 * The status page (GET /) in headless Chromium (Debian's chromium, installed by
 * ensure-chromium.sh when missing, driven by playwright-core) against real `holdfast start`
 * processes on a loopback DHT (harness.ts), with a bearer token:
 *
 * - a page opened on each follower as /#token=... shows this node, the leader, the acting node,
 *   the term and three reachable members, and follows a write (commit index) without a reload;
 * - the leader is SIGKILLed: both pages show the new leader and acting node, the killed member
 *   unreachable, and the new leader's page lists its role change and actingStart;
 * - a key with HTML in it, carried by a staleFence event, is shown as text;
 * - the pages make no requests to other origins and log no console errors;
 * - without the token the page asks for it, and works once it is entered;
 * - a page whose node is killed shows "node unreachable", and recovers when the node restarts.
 */
import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import { collectPageErrors, launchChromium } from './browser.js'
import { DaemonCluster, waitFor, type DaemonProcess } from './harness.js'

const TOKEN = 'status-page-test-token'
/** A key that would run script if the page inserted it as HTML. */
const HTML_KEY = '<img src=x onerror="window.__pwned=1"><b>bold</b>'

/** What the page shows, read from its data-testid elements. */
interface Shown {
  state: string
  self: string
  selfRole: string
  leader: string
  acting: string
  term: string
  commit: string
  applied: string
  members: Array<{ id: string; role: string; reachable: string; url: string; href: string | null }>
  events: Array<{ type: string; time: number; details: string }>
  tokenFormVisible: boolean
  /** img elements anywhere in the document (the page has none of its own). */
  imgs: number
  pwned: boolean
}

// A string, not a function: the project's TypeScript has no DOM types, and tsx could rewrite a function.
const SNAPSHOT = `(() => {
  const q = (id) => document.querySelector('[data-testid="' + id + '"]');
  const text = (id) => q(id).textContent;
  return {
    state: q('connection').dataset.state,
    self: q('self').dataset.nodeId || '',
    selfRole: text('self-role'),
    leader: q('leader').dataset.nodeId || '',
    acting: q('acting').dataset.nodeId || '',
    term: text('term'),
    commit: text('commit'),
    applied: text('applied'),
    members: [...document.querySelectorAll('[data-testid="member"]')].map((r) => ({
      id: r.dataset.memberId, role: r.dataset.role, reachable: r.dataset.reachable,
      url: r.querySelector('[data-field="url"]').textContent,
      href: r.querySelector('[data-field="url"] a') ? r.querySelector('[data-field="url"] a').getAttribute('href') : null,
    })),
    events: [...document.querySelectorAll('[data-testid="event"]')].map((r) => ({
      type: r.dataset.type, time: Number(r.dataset.time), details: r.querySelector('[data-field="details"]').textContent,
    })),
    tokenFormVisible: !q('token-form').hidden,
    imgs: document.querySelectorAll('img').length,
    pwned: window.__pwned === 1,
  };
})()`

const shown = (page: Page): Promise<Shown> => page.evaluate<Shown>(SNAPSHOT)

/** Polls the page until `pred` holds; the failure names what was awaited and what the page showed. */
async function untilShown(page: Page, what: string, pred: (s: Shown) => boolean, ms = 30_000): Promise<Shown> {
  let last: Shown | undefined
  try {
    return await waitFor(async () => {
      last = await shown(page)
      return pred(last) ? last : undefined
    }, what, ms, 100)
  } catch (err) {
    throw new Error(`${(err as Error).message}\npage showed: ${JSON.stringify(last, null, 1)}`)
  }
}

/** A page on `d`'s status page, with what it logs and the origins it requests. */
async function openPage(browser: Browser, d: DaemonProcess, fragment = `#token=${encodeURIComponent(TOKEN)}`): Promise<{ page: Page; errors: string[]; origins: Set<string> }> {
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors = collectPageErrors(page)
  const origins = new Set<string>()
  page.on('request', (r) => origins.add(new URL(r.url()).origin))
  await page.goto(`${d.url}/${fragment}`)
  return { page, errors, origins }
}

t.test('the status page shows the cluster live and follows a failover without a reload', async (t) => {
  const started = Date.now()
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  t.comment(`chromium ${browser.version()}`)
  const cluster = await DaemonCluster.start(t, { size: 3, voters: 3, token: TOKEN })
  const leader = await cluster.leader()
  const [a, b] = cluster.live().filter((d) => d !== leader) as [DaemonProcess, DaemonProcess]
  const ids = new Set(cluster.live().map((d) => d.id))
  const urlOf = new Map(cluster.live().map((d) => [d.id, d.url]))

  const pa = await openPage(browser, a)
  const pb = await openPage(browser, b)
  t.notMatch(pa.page.url(), /token/, 'the token is taken out of the address bar')

  for (const [d, p] of [[a, pa], [b, pb]] as const) {
    const s = await untilShown(p.page, `${d.name}'s page showing the formed cluster`, (s) =>
      s.state === 'ok' && s.leader === leader.id && s.acting === leader.id && s.members.length === 3 && s.members.every((m) => m.reachable === 'true'))
    t.equal(s.self, d.id, `${d.name}: this node`)
    t.equal(s.selfRole, 'follower')
    t.same(new Set(s.members.map((m) => m.id)), ids, 'every member listed')
    t.equal(s.members.find((m) => m.id === leader.id)?.role, 'leader')
    for (const m of s.members) {
      t.equal(m.url, urlOf.get(m.id), 'the member URL shown')
      t.equal(m.href, `${urlOf.get(m.id)}/`, 'as a link')
    }
    const api = (await d.status())!
    await untilShown(p.page, 'the term and indices of the API', (s) => s.term === String(api.term) && Number(s.commit) >= api.commitIndex && Number(s.applied) >= api.appliedIndex)
  }

  // Live: a write shows up in the commit index without a reload.
  const before = Number((await shown(pa.page)).commit)
  const put = await a.http('PUT', '/v1/kv/status-page', { body: '"hello"' })
  t.equal(put.status, 200, 'a write through a follower')
  await untilShown(pa.page, 'the commit index after a write', (s) => Number(s.commit) > before)

  // Failover: SIGKILL the leader; both pages follow.
  const killedAt = Date.now()
  await leader.kill()
  for (const [d, p] of [[a, pa], [b, pb]] as const) {
    const s = await untilShown(p.page, `${d.name}'s page showing a new leader`, (s) => s.state === 'ok' && s.leader !== '' && s.leader !== leader.id)
    t.ok(ids.has(s.leader), `${d.name}: the new leader ${s.leader.slice(0, 8)} is a member`)
  }
  t.comment(`both pages showed a new leader ${Date.now() - killedAt} ms after the SIGKILL`)
  for (const [d, p] of [[a, pa], [b, pb]] as const) {
    await untilShown(p.page, `${d.name}'s page showing the new leader acting, the old one unreachable`, (s) =>
      s.state === 'ok' && s.leader !== leader.id && s.acting === s.leader && s.members.find((m) => m.id === leader.id)?.reachable === 'false')
  }
  t.comment(`both pages showed it acting and the killed member unreachable ${Date.now() - killedAt} ms after the SIGKILL`)
  const newLeader = (await shown(pa.page)).leader
  const [lp, lname] = newLeader === a.id ? [pa, a.name] : [pb, b.name]
  const s = await untilShown(lp.page, `the new leader's page listing its role change and actingStart`, (s) =>
    s.selfRole === 'leader' && s.events.some((e) => e.type === 'role' && e.time >= killedAt && e.details.endsWith(`\u2192 leader, leader ${newLeader.slice(0, 8)}\u2026`)) &&
    s.events.some((e) => e.type === 'actingStart' && e.time >= killedAt))
  const times = s.events.map((e) => e.time)
  t.same(times, [...times].sort((x, y) => y - x), `${lname}'s events newest first`)

  // A key with HTML in it, in a staleFence event (a write under a token older than the one in force).
  const fence = (await a.status())!.fence
  t.ok(fence > 1, `the fence in force (${fence}) is newer than token 1`)
  const stale = await a.http('PUT', `/v1/kv/${encodeURIComponent(HTML_KEY)}?fence=1`, { body: '1' })
  t.equal(stale.body?.error?.code, 'STALE_FENCE', `a write with token 1 is refused (${stale.status})`)
  for (const p of [pa, pb]) {
    const s = await untilShown(p.page, 'the staleFence event', (s) => s.events.some((e) => e.type === 'staleFence'))
    const detail = s.events.find((e) => e.type === 'staleFence')!.details
    t.ok(detail.includes(`key=${HTML_KEY}`), `the key is shown as text: ${detail}`)
    t.equal(s.imgs, 0, 'no element made from it')
    t.notOk(s.pwned)
  }

  for (const [name, p] of [[a.name, pa], [b.name, pb]] as const) {
    t.same([...p.origins], [new URL(p.page.url()).origin], `${name}'s page requests its own origin only`)
    t.same(p.errors, [], `${name}'s page logged no errors`)
  }

  // Without the token, the page asks for it, and works once it is entered.
  const pt = await openPage(browser, a, '')
  await untilShown(pt.page, 'the page asking for a token', (s) => s.state === 'unauthorized' && s.tokenFormVisible)
  await pt.page.getByTestId('token-input').fill(TOKEN)
  await pt.page.getByTestId('token-input').press('Enter')
  await untilShown(pt.page, 'the page live once the token is entered', (s) => s.state === 'ok' && !s.tokenFormVisible && s.leader === newLeader)
  await pt.page.context().close()

  // The page's own node killed: "node unreachable", and polling on; it recovers on restart.
  const other = newLeader === a.id ? b : a
  const op = other === a ? pa : pb
  await other.kill()
  const down = await untilShown(op.page, 'the page showing its node unreachable', (s) => s.state === 'unreachable')
  t.equal(down.leader, newLeader, 'the last known state stays on show')
  t.match(await op.page.getByTestId('connection').textContent(), /node unreachable/i)
  other.restart()
  await untilShown(op.page, 'the page live again after the restart', (s) => s.state === 'ok', 60_000)
  t.comment(`test took ${Date.now() - started} ms`)
})
