/**
 * The event notifier, for real: a node:http server receives the webhook calls, a `node -e`
 * command writes files; nothing is mocked.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createNotifier, type NotifierEvent } from '../../src/acting/notifier.js'
import { actingNode, cluster, codeOf, until } from './helpers.js'

interface Hook {
  url: string
  received: NotifierEvent[]
  attempts: number
  headers: IncomingMessage['headers'][]
  close(): Promise<void>
}

/** A webhook receiver: answers 500 to the first `failFirst` attempts, then 200 after `delayMs`. */
async function webhook(t: Test, options: { failFirst?: number; delayMs?: number } = {}): Promise<Hook> {
  const hook = { received: [] as NotifierEvent[], attempts: 0, headers: [] as IncomingMessage['headers'][] } as Hook
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d))
    req.on('end', () => {
      hook.attempts++
      hook.headers.push(req.headers)
      if (hook.attempts <= (options.failFirst ?? 0)) {
        res.writeHead(500).end('try again')
        return
      }
      setTimeout(() => {
        hook.received.push(JSON.parse(body) as NotifierEvent)
        res.writeHead(204).end()
      }, options.delayMs ?? 0)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`
  hook.close = () => new Promise<void>((r) => server.close(() => r()))
  t.teardown(() => {
    server.closeAllConnections()
    return hook.close()
  })
  return hook
}

t.test('events go to a webhook (retried after a failure) and to a command, in order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-notify-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const hook = await webhook(t, { failFirst: 1 })
  const c = await cluster(t, ['a', 'b', 'c'])
  const failures: string[] = []
  const hooks = [...c.nodes.values()].map((n) =>
    createNotifier(n, {
      webhook: { url: hook.url, headers: { authorization: 'Bearer s3cret' } },
      types: ['actingStart', 'role'],
      retryDelayMs: 20,
      onError: (err) => failures.push(err.message),
    }),
  )
  const commands = [...c.nodes.values()].map((n) =>
    createNotifier(n, {
      // A real command per event: writes the event (from {json} and from stdin) to a file named after it.
      command: {
        argv: [
          process.execPath,
          '-e',
          `const fs = require('fs'); const stdin = fs.readFileSync(0, 'utf8'); fs.writeFileSync(process.argv[1] + '/' + process.argv[2] + '-' + process.argv[3] + '-' + Date.now() + '-' + Math.random() + '.json', JSON.stringify({ arg: JSON.parse(process.argv[4]), stdin: JSON.parse(stdin), env: JSON.parse(process.env.HOLDFAST_EVENT) }))`,
          dir,
          '{node}',
          '{type}',
          '{json}',
        ],
      },
      types: ['actingStart'],
      onError: (err) => failures.push(err.message),
    }),
  )
  const notifiers = [...hooks, ...commands]
  const acting = await actingNode(c)
  const token = acting.fence()
  // On a loaded machine a stall can move leadership first: the event asserted is this acting period's.
  const isMine = (e: NotifierEvent): boolean => e.type === 'actingStart' && e.node === acting.id && (e as { token?: number }).token === token
  await until(() => hook.received.some(isMine), 10_000, 'the webhook to receive actingStart')
  await Promise.all(notifiers.map((n) => n.idle()))
  t.ok(hook.attempts > hook.received.length, `the first attempt failed and was retried (${hook.attempts} attempts, ${hook.received.length} received)`)
  t.equal(notifiers.reduce((s, n) => s + n.stats.retries, 0), 1, 'one retry in all')
  t.same(failures, [], 'nothing failed for good')
  t.ok(hook.headers.every((h) => h.authorization === 'Bearer s3cret' && h['content-type'] === 'application/json'), 'headers are sent')
  const start = hook.received.find(isMine)!
  t.match(start, { type: 'actingStart', node: acting.id, token, time: Number, term: token })
  const mine = hook.received.filter((e) => e.node === acting.id).map((e) => e.type)
  t.ok(mine.indexOf('role') < mine.indexOf('actingStart'), 'in order: the role change, then actingStart')
  t.ok(hook.received.every((e) => ['actingStart', 'role'].includes(e.type)), 'only the chosen types')

  const files = await readdir(dir)
  const started = files.filter((f) => f.startsWith(`${acting.id}-actingStart-`)).sort()
  t.ok(started.length >= 1, 'the command ran for actingStart')
  const runs = await Promise.all(started.map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8')) as { arg: NotifierEvent; stdin: NotifierEvent; env: NotifierEvent }))
  const written = runs.find((r) => isMine(r.arg)) ?? runs[0]!
  t.same(written.arg, start, 'the {json} argument is the event')
  t.same(written.stdin, start, 'so is stdin')
  t.same(written.env, start, 'and HOLDFAST_EVENT')
  // (Once, unless a stall on a loaded machine moved leadership meanwhile: then once per actingStart.)
  t.equal(files.length, hook.received.filter((e) => e.type === 'actingStart').length, 'the command ran once per actingStart')
  for (const n of notifiers) await n.close()
})

t.test('a full queue drops events, counts them and reports the count', async (t) => {
  const hook = await webhook(t, { delayMs: 50 })
  const c = await cluster(t, ['a', 'b', 'c'])
  const acting = await actingNode(c)
  await acting.put('k', 1)
  const notifier = createNotifier(acting, { webhook: { url: hook.url }, types: ['staleFence'], queueLimit: 3, retries: 0 })
  // Twenty refused writes make twenty staleFence events on this node, faster than the hook answers.
  const stale = acting.fence() - 1
  const codes = await Promise.all(Array.from({ length: 20 }, (_, i) => codeOf(acting.put(`s${i}`, i, { fence: stale }))))
  t.ok(codes.every((x) => x === 'STALE_FENCE'), 'every write was refused')
  await notifier.idle()
  const { dropped, delivered } = notifier.stats
  t.ok(dropped > 0, `events were dropped (${dropped})`)
  t.equal(delivered + dropped, 20 + hook.received.filter((e) => e.type === 'eventsDropped').length, 'every event was delivered or dropped')
  t.ok(hook.received.filter((e) => e.type === 'staleFence').length <= 20 - dropped, 'the dropped ones never went out')
  // The next event carries the count ahead of it.
  await codeOf(acting.put('late', 1, { fence: stale }))
  await until(() => hook.received.some((e) => e.type === 'eventsDropped'), 5000, 'the drop report')
  await notifier.idle()
  const report = hook.received.filter((e) => e.type === 'eventsDropped')
  t.equal(report.reduce((s, e) => s + (e as { dropped: number }).dropped, 0), dropped, 'the report carries the count')
  t.equal(notifier.stats.queued, 0, 'the queue drained')
  await notifier.close()
})

t.test('a webhook that keeps failing is given up after the retries and reported', async (t) => {
  const hook = await webhook(t, { failFirst: 1000 })
  const c = await cluster(t, ['solo'])
  const n = c.nodes.get('solo')!
  const errors: string[] = []
  const notifier = createNotifier(n, { webhook: { url: hook.url }, retries: 2, retryDelayMs: 10, types: ['x-test'], onError: (e, ev, sink) => errors.push(`${sink} ${ev.type}: ${e.message}`) })
  n.reportEvent({ type: 'x-test', detail: 1 })
  await notifier.idle()
  t.equal(hook.attempts, 3, 'one attempt and two retries')
  t.match(notifier.stats, { delivered: 0, failed: 1, retries: 2 })
  t.same(errors, ['webhook x-test: webhook answered 500'])
  t.throws(() => createNotifier(n, {}), { code: 'INVALID_ARGUMENT' }, 'a notifier needs a sink')
  await notifier.close()
})
