// Minimal declarations of the parts of hyperswarm and hyperdht that holdfast uses. They stay
// internal: no public holdfast type mentions them.

declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events'
  export interface KeyPair {
    publicKey: Buffer
    secretKey: Buffer
  }
  export interface DhtOptions {
    bootstrap?: Array<string | { host: string; port: number }>
    host?: string
    port?: number
    ephemeral?: boolean
    firewalled?: boolean
    anyPort?: boolean
    connectionKeepAlive?: number | false
  }
  export default class HyperDHT extends EventEmitter {
    constructor(options?: DhtOptions)
    static keyPair(seed?: Uint8Array): KeyPair
    static bootstrapper(port: number, host: string, options?: DhtOptions): HyperDHT
    ready(): Promise<void>
    fullyBootstrapped(): Promise<void>
    address(): { host: string; port: number }
    destroy(options?: { force?: boolean }): Promise<void>
    destroyed: boolean
    connect(publicKey: Buffer, options?: { keyPair?: KeyPair }): import('hyperswarm').NoiseSecretStream
  }
}

declare module 'hyperdht/testnet.js' {
  import type HyperDHT from 'hyperdht'
  interface Testnet {
    nodes: HyperDHT[]
    bootstrap: Array<{ host: string; port: number }>
    createNode(options?: object): HyperDHT
    destroy(): Promise<void>
  }
  export default function createTestnet(size?: number, options?: { host?: string; port?: number; teardown?: unknown }): Promise<Testnet>
}

declare module 'hyperswarm' {
  import type { EventEmitter } from 'node:events'
  import type HyperDHT from 'hyperdht'
  import type { KeyPair } from 'hyperdht'

  export interface NoiseSecretStream extends EventEmitter {
    readonly remotePublicKey: Buffer
    readonly publicKey: Buffer
    readonly isInitiator: boolean
    readonly handshakeHash: Buffer | null
    readonly opened: Promise<boolean>
    readonly destroyed: boolean
    rawBytesRead: number
    rawBytesWritten: number
    write(data: Uint8Array): boolean
    end(): void
    destroy(err?: Error): void
    setKeepAlive(ms: number): void
    setTimeout(ms: number): void
  }
  export interface PeerInfo {
    publicKey: Buffer
    banned: boolean
    ban(banned: boolean): void
  }
  export interface Discovery {
    flushed(): Promise<void>
    refresh(options?: { server?: boolean; client?: boolean }): Promise<void>
    destroy(): Promise<void>
  }
  export interface SwarmOptions {
    keyPair?: KeyPair
    dht?: HyperDHT
    bootstrap?: Array<string | { host: string; port: number }>
    maxPeers?: number
    firewall?: (remotePublicKey: Buffer, payload: unknown) => boolean
  }
  export default class Hyperswarm extends EventEmitter {
    constructor(options?: SwarmOptions)
    readonly keyPair: KeyPair
    readonly dht: HyperDHT
    readonly peers: Map<string, PeerInfo>
    readonly connections: Set<NoiseSecretStream>
    join(topic: Buffer, options?: { server?: boolean; client?: boolean }): Discovery
    leave(topic: Buffer): Promise<void>
    joinPeer(publicKey: Buffer): void
    leavePeer(publicKey: Buffer): void
    listen(): Promise<void>
    flush(): Promise<boolean>
    destroy(options?: { force?: boolean }): Promise<void>
    on(event: 'connection', listener: (conn: NoiseSecretStream, info: PeerInfo) => void): this
  }
}
