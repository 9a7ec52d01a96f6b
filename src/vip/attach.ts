import type { HoldfastNode } from '../node.js'
import type { VipEvent } from './events.js'
import { VipManager, type VipManagerDeps, type VipOptions } from './manager.js'

/**
 * The VIP's place among acting handlers: after the service's own (order 0 by default), so that
 * traffic arrives once the service has started acting. Its stop runs alongside theirs.
 */
export const VIP_HANDLER_ORDER = 1_000

/** Settings of attachVip() beyond the VIP's own. */
export interface AttachVipOptions {
  /** The VIP handler's start order (ActingHandlerOptions.order). @default 1000 */
  order?: number
}

/**
 * Makes the VIP follow the acting node: an acting handler acquires it under the acting token (the
 * node reports itself acting only once the address is up; if it cannot be added, the handler
 * fails and the node gives up leadership rather than act without its address), and its stop
 * function releases it when acting is aborted, within the node's grace period. The manager
 * reconciles from now on (a VIP left on this host by a killed process is removed at once, since
 * the node is not acting yet) and stops when the node closes. Its events go out as the node's
 * 'vip' events (`node.on('event', ...)`).
 *
 * Pass a VipManager to build it before the node (createSwarmNode does, so bad options are refused
 * before anything opens), or the options.
 */
export function attachVip(node: HoldfastNode, vip: VipManager | VipOptions, options: AttachVipOptions = {}, deps?: VipManagerDeps): VipManager {
  const manager = vip instanceof VipManager ? vip : new VipManager(vip, deps)
  manager.on('event', (e: VipEvent) => {
    const { type: _type, time: _time, ...details } = e
    node.reportEvent({ type: 'vip', ...details })
  })
  manager.start()
  const off = node.onActing(
    async ({ token }) => {
      await manager.acquire(token)
      return async () => {
        await manager.release()
      }
    },
    { name: 'vip', order: options.order ?? VIP_HANDLER_ORDER },
  )
  // close() stops acting first (the stop above releases the address), then emits 'close'.
  node.once('close', () => {
    off()
    void manager.close()
  })
  return manager
}
