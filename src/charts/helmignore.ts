import { AirgapError } from '../errors.js'

/**
 * The rules of a chart's .helmignore, read the way `helm package` reads them, so a chart packaged by astrago-airgap
 * holds the same files as one packaged by helm: one pattern per line, `#` comments, a trailing `/` for folders only,
 * a pattern with a `/` matched against the whole path from the chart's root (a leading `/` is dropped), any other
 * against the last path segment, `*`, `?` and `[…]` as in Go's filepath.Match, and `**` refused. A `!` rule, as
 * in helm, keeps only what it matches. Helm's default rule (hidden files under templates/) always applies.
 */
interface Rule {
  pattern: RegExp
  /** Matched against the whole relative path (true) or its last segment (false). */
  wholePath: boolean
  dirOnly: boolean
  negate: boolean
}

export interface HelmIgnore {
  /** Whether `path` (relative to the chart's root, `/`-separated) is left out of the package. */
  ignores(path: string, isDir: boolean): boolean
}

/** Parses .helmignore text (empty text: only the default rule). `where` names the file in errors. */
export function parseHelmIgnore(text: string, where = '.helmignore'): HelmIgnore {
  const rules: Rule[] = []
  const add = (line: string, lineNo: number) => {
    let rule = line.trim()
    if (rule === '' || rule.startsWith('#')) return
    if (rule.includes('**')) {
      throw new AirgapError(
        'E_INPUT',
        `${where}:${lineNo}: "**" is not supported in .helmignore (as in helm).`,
        {
          data: { file: where, line: lineNo },
          hints: ['Write the pattern without "**", as `helm package` requires.'],
        },
      )
    }
    const negate = rule.startsWith('!')
    if (negate) rule = rule.slice(1)
    const dirOnly = rule.endsWith('/')
    if (dirOnly) rule = rule.replace(/\/+$/, '')
    const anchored = rule.startsWith('/')
    if (anchored) rule = rule.replace(/^\/+/, '')
    if (rule === '') return
    rules.push({ pattern: globToRegExp(rule), wholePath: anchored || rule.includes('/'), dirOnly, negate })
  }
  add('templates/.?*', 0)
  for (const [i, line] of text.split(/\r?\n/).entries()) add(line, i + 1)
  return {
    ignores(path: string, isDir: boolean): boolean {
      if (path === '' || path === '.') return false
      const base = path.slice(path.lastIndexOf('/') + 1)
      for (const rule of rules) {
        const matches = rule.pattern.test(rule.wholePath ? path : base)
        if (rule.negate) {
          if (rule.dirOnly && !isDir) return true
          if (!matches) return true
          continue
        }
        if (rule.dirOnly && !isDir) continue
        if (matches) return true
      }
      return false
    },
  }
}

/** Go's filepath.Match syntax as a RegExp: `*` and `?` never cross a `/`; `[^…]` negates a class; `\` escapes. */
export function globToRegExp(glob: string): RegExp {
  let out = '^'
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else if (c === '\\' && i + 1 < glob.length) out += escapeChar(glob[++i]!)
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2)
      if (end < 0) {
        out += '\\['
        continue
      }
      let body = glob.slice(i + 1, end)
      const negated = body.startsWith('^')
      if (negated) body = body.slice(1)
      const cls = body.replace(/\\(.)/g, '$1').replace(/[\]\\^]/g, '\\$&')
      out += negated ? `[^/${cls}]` : `[${cls}]`
      i = end
    } else out += escapeChar(c)
  }
  return new RegExp(`${out}$`)
}

function escapeChar(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}
