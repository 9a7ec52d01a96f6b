/** The VIP that follows the acting node: see VipManager and attachVip. */
export { attachVip, VIP_HANDLER_ORDER, type AttachVipOptions } from './attach.js'
export { VipManager, DEFAULT_VIP_ANNOUNCE_EVERY_MS, DEFAULT_VIP_LIFETIME_SEC, DEFAULT_VIP_COMMAND_TIMEOUT_MS, DEFAULT_VIP_RECONCILE_MS, type VipManagerDeps, type VipOptions, type VipStatus } from './manager.js'
export { defaultVipCommands, execFileRunner, expandCommand, type CommandResult, type CommandRunner, type VipCommands } from './commands.js'
export { iproute2HasAddress, parseVipAddress, type VipAddress } from './address.js'
export { planVip, type VipPlanInput, type VipStep } from './plan.js'
export type { VipAction, VipEvent, VipStepName } from './events.js'
