import createTestnet from 'hyperdht/testnet.js'

/** A DHT testnet on 127.0.0.1, for tests and demos without internet access. */
export interface LoopbackTestnet {
  /** Bootstrap addresses to give every node (`dht: { bootstrap, host: '127.0.0.1', firewalled: false }`). */
  readonly bootstrap: Array<{ host: string; port: number }>
  close(): Promise<void>
}

/**
 * Starts `size` DHT nodes bound to 127.0.0.1 in this process. Nodes in this or other processes
 * join it by listing `bootstrap` and binding their own DHT to 127.0.0.1 (on machines without a
 * route to the internet, a DHT bound to 0.0.0.0 times out). Give nodes `firewalled: false` too:
 * on loopback every node is directly reachable, and holepunching between nodes that believe
 * themselves firewalled can take seconds.
 */
export async function createLoopbackTestnet(size = 3): Promise<LoopbackTestnet> {
  const testnet = await createTestnet(size, { host: '127.0.0.1' })
  return { bootstrap: testnet.bootstrap.map((b) => ({ host: b.host, port: b.port })), close: () => testnet.destroy() }
}
