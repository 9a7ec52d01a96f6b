import t from 'tap'
import { Harness } from './harness.js'

t.test('three nodes elect a leader and replicate', async (t) => {
  const h = new Harness(['a', 'b', 'c'])
  const leader = h.electLeader()
  h.propose(leader, 'x=1')
  h.propose(leader, 'x=2')
  h.deliverAll()
  h.tick(undefined, 2)
  for (const id of ['a', 'b', 'c']) t.same(h.appliedTexts(id), ['x=1', 'x=2'], `${id} applied both`)
})
