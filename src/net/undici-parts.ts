import type { Dispatcher } from 'undici'
import requestOn from 'undici/lib/api/api-request.js'
import UndiciAgent from 'undici/lib/dispatcher/agent.js'

/**
 * The two parts of undici the CLI uses, its connection pool (`Agent`) and its `request`, imported from their own files.
 * undici's index also loads fetch, WebSocket, EventSource, the caches, the mock agents and the proxy agents: about
 * 7 MiB more memory in every process that makes a request (the median of seven loads after @oclif/core: 64.2 against
 * 56.9 MiB), none of it used. The version is pinned in package.json; the types of the two files are declared in
 * src/types/undici-internals.d.ts, and test/unit/undici-parts.test.ts checks that they still do what is used here and
 * that loading the HTTP client leaves undici's index unloaded.
 */
export const Agent = UndiciAgent

/** undici's `request(url, options)` on a given dispatcher, as undici's index makes it. */
export function request(
  dispatcher: Dispatcher,
  url: URL,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Dispatcher.ResponseData> {
  return requestOn.call(dispatcher, { ...options, origin: url.origin, path: `${url.pathname}${url.search}` })
}
