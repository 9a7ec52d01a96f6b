/**
 * planVip(): every combination of wanted / seen / own last action, and the announcement rules.
 */
import t from 'tap'
import { planVip, type VipPlanInput, type VipStep } from '../../src/vip/plan.js'

const base: VipPlanInput = {
  desired: false,
  observed: false,
  believed: undefined,
  announced: false,
  canAnnounce: true,
  sinceAnnounceMs: undefined,
  announceEveryMs: 0,
  canRefresh: false,
  sinceRefreshMs: undefined,
  refreshEveryMs: 250,
}
const plan = (s: Partial<VipPlanInput>): VipStep[] => planVip({ ...base, ...s })

t.test('acquiring: absent → add, then announce', async (t) => {
  t.same(plan({ desired: true, observed: false }), [{ op: 'add', why: 'acquire' }, { op: 'announce', why: 'hold' }])
  t.same(plan({ desired: true, observed: false, believed: false }), [{ op: 'add', why: 'acquire' }, { op: 'announce', why: 'hold' }])
  t.same(plan({ desired: true, observed: false, canAnnounce: false }), [{ op: 'add', why: 'acquire' }], 'no announce command: add only')
})

t.test('holding, removed behind our back → restore and announce again', async (t) => {
  t.same(plan({ desired: true, observed: false, believed: true, announced: true }), [{ op: 'add', why: 'restore' }, { op: 'announce', why: 'hold' }])
})

t.test('holding, present → nothing once announced', async (t) => {
  t.same(plan({ desired: true, observed: true, believed: true, announced: true }), [])
  t.same(plan({ desired: true, observed: true, believed: true, announced: false }), [{ op: 'announce', why: 'hold' }], 'a new holding is announced even if the address stayed')
})

t.test('acquiring, already present (left by an earlier process, or added by hand) → adopt and announce', async (t) => {
  t.same(plan({ desired: true, observed: true }), [{ op: 'adopt' }, { op: 'announce', why: 'hold' }])
  t.same(plan({ desired: true, observed: true, believed: false, announced: true }), [{ op: 'adopt' }, { op: 'announce', why: 'hold' }])
})

t.test('periodic re-announcement while holding', async (t) => {
  const holding = { desired: true, observed: true, believed: true, announced: true, announceEveryMs: 5000 }
  t.same(plan({ ...holding, sinceAnnounceMs: 4999 }), [])
  t.same(plan({ ...holding, sinceAnnounceMs: 5000 }), [{ op: 'announce', why: 'refresh' }])
  t.same(plan({ ...holding, announceEveryMs: 0, sinceAnnounceMs: 1e9 }), [], '0 turns it off')
  t.same(plan({ ...holding, desired: false, sinceAnnounceMs: 1e9 }), [{ op: 'remove', why: 'release' }], 'never announced when not held')
})

t.test('a lease: the lifetime is refreshed while holding, when due', async (t) => {
  const holding = { desired: true, observed: true, believed: true, announced: true, canRefresh: true, refreshEveryMs: 250 }
  t.same(plan({ ...holding, sinceRefreshMs: 249 }), [], 'not due yet')
  t.same(plan({ ...holding, sinceRefreshMs: 250 }), [{ op: 'refresh' }], 'due')
  t.same(plan({ ...holding, sinceRefreshMs: undefined }), [{ op: 'refresh' }], 'never refreshed while holding')
  t.same(plan({ ...holding, observed: undefined, sinceRefreshMs: 300 }), [{ op: 'refresh' }], 'unobserved (a refresh tick skips the check): refresh what our own add left')
  t.same(plan({ ...holding, canRefresh: false, sinceRefreshMs: 1e9 }), [], 'no lifetime (or no refresh command): never')
  t.same(
    plan({ ...holding, sinceRefreshMs: 300, announceEveryMs: 5000, sinceAnnounceMs: 5000 }),
    [{ op: 'refresh' }, { op: 'announce', why: 'refresh' }],
    'refresh before a re-announcement, which stays last',
  )
  t.same(plan({ ...holding, announced: false, sinceRefreshMs: 10 }), [{ op: 'announce', why: 'hold' }], 'a new holding of a fresh address: announce, no refresh')
})

