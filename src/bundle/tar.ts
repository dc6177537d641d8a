import { AirgapError } from '../errors.js'

/**
 * The tar format of bundle files: POSIX ustar headers, with a pax extended header in front of a member whose name
 * does not fit ustar's 100 bytes or whose size does not fit its 11 octal digits (layers of AI images can pass 8 GiB).
 * Every header is deterministic (mode 0644, or 0755 for an executable such as the installer; owner 0:0; mtime 0) so the
 * same content gives the same bytes.
 */
export const BLOCK = 512
const USTAR_MAX_SIZE = 0o77777777777
/** The mode of every member but executables. */
export const DEFAULT_MODE = 0o644

export function padTo512(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** The header bytes (pax header + ustar header) that precede a member's data. */
export function encodeMemberHeader(path: string, size: number, mode: number = DEFAULT_MODE): Buffer {
  const nameBytes = Buffer.byteLength(path, 'utf8')
  const needsPax = nameBytes > 100 || size > USTAR_MAX_SIZE || !/^[\x20-\x7e]*$/.test(path)
  const ustar = ustarHeader(
    needsPax ? truncateName(path) : path,
    needsPax && size > USTAR_MAX_SIZE ? 0 : size,
    '0',
    mode,
  )
  if (!needsPax) return ustar
  const records: string[] = []
  if (nameBytes > 100 || !/^[\x20-\x7e]*$/.test(path)) records.push(paxRecord('path', path))
  if (size > USTAR_MAX_SIZE) records.push(paxRecord('size', String(size)))
  const body = Buffer.from(records.join(''), 'utf8')
  const paxHeader = ustarHeader(truncateName(`PaxHeaders/${path}`), body.length, 'x', DEFAULT_MODE)
  return Buffer.concat([paxHeader, body, Buffer.alloc(padTo512(body.length)), ustar])
}

/** The size on disk of a member: its headers, its data and the padding to the next block. */
export function memberSpan(path: string, size: number): { headerSize: number; total: number } {
  const headerSize = encodeMemberHeader(path, size).length
  return { headerSize, total: headerSize + size + padTo512(size) }
}

/** Two zero blocks end a tar archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK)

function paxRecord(key: string, value: string): string {
  const payload = ` ${key}=${value}\n`
  let length = Buffer.byteLength(payload, 'utf8') + 1
  while (String(length).length + Buffer.byteLength(payload, 'utf8') !== length) length += 1
  return `${length}${payload}`
}

function truncateName(name: string): string {
  const buffer = Buffer.from(name, 'utf8')
  return buffer.length <= 100
    ? name
    : buffer
        .subarray(0, 100)
        .toString('latin1')
        .replace(/[^\x20-\x7e]/g, '_')
}

function ustarHeader(name: string, size: number, type: '0' | 'x', mode: number): Buffer {
  const header = Buffer.alloc(BLOCK)
  const put = (value: string, offset: number, length: number) => header.write(value, offset, length, 'utf8')
  const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, '0')}\u0000`
  put(name, 0, 100)
  put(octal(mode, 8), 100, 8)
  put(octal(0, 8), 108, 8)
  put(octal(0, 8), 116, 8)
  put(octal(size, 12), 124, 12)
  put(octal(0, 12), 136, 12)
  put('        ', 148, 8)
  put(type, 156, 1)
  put('ustar\u000000', 257, 8)
  let sum = 0
  for (const byte of header) sum += byte
  put(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8)
  return header
}

export interface ParsedHeader {
  path: string
  size: number
  type: string
  /** Bytes taken by this header block (and a pax header before it): data starts at offset + headerSize. */
  headerSize: number
}

/**
 * Parses the header at the start of `block` (512 bytes), returning undefined at the end-of-archive marker. Pax
 * headers need their data: `readMore(length)` returns the bytes that follow the first header.
 */
export async function parseHeader(
  block: Buffer,
  readMore: (offset: number, length: number) => Promise<Buffer>,
  at: number,
): Promise<ParsedHeader | undefined> {
  if (block.every((b) => b === 0)) return undefined
  verifyChecksum(block, at)
  const type = String.fromCharCode(block[156]!) || '0'
  const size = parseOctal(block.subarray(124, 136), at)
  if (type === 'x' || type === 'g') {
    if (size > MAX_PAX_BYTES)
      throw new AirgapError(
        'E_INTEGRITY',
        `The pax header at offset ${at} claims ${size} bytes (at most ${MAX_PAX_BYTES} are read).`,
      )
    const body = await readMore(at + BLOCK, size)
    const records = parsePax(body)
    const nextAt = at + BLOCK + size + padTo512(size)
    const next = await readMore(nextAt, BLOCK)
    const inner = await parseHeader(next, readMore, nextAt)
    if (!inner)
      throw new AirgapError('E_INTEGRITY', `The tar archive ends right after a pax header at offset ${at}.`)
    return {
      path: type === 'x' && records.path !== undefined ? records.path : inner.path,
      size: type === 'x' && records.size !== undefined ? paxSize(records.size, at) : inner.size,
      type: inner.type,
      headerSize: nextAt - at + inner.headerSize,
    }
  }
  const name = cString(block.subarray(0, 100))
  const prefix = block.subarray(257, 263).toString('latin1').startsWith('ustar')
    ? cString(block.subarray(345, 500))
    : ''
  return { path: prefix ? `${prefix}/${name}` : name, size, type, headerSize: BLOCK }
}

/** A pax header is a few records; anything larger is not a header this reader will hold in memory. */
const MAX_PAX_BYTES = 1 << 20

/** The size record of a pax header: decimal digits only, within the integers a file offset can be. */
function paxSize(value: string, at: number): number {
  const size = /^[0-9]{1,16}$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(size)) {
    throw new AirgapError(
      'E_INTEGRITY',
      `The pax header at offset ${at} has a bad size ${JSON.stringify(value.slice(0, 40))}.`,
      { hints: ['The bundle file is corrupt or was crafted; get it again from its source.'] },
    )
  }
  return size
}

function verifyChecksum(block: Buffer, at: number): void {
  const stored = parseOctal(block.subarray(148, 156), at)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!
  if (sum !== stored) {
    throw new AirgapError('E_INTEGRITY', `The tar header at offset ${at} is damaged (checksum mismatch).`, {
      hints: ['The bundle file is corrupt or not a bundle; copy it again and run `astrago-airgap verify`.'],
    })
  }
}

function parseOctal(field: Buffer, at: number): number {
  if (field[0]! & 0x80) {
    // GNU base-256 encoding for large numbers; 0xff in front is a negative number, which no size or offset can be.
    let value = field[0] === 0xff ? Number.NaN : field[0]! & 0x7f
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!
    if (!Number.isSafeInteger(value))
      throw new AirgapError(
        'E_INTEGRITY',
        `The tar header at offset ${at} has a negative or huge number field.`,
      )
    return value
  }
  const text = cString(field).trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text))
    throw new AirgapError('E_INTEGRITY', `The tar header at offset ${at} has a bad number field.`)
  return Number.parseInt(text, 8)
}

function cString(field: Buffer): string {
  const end = field.indexOf(0)
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8')
}

function parsePax(body: Buffer): Record<string, string> {
  const records: Record<string, string> = {}
  let offset = 0
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset)
    if (space === -1) break
    const length = Number(body.subarray(offset, space).toString('ascii'))
    if (!Number.isFinite(length) || length <= 0) break
    const record = body.subarray(space + 1, offset + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq > 0) records[record.slice(0, eq)] = record.slice(eq + 1)
    offset += length
  }
  return records
}
