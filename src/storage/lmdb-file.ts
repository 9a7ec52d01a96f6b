/**
 * Structural checks of an LMDB data file, made before lmdb-js reads any tree page.
 *
 * LMDB memory-maps its file and trusts it: a page referenced past the end of a truncated file is
 * a SIGBUS that kills the process, and an empty file is silently re-created as a new database.
 * So before any tree page is read, we check that the file holds its meta pages and that every
 * page the chosen meta page's trees reach lies inside the file.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { endianness } from 'node:os'
import createDebug from 'debug'
import type { RootDatabase } from 'lmdb'
import { HoldfastError } from '../errors.js'

const log = createDebug('holdfast:storage')

// The layout is LMDB's (64-bit, data format 2, as built into lmdb-js 3): page header = pgno u64,
// txnid u64, pad u16, flags u16, lower u16 / upper u16 (or overflow page count u32); the meta
// page body (MDB_meta) at offset 24; branch/leaf nodes = lo u16, hi u16, flags u16, ksize u16, key, data.

const PAGE_HEADER = 24
const P_BRANCH = 0x01
const P_LEAF = 0x02
const P_OVERFLOW = 0x04
const P_META = 0x08
const P_LEAF2 = 0x20
const F_BIGDATA = 0x01
const F_SUBDATA = 0x02
const MDB_MAGIC = 0xbeefc0de
/** Offsets inside MDB_meta (after the page header). */
const META_MAGIC = 0
const META_PSIZE = 24 // mm_dbs[FREE_DBI].md_pad
const META_FREE_ROOT = 24 + 40
const META_MAIN_ROOT = 72 + 40
const META_LAST_PG = 120
const META_TXNID = 128
const DB_ROOT = 40 // md_root inside MDB_db
const LE = endianness() === 'LE'

function corruptFile(path: string, what: string): HoldfastError {
  return new HoldfastError('CORRUPT_DATA', `${path}: ${what}; the data file is truncated or damaged`)
}

function u64(v: DataView, off: number): number {
  const a = v.getUint32(off, LE)
  const b = v.getUint32(off + 4, LE)
  return LE ? b * 0x1_0000_0000 + a : a * 0x1_0000_0000 + b
}

/** A page number field, or undefined for P_INVALID (all ones: an empty tree). */
function pgnoAt(v: DataView, off: number): number | undefined {
  return v.getUint32(off, LE) === 0xffff_ffff && v.getUint32(off + 4, LE) === 0xffff_ffff ? undefined : u64(v, off)
}

/** An existing data file must at least hold its meta pages (LMDB would silently re-create an empty one). */
export function checkFileHeader(path: string): void {
  let size: number
  try {
    size = statSync(path).size
  } catch {
    return // a new node
  }
  const head = new Uint8Array(PAGE_HEADER + 64)
  const fd = openSync(path, 'r')
  try {
    if (readSync(fd, head, 0, head.byteLength, 0) < head.byteLength) throw corruptFile(path, `file is only ${size} bytes`)
  } finally {
    closeSync(fd)
  }
  const v = new DataView(head.buffer)
  if (!(v.getUint16(18, LE) & P_META) || v.getUint32(PAGE_HEADER + META_MAGIC, LE) !== MDB_MAGIC) {
    throw corruptFile(path, 'first page is not an LMDB meta page')
  }
  const psize = v.getUint32(PAGE_HEADER + META_PSIZE, LE)
  if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) throw corruptFile(path, `implausible page size ${psize}`)
  if (size < 2 * psize) throw corruptFile(path, `file is ${size} bytes, shorter than its two meta pages`)
}

interface EnvInfo {
  pageSize: number
  lastPageNumber: number
  lastTxnId: number
}

/**
 * Checks that no live page lies past the end of the file. The common case is settled by the
 * meta page's last page number; LMDB may legitimately leave the last pages unwritten (they were
 * freed in the transaction that allocated them), and only then are the live trees walked.
 */
export function checkFileExtent(path: string, root: RootDatabase, always: boolean): void {
  const info = root.getStats() as EnvInfo
  const psize = info.pageSize
  const size = statSync(path).size
  if ((info.lastPageNumber + 1) * psize <= size && !always) return
  log('%s: %d bytes, meta says %d pages: walking the live trees', path, size, info.lastPageNumber + 1)
  const fd = openSync(path, 'r')
  try {
    walkLiveTrees(path, fd, size, psize, info)
  } finally {
    closeSync(fd)
  }
}

