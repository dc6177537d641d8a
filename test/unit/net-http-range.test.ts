import { describe, expect, it } from 'vitest'
import { contentRange, parseRange } from '../../src/net/http-range.js'

describe('parseRange', () => {
  it('reads a single range and clamps its end to the content', () => {
    expect(parseRange('bytes=10-19', 100)).toEqual({ start: 10, end: 19 })
    expect(parseRange('bytes=0-0', 100)).toEqual({ start: 0, end: 0 })
    expect(parseRange('bytes=99-99', 100)).toEqual({ start: 99, end: 99 })
    expect(parseRange('bytes=90-1000', 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange('  bytes=10-19 ', 100)).toEqual({ start: 10, end: 19 })
  })

  it('reads an open range to the end', () => {
    expect(parseRange('bytes=0-', 100)).toEqual({ start: 0, end: 99 })
    expect(parseRange('bytes=42-', 100)).toEqual({ start: 42, end: 99 })
  })

  it('reads a suffix range as the last bytes, all of them when it is longer than the content', () => {
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange('bytes=-100', 100)).toEqual({ start: 0, end: 99 })
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 })
  })

  it('answers unsatisfiable for an inverted range, the same for both servers', () => {
    expect(parseRange('bytes=500-0', 1000)).toBe('unsatisfiable')
    expect(parseRange('bytes=20-19', 100)).toBe('unsatisfiable')
    // inverted and past the end alike
    expect(parseRange('bytes=500-400', 100)).toBe('unsatisfiable')
  })

  it('answers unsatisfiable for a range outside the content', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=100-200', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable')
    expect(parseRange('bytes=-5', 0)).toBe('unsatisfiable')
  })

  it('ignores several ranges: the whole content is sent', () => {
    expect(parseRange('bytes=0-9,20-29', 100)).toBeUndefined()
    expect(parseRange('bytes=0-9, 20-29', 100)).toBeUndefined()
    expect(parseRange('bytes=-5,0-1', 100)).toBeUndefined()
  })

  it('ignores junk, another unit and an empty range', () => {
    for (const header of [
      '',
      'bytes=',
      'bytes=-',
      'bytes=a-b',
      'bytes=1-2-3',
      'items=0-9',
      'bytes 0-9',
      '0-9',
      'bytes=+1-2',
    ]) {
      expect(parseRange(header, 100), header).toBeUndefined()
    }
  })
})

describe('contentRange', () => {
  it('names the bytes sent, or only the size for a 416', () => {
    expect(contentRange(100, { start: 10, end: 19 })).toBe('bytes 10-19/100')
    expect(contentRange(100)).toBe('bytes */100')
  })
})
