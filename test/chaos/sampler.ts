/**
 * The leader-check sampler, run by the driver: every `everyMs` it asks each daemon's
 * GET /v1/leader-check, one independent loop per daemon (a paused daemon delays only its own
 * samples), and records each probe's send and receive times. leases.ts judges the samples.
 */
import { httpRequest } from './http.js'
import { wallNow, type LeaseSample, type Target } from './protocol.js'

export class Sampler {
  readonly samples: LeaseSample[] = []
  #running = true
  readonly #loops = new Map<string, Promise<void>>()

  constructor(
    readonly everyMs: number,
    targets: Target[],
    readonly token: string,
  ) {
    this.targets = targets
  }

  /** Starts a loop for each target not sampled yet (a loop ends when its target is dropped). */
  set targets(targets: Target[]) {
    this.#current = new Map(targets.map((t) => [t.name, t]))
    for (const t of targets) if (!this.#loops.has(t.name)) this.#loops.set(t.name, this.#loop(t.name))
  }

  #current = new Map<string, Target>()

  async stop(): Promise<LeaseSample[]> {
    this.#running = false
    await Promise.all(this.#loops.values())
    return this.samples
  }

  async #loop(name: string): Promise<void> {
    while (this.#running) {
      const target = this.#current.get(name)
      if (!target) {
        this.#loops.delete(name)
        return
      }
      const start = wallNow()
      // auth: false: the leader check is open, as a load balancer would call it.
      const a = await httpRequest({ url: `${target.url}/v1/leader-check`, method: 'GET', auth: false, timeoutMs: 1_000 }, this.token)
      const end = wallNow()
      const body = a.body as { id?: unknown; fence?: unknown } | undefined
      this.samples.push({
        node: name,
        start,
        end,
        status: a.status,
        ...(typeof body?.id === 'string' ? { id: body.id } : {}),
        ...(typeof body?.fence === 'number' ? { fence: body.fence } : {}),
      })
      const wait = start + this.everyMs - wallNow()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  }
}
