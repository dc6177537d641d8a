import { AirgapError } from '../errors.js'

/**
 * A scanner for the regular, machine-written XML of rpm-md repositories (createrepo_c), instead of an XML library:
 * elements, attributes (single or double quotes), text, CDATA, comments; entities `&amp; &lt; &gt; &quot; &apos;` and
 * numeric character references are decoded. Namespace prefixes are kept in names (`rpm:entry`).
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1))
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole
    }
    return ENTITIES[entity] ?? whole
  })
}

export function escapeXmlText(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`,
  )
}

export interface XmlToken {
  /** `open` (also reported for self-closing elements, followed by `close`), `close` or `text`. */
  kind: 'open' | 'close' | 'text'
  name: string
  attributes: Record<string, string>
  /** Decoded text (kind `text`). */
  text: string
}

const ATTRIBUTE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g

export function parseXmlAttributes(source: string): Record<string, string> {
  const attributes: Record<string, string> = {}
  if (!source) return attributes
  ATTRIBUTE.lastIndex = 0
  for (let m = ATTRIBUTE.exec(source); m; m = ATTRIBUTE.exec(source))
    attributes[m[1]!] = decodeXmlText(m[2] ?? m[3] ?? '')
  return attributes
}

/**
 * Calls `onToken` for every element start, end and text run of a complete XML fragment. Processing instructions,
 * comments and DOCTYPE are skipped; CDATA becomes text.
 */
export function scanXml(xml: string, onToken: (token: XmlToken) => void): void {
  let i = 0
  const n = xml.length
  while (i < n) {
    const lt = xml.indexOf('<', i)
    if (lt < 0) {
      const text = xml.slice(i)
      if (text.trim()) onToken({ kind: 'text', name: '', attributes: {}, text: decodeXmlText(text) })
      break
    }
    if (lt > i) {
      const text = xml.slice(i, lt)
      if (text.trim()) onToken({ kind: 'text', name: '', attributes: {}, text: decodeXmlText(text) })
    }
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4)
      if (end < 0) throw new AirgapError('E_INPUT', 'malformed XML: unterminated comment')
      i = end + 3
      continue
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt + 9)
      if (end < 0) throw new AirgapError('E_INPUT', 'malformed XML: unterminated CDATA')
      onToken({ kind: 'text', name: '', attributes: {}, text: xml.slice(lt + 9, end) })
      i = end + 3
      continue
    }
    if (xml[lt + 1] === '?' || xml[lt + 1] === '!') {
      const end = xml.indexOf('>', lt)
      if (end < 0) throw new AirgapError('E_INPUT', 'malformed XML: unterminated declaration')
      i = end + 1
      continue
    }
    // Find the end of the tag, honouring quoted attribute values (which may contain `>`).
    let j = lt + 1
    let quote = ''
    for (; j < n; j++) {
      const c = xml[j]
      if (quote) {
        if (c === quote) quote = ''
      } else if (c === '"' || c === "'") quote = c
      else if (c === '>') break
    }
    if (j >= n) throw new AirgapError('E_INPUT', 'malformed XML: unterminated tag')
    const inner = xml.slice(lt + 1, j)
    i = j + 1
    if (inner[0] === '/') {
      onToken({ kind: 'close', name: inner.slice(1).trim(), attributes: {}, text: '' })
      continue
    }
    const selfClosing = inner.endsWith('/')
    const body = selfClosing ? inner.slice(0, -1) : inner
    const space = body.search(/\s/)
    const name = space < 0 ? body : body.slice(0, space)
    onToken({
      kind: 'open',
      name,
      attributes: parseXmlAttributes(space < 0 ? '' : body.slice(space)),
      text: '',
    })
    if (selfClosing) onToken({ kind: 'close', name, attributes: {}, text: '' })
  }
}

/** Collects the text of each element of a fragment as it closes: `onElement(path, attributes, text)`. */
export function walkXml(
  xml: string,
  onElement: (path: string[], attributes: Record<string, string>, text: string) => void,
  onOpen?: (path: string[], attributes: Record<string, string>) => void,
): void {
  const path: string[] = []
  const attributes: Record<string, string>[] = []
  const texts: string[] = []
  scanXml(xml, (token) => {
    if (token.kind === 'open') {
      path.push(token.name)
      attributes.push(token.attributes)
      texts.push('')
      onOpen?.(path, token.attributes)
    } else if (token.kind === 'text') {
      if (texts.length) texts[texts.length - 1] += token.text
    } else {
      if (path[path.length - 1] !== token.name)
        throw new AirgapError(
          'E_INPUT',
          `malformed XML: </${token.name}> closes <${path[path.length - 1] ?? 'nothing'}>`,
        )
      onElement(path, attributes[attributes.length - 1]!, texts[texts.length - 1]!)
      path.pop()
      attributes.pop()
      texts.pop()
    }
  })
  if (path.length) throw new AirgapError('E_INPUT', `malformed XML: <${path[path.length - 1]}> is not closed`)
}
