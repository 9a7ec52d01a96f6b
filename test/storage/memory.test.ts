import t from 'tap'
import { MemoryStorage } from '../../src/storage/memory.js'
import { logStorageCompliance } from './compliance.js'

logStorageCompliance(t, 'memory', {
  open: async () => new MemoryStorage(),
})
