import { isIP } from 'node:net'
import { HoldfastError } from '../errors.js'

/** A virtual IP address with its prefix length, parsed from '10.0.0.100/24'. */
export interface VipAddress {
  /** As given, normalised: '10.0.0.100/24'. The {address} placeholder. */
  readonly address: string
  /** The address alone: '10.0.0.100'. The {ip} placeholder. */
  readonly ip: string
  /** The prefix length: 24. The {prefix} placeholder. */
  readonly prefix: number
  /** 4 or 6. */
  readonly family: 4 | 6
}

/**
 * Parses 'ip/prefix'. A missing prefix means a host address (/32 or /128). Throws
 * INVALID_ARGUMENT for anything else, so a typo is refused before any command runs.
 */
export function parseVipAddress(text: string): VipAddress {
  if (typeof text !== 'string' || text.length === 0) throw new HoldfastError('INVALID_ARGUMENT', 'vip.address must be a string like "10.0.0.100/24"')
  const slash = text.indexOf('/')
  const rawIp = slash < 0 ? text : text.slice(0, slash)
  const family = isIP(rawIp)
  if (family !== 4 && family !== 6) throw new HoldfastError('INVALID_ARGUMENT', `vip.address: '${rawIp}' is not an IP address`)
  const max = family === 4 ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new HoldfastError('INVALID_ARGUMENT', `vip.address: bad prefix length '/${p}' (0 to ${max})`)
    prefix = Number(p)
  }
  const ip = canonicalIp(rawIp)
  return { address: `${ip}/${prefix}`, ip, prefix, family }
}

/** One textual form per address, so that '::1' and '0::1' compare equal. Throws on a non-address. */
export function canonicalIp(ip: string): string {
  const family = isIP(ip)
  if (family === 4) return ip
  if (family === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  throw new HoldfastError('INVALID_ARGUMENT', `'${ip}' is not an IP address`)
}

/**
 * Whether `ip -o addr show dev DEV` output (iproute2, one line per address) lists the VIP with its
 * prefix length. The same address with another prefix length does not count: removing it with
 * ours would fail, and it is not what we configured.
 */
export function iproute2HasAddress(stdout: string, vip: VipAddress): boolean {
  const keyword = vip.family === 4 ? 'inet' : 'inet6'
  for (const line of stdout.split('\n')) {
    const m = new RegExp(`\\s${keyword}\\s+(\\S+)/(\\d+)\\s`).exec(` ${line} `)
    if (m === null) continue
    const ip = m[1]!
    if (isIP(ip) === vip.family && canonicalIp(ip) === vip.ip && Number(m[2]) === vip.prefix) return true
  }
  return false
}
