/**
 * The `Range: bytes=…` request header, as both site servers read it (the registry's blobs and the file server's
 * members): one byte range, clamped to the size of the content, or the word that it cannot be served.
 *
 * The answers, the same for both servers:
 * - `bytes=10-19`, `bytes=10-` (to the end) and `bytes=-100` (the last 100 bytes) are a range; an end past the
 *   content is clamped to its last byte.
 * - A range that starts at or past the end, a zero-length suffix (`bytes=-0`), any range of empty content, and an
 *   inverted range (`bytes=500-0`) are 'unsatisfiable': the server answers 416 with a
 *   Content-Range that gives only the size.
 * - Anything else (several ranges, another unit, junk) is ignored: the whole content is sent with 200.
 *
 * Why an inverted range is 416 and not ignored: RFC 9110 (14.1.1, 14.2) calls such a byte-range-spec invalid and lets
 * a server that supports ranges answer 416 for an invalid or unsatisfiable range (it may also ignore the header). The
 * OCI distribution conformance suite expects 416 from the registry, and one rule for both servers means a client that
 * downloads from both sees one behaviour. A client that asks for bytes backwards has a bug; 416 tells it so, where a
 * whole multi-gigabyte blob would hide it. Several ranges stay ignored: answering them needs multipart/byteranges,
 * which no client of these servers asks for.
 */
export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

export type RangeAnswer = ByteRange | 'unsatisfiable' | undefined

/** The range asked for by a `Range` header over content of `size` bytes; undefined means "send it all". */
export function parseRange(header: string, size: number): RangeAnswer {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!match) return undefined
  const first = match[1]!
  const last = match[2]!
  if (first === '' && last === '') return undefined
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (last !== '' && Number(last) < start) return 'unsatisfiable'
  if (start >= size) return 'unsatisfiable'
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) }
}

/** The `Content-Range` header of a 206 answer, or of a 416 answer when `range` is left out. */
export function contentRange(size: number, range?: ByteRange): string {
  return range ? `bytes ${range.start}-${range.end}/${size}` : `bytes */${size}`
}
