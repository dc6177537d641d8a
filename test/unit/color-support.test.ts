import { describe, expect, it } from 'vitest'
import { colorEnabled } from '../../src/events/color-support.js'

describe('colorEnabled', () => {
  it('follows the terminal when nothing is set', () => {
    expect(colorEnabled({}, true)).toBe(true)
    expect(colorEnabled({}, false)).toBe(false)
  })

  it('turns colour off for NO_COLOR with a value, and ignores an empty NO_COLOR', () => {
    expect(colorEnabled({ NO_COLOR: '1' }, true)).toBe(false)
    expect(colorEnabled({ NO_COLOR: 'yes' }, true)).toBe(false)
    expect(colorEnabled({ NO_COLOR: '' }, true)).toBe(true)
  })

  it('turns colour on for FORCE_COLOR even when not a terminal, and off for FORCE_COLOR=0 or false', () => {
    expect(colorEnabled({ FORCE_COLOR: '1' }, false)).toBe(true)
    expect(colorEnabled({ FORCE_COLOR: '' }, false)).toBe(true)
    expect(colorEnabled({ FORCE_COLOR: '3' }, false)).toBe(true)
    expect(colorEnabled({ FORCE_COLOR: '0' }, true)).toBe(false)
    expect(colorEnabled({ FORCE_COLOR: 'false' }, true)).toBe(false)
  })

  it('lets FORCE_COLOR win over NO_COLOR, and TERM=dumb turn colour off', () => {
    expect(colorEnabled({ FORCE_COLOR: '1', NO_COLOR: '1' }, false)).toBe(true)
    expect(colorEnabled({ TERM: 'dumb' }, true)).toBe(false)
    expect(colorEnabled({ TERM: 'dumb', FORCE_COLOR: '1' }, true)).toBe(true)
  })
})
