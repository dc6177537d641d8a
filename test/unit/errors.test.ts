import { describe, expect, it } from 'vitest'
import { AirgapError, EXIT_CODES, toAirgapError } from '../../src/errors.js'

describe('AirgapError', () => {
  it('maps each code to its documented exit code', () => {
    expect(new AirgapError('E_USAGE', 'x').exitCode).toBe(2)
    expect(new AirgapError('E_INTEGRITY', 'x').exitCode).toBe(6)
    expect(new AirgapError('E_INTERRUPTED', 'x').exitCode).toBe(130)
    // Every code has a distinct exit code, so scripts can tell them apart.
    expect(new Set(Object.values(EXIT_CODES)).size).toBe(Object.keys(EXIT_CODES).length)
  })

  it('keeps hints, data and cause', () => {
    const cause = new Error('socket hang up')
    const error = new AirgapError('E_REMOTE', 'registry failed', {
      hints: ['check the mirror'],
      data: { url: 'u' },
      cause,
    })
    expect(error.hints).toEqual(['check the mirror'])
    expect(error.data).toEqual({ url: 'u' })
    expect(error.cause).toBe(cause)
  })

  it('wraps foreign errors as internal, and aborts as interruptions', () => {
    const wrapped = toAirgapError(new TypeError('boom'))
    expect(wrapped.code).toBe('E_INTERNAL')
    expect(wrapped.message).toBe('boom')
    const abort = new Error('aborted')
    abort.name = 'AbortError'
    expect(toAirgapError(abort).code).toBe('E_INTERRUPTED')
    const own = new AirgapError('E_AUTH', 'no')
    expect(toAirgapError(own)).toBe(own)
  })
})
