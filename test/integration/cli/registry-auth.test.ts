import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliResult, runCli } from '../../support/cli.js'
import { pushImage } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { startTokenIssuer, type TokenIssuer } from '../../support/token-issuer.js'

/**
 * The bundle's OCI client against a real distribution v3 in token-auth mode (the Docker Hub / Harbor / NGC scheme):
 * 401 Bearer challenge → token from the realm (Basic credentials or anonymous) → Bearer requests. Credentials come
 * from --username/--password-stdin, a Docker config file, or a Docker credential helper; a wrong one is E_AUTH (exit
 * 5) naming the registry; tokens are fetched once per repository scope and reused; no secret is ever printed.
 */
describe('registry token auth', () => {
  const USER = 'alice'
  const PASSWORD = 'pw-Zq8!correct-horse'
  const WRONG = 'pw-wrong-battery-staple'
  let work: string
  let storage: string
  let issuer: TokenIssuer
  let registry: TestRegistry
  let emptyDockerConfig: string
  const blobGets = () =>
    readFileSync(join(registry.workDir, 'registry.log'), 'utf8')
      .split('\n')
      .filter((l) => /"GET \/v2\/\S+\/blobs\/sha256:/.test(l)).length

  const definition = (name: string, images: string[]) => {
    const file = join(work, `${name}.json`)
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'airgap.astrago.io/v1alpha1',
        kind: 'Bundle',
        metadata: { name, version: '1.0.0' },
        platforms: ['linux/amd64'],
        images,
      }),
    )
    return file
  }
  const privateImages = () => [`${registry.host}/private/app:1.0`, `${registry.host}/private/db:2.0`]
  const publicImage = () => `${registry.host}/public/tool:1.0`

  const bundle = async (
    name: string,
    images: string[],
    extra: { args?: string[]; input?: string; env?: NodeJS.ProcessEnv } = {},
  ): Promise<CliResult> => {
    const res = await runCli(
      [
        'bundle',
        definition(name, images),
        '--output-dir',
        join(work, 'out', name),
        '--insecure-registry',
        registry.host,
        '--json',
        ...(extra.args ?? []),
      ],
      { input: extra.input, env: { DOCKER_CONFIG: emptyDockerConfig, ...extra.env } },
    )
    // No secret, in any form, on either stream.
    const secrets = [PASSWORD, WRONG, Buffer.from(`${USER}:${PASSWORD}`).toString('base64')]
    for (const request of issuer.requests) if (request.token) secrets.push(request.token)
    for (const secret of secrets) {
      expect(res.stdout).not.toContain(secret)
      expect(res.stderr).not.toContain(secret)
    }
    return res
  }

  const dockerConfig = (name: string, config: unknown) => {
    const dir = join(work, name)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
    return dir
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-registry-auth-it-'))
    storage = join(work, 'storage')
    emptyDockerConfig = dockerConfig('docker-empty', {})
    // Seed the content without auth, then serve the same storage behind token auth.
    const seed = await startRegistry({ flavor: 'distribution-v3', storageDir: storage })
    try {
      const base = { seed: 'auth-base', size: 1_500_000 }
      await pushImage(seed, {
        repository: 'private/app',
        tag: '1.0',
        layers: [base, { seed: 'auth-app', size: 600_000 }, { seed: 'auth-app-2', size: 300_000 }],
      })
      await pushImage(seed, {
        repository: 'private/db',
        tag: '2.0',
        format: 'docker',
        layers: [base, { seed: 'auth-db', size: 800_000 }],
      })
      await pushImage(seed, {
        repository: 'public/tool',
        tag: '1.0',
        layers: [{ seed: 'auth-tool', size: 500_000 }],
      })
    } finally {
      await seed.stop()
    }
    issuer = await startTokenIssuer({ users: { [USER]: PASSWORD }, publicRepositories: ['public/tool'] })
    registry = await startRegistry({
      flavor: 'distribution-v3',
      storageDir: storage,
      extraConfig: {
        auth: issuer.registryAuthConfig(),
        log: { level: 'info', accesslog: { disabled: false } },
      },
    })
  })

  afterAll(async () => {
    await registry?.stop()
    await issuer?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('challenges with Bearer and refuses an anonymous pull of a private repository', async () => {
    const res = await fetch(`${registry.url}/v2/private/app/manifests/1.0`)
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toContain(`Bearer realm="${issuer.realm}"`)
    const before = issuer.requests.length
    const cli = await bundle('anon-private', [privateImages()[0]!])
    expect(cli.code).toBe(5)
    expect(cli.error?.code).toBe('E_AUTH')
    expect(cli.error?.message).toContain(registry.host)
    expect(issuer.requests.slice(before).every((r) => r.account === undefined)).toBe(true)
  })

  it('never sends credentials in cleartext to a token realm on another host', async () => {
    // The same content behind a registry whose realm is http://localhost:…: plain HTTP, and not the registry's host.
    const elsewhere = await startRegistry({
      flavor: 'distribution-v3',
      storageDir: storage,
      extraConfig: {
        auth: {
          token: {
            ...(issuer.registryAuthConfig().token as Record<string, unknown>),
            realm: issuer.realm.replace('127.0.0.1', 'localhost'),
          },
        },
      },
    })
    try {
      const before = issuer.requests.length
      const res = await runCli(
        [
          'bundle',
          definition('realm-elsewhere', [`${elsewhere.host}/private/app:1.0`]),
          '--output-dir',
          join(work, 'out', 'realm-elsewhere'),
          '--insecure-registry',
          elsewhere.host,
          '--username',
          `${elsewhere.host}=${USER}`,
          '--password-stdin',
          '--json',
        ],
        { input: `${PASSWORD}\n`, env: { DOCKER_CONFIG: emptyDockerConfig } },
      )
      expect(res.code, res.stderr).toBe(5)
      expect(res.error?.code).toBe('E_AUTH')
      expect(res.error?.message).toContain('http://localhost')
      expect(issuer.requests.slice(before).filter((r) => r.account !== undefined)).toEqual([])
      expect(res.stdout).not.toContain(PASSWORD)
    } finally {
      await elsewhere.stop()
    }
  })

  it('pulls private images with --username REGISTRY=USER --password-stdin, one token per repository scope', async () => {
    const tokensBefore = issuer.requests.length
    const blobsBefore = blobGets()
    const res = await bundle('login', [...privateImages(), publicImage()], {
      args: ['--username', `${registry.host}=${USER}`, '--password-stdin'],
      input: `${PASSWORD}\n`,
    })
    expect(res.error).toBeUndefined()
    expect(res.code).toBe(0)
    expect(res.result.images).toBe(3)
    const tokenRequests = issuer.requests.slice(tokensBefore)
    expect(tokenRequests.every((r) => r.account === USER && r.status === 200)).toBe(true)
    const scopes = tokenRequests.flatMap((r) => r.scopes).sort()
    expect(scopes).toEqual([
      'repository:private/app:pull',
      'repository:private/db:pull',
      'repository:public/tool:pull',
    ])
    // The access log is written by the registry as it answers; wait until this run's blob GETs are all in.
    let blobs = 0
    for (let i = 0; i < 50 && blobs < res.result.blobs - 3; i++) {
      blobs = blobGets() - blobsBefore
      if (blobs < res.result.blobs - 3) await new Promise((r) => setTimeout(r, 100))
    }
    // 3 images: 5 unique layers + 3 configs; far more blob requests than token requests.
    expect(blobs).toBeGreaterThanOrEqual(8)
    expect(tokenRequests.length).toBe(3)
  })

  it('pulls the public repository anonymously', async () => {
    const before = issuer.requests.length
    const res = await bundle('anonymous', [publicImage()])
    expect(res.error).toBeUndefined()
    expect(res.code).toBe(0)
    const requests = issuer.requests.slice(before)
    expect(requests.length).toBe(1)
    expect(requests[0]).toMatchObject({ account: undefined, granted: ['repository:public/tool:pull'] })
  })

  it('fails with E_AUTH (exit 5) naming the registry when the password is wrong', async () => {
    // The explicit login wins over the (correct) one in the Docker config file: no silent fallback.
    const dir = dockerConfig('docker-auths-good', {
      auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
    })
    const res = await bundle('wrong', privateImages(), {
      args: ['--username', `${registry.host}=${USER}`, '--password-stdin'],
      input: `${WRONG}\n`,
      env: { DOCKER_CONFIG: dir },
    })
    expect(res.code).toBe(5)
    expect(res.error?.code).toBe('E_AUTH')
    expect(res.error?.message).toContain(registry.host)
    expect(res.error?.message).toMatch(/refused the credentials/)
  })

  it('reads credentials from the Docker config file (auths, base64 auth)', async () => {
    const dir = dockerConfig('docker-auths', {
      auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
    })
    const before = issuer.requests.length
    const res = await bundle('config-file', privateImages(), { env: { DOCKER_CONFIG: dir } })
    expect(res.error).toBeUndefined()
    expect(res.code).toBe(0)
    expect(issuer.requests.slice(before).every((r) => r.account === USER)).toBe(true)
  })

  it('gets credentials from a Docker credential helper (credHelpers)', async () => {
    const bin = join(work, 'helper-bin')
    mkdirSync(bin, { recursive: true })
    const calls = join(work, 'helper-calls.log')
    const helper = join(bin, 'docker-credential-astrago-test')
    // The helper protocol: `get` reads the server URL on stdin, answers {ServerURL, Username, Secret} or fails.
    writeFileSync(
      helper,
      [
        '#!/bin/sh',
        'read -r server',
        `echo "$1 $server" >> '${calls}'`,
        `if [ "$1" = get ] && [ "$server" = '${registry.host}' ]; then`,
        `  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$server" '${USER}' '${PASSWORD}'`,
        'else',
        "  echo 'credentials not found in native keychain'",
        '  exit 1',
        'fi',
        '',
      ].join('\n'),
    )
    chmodSync(helper, 0o755)
    const dir = dockerConfig('docker-helper', { credHelpers: { [registry.host]: 'astrago-test' } })
    const before = issuer.requests.length
    const res = await bundle('helper', privateImages(), {
      env: { DOCKER_CONFIG: dir, PATH: `${bin}${delimiter}${process.env.PATH}` },
    })
    expect(res.error).toBeUndefined()
    expect(res.code).toBe(0)
    expect(issuer.requests.slice(before).every((r) => r.account === USER)).toBe(true)
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual([`get ${registry.host}`])
  })
})
