/**
 * The campaign's driver: started by the orchestrator inside the client namespace as
 *
 *   ip netns exec NS node --import tsx driver.ts TOKEN
 *
 * with an IPC channel. It does everything that talks to the daemons over the network: single HTTP
 * requests for the orchestrator, the clients (workload.ts), the leader-check sampler
 * (sampler.ts) and hostile peers (peer-attack.ts). It exits when the channel closes.
 */
import { httpRequest } from './http.js'
import { peerAttack } from './peer-attack.js'
import type { FromDriver, Target, ToDriver } from './protocol.js'
import { Sampler } from './sampler.js'
import { Workload } from './workload.js'

const token = process.argv[2] ?? ''
let targets: Target[] = []
let workload: Workload | undefined
let sampler: Sampler | undefined

async function handle(m: ToDriver): Promise<unknown> {
  switch (m.op) {
    case 'http':
      return httpRequest(m.req, token)
    case 'targets':
      targets = m.targets
      if (workload) workload.targets = targets
      if (sampler) sampler.targets = targets
      return null
    case 'workloadStart':
      workload = new Workload(m.config, targets)
      return null
    case 'workloadStop': {
      const ops = (await workload?.stop()) ?? []
      workload = undefined
      return ops
    }
    case 'samplerStart':
      sampler = new Sampler(m.everyMs, targets, token)
      return null
    case 'samplerStop': {
      const samples = (await sampler?.stop()) ?? []
      sampler = undefined
      return samples
    }
    case 'peerAttack':
      return peerAttack(m.attack)
  }
}

if (!process.send) throw new Error('driver.ts runs with an IPC channel')
process.on('disconnect', () => process.exit(0))
process.on('message', (m: ToDriver) => {
  handle(m).then(
    (value) => reply({ id: m.id, ok: true, value }),
    (err: unknown) => reply({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  )
})
function reply(r: FromDriver): void {
  if (process.connected) process.send!(r)
}
process.send({ id: 0, ok: true, value: 'ready' } satisfies FromDriver)
