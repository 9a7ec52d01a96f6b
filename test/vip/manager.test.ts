/**
 * VipManager against a simulated host (a fake command runner that keeps a device's addresses and
 * answers iproute2's commands as iproute2 does), plus the real execFile runner and the address
 * helpers. The real thing, in network namespaces, is test/netns/vip.test.ts.
 */
import t, { type Test } from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import { iproute2HasAddress, parseVipAddress } from '../../src/vip/address.js'
import { execFileRunner, expandCommand, type CommandRunner } from '../../src/vip/commands.js'
import { FakeHost, fail, ok } from './fake-host.js'
import type { VipEvent } from '../../src/vip/events.js'
import { VipManager, type VipOptions } from '../../src/vip/manager.js'

const VIP = '10.0.0.100/24'

function setup(t: Test, options: Partial<VipOptions> = {}): { host: FakeHost; vip: VipManager; events: VipEvent[] } {
  const host = new FakeHost()
  const vip = new VipManager({ address: VIP, device: 'eth0', reconcileMs: 60_000, ...options }, { run: host.run, wallClock: () => 1_700_000_000_000 })
  const events: VipEvent[] = []
  vip.on('event', (e: VipEvent) => events.push(e))
  t.teardown(() => vip.close())
  return { host, vip, events }
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const actions = (events: VipEvent[]): string[] => events.map((e) => e.action)

t.test('acquire: check, add, then announce; resolves without waiting for arping', async (t) => {
  const { host, vip, events } = setup(t)
  host.holdArping = true
  await vip.acquire(7)
  t.ok(host.addrs.has(VIP), 'the address is on the device')
  t.same(host.calls, ['ip -o addr show dev eth0', 'ip addr add 10.0.0.100/24 dev eth0 valid_lft 2 preferred_lft 2', 'arping -c 1 -U -I eth0 10.0.0.100'])
  t.same(actions(events), ['added'], 'announced not yet: arping is still running')
  t.ok(vip.holding)
  await until(() => host.releaseArping !== undefined, 'arping started')
  host.releaseArping!()
  await until(() => events.length === 2, 'announced')
  const [added, announced] = events
  t.match(added, { type: 'vip', action: 'added', why: 'acquire', token: 7, address: VIP, device: 'eth0', time: 1_700_000_000_000, command: ['ip', 'addr', 'add', VIP, 'dev', 'eth0'] })
  t.match(announced, { action: 'announced', why: 'hold', token: 7, command: ['arping', '-c', '1', '-U', '-I', 'eth0', '10.0.0.100'] })
})

t.test('release removes the address, its event carries the token released', async (t) => {
  const { host, vip, events } = setup(t)
  await vip.acquire(3)
  host.calls.length = 0
  t.equal(await vip.release(), true)
  t.notOk(host.addrs.has(VIP))
  t.same(host.calls, ['ip addr del 10.0.0.100/24 dev eth0'], 'one command: what it added is removed without a check first')
  t.match(events.find((e) => e.action === 'removed'), { why: 'release', token: 3 })
  t.equal(vip.status().token, undefined)
  t.notOk(vip.holding)
})

t.test('release of an address someone already removed: the failed removal is reported, the next pass sees it gone', async (t) => {
  const { host, vip, events } = setup(t)
  await vip.acquire(5)
  host.addrs.delete(VIP)
  t.equal(await vip.release(), false)
  t.match(events.at(-1), { action: 'commandFailed', step: 'remove', exitCode: 2, stderr: /Address not found/ })
  await vip.reconcile()
  t.equal(vip.status().observed, false)
  t.equal(host.calls.at(-1), 'ip -o addr show dev eth0', 'the pass only looked: nothing more to do')
})

t.test('start-up reconcile removes a VIP left behind (a killed process, or added by hand)', async (t) => {
  const { host, vip, events } = setup(t)
  host.addrs.add(VIP)
  vip.start()
  await until(() => !host.addrs.has(VIP), 'stale VIP removed')
  t.match(events, [{ action: 'removedStale', why: 'stale' }])
  t.notOk('token' in events[0]!)
})

t.test('reconcile restores a VIP removed behind our back while acting, and announces it again', async (t) => {
  const { host, vip, events } = setup(t)
  await vip.acquire(1)
  host.addrs.delete(VIP)
  await vip.reconcile()
  t.ok(host.addrs.has(VIP))
  await until(() => events.filter((e) => e.action === 'announced').length === 2, 'second announcement')
  t.same(actions(events), ['added', 'announced', 'restored', 'announced'])
  t.match(events[2], { why: 'restore', token: 1 })
})

t.test('the periodic reconcile runs on its own', async (t) => {
  const { host, vip, events } = setup(t, { reconcileMs: 20 })
  vip.start()
  await vip.acquire(1)
  host.addrs.delete(VIP) // someone runs `ip addr del`
  await until(() => host.addrs.has(VIP), 'restored by the timer')
  host.addrs.add('10.0.0.100/24')
  await vip.release()
  host.addrs.add(VIP) // someone adds it on a node that does not act
  await until(() => !host.addrs.has(VIP), 'removed by the timer')
  t.same(
    actions(events).filter((a) => a !== 'announced'),
    ['added', 'restored', 'removed', 'removedStale'],
  )
})

t.test('an address already present when acting starts is adopted and announced, not added twice', async (t) => {
  const { host, vip, events } = setup(t)
  host.addrs.add(VIP)
  await vip.acquire(2)
  t.notOk(host.calls.some((c) => c.startsWith('ip addr add')))
  await until(() => events.length === 2, 'announced')
  t.same(actions(events), ['adopted', 'announced'])
  t.ok(vip.holding)
})

t.test('the same address with another prefix length is not ours', async (t) => {
  const { host, vip } = setup(t)
  host.addrs.add('10.0.0.100/32')
  await vip.acquire(1)
  t.ok(host.addrs.has(VIP))
})

t.test('a failed add is an event with the command, exit code, stderr and time, and acquire rejects', async (t) => {
  const { host, vip, events } = setup(t)
  host.force.set('ip addr add', fail(2, 'RTNETLINK answers: Operation not permitted\n'))
  const err = await vip.acquire(4).catch((e: unknown) => e)
  t.ok(isHoldfastError(err, 'COMMAND_FAILED'), 'COMMAND_FAILED')
  t.match((err as Error).message, /ip addr add 10\.0\.0\.100\/24 dev eth0 valid_lft 2 preferred_lft 2: exit code 2: RTNETLINK answers: Operation not permitted/)
  t.match(events, [
    {
      type: 'vip',
      action: 'commandFailed',
      step: 'add',
      command: ['ip', 'addr', 'add', VIP, 'dev', 'eth0'],
      exitCode: 2,
      stderr: 'RTNETLINK answers: Operation not permitted\n',
      timedOut: false,
      time: 1_700_000_000_000,
      token: 4,
    },
  ])
  t.notOk(host.calls.some((c) => c.startsWith('arping')), 'nothing announced')
  t.notOk(vip.holding)
  // The next pass tries again and reports again: a failure is never silenced.
  await vip.reconcile()
  t.equal(events.filter((e) => e.action === 'commandFailed').length, 2)
  host.force.clear()
  await vip.reconcile()
  t.ok(vip.holding, 'recovers once the command works')
})

t.test('check, remove and announce failures are events too; timeouts and missing programs say so', async (t) => {
  const { host, vip, events } = setup(t)
  host.force.set('ip -o addr', { ...fail(0, ''), exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 2000 })
  host.force.set('arping', { ...fail(0, ''), exitCode: null, error: 'spawn arping ENOENT' })
  await vip.acquire(1) // cannot observe: adds anyway (it never added it before)
  t.ok(host.addrs.has(VIP))
  await until(() => events.some((e) => e.step === 'announce'), 'announce failed')
  t.match(events.filter((e) => e.action === 'commandFailed'), [
    { step: 'check', timedOut: true, signal: 'SIGKILL', exitCode: null },
    { step: 'announce', error: 'spawn arping ENOENT' },
  ])
  host.force.clear()
  host.force.set('ip addr del', fail(2, 'RTNETLINK answers: Device or resource busy\n'))
  t.equal(await vip.release(), false, 'release reports that the address is still there')
  t.match(events.at(-1), { action: 'commandFailed', step: 'remove', exitCode: 2, token: 1 })
  host.force.clear()
  await vip.reconcile()
  t.notOk(host.addrs.has(VIP), 'the reconcile finishes the removal')
  t.match(events.at(-1), { action: 'removed' })
})

t.test('without a check command, only what the manager added is removed', async (t) => {
  const { host, vip, events } = setup(t, { commands: { check: null } })
  host.addrs.add(VIP) // e.g. the floating IP on another instance: unobservable from here
  await vip.reconcile()
  t.ok(host.addrs.has(VIP), 'not removed blindly')
  host.addrs.delete(VIP)
  await vip.acquire(1)
  await vip.release()
  t.notOk(host.addrs.has(VIP))
  t.same(actions(events).filter((a) => a !== 'announced'), ['added', 'removed'])
})

t.test('acquire and release in quick succession end in the last wish', async (t) => {
  const { host, vip } = setup(t)
  const all = [vip.acquire(1), vip.release(), vip.acquire(2), vip.release(), vip.acquire(3)]
  await Promise.all(all)
  t.ok(host.addrs.has(VIP))
  t.equal(vip.status().token, 3)
  await Promise.all([vip.release(), vip.reconcile(), vip.reconcile()])
  t.notOk(host.addrs.has(VIP))
})

t.test('close releases a held VIP and stops', async (t) => {
  const { host, vip } = setup(t, { reconcileMs: 10 })
  vip.start()
  await vip.acquire(1)
  await vip.close()
  t.notOk(host.addrs.has(VIP))
  const n = host.calls.length
  await new Promise((r) => setTimeout(r, 50))
  t.equal(host.calls.length, n, 'no command after close')
  await t.rejects(vip.acquire(2), { code: 'CLOSED' })
})

t.test('custom templates: placeholders anywhere, extra vars, a custom check', async (t) => {
  const calls: string[][] = []
  let associated = false
  const cloud = new VipManager(
    {
      address: '192.0.2.10/32',
      device: 'ens5',
      vars: { fip: 'fip-123' },
      commands: {
        add: ['cloud', 'fip', 'associate', '{fip}', '--ip={ip}', '--nic={device}'],
        remove: ['cloud', 'fip', 'disassociate', '{fip}'],
        check: ['cloud', 'fip', 'show', '{fip}', '--prefix', '{prefix}', '{address}'],
        announce: null,
      },
      isPresent: (stdout) => stdout.trim() === 'mine',
    },
    {
      run: async (argv) => {
        calls.push([...argv])
        if (argv[2] === 'associate') associated = true
        if (argv[2] === 'disassociate') associated = false
        return ok(argv[2] === 'show' ? (associated ? 'mine\n' : 'elsewhere\n') : '')
      },
    },
  )
  await cloud.acquire(1)
  await cloud.release()
  await cloud.close()
  t.same(calls, [
    ['cloud', 'fip', 'show', 'fip-123', '--prefix', '32', '192.0.2.10/32'],
    ['cloud', 'fip', 'associate', 'fip-123', '--ip=192.0.2.10', '--nic=ens5'],
    ['cloud', 'fip', 'disassociate', 'fip-123'],
  ])
})

t.test('bad options are refused before anything runs', async (t) => {
  const run: CommandRunner = async () => t.fail('ran a command') as never
  const make = (o: Partial<VipOptions>) => () => new VipManager({ address: VIP, device: 'eth0', ...o }, { run })
  t.throws(make({ address: '10.0.0.300/24' }), { code: 'INVALID_ARGUMENT' })
  t.throws(make({ address: '10.0.0.1/33' }), { code: 'INVALID_ARGUMENT' })
  t.throws(make({ device: '' }), { code: 'INVALID_ARGUMENT' })
  t.throws(make({ device: 'eth 0' }), { code: 'INVALID_ARGUMENT' })
  t.throws(make({ commands: { add: ['ip', 'addr', 'add', '{adress}'] } }), { code: 'INVALID_ARGUMENT', message: /unknown placeholder \{adress\}/ })
  t.throws(make({ commands: { remove: [] } }), { code: 'INVALID_ARGUMENT' })
  t.throws(make({ commands: { check: ['my-check'] } }), { code: 'INVALID_ARGUMENT', message: /isPresent/ })
  t.throws(make({ reconcileMs: 0 }), { code: 'INVALID_ARGUMENT' })
  t.throws(make({ commandTimeoutMs: -1 }), { code: 'INVALID_ARGUMENT' })
})

t.test('addresses: parsing and iproute2 output', async (t) => {
  t.same(parseVipAddress('10.0.0.100/24'), { address: '10.0.0.100/24', ip: '10.0.0.100', prefix: 24, family: 4 })
  t.same(parseVipAddress('10.0.0.100'), { address: '10.0.0.100/32', ip: '10.0.0.100', prefix: 32, family: 4 })
  t.same(parseVipAddress('2001:DB8:0::1/64'), { address: '2001:db8::1/64', ip: '2001:db8::1', prefix: 64, family: 6 })
  const out = [
    '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
    '2: eth0    inet 10.77.0.11/24 brd 10.77.0.255 scope global eth0\\       valid_lft forever preferred_lft forever',
    '2: eth0    inet 10.77.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever',
    '2: eth0    inet6 2001:db8::1/64 scope global \\       valid_lft forever preferred_lft forever',
  ].join('\n')
  t.ok(iproute2HasAddress(out, parseVipAddress('10.77.0.100/24')))
  t.notOk(iproute2HasAddress(out, parseVipAddress('10.77.0.100/32')), 'prefix length must match')
  t.notOk(iproute2HasAddress(out, parseVipAddress('10.77.0.10/24')), 'no prefix match of the text')
  t.ok(iproute2HasAddress(out, parseVipAddress('2001:db8:0:0::1/64')))
  t.same(expandCommand(['x', 'a{ip}b{ip}', '{device}'], { ip: '1', device: 'd' }), ['x', 'a1b1', 'd'])
})

t.test('the real runner: exit code, stderr, timeout, missing program; no shell', async (t) => {
  const node = process.execPath
  const r1 = await execFileRunner([node, '-e', 'process.stderr.write("bad thing"); process.exit(3)'], { timeoutMs: 10_000 })
  t.match(r1, { exitCode: 3, stderr: 'bad thing', timedOut: false })
  const r2 = await execFileRunner([node, '-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 300 })
  t.match(r2, { exitCode: null, signal: 'SIGKILL', timedOut: true })
  t.ok(r2.durationMs >= 290 && r2.durationMs < 10_000, `killed at the timeout (${Math.round(r2.durationMs)} ms)`)
  const r3 = await execFileRunner(['/nonexistent/holdfast-no-such-program'], { timeoutMs: 1000 })
  t.match(r3, { exitCode: null, timedOut: false, error: /ENOENT/ })
  const r4 = await execFileRunner([node, '-e', 'console.log(process.argv[1])', '$(echo hi); `x` | y'], { timeoutMs: 10_000 })
  t.match(r4, { exitCode: 0, stdout: '$(echo hi); `x` | y\n' }, 'arguments reach the program untouched')
})

t.test('a lease: added with a lifetime, refreshed every lifetime / 4 while held, never after release', async (t) => {
  let now = 0
  const host = new FakeHost()
  const events: VipEvent[] = []
  const vip = new VipManager({ address: VIP, device: 'eth0', reconcileMs: 60_000, lifetimeSec: 1 }, { run: host.run, now: () => now, wallClock: () => 1_700_000_000_000 })
  vip.on('event', (e: VipEvent) => events.push(e))
  vip.start()
  t.teardown(() => vip.close())
  await vip.acquire(3)
  t.ok(host.calls.includes('ip addr add 10.0.0.100/24 dev eth0 valid_lft 1 preferred_lft 1'), 'added with its lifetime')
  const refreshes = (): number => host.calls.filter((c) => c === 'ip addr change 10.0.0.100/24 dev eth0 valid_lft 1 preferred_lft 1').length
  await new Promise((r) => setTimeout(r, 300))
  t.equal(refreshes(), 0, 'not due on the manager clock: the add set the lifetime')
  now = 250
  await until(() => refreshes() === 1, 'a refresh when due')
  const checks = host.calls.filter((c) => c.startsWith('ip -o addr show')).length
  now = 500
  await until(() => refreshes() === 2, 'the next refresh')
  t.equal(host.calls.filter((c) => c.startsWith('ip -o addr show')).length, checks, 'a refresh tick runs no check')
  // The address expired behind its back (a stalled host): the refresh fails and is reported, the next reconcile adds it back.
  host.addrs.delete(VIP)
  now = 750
  await until(() => events.some((e) => e.action === 'commandFailed' && e.step === 'refresh'), 'the failed refresh reported')
  await vip.reconcile()
  t.ok(host.addrs.has(VIP), 'restored by the next reconcile')
  t.ok(events.some((e) => e.action === 'restored'))
  await vip.release()
  const after = refreshes()
  now = 10_000
  await new Promise((r) => setTimeout(r, 400))
  t.equal(refreshes(), after, 'no refresh when not holding')
})

t.test('a lease: lifetimeSec 0 or forever keeps a permanent address; a custom add with {lft} needs a refresh', async (t) => {
  for (const lifetimeSec of [0, 'forever'] as const) {
    const { host, vip } = setup(t, { lifetimeSec })
    await vip.acquire(1)
    await new Promise((r) => setTimeout(r, 300))
    t.ok(host.calls.includes('ip addr add 10.0.0.100/24 dev eth0'), `${lifetimeSec}: added without a lifetime`)
    t.notOk(host.calls.some((c) => c.includes('change')), `${lifetimeSec}: never refreshed`)
  }
  const run: CommandRunner = async () => ok()
  t.throws(() => new VipManager({ address: VIP, device: 'eth0', lifetimeSec: 1.5 }, { run }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => new VipManager({ address: VIP, device: 'eth0', lifetimeSec: -1 }, { run }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => new VipManager({ address: VIP, device: 'eth0', commands: { add: ['my-add', '{address}', '{lft}'] } }, { run }), { code: 'INVALID_ARGUMENT', message: /refresh/ })
  t.doesNotThrow(() => new VipManager({ address: VIP, device: 'eth0', commands: { add: ['my-add', '{address}', '{lft}'], refresh: ['my-refresh', '{lft}'] } }, { run }))
})
