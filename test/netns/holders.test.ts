/**
 * judgeHolders() on made-up timelines: it passes the story the VIP test expects and catches each
 * way that story can go wrong. Runs anywhere (no namespaces).
 */
import t from 'tap'
import { judgeHolders, type NodeLife, type Sample } from './holders.js'

// n1 acts from 100 and is killed at 1000; n2 acts from 1800; n1 restarts and removes its orphan at 3000.
const KILL = { node: 'n1', at: 1000 }
const lives = (): NodeLife[] => [
  { node: 'n1', liveFrom: 0, diedAt: 1000, acting: [{ token: 2, from: 100, to: Infinity }] },
  { node: 'n2', liveFrom: 0, diedAt: Infinity, acting: [{ token: 3, from: 1800, to: Infinity }] },
  { node: 'n3', liveFrom: 0, diedAt: Infinity, acting: [] },
  { node: 'n1', liveFrom: 3000, diedAt: Infinity, acting: [] },
]
/** Samples every 50 ms from 0 to 4000 with holders as the story goes, then `edit` applied. */
function story(edit: (s: Sample) => void = () => {}): Sample[] {
  const out: Sample[] = []
  for (let at = 0; at <= 4000; at += 50) {
    const holders: string[] = []
    if (at >= 90 && at < 3000) holders.push('n1') // added before acting; orphaned from the kill to the restart's removal
    if (at >= 1790) holders.push('n2')
    const s = { start: at, end: at + 5, holders }
    edit(s)
    out.push(s)
  }
  return out
}

t.test('the expected story passes, with its gap and orphan counted', async (t) => {
  const v = judgeHolders(story(), lives(), KILL)
  t.same(v.violations, [])
  t.equal(v.failoverGap, 16, 'from the kill (1000) until n2 is seen holding (1800): the orphan is no live holder')
  t.equal(v.otherGaps, 0)
  t.ok(v.orphaned > 30, `orphan counted (${v.orphaned})`)
  t.equal(v.maxIntervalMs, 50)
})

t.test('a later acquisition widens the failover gap; it is counted, not a violation', async (t) => {
  const ls = lives()
  ls[1]!.acting[0]!.from = 2000
  const v = judgeHolders(story((s) => s.start < 1990 && (s.holders = s.holders.filter((h) => h !== 'n2'))), ls, KILL)
  t.same(v.violations, [])
  t.equal(v.failoverGap, 20)
})

t.test('two live holders', async (t) => {
  const v = judgeHolders(story((s) => s.start === 500 && s.holders.push('n3')), lives(), KILL)
  t.match(v.violations, [/two live holders \(n1, n3\) at -500 ms/, /n1 acts but the live holders are \[n1, n3\]/])
})

t.test('two nodes acting', async (t) => {
  const ls = lives()
  ls[2]!.acting.push({ token: 9, from: 400, to: 450 })
  t.match(judgeHolders(story(), ls, KILL).violations, [/two nodes acting \(n1, n3\) at -600 ms/])
})

t.test('acting without the VIP, or a non-acting node holding it', async (t) => {
  t.match(judgeHolders(story((s) => s.start === 2500 && (s.holders = ['n1'])), lives(), KILL).violations, [/n2 acts but the live holders are \[\]/])
  t.match(judgeHolders(story((s) => s.start === 2500 && (s.holders = ['n1', 'n3'])), lives(), KILL).violations, [/n2 acts but the live holders are \[n3\]/])
})

t.test('an orphan anywhere but the killed namespace in its window', async (t) => {
  t.match(judgeHolders(story((s) => s.start === 3500 && s.holders.push('n1')), lives(), KILL).violations, [/two live holders/, /n2 acts but/])
  const ls = lives()
  ls[2]!.diedAt = 2000 // n3 died without being restarted: its namespace may not hold the VIP
  t.match(judgeHolders(story((s) => s.start === 2500 && s.holders.push('n3')), ls, KILL).violations, [/an orphaned address in n3's namespace at 1500 ms/])
})

t.test('no live holder while nobody acts is counted as another gap', async (t) => {
  const ls = lives()
  ls[1]!.acting = [
    { token: 3, from: 1800, to: 2400 }, // lease expired under load
    { token: 3, from: 2700, to: Infinity },
  ]
  const v = judgeHolders(story((s) => s.start >= 2450 && s.start < 2650 && (s.holders = s.holders.filter((h) => h !== 'n2'))), ls, KILL)
  t.same(v.violations, [])
  t.equal(v.otherGaps, 4)
})
