import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { IDENTITY_FILE, loadOrCreateIdentity } from '../../src/identity.js'

t.test('a node identity is created once, kept, and refused when damaged', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-identity-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const first = await loadOrCreateIdentity(dir)
  t.match(first.id, /^[0-9a-f]{64}$/, 'the id is the public key in hex')
  t.equal(Buffer.from(first.keyPair.publicKey).toString('hex'), first.id)
  t.equal((await stat(join(dir, IDENTITY_FILE))).mode & 0o777, 0o600, 'readable by the owner only')
  const again = await loadOrCreateIdentity(dir)
  t.equal(again.id, first.id, 'the same identity on the next start')
  t.same(Buffer.from(again.keyPair.secretKey), Buffer.from(first.keyPair.secretKey))

  const good = await readFile(join(dir, IDENTITY_FILE), 'utf8')
  await mkdir(join(dir, 'other'))
  const other = await loadOrCreateIdentity(join(dir, 'other'))
  const damaged: Array<[string, string]> = [
    ['not json', '{"publicKey": '],
    ['wrong shape', JSON.stringify({ publicKey: 1, secretKey: 2 })],
    ['short key', JSON.stringify({ publicKey: first.id.slice(2), secretKey: 'ab' })],
    ['keys that do not belong together', JSON.stringify({ publicKey: other.id, secretKey: Buffer.from(first.keyPair.secretKey).toString('hex') })],
  ]
  for (const [what, text] of damaged) {
    await writeFile(join(dir, IDENTITY_FILE), text)
    await t.rejects(loadOrCreateIdentity(dir), { code: 'CORRUPT_DATA' }, what)
    t.equal(await readFile(join(dir, IDENTITY_FILE), 'utf8'), text, `${what}: the file is left as found, never replaced by a new identity`)
  }
  await writeFile(join(dir, IDENTITY_FILE), good)
  t.equal((await loadOrCreateIdentity(dir)).id, first.id)
})
