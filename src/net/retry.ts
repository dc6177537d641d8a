import { AirgapError } from '../errors.js'

/**
 * Retry with exponential backoff and full jitter, honouring a server's Retry-After. Only errors that say they are
 * retryable are retried; everything else fails at once.
 */
export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number
  baseDelayMs: number
  maxDelayMs: number
}

export const defaultRetryPolicy: RetryPolicy = { retries: 5, baseDelayMs: 250, maxDelayMs: 15_000 }

export class RetryableError extends Error {
  constructor(
    message: string,
    /** The server asked us to wait this long (Retry-After), if it said. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'RetryableError'
  }
}

export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt)
  return Math.floor(random() * ceiling)
}

/** Parses a Retry-After header (seconds, or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** Waits `ms`, or rejects with the signal's reason when it is (or already was) aborted. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted')
  if (ms <= 0) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason ?? new Error('aborted'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  options: {
    policy?: RetryPolicy
    signal?: AbortSignal
    onRetry?: (error: RetryableError, delayMs: number) => void
  } = {},
): Promise<T> {
  const policy = options.policy ?? defaultRetryPolicy
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (error) {
      if (!(error instanceof RetryableError) || attempt >= policy.retries || options.signal?.aborted)
        throw error
      const delay = Math.min(policy.maxDelayMs * 4, error.retryAfterMs ?? backoffDelay(attempt, policy))
      options.onRetry?.(error, delay)
      await sleep(delay, options.signal)
    }
  }
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
])

/** Is this a transport error (connection reset, timeout) worth retrying? */
export function isTransientNetworkError(error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: string }).code
    if (code && RETRYABLE_CODES.has(code)) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505)
}

/** Did a response body break off part-way (the connection closed or reset while it was being read)? */
export function isBrokenBodyError(error: unknown): boolean {
  if (error instanceof RetryableError || error instanceof AirgapError) return false
  return isTransientNetworkError(error) || (error as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE'
}

/**
 * Runs `fn` (a request and the reading of its whole body: a manifest, an index, a chart) again, within the retry
 * policy, when the body breaks off part-way: a small document is fetched whole once more rather than resumed. Every
 * other error, and the last broken body, goes to the caller (the last as E_REMOTE, naming `what`).
 */
export async function withWholeBodyRetries<T>(
  what: string,
  fn: () => Promise<T>,
  options: { policy?: RetryPolicy; signal?: AbortSignal } = {},
): Promise<T> {
  const policy = options.policy ?? defaultRetryPolicy
  try {
    return await withRetries(async () => {
      try {
        return await fn()
      } catch (error) {
        if (options.signal?.aborted || !isBrokenBodyError(error)) throw error
        throw new RetryableError(`${what}: the answer broke off (${(error as Error).message})`, undefined, {
          cause: error,
        })
      }
    }, options)
  } catch (error) {
    if (!(error instanceof RetryableError)) throw error
    throw new AirgapError('E_REMOTE', `${error.message}; gave up after ${policy.retries + 1} attempts.`, {
      cause: error,
      hints: ['The connection kept breaking off; check the network or proxy in between, then run again.'],
    })
  }
}
