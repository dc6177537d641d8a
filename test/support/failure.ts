import { isAirgapError } from '../../src/errors.js'

/** The AirgapError `fn` throws, as plain fields to assert on; anything else (or no error) fails the test. */
export function failure(fn: () => unknown): {
  code: string
  message: string
  data: Record<string, unknown> | undefined
} {
  try {
    fn()
  } catch (error) {
    if (isAirgapError(error)) return { code: error.code, message: error.message, data: error.data }
    throw error
  }
  throw new Error('expected a failure')
}
