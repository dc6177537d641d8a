import { describe, expect, it } from 'vitest'
import { compareDebVersions, parseDebVersion, satisfiesDebVersion } from '../../src/packages/deb-version.js'

// Each ordering checked with `dpkg --compare-versions` (dpkg 1.21, Debian 12).
const ORDERINGS: Array<[string, '<' | '=' | '>', string]> = [
  ['1.0', '<', '1.1'],
  ['1.0-1', '<', '1.0-2'],
  ['1:0.1', '>', '2.0'],
  ['1.0~rc1', '<', '1.0'],
  ['1.0', '<', '1.0+b1'],
  ['1.0~~', '<', '1.0~'],
  ['1.0~~a', '<', '1.0~'],
  ['1.0a', '<', '1.0+'],
  ['1.0', '<', '1.0a'],
  ['0:1.0', '=', '1.0'],
  ['1.0-0', '=', '1.0'],
  ['1.001', '=', '1.1'],
  ['2.6.32-5', '<', '2.6.32-41'],
  ['1.0-1~bpo1', '<', '1.0-1'],
  ['1.2.3', '<', '1.2.3.0'],
  ['3.0.20-1~deb12u2', '<', '3.0.20-1'],
  ['2:1.02.185-2', '>', '1:2.0'],
  ['1.0.0~rc1+dfsg', '>', '1.0.0~rc1'],
  ['7.6.q-32', '>', '7.6.q-4'],
  ['1.0~a', '<', '1.0~b'],
  ['10', '>', '9'],
  ['1.0-a', '>', '1.0-1'],
  ['2.1.12-stable-8', '>', '2.1.12-stable-1'],
]

describe('Debian version comparison', () => {
  it.each(ORDERINGS)('%s %s %s, as dpkg orders them', (a, op, b) => {
    const sign = Math.sign(compareDebVersions(a, b))
    expect(sign).toBe(op === '<' ? -1 : op === '=' ? 0 : 1)
    expect(Math.sign(compareDebVersions(b, a))).toBe(-sign || 0)
  })

  it('splits epoch, upstream and revision at the first colon and the last hyphen', () => {
    expect(parseDebVersion('1:2.1.12-stable-8')).toEqual({
      epoch: 1,
      upstream: '2.1.12-stable',
      revision: '8',
    })
    expect(parseDebVersion('3.11.2')).toEqual({ epoch: 0, upstream: '3.11.2', revision: '' })
  })

  it('evaluates the five relation operators', () => {
    expect(satisfiesDebVersion('1.0', '<<', '1.1')).toBe(true)
    expect(satisfiesDebVersion('1.1', '<<', '1.1')).toBe(false)
    expect(satisfiesDebVersion('1.1', '<=', '1.1')).toBe(true)
    expect(satisfiesDebVersion('0:1.1', '=', '1.1')).toBe(true)
    expect(satisfiesDebVersion('1.1~rc1', '>=', '1.1')).toBe(false)
    expect(satisfiesDebVersion('1.1+b1', '>>', '1.1')).toBe(true)
  })
})