t.test('a lease: adding sets the lifetime, adopting refreshes it at once', async (t) => {
  t.same(plan({ desired: true, observed: false, canRefresh: true, sinceRefreshMs: 1e9 }), [{ op: 'add', why: 'acquire' }, { op: 'announce', why: 'hold' }], 'add, no refresh: the add sets the lifetime')
  t.same(plan({ desired: true, observed: false, believed: true, announced: true, canRefresh: true, sinceRefreshMs: 1e9 }), [{ op: 'add', why: 'restore' }, { op: 'announce', why: 'hold' }], 'an expired address is added back')
  t.same(plan({ desired: true, observed: true, canRefresh: true, sinceRefreshMs: 0 }), [{ op: 'adopt' }, { op: 'refresh' }, { op: 'announce', why: 'hold' }], 'an adopted address gets our lifetime at once, whatever it had')
})

t.test('a lease: never refreshed when not holding', async (t) => {
  for (const observed of [true, false, undefined])
    for (const believed of [true, false, undefined]) {
      const steps = plan({ desired: false, observed, believed, canRefresh: true, sinceRefreshMs: 1e9 })
      t.notOk(
        steps.some((s) => s.op === 'refresh'),
        `not wanted, observed ${observed}, believed ${believed}: ${JSON.stringify(steps)}`,
      )
    }
})

t.test('releasing: present → remove', async (t) => {
  t.same(plan({ desired: false, observed: true, believed: true }), [{ op: 'remove', why: 'release' }])
  t.same(plan({ desired: false, observed: false, believed: true }), [], 'already gone: nothing')
})

t.test('not acting, present → the stale address goes', async (t) => {
  t.same(plan({ desired: false, observed: true }), [{ op: 'remove', why: 'stale' }], 'at start-up (never acted)')
  t.same(plan({ desired: false, observed: true, believed: false }), [{ op: 'remove', why: 'stale' }], 'added again after we removed it')
})

t.test('not acting, absent → nothing', async (t) => {
  t.same(plan({ desired: false, observed: false }), [])
})

t.test('unobservable (no check command, or the check failed): act on what our own commands left', async (t) => {
  t.same(plan({ desired: true, observed: undefined }), [{ op: 'add', why: 'acquire' }, { op: 'announce', why: 'hold' }])
  t.same(plan({ desired: true, observed: undefined, believed: false }), [{ op: 'add', why: 'acquire' }, { op: 'announce', why: 'hold' }])
  t.same(plan({ desired: true, observed: undefined, believed: true, announced: true }), [], 'added before: not again')
  t.same(plan({ desired: false, observed: undefined, believed: true }), [{ op: 'remove', why: 'release' }])
  t.same(plan({ desired: false, observed: undefined, believed: false }), [])
  t.same(plan({ desired: false, observed: undefined }), [], 'an address we never added is never removed blindly')
})

t.test('exhaustive: the plan always converges on the wish', async (t) => {
  // Applying the plan's add/remove to what is seen yields what is wanted, for every input.
  const problems: string[] = []
  let cases = 0
  for (const desired of [true, false])
    for (const observed of [true, false, undefined])
      for (const believed of [true, false, undefined])
        for (const announced of [true, false])
          for (const canAnnounce of [true, false])
          for (const canRefresh of [true, false]) {
            cases++
            const input = { ...base, desired, observed, believed, announced, canAnnounce, canRefresh, sinceRefreshMs: 1e9 }
            const steps = planVip(input)
            let present = observed ?? believed === true
            for (const s of steps) {
              if (s.op === 'add') present = true
              if (s.op === 'remove') present = false
            }
            const bad = (what: string): number => problems.push(`${what}: ${JSON.stringify(input)} -> ${JSON.stringify(steps)}`)
            if (desired && !present) bad('not held although wanted')
            if (!desired && (observed !== undefined || believed === true) && present) bad('left although not wanted')
            if (!desired && steps.some((s) => s.op === 'announce' || s.op === 'add' || s.op === 'adopt')) bad('acquired although not wanted')
            if (desired && steps.some((s) => s.op === 'remove')) bad('removed although wanted')
            const ai = steps.findIndex((s) => s.op === 'announce')
            if (steps.filter((s) => s.op === 'announce').length > 1 || (ai !== -1 && ai !== steps.length - 1)) bad('announce not once and last')
            if (!canAnnounce && ai !== -1) bad('announce without a command')
            const ri = steps.findIndex((s) => s.op === 'refresh')
            if (ri !== -1 && (!desired || !canRefresh)) bad('refreshed although not held or no lifetime')
            if (ri !== -1 && steps.slice(0, ri).some((s) => s.op === 'add' || s.op === 'remove')) bad('refresh after an add or remove')
            if (desired && canRefresh && present && !steps.some((s) => s.op === 'add') && ri === -1) bad('held lease not refreshed when due')
          }
  t.equal(cases, 144)
  t.same(problems, [], 'no case breaks a rule')
})
