import { AirgapError } from '../errors.js'
import type { RpmDependency } from './rpm-package.js'
import { parseRpmEvr, rpmOperator } from './rpm-version.js'

/**
 * rpm's rich (boolean) dependencies, `(a >= 1 or (b if c))`, parsed into a tree the resolver (rpm-closure.ts)
 * evaluates: `and`, `or`, `if` / `if … else`, `unless` / `unless … else`, `with` and `without`.
 */
export type Rich =
  | { op: 'dep'; dep: RpmDependency }
  | { op: 'and' | 'or' | 'with' | 'without'; args: Rich[] }
  | { op: 'if' | 'unless'; consequence: Rich; cond: Rich; otherwise?: Rich }

const KEYWORDS = new Set(['and', 'or', 'if', 'else', 'unless', 'with', 'without'])

/** Parses an rpm boolean dependency such as `(a >= 1 or (b if c))`. */
export function parseRichDependency(text: string): Rich {
  // Names may hold balanced parentheses (`python(abi)`, `libc.so.6()(64bit)`): only a `(` at the start of a token
  // and a `)` that closes nothing within the token are grouping.
  const tokens: string[] = []
  for (let p = 0; p < text.length; ) {
    const c = text[p]!
    if (/\s/.test(c)) p++
    else if (c === '(' || c === ')') {
      tokens.push(c)
      p++
    } else {
      let depth = 0
      let q = p
      for (; q < text.length; q++) {
        const d = text[q]!
        if (/\s/.test(d) && depth === 0) break
        if (d === '(') depth++
        else if (d === ')') {
          if (depth === 0) break
          depth--
        }
      }
      tokens.push(text.slice(p, q))
      p = q
    }
  }
  let i = 0
  const fail = (why: string): never => {
    throw new AirgapError('E_INPUT', `cannot parse the rich dependency ${text}: ${why}`)
  }
  const operand = (): Rich => {
    const token = tokens[i]
    if (token === '(') return group()
    if (!token || token === ')' || KEYWORDS.has(token)) return fail(`unexpected ${token ?? 'end'}`)
    i++
    const dep: RpmDependency = { name: token }
    const op = tokens[i] ? rpmOperator(tokens[i]!) : undefined
    if (op) {
      const evr = tokens[i + 1]
      if (!evr || evr === ')' || evr === '(') return fail(`no version after ${tokens[i]}`)
      dep.flags = op
      dep.evr = parseRpmEvr(evr)
      i += 2
    }
    return { op: 'dep', dep }
  }
  const group = (): Rich => {
    if (tokens[i] !== '(') return fail('expected (')
    i++
    const first = operand()
    let result: Rich = first
    const keyword = tokens[i]
    if (keyword === 'and' || keyword === 'or' || keyword === 'with' || keyword === 'without') {
      const args = [first]
      while (tokens[i] === keyword) {
        i++
        args.push(operand())
      }
      result = { op: keyword, args }
    } else if (keyword === 'if' || keyword === 'unless') {
      i++
      const cond = operand()
      result = { op: keyword, consequence: first, cond }
      if (tokens[i] === 'else') {
        i++
        result.otherwise = operand()
      }
    }
    if (tokens[i] !== ')') return fail(`expected ) at ${tokens[i] ?? 'end'}`)
    i++
    return result
  }
  const rich = group()
  if (i !== tokens.length) fail('trailing text')
  return rich
}

/** Whether the expression uses `without` (which the resolver does not support). */
export function containsWithout(rich: Rich): boolean {
  if (rich.op === 'dep') return false
  if (rich.op === 'without') return true
  if ('consequence' in rich)
    return (
      containsWithout(rich.consequence) ||
      containsWithout(rich.cond) ||
      (!!rich.otherwise && containsWithout(rich.otherwise))
    )
  return rich.args.some(containsWithout)
}
