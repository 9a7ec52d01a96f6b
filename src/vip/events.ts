/** What happened to the VIP (see VipEvent). */
export type VipAction =
  /** This node started holding the VIP: the address was added. */
  | 'added'
  /** The address vanished while this node held it (someone removed it) and was added back. */
  | 'restored'
  /** The address was already present when this node started holding it, so it was kept as it was. */
  | 'adopted'
  /** This node stopped holding the VIP: the address was removed. */
  | 'removed'
  /** The address was present on this node without it holding the VIP (left by a killed process, or added by hand) and was removed. */
  | 'removedStale'
  /** The announcement (gratuitous ARP) was sent. */
  | 'announced'
  /** A command failed: non-zero exit, killed at its timeout, or could not start. Nothing is retried silently: the next reconcile tries again and reports again. */
  | 'commandFailed'

/** Which command of VipCommands ran. */
export type VipStepName = 'add' | 'remove' | 'check' | 'announce' | 'refresh'

/**
 * An event of the VIP manager, emitted as `manager.on('event', e)`, and by a node the VIP is
 * attached to as one of its events (type 'vip').
 */
export interface VipEvent {
  readonly type: 'vip'
  readonly action: VipAction
  /** Wall-clock time, ms since the epoch. */
  readonly time: number
  /** The VIP, '10.0.0.100/24'. */
  readonly address: string
  readonly device: string
  /** The acting token the VIP is held under, while held. */
  readonly token?: number
  /** For 'added' and 'restored' ('acquire' or 'restore'); 'removed' and 'removedStale' ('release' or 'stale'); 'announced' ('hold' or 'refresh'). */
  readonly why?: string
  /** The command that ran (for every action that ran one), as executed. */
  readonly step?: VipStepName
  readonly command?: readonly string[]
  readonly durationMs?: number
  /** For 'commandFailed': how it ended. */
  readonly exitCode?: number | null
  readonly signal?: string | null
  readonly timedOut?: boolean
  readonly stderr?: string
  /** For 'commandFailed': why it could not start (ENOENT, ...). */
  readonly error?: string
}
