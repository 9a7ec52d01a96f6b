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
          for (const canAnnounce of [true, false]) {
            cases++
            const input = { ...base, desired, observed, believed, announced, canAnnounce }
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
          }
  t.equal(cases, 72)
  t.same(problems, [], 'no case breaks a rule')
})
