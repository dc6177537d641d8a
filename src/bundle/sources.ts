import { createReadStream } from 'node:fs'
import { AirgapError } from '../errors.js'
import type { HttpClient } from '../net/http.js'
import type { RegistryClient, Repo } from '../oci/registry-client.js'
import type { RemoteSource } from './plan-layout.js'

/** A registry blob as a resumable source. */
export function registryBlobSource(client: RegistryClient, repo: Repo, digest: string): RemoteSource {
  return {
    describe: `blob ${digest} of ${repo.registry}/${repo.repository}`,
    open: async (offset, signal) => {
      const { body, partial } = await client.openBlob(repo, digest, { offset, signal })
      return { body, partial }
    },
  }
}

/** A file on this machine as a member source (it is read, checked against its sha256, like any download). */
export function localFileSource(file: string): RemoteSource {
  return {
    describe: file,
    open: async (offset) => ({ body: createReadStream(file, { start: offset }), partial: true }),
  }
}

/** A file URL as a resumable source (HTTP Range). */
export function urlSource(http: HttpClient, url: string): RemoteSource {
  return {
    describe: url,
    open: async (offset, signal) => {
      const res = await http.fetch(url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, signal })
      if (res.status !== 200 && res.status !== 206) {
        await res.body.dump()
        throw new AirgapError('E_REMOTE', `Downloading ${url} failed: HTTP ${res.status}.`, {
          data: { url, status: res.status },
        })
      }
      return { body: res.body, partial: res.status === 206 }
    },
  }
}

/** The size of a file URL from a HEAD request (following redirects); an error when the server does not say. */
export async function urlSize(http: HttpClient, url: string, signal?: AbortSignal): Promise<number> {
  const res = await http.fetch(url, { method: 'HEAD', signal })
  await res.body.dump()
  if (res.status !== 200) {
    throw new AirgapError('E_REMOTE', `The file ${url} is not available: HTTP ${res.status}.`, {
      hints: ['Check the URL, or use --mirror / a reachable copy of it.'],
      data: { url, status: res.status },
    })
  }
  const length = Number(res.header('content-length'))
  if (!Number.isFinite(length) || res.header('content-length') === undefined) {
    throw new AirgapError('E_INPUT', `The server of ${url} does not say how large the file is.`, {
      hints: ['Add `size: <bytes>` to this file in the bundle definition.'],
    })
  }
  return length
}
