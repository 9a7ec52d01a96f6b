import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import HyperDHT from 'hyperdht'
import { HoldfastError } from './errors.js'
import type { NodeId } from './core/types.js'
import type { KeyPair } from './transport/swarm.js'

/** The file in a data directory that holds the node's key pair. */
export const IDENTITY_FILE = 'identity.json'

/** A node's identity: its ed25519 key pair (its Noise key on the swarm) and its id, the public key in hex. */
export interface Identity {
  readonly id: NodeId
  readonly keyPair: KeyPair
}

/**
 * Loads the node's key pair from `dir`, creating it (and the directory) on first start. The file is written to a
 * temporary name, synced and renamed, so a crash never leaves half a key; it is readable by the
 * owner only. A file that does not hold a valid key pair is refused with CORRUPT_DATA: a node
 * must never silently change identity.
 */
export async function loadOrCreateIdentity(dir: string): Promise<Identity> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, IDENTITY_FILE)
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text !== undefined) return parseIdentity(text, file)

  const kp = HyperDHT.keyPair()
  const body = JSON.stringify({ publicKey: kp.publicKey.toString('hex'), secretKey: kp.secretKey.toString('hex') }) + '\n'
  const tmp = `${file}.${process.pid}.tmp`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(body)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    // Another process creating the same directory's identity at once would be a misconfiguration;
    // the first rename wins and both read the result.
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  return parseIdentity(await readFile(file, 'utf8'), file)
}

function parseIdentity(text: string, file: string): Identity {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new HoldfastError('CORRUPT_DATA', `${file} is not valid JSON`)
  }
  const p = parsed as { publicKey?: unknown; secretKey?: unknown }
  const hex = /^[0-9a-f]+$/
  if (typeof p.publicKey !== 'string' || typeof p.secretKey !== 'string' || !hex.test(p.publicKey) || !hex.test(p.secretKey) || p.publicKey.length !== 64 || p.secretKey.length !== 128) {
    throw new HoldfastError('CORRUPT_DATA', `${file} does not hold an ed25519 key pair`)
  }
  const publicKey = Buffer.from(p.publicKey, 'hex')
  const secretKey = Buffer.from(p.secretKey, 'hex')
  // An ed25519 secret key (libsodium layout) ends with its public key.
  if (!secretKey.subarray(32).equals(publicKey)) throw new HoldfastError('CORRUPT_DATA', `${file}: the public key does not match the secret key`)
  return { id: p.publicKey, keyPair: { publicKey, secretKey } }
}
