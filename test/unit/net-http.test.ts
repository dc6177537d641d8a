import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { mirrorUrl } from '../../src/net/http.js'
import {
  backoffDelay,
  defaultRetryPolicy,
  parseRetryAfter,
  RetryableError,
  withRetries,
  withWholeBodyRetries,
} from '../../src/net/retry.js'

describe('mirrorUrl', () => {
  const mirrors = {
    'https://get.helm.sh': 'http://127.0.0.1:9000/get.helm.sh',
    'https://github.com/': 'http://127.0.0.1:9000/github/',
    'https://github.com/xiilab/': 'http://127.0.0.1:9000/xiilab/',
  }
  it('rewrites the longest matching prefix and leaves others alone', () => {
    expect(mirrorUrl('https://get.helm.sh/helm-v3.21.4-linux-amd64.tar.gz', mirrors)).toBe(
      'http://127.0.0.1:9000/get.helm.sh/helm-v3.21.4-linux-amd64.tar.gz',
    )
    expect(mirrorUrl('https://github.com/xiilab/uyuni-login-theme/a.jar', mirrors)).toBe(
      'http://127.0.0.1:9000/xiilab/uyuni-login-theme/a.jar',
    )
    expect(mirrorUrl('https://github.com/other/x', mirrors)).toBe('http://127.0.0.1:9000/github/other/x')
    expect(mirrorUrl('https://example.org/x', mirrors)).toBe('https://example.org/x')
    expect(mirrorUrl('https://example.org/x', undefined)).toBe('https://example.org/x')
  })
})

describe('retry', () => {
  it('parses Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', Date.parse('2026-01-01T00:00:00Z'))).toBe(10_000)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter(undefined)).toBeUndefined()
  })

  it('backs off exponentially with jitter under a ceiling', () => {
    expect(backoffDelay(0, defaultRetryPolicy, () => 0.999)).toBeLessThan(defaultRetryPolicy.baseDelayMs)
    expect(backoffDelay(20, defaultRetryPolicy, () => 0.999)).toBeLessThanOrEqual(
      defaultRetryPolicy.maxDelayMs,
    )
    expect(backoffDelay(3, defaultRetryPolicy, () => 0)).toBe(0)
  })

  it('retries only retryable errors, up to the limit', async () => {
    let calls = 0
    const policy = { retries: 2, baseDelayMs: 1, maxDelayMs: 2 }
    await expect(
      withRetries(
        async () => {
          calls++
          throw new RetryableError('503')
        },
        { policy },
      ),
    ).rejects.toThrow('503')
    expect(calls).toBe(3)
    calls = 0
    await expect(
      withRetries(
        async () => {
          calls++
          throw new Error('404')
        },
        { policy },
      ),
    ).rejects.toThrow('404')
    expect(calls).toBe(1)
    calls = 0
    expect(
      await withRetries(
        async () => {
          calls++
          if (calls < 3) throw new RetryableError('reset', 1)
          return 'ok'
        },
        { policy },
      ),
    ).toBe('ok')
  })

  it('fetches a whole document again when its body broke off, and says so when it keeps breaking', async () => {
    const policy = { retries: 2, baseDelayMs: 1, maxDelayMs: 2 }
    const broken = () => Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
    let calls = 0
    const ok = await withWholeBodyRetries(
      'the index',
      async () => {
        calls++
        if (calls < 3) throw broken()
        return 'whole'
      },
      { policy },
    )
    expect(ok).toBe('whole')
    expect(calls).toBe(3)

    calls = 0
    const failed = await withWholeBodyRetries(
      'the index',
      async () => {
        calls++
        throw broken()
      },
      { policy },
    ).catch((e: unknown) => e)
    expect(calls).toBe(3)
    expect(failed).toBeInstanceOf(AirgapError)
    expect((failed as AirgapError).code).toBe('E_REMOTE')
    expect((failed as AirgapError).message).toMatch(/the index: the answer broke off.*3 attempts/)

    // An answer that is an error (HTTP 404, a bad digest) is not asked for again.
    calls = 0
    const notFound = new AirgapError('E_REMOTE', 'not found')
    await expect(
      withWholeBodyRetries(
        'the index',
        async () => {
          calls++
          throw notFound
        },
        { policy },
      ),
    ).rejects.toBe(notFound)
    expect(calls).toBe(1)
  })
})