function walkLiveTrees(path: string, fd: number, size: number, psize: number, info: EnvInfo): void {
  const lastPg = info.lastPageNumber
  const page = new Uint8Array(psize)
  const v = new DataView(page.buffer)
  const read = (pgno: number): void => {
    if (pgno > lastPg || (pgno + 1) * psize > size) throw corruptFile(path, `live page ${pgno} lies past the end of the file (${size} bytes)`)
    if (readSync(fd, page, 0, psize, pgno * psize) !== psize) throw corruptFile(path, `page ${pgno} could not be read`)
  }

  // The meta LMDB chose is the one with its last transaction id; lmdb-js keeps up to three copies
  // (offsets 0, psize/2 and psize) with overlappingSync.
  let stack: number[] | undefined
  for (const off of [0, psize >> 1, psize]) {
    const buf = new Uint8Array(PAGE_HEADER + 144)
    readSync(fd, buf, 0, buf.byteLength, off)
    const m = new DataView(buf.buffer, PAGE_HEADER)
    if (m.getUint32(META_MAGIC, LE) === MDB_MAGIC && u64(m, META_TXNID) === info.lastTxnId && u64(m, META_LAST_PG) === lastPg) {
      stack = [pgnoAt(m, META_FREE_ROOT), pgnoAt(m, META_MAIN_ROOT)].filter((r) => r !== undefined)
      break
    }
  }
  if (stack === undefined) throw corruptFile(path, `no meta page matches transaction ${info.lastTxnId}`)

  const seen = new Uint8Array((lastPg >> 3) + 1)
  while (stack.length > 0) {
    const pgno = stack.pop()!
    if (pgno < 2 || pgno > lastPg) throw corruptFile(path, `tree references page ${pgno} outside 2..${lastPg}`)
    if (seen[pgno >> 3]! & (1 << (pgno & 7))) throw corruptFile(path, `page ${pgno} is referenced twice`)
    seen[pgno >> 3]! |= 1 << (pgno & 7)
    read(pgno)
    if (u64(v, 0) !== pgno) throw corruptFile(path, `page ${pgno} has header page number ${u64(v, 0)}`)
    const flags = v.getUint16(18, LE)
    if (flags & P_OVERFLOW) {
      const pages = v.getUint32(20, LE)
      if ((pgno + pages) * psize > size) throw corruptFile(path, `overflow pages ${pgno}..${pgno + pages - 1} lie past the end of the file (${size} bytes)`)
      continue
    }
    if (flags & P_LEAF2) continue
    if (!(flags & (P_BRANCH | P_LEAF))) throw corruptFile(path, `page ${pgno} has unknown type 0x${flags.toString(16)}`)
    const lower = v.getUint16(20, LE)
    const n = lower >> 1
    if (PAGE_HEADER + lower > psize) throw corruptFile(path, `page ${pgno} has a bad node count`)
    for (let i = 0; i < n; i++) {
      const node = v.getUint16(PAGE_HEADER + 2 * i, LE) + PAGE_HEADER
      if (node + 8 > psize) throw corruptFile(path, `page ${pgno} node ${i} lies outside the page`)
      const lo = v.getUint16(node, LE)
      const hi = v.getUint16(node + 2, LE)
      const nflags = v.getUint16(node + 4, LE)
      if (flags & P_BRANCH) {
        stack.push(lo + hi * 0x1_0000 + nflags * 0x1_0000_0000)
        continue
      }
      const data = node + 8 + v.getUint16(node + 6, LE)
      if (nflags & F_BIGDATA) {
        if (data + 8 > psize) throw corruptFile(path, `page ${pgno} node ${i} lies outside the page`)
        stack.push(u64(v, data))
      } else if (nflags & F_SUBDATA) {
        // A named database, or a sub-database of duplicates: follow its root.
        if (data + 48 > psize) throw corruptFile(path, `page ${pgno} node ${i} lies outside the page`)
        const root = pgnoAt(v, data + DB_ROOT)
        if (root !== undefined) stack.push(root)
      }
      // F_DUPDATA alone: the duplicates are an inline sub-page, nothing to follow.
    }
  }
}
