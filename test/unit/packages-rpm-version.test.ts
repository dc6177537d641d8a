import { describe, expect, it } from 'vitest'
import {
  compareRpmEvr,
  formatRpmRequirement,
  parseRpmEvr,
  parseRpmRequirement,
  rpmEvrSatisfies,
  rpmRangesOverlap,
  rpmvercmp,
} from '../../src/packages/rpm-version.js'

/** rpm's own table (tests/rpmvercmp.at), with `~` (pre-release) and `^` (post-release snapshot). */
const TABLE: Array<[string, string, number]> = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0', '1.0', 1],
  ['2.0.1', '2.0.1', 0],
  ['2.0', '2.0.1', -1],
  ['2.0.1', '2.0', 1],
  ['2.0.1a', '2.0.1a', 0],
  ['2.0.1a', '2.0.1', 1],
  ['2.0.1', '2.0.1a', -1],
  ['5.5p1', '5.5p1', 0],
  ['5.5p1', '5.5p2', -1],
  ['5.5p2', '5.5p1', 1],
  ['5.5p10', '5.5p10', 0],
  ['5.5p1', '5.5p10', -1],
  ['5.5p10', '5.5p1', 1],
  ['10xyz', '10.1xyz', -1],
  ['10.1xyz', '10xyz', 1],
  ['xyz10', 'xyz10', 0],
  ['xyz10', 'xyz10.1', -1],
  ['xyz10.1', 'xyz10', 1],
  ['xyz.4', 'xyz.4', 0],
  ['xyz.4', '8', -1],
  ['8', 'xyz.4', 1],
  ['xyz.4', '2', -1],
  ['2', 'xyz.4', 1],
  ['5.5p2', '5.6p1', -1],
  ['5.6p1', '5.5p2', 1],
  ['5.6p1', '6.5p1', -1],
  ['6.5p1', '5.6p1', 1],
  ['6.0.rc1', '6.0', 1],
  ['6.0', '6.0.rc1', -1],
  ['10b2', '10a1', 1],
  ['10a2', '10b2', -1],
  ['1.0aa', '1.0aa', 0],
  ['1.0a', '1.0aa', -1],
  ['1.0aa', '1.0a', 1],
  ['10.0001', '10.0001', 0],
  ['10.0001', '10.1', 0],
  ['10.1', '10.0001', 0],
  ['10.0001', '10.0039', -1],
  ['10.0039', '10.0001', 1],
  ['4.999.9', '5.0', -1],
  ['5.0', '4.999.9', 1],
  ['20101121', '20101121', 0],
  ['20101121', '20101122', -1],
  ['20101122', '20101121', 1],
  ['2_0', '2_0', 0],
  ['2.0', '2_0', 0],
  ['2_0', '2.0', 0],
  ['a', 'a', 0],
  ['a+', 'a+', 0],
  ['a+', 'a_', 0],
  ['a_', 'a+', 0],
  ['+a', '+a', 0],
  ['+a', '_a', 0],
  ['_a', '+a', 0],
  ['+_', '+_', 0],
  ['_+', '+_', 0],
  ['_+', '_+', 0],
  ['+', '_', 0],
  ['_', '+', 0],
  ['1.0~rc1', '1.0~rc1', 0],
  ['1.0~rc1', '1.0', -1],
  ['1.0', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc2', '1.0~rc1', 1],
  ['1.0~rc1~git123', '1.0~rc1~git123', 0],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0~rc1', '1.0~rc1~git123', 1],
  ['1.0^', '1.0^', 0],
  ['1.0^', '1.0', 1],
  ['1.0', '1.0^', -1],
  ['1.0^git1', '1.0^git1', 0],
  ['1.0^git1', '1.0', 1],
  ['1.0', '1.0^git1', -1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git2', '1.0^git1', 1],
  ['1.0^git1', '1.01', -1],
  ['1.01', '1.0^git1', 1],
  ['1.0^20160101', '1.0^20160101', 0],
  ['1.0^20160101', '1.0.1', -1],
  ['1.0.1', '1.0^20160101', 1],
  ['1.0^20160101^git1', '1.0^20160101^git1', 0],
  ['1.0^20160102', '1.0^20160101^git1', 1],
  ['1.0^20160101^git1', '1.0^20160102', -1],
  ['1.0~rc1^git1', '1.0~rc1^git1', 0],
  ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc1^git1', -1],
  ['1.0^git1~pre', '1.0^git1~pre', 0],
  ['1.0^git1', '1.0^git1~pre', 1],
  ['1.0^git1~pre', '1.0^git1', -1],
]

describe('rpm version comparison', () => {
  it.each(TABLE)('rpmvercmp(%s, %s) = %i', (a, b, expected) => {
    expect(rpmvercmp(a, b)).toBe(expected)
  })

  it('compares epoch first, then version, then release only when both have one', () => {
    expect(parseRpmEvr('2:1.0-3.el9')).toEqual({ epoch: 2, version: '1.0', release: '3.el9' })
    expect(parseRpmEvr('1.0')).toEqual({ epoch: 0, version: '1.0', release: '' })
    expect(compareRpmEvr('1:1.0-1', '2.0-1')).toBe(1)
    expect(compareRpmEvr('0:2.0-1', '2.0-1')).toBe(0)
    expect(compareRpmEvr('2.0-2', '2.0-10')).toBe(-1)
    expect(compareRpmEvr('2.0', '2.0-10')).toBe(0)
    expect(compareRpmEvr('2.0-1.el9~beta', '2.0-1.el9')).toBe(-1)
  })

  it('checks ranges as rpm does for Requires against Provides', () => {
    const evr = parseRpmEvr
    expect(rpmEvrSatisfies(evr('2.0-1'), { flags: 'GE', evr: evr('2') })).toBe(true)
    expect(rpmEvrSatisfies(evr('1.9-1'), { flags: 'GE', evr: evr('2') })).toBe(false)
    expect(rpmEvrSatisfies(evr('2.0-1'), { flags: 'LT', evr: evr('2') })).toBe(false)
    expect(rpmEvrSatisfies(evr('2.0-1'), { flags: 'EQ', evr: evr('2.0') })).toBe(true)
    expect(rpmEvrSatisfies(evr('2.0-1'), { flags: 'EQ', evr: evr('2.0-2') })).toBe(false)
    expect(rpmEvrSatisfies(evr('1:1.0-1'), { flags: 'GT', evr: evr('9.0') })).toBe(true)
    expect(rpmEvrSatisfies(evr('2.0~rc1-1'), { flags: 'GE', evr: evr('2.0') })).toBe(false)
    expect(rpmEvrSatisfies(evr('2.0^git1-1'), { flags: 'GT', evr: evr('2.0') })).toBe(true)
    // Unversioned on either side: always.
    expect(rpmRangesOverlap({}, { flags: 'LT', evr: evr('1') })).toBe(true)
    // Two ranges: `> 1` and `< 3` overlap, `< 1` and `> 3` do not, `<= 2` and `>= 2` meet at 2.
    expect(rpmRangesOverlap({ flags: 'GT', evr: evr('1') }, { flags: 'LT', evr: evr('3') })).toBe(true)
    expect(rpmRangesOverlap({ flags: 'LT', evr: evr('1') }, { flags: 'GT', evr: evr('3') })).toBe(false)
    expect(rpmRangesOverlap({ flags: 'LE', evr: evr('2') }, { flags: 'GE', evr: evr('2') })).toBe(true)
    expect(rpmRangesOverlap({ flags: 'LT', evr: evr('2') }, { flags: 'GE', evr: evr('2') })).toBe(false)
  })

  it('parses and formats `name op evr` requirements', () => {
    expect(parseRpmRequirement('lib-a >= 2-1')).toEqual({
      name: 'lib-a',
      flags: 'GE',
      evr: parseRpmEvr('2-1'),
    })
    expect(parseRpmRequirement('kernel-devel = 5.14.0-427.el9')).toMatchObject({ flags: 'EQ' })
    expect(parseRpmRequirement('bash')).toEqual({ name: 'bash' })
    expect(formatRpmRequirement(parseRpmRequirement('foo<1:2'))).toBe('foo < 1:2')
  })
})
