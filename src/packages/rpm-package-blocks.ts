import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'

/**
 * Streaming an rpm-md document (primary.xml, filelists.xml, other.xml) one `<package>` block at a time, each block's
 * raw XML text kept as it was, so a reader never holds the whole document and a writer can emit a subset of the
 * repository without re-serialising it.
 */

/**
 * Splits a stream of rpm-md XML into `<package …>…</package>` blocks (the root element and anything outside the
 * blocks are skipped). Blocks do not nest, and `</package>` cannot occur in text (a `<` there would be `&lt;`).
 */
export async function readPackageBlocks(input: Readable, onBlock: (raw: string) => void): Promise<number> {
  const decoder = new StringDecoder('utf8')
  let buffer = ''
  let count = 0
  const START = /<package[\s>]/g
  const drain = () => {
    let from = 0
    for (;;) {
      START.lastIndex = from
      const start = START.exec(buffer)
      if (!start) {
        // Keep a tail that may hold the beginning of `<package`.
        const keep = buffer.lastIndexOf('<')
        from = keep >= from ? keep : buffer.length
        break
      }
      const end = buffer.indexOf('</package>', start.index)
      if (end < 0) {
        from = start.index
        break
      }
      onBlock(buffer.slice(start.index, end + 10))
      count++
      from = end + 10
    }
    buffer = buffer.slice(from)
  }
  for await (const chunk of input) {
    buffer += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer)
    drain()
  }
  buffer += decoder.end()
  drain()
  return count
}
