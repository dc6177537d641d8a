import { describe, expect, it } from 'vitest'
import { globToRegExp, parseHelmIgnore } from '../../src/charts/helmignore.js'
import { AirgapError } from '../../src/errors.js'

describe('.helmignore', () => {
  it('matches a pattern without "/" against the last path segment, anywhere in the chart', () => {
    const rules = parseHelmIgnore('*.md\n# a comment\n\n.git\n')
    expect(rules.ignores('README.md', false)).toBe(true)
    expect(rules.ignores('docs/guide.md', false)).toBe(true)
    expect(rules.ignores('docs/guide.txt', false)).toBe(false)
    expect(rules.ignores('.git', true)).toBe(true)
    expect(rules.ignores('templates/deployment.yaml', false)).toBe(false)
  })

  it('matches a pattern with "/" against the whole path; a leading "/" anchors it at the root', () => {
    const rules = parseHelmIgnore('ci/*.yaml\n/secret.txt\n')
    expect(rules.ignores('ci/values.yaml', false)).toBe(true)
    expect(rules.ignores('sub/ci/values.yaml', false)).toBe(false)
    expect(rules.ignores('secret.txt', false)).toBe(true)
    expect(rules.ignores('templates/secret.txt', false)).toBe(false)
  })

  it('applies a trailing "/" to folders only', () => {
    const rules = parseHelmIgnore('scratch/\n')
    expect(rules.ignores('scratch', true)).toBe(true)
    expect(rules.ignores('scratch', false)).toBe(false)
  })

  it('always leaves hidden files under templates/ out, as helm does', () => {
    const rules = parseHelmIgnore('')
    expect(rules.ignores('templates/.swp', false)).toBe(true)
    expect(rules.ignores('templates/_helpers.tpl', false)).toBe(false)
    expect(rules.ignores('.helmignore', false)).toBe(false)
  })

  it('reads "!" as helm does: what the rule does not match is left out', () => {
    const rules = parseHelmIgnore('!templates\n')
    expect(rules.ignores('templates', true)).toBe(false)
    expect(rules.ignores('values.yaml', false)).toBe(true)
  })

  it('refuses "**" with the line it is on', () => {
    let error: unknown
    try {
      parseHelmIgnore('*.md\nfoo/**/bar\n', 'chart/.helmignore')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    expect((error as AirgapError).message).toContain('chart/.helmignore:2')
  })

  it('turns Go glob syntax into a RegExp that never crosses "/"', () => {
    expect(globToRegExp('*.yaml').test('a.yaml')).toBe(true)
    expect(globToRegExp('*.yaml').test('a/b.yaml')).toBe(false)
    expect(globToRegExp('file?.txt').test('file1.txt')).toBe(true)
    expect(globToRegExp('[a-c]x').test('bx')).toBe(true)
    expect(globToRegExp('[^a-c]x').test('bx')).toBe(false)
    expect(globToRegExp('a.b').test('axb')).toBe(false)
    expect(globToRegExp('\\*').test('*')).toBe(true)
  })
})
