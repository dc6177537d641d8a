import { execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Agent, request } from '../../src/net/undici-parts.js'

const ROOT = join(import.meta.dirname, '..', '..')

describe('undici parts', () => {
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => {
      body += chunk
    })
    req.on('end', () => {
      res.setHeader('x-seen', `${req.method} ${req.url} ${req.headers['x-test'] ?? ''} ${body}`)
      res.end('answer')
    })
  })
  let base: URL
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('sends the method, path with query, headers and body through the Agent, and returns the response', async () => {
    const agent = new Agent({ connections: 1 })
    try {
      const res = await request(agent, new URL('/v2/a/b?n=1&last=x', base), {
        method: 'PUT',
        headers: { 'x-test': 'yes' },
        body: 'payload',
      })
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-seen']).toBe('PUT /v2/a/b?n=1&last=x yes payload')
      expect(await res.body.text()).toBe('answer')
    } finally {
      await agent.close()
    }
  })

  it('leaves undici index (fetch, WebSocket, caches, mocks) unloaded when the HTTP client is loaded', () => {
    const script = [
      "import { createRequire } from 'node:module'",
      "await import('./src/net/http.ts')",
      'const loaded = Object.keys(createRequire(import.meta.url).cache)',
      "console.log(JSON.stringify(loaded.filter((f) => f.includes('/node_modules/undici/'))))",
    ].join('\n')
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    })
    const loaded = JSON.parse(out) as string[]
    expect(loaded.some((f) => f.endsWith('/undici/lib/dispatcher/agent.js'))).toBe(true)
    expect(
      loaded.filter((f) => f.endsWith('/node_modules/undici/index.js') || f.includes('/lib/web/')),
    ).toEqual([])
  })
})
