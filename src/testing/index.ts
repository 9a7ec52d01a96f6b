/**
 * `holdfast/testing`: run real holdfast clusters in one process, and check client histories.
 */
export { MemoryNetwork, MemoryTransport, type MemoryNetworkFaults } from '../transport/memory.js'
export { createTestCluster, until, type TestCluster } from './cluster.js'
export { createLoopbackTestnet, type LoopbackTestnet } from './testnet.js'
export {
  checkKvHistory,
  checkOperations,
  formatViolation,
  kvModel,
  type CheckResult,
  type KvInput,
  type KvOutput,
  type Model,
  type Operation,
} from './linearizability.js'
