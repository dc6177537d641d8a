import { describe, expect, it } from 'vitest'
import { newestSatisfying, parseVersionRange } from '../../src/charts/version-range.js'

function satisfies(range: string, version: string): boolean {
  const parsed = parseVersionRange(range)
  if (!parsed) throw new Error(`not a range: ${range}`)
  return parsed.satisfiedBy(version)
}

describe('Chart.yaml dependency version constraints', () => {
  it.each([
    ['1.2.3', '1.2.3', true],
    ['1.2.3', 'v1.2.3', true],
    ['1.2.3', '1.2.4', false],
    ['=1.2.3', '1.2.3', true],
    ['!=1.2.3', '1.2.3', false],
    ['>1.2.3', '1.2.4', true],
    ['>=1.2.3', '1.2.3', true],
    ['<1.2.3', '1.2.3', false],
    ['<=1.2', '1.2.9', true],
    ['<=1.2', '1.3.0', false],
    ['~1.2.3', '1.2.9', true],
    ['~1.2.3', '1.3.0', false],
    ['~1.2', '1.2.0', true],
    ['~1', '1.9.0', true],
    ['~1', '2.0.0', false],
    ['^1.2.3', '1.9.9', true],
    ['^1.2.3', '2.0.0', false],
    ['^0.2.3', '0.2.9', true],
    ['^0.2.3', '0.3.0', false],
    ['^0.0.3', '0.0.4', false],
    ['1.2.x', '1.2.7', true],
    ['1.2.x', '1.3.0', false],
    ['1.x', '1.9.0', true],
    ['*', '7.0.0', true],
    ['', '7.0.0', true],
    ['>=1.0.0, <2.0.0', '1.5.0', true],
    ['>=1.0.0 <2.0.0', '2.0.0', false],
    ['1.2 - 1.4', '1.4.9', true],
    ['1.2 - 1.4', '1.5.0', false],
    ['1.2.3 - 1.4.5', '1.4.5', true],
    ['^1.0.0 || ^3.0.0', '3.1.0', true],
    ['^1.0.0 || ^3.0.0', '2.1.0', false],
    ['^1.0.0', '1.5.0-rc.1', false],
    ['>=1.5.0-rc.0', '1.5.0-rc.1', true],
  ])('%s on %s is %s', (range, version, expected) => {
    expect(satisfies(range, version)).toBe(expected)
  })

  it('says which constraints name exactly one version', () => {
    expect(parseVersionRange('1.2.3')?.exact).toBe(true)
    expect(parseVersionRange('=1.2.3')?.exact).toBe(true)
    expect(parseVersionRange('1.2')?.exact).toBe(false)
    expect(parseVersionRange('~1.2.3')?.exact).toBe(false)
  })

  it('refuses what is not a constraint', () => {
    expect(parseVersionRange('latest')).toBeUndefined()
    expect(parseVersionRange('>>1')).toBeUndefined()
  })

  it('picks the newest version a range accepts', () => {
    const range = parseVersionRange('~1.2.0')!
    expect(newestSatisfying(range, ['1.1.0', '1.2.1', '1.2.10', '1.3.0'])).toBe('1.2.10')
    expect(newestSatisfying(range, ['2.0.0'])).toBeUndefined()
  })
})
