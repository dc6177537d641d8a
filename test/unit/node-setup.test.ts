import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LockedImage } from '../../src/bundle/metadata.js'
import { AirgapError } from '../../src/errors.js'
import {
  CONTAINERD_CERTS_DIR,
  createNodeSetupFiles,
  NODE_CA_FILE,
  normalizeSiteUrl,
  renderHostsToml,
  upstreamEndpoint,
  upstreamRegistries,
} from '../../src/serve/node-setup.js'
import { loadOrCreateSiteCa } from '../../src/serve/site-ca.js'

/**
 * A parser for the TOML subset hosts.toml uses (comments, [tables] with quoted keys, strings, booleans, arrays of
 * strings), strict enough to catch a malformed file: anything else is an error.
 */
function parseToml(text: string): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  let table = root
  const key = /^(?:[A-Za-z0-9_-]+|"[^"]*")/
  const splitKeys = (path: string): string[] => {
    const keys: string[] = []
    let rest = path.trim()
    while (rest) {
      const match = key.exec(rest)
      if (!match) throw new Error(`bad key in ${path}`)
      keys.push(match[0].replace(/^"|"$/g, ''))
      rest = rest.slice(match[0].length).trim()
      if (rest.startsWith('.')) rest = rest.slice(1).trim()
      else if (rest) throw new Error(`bad key path ${path}`)
    }
    return keys
  }
  const value = (raw: string): unknown => {
    const text = raw.trim()
    if (text === 'true' || text === 'false') return text === 'true'
    if (/^"[^"\\]*"$/.test(text)) return text.slice(1, -1)
    if (/^\[.*\]$/.test(text)) {
      const inner = text.slice(1, -1).trim()
      return inner ? inner.split(',').map((item) => value(item)) : []
    }
    throw new Error(`unsupported value ${text}`)
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      table = root
      for (const k of splitKeys(header[1]!)) {
        table[k] ??= {}
        table = table[k] as Record<string, unknown>
      }
      continue
    }
    const eq = line.indexOf('=')
    if (eq < 0) throw new Error(`not a key = value line: ${line}`)
    const [name] = splitKeys(line.slice(0, eq))
    if (name! in table) throw new Error(`duplicate key ${name}`)
    table[name!] = value(line.slice(eq + 1))
  }
  return root
}

const image = (name: string): LockedImage => ({
  source: name,
  name,
  tag: '1',
  digest: `sha256:${'a'.repeat(64)}`,
  upstreamDigest: `sha256:${'a'.repeat(64)}`,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  platforms: ['linux/amd64'],
  manifests: [],
  size: 1,
  from: ['definition'],
})

describe('node setup files', () => {
  let work: string
  let caPem: string
  const siteUrl = 'https://10.0.0.5:8443'

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-node-setup-'))
    caPem = (await loadOrCreateSiteCa(join(work, 'ca'))).certPem
  })

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('derives the upstream registries from the bundle images, once each, sorted', () => {
    const upstreams = upstreamRegistries({
      images: [
        image('nvcr.io/nvidia/cuda'),
        image('docker.io/library/nginx'),
        image('registry.k8s.io/pause'),
        image('docker.io/nvidia/cuda'),
        image('quay.io/prometheus/node-exporter'),
        image('ghcr.io/astrago/app'),
        image('nvcr.io/nvidia/gpu-operator'),
        image('registry.local:5000/team/tool'),
      ],
    })
    expect(upstreams).toEqual([
      'docker.io',
      'ghcr.io',
      'nvcr.io',
      'quay.io',
      'registry.k8s.io',
      'registry.local:5000',
    ])
    expect(upstreamRegistries({ images: [] })).toEqual([])
  })

  it('writes a mirror-only hosts.toml per upstream: the site path is the server, with override_path and the CA', () => {
    for (const upstream of ['nvcr.io', 'quay.io', 'registry.k8s.io', 'registry.local:5000']) {
      const toml = parseToml(renderHostsToml(upstream, { siteUrl }))
      expect(toml).toEqual({
        server: `${siteUrl}/v2/${upstream}`,
        capabilities: ['pull', 'resolve'],
        override_path: true,
        ca: `${CONTAINERD_CERTS_DIR}/${upstream}/${NODE_CA_FILE}`,
      })
    }
  })

  it('docker.io: the namespace is docker.io (the folder containerd looks up), the upstream API is registry-1', () => {
    expect(upstreamEndpoint('docker.io')).toBe('https://registry-1.docker.io')
    expect(upstreamEndpoint('quay.io')).toBe('https://quay.io')
    const mirrorOnly = parseToml(renderHostsToml('docker.io', { siteUrl }))
    expect(mirrorOnly.server).toBe(`${siteUrl}/v2/docker.io`)
    expect(mirrorOnly.ca).toBe('/etc/containerd/certs.d/docker.io/astrago-airgap-ca.crt')

    // With the upstream kept as fallback: server is the upstream endpoint, the site a [host] tried first.
    const fallback = parseToml(renderHostsToml('docker.io', { siteUrl, upstreamFallback: true }))
    expect(fallback).toEqual({
      server: 'https://registry-1.docker.io',
      host: {
        [`${siteUrl}/v2/docker.io`]: {
          capabilities: ['pull', 'resolve'],
          override_path: true,
          ca: '/etc/containerd/certs.d/docker.io/astrago-airgap-ca.crt',
        },
      },
    })
    const quay = parseToml(renderHostsToml('quay.io', { siteUrl, upstreamFallback: true }))
    expect(quay.server).toBe('https://quay.io')
    expect(Object.keys(quay.host as object)).toEqual([`${siteUrl}/v2/quay.io`])
  })

  it('serves node-setup.sh, ca.crt, README.txt and hosts/<upstream>/hosts.toml for the bundle upstreams', () => {
    const upstreams = upstreamRegistries({
      images: [image('docker.io/library/nginx'), image('nvcr.io/nvidia/cuda'), image('quay.io/a/b')],
    })
    const files = createNodeSetupFiles({
      siteUrl,
      caPem,
      upstreams,
      bundle: { name: 'astrago', version: '1.2.0' },
    })
    expect([...files.keys()].sort()).toEqual([
      'README.txt',
      'ca.crt',
      'hosts/docker.io/hosts.toml',
      'hosts/nvcr.io/hosts.toml',
      'hosts/quay.io/hosts.toml',
      'node-setup.sh',
    ])
    expect(files.get('ca.crt')).toBe(caPem)
    const script = files.get('node-setup.sh')!
    expect(script.startsWith('#!/bin/sh\n')).toBe(true)
    expect(script).toContain(caPem.trim())
    expect(script).toContain("UPSTREAMS='docker.io nvcr.io quay.io'")
    for (const upstream of upstreams) {
      // every hosts.toml is embedded verbatim
      expect(script).toContain(files.get(`hosts/${upstream}/hosts.toml`)!.trim())
      expect(parseToml(files.get(`hosts/${upstream}/hosts.toml`)!).server).toBe(`${siteUrl}/v2/${upstream}`)
    }
    // no package repositories: the step is empty
    expect(script).toContain('setup_package_repositories() {\n  :\n}')
    const withRepos = createNodeSetupFiles({
      siteUrl,
      caPem,
      upstreams,
      packageRepositories: [
        {
          kind: 'apt',
          name: 'debian-bookworm',
          suite: 'bookworm',
          architectures: ['amd64'],
          keyArmored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n',
          packages: ['socat', 'nfs-common'],
        },
      ],
    }).get('node-setup.sh')!
    expect(withRepos).toContain(
      "package_repository 'apt' 'debian-bookworm' 'bookworm' '/etc/apt/keyrings/astrago-airgap-debian-bookworm.asc' 'repository_key_0' '/etc/apt/sources.list.d/astrago-airgap-debian-bookworm.sources' 'repository_source_0' 'socat nfs-common'",
    )
    expect(withRepos).toContain(`URIs: ${siteUrl}/repo/apt/debian-bookworm\n`)
    expect(withRepos).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n')
    expect(files.get('README.txt')).toContain(`${siteUrl}/node-setup/node-setup.sh`)
    expect(files.get('README.txt')).toMatch(/([0-9A-F]{2}:){31}[0-9A-F]{2}/)
  })

  it("sets up the repository of the node's release on every node, and a `nodes: chosen` one only where named", () => {
    const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n'
    const script = join(work, 'chosen.sh')
    writeFileSync(
      script,
      createNodeSetupFiles({
        siteUrl: 'https://10.0.0.5:8443',
        caPem,
        upstreams: [],
        packageRepositories: [
          {
            kind: 'apt',
            name: 'ubuntu-jammy',
            suite: 'jammy',
            architectures: ['amd64'],
            keyArmored: key,
            packages: ['socat'],
          },
          {
            kind: 'apt',
            name: 'ubuntu-jammy-nvidia',
            suite: 'jammy-updates',
            architectures: ['amd64'],
            keyArmored: key,
            packages: ['nvidia-driver-550-server'],
            chosenOnly: true,
          },
          {
            kind: 'apt',
            name: 'debian-bookworm',
            suite: 'bookworm',
            architectures: ['amd64'],
            keyArmored: key,
            packages: ['socat'],
          },
        ],
      }).get('node-setup.sh')!,
    )
    const root = join(work, 'jammy-node')
    mkdirSync(join(root, 'etc', 'apt'), { recursive: true })
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=ubuntu\nVERSION_CODENAME=jammy\n')
    const dryRun = (...args: string[]) =>
      execFileSync('sh', [script, '--dry-run', '--install-packages', ...args], {
        env: { PATH: process.env.PATH, ASTRAGO_ROOT: root, ASTRAGO_CONTAINERD_VERSION: '2.0.0' },
        encoding: 'utf8',
      })
    const plain = dryRun()
    expect(plain).toContain('would write /etc/apt/sources.list.d/astrago-airgap-ubuntu-jammy.sources')
    expect(plain).not.toContain('astrago-airgap-ubuntu-jammy-nvidia')
    expect(plain).not.toContain('debian-bookworm')
    expect(plain).toMatch(
      /would run: chroot \S+ env DEBIAN_FRONTEND=noninteractive apt-get .* install socat$/m,
    )
    const gpu = dryRun('--repository', 'ubuntu-jammy', '--repository', 'ubuntu-jammy-nvidia')
    expect(gpu).toContain('would write /etc/apt/sources.list.d/astrago-airgap-ubuntu-jammy-nvidia.sources')
    expect(gpu).toMatch(/install nvidia-driver-550-server$/m)
    expect(gpu).not.toContain('debian-bookworm')
  })

  it('keeps input out of the script: bad site URLs and registry names are E_INPUT, bundle names are sanitised', () => {
    const expectInput = (fn: () => unknown, pattern: RegExp) => {
      try {
        fn()
      } catch (error) {
        expect(error).toBeInstanceOf(AirgapError)
        expect((error as AirgapError).code).toBe('E_INPUT')
        expect((error as AirgapError).message).toMatch(pattern)
        return
      }
      throw new Error('expected E_INPUT')
    }
    expectInput(() => normalizeSiteUrl('http://10.0.0.5:8443'), /https/)
    expectInput(() => normalizeSiteUrl('https://10.0.0.5:8443/v2'), /path/)
    expectInput(() => normalizeSiteUrl('https://user:pw@10.0.0.5'), /credentials/)
    expectInput(() => normalizeSiteUrl('not a url'), /not a URL/)
    expect(normalizeSiteUrl('https://Registry.Site.Local:8443/')).toBe('https://registry.site.local:8443')
    expect(normalizeSiteUrl('https://[fd00::5]:8443')).toBe('https://[fd00::5]:8443')
    expectInput(
      () => createNodeSetupFiles({ siteUrl, caPem, upstreams: ["evil.io'; rm -rf /; '"] }),
      /not a registry host/,
    )
    expectInput(
      () => createNodeSetupFiles({ siteUrl, caPem, upstreams: ['Docker.IO'] }),
      /not a registry host/,
    )
    expectInput(
      () => createNodeSetupFiles({ siteUrl, caPem: 'nope', upstreams: [] }),
      /not a PEM certificate/,
    )

    const files = createNodeSetupFiles({
      siteUrl,
      caPem,
      upstreams: ['docker.io'],
      bundle: { name: 'x\nrm -rf /', version: '1.0.0$(reboot)' },
    })
    const script = files.get('node-setup.sh')!
    expect(script).not.toMatch(/^rm -rf/m)
    expect(script).not.toContain('$(reboot)')
    expect(
      files
        .get('hosts/docker.io/hosts.toml')!
        .split('\n')
        .filter((l) => l.includes('rm -rf')),
    ).toEqual([
      '# Generated by astrago-airgap for the site server https://10.0.0.5:8443 (bundle x_rm -rf _ 1.0.0__reboot_).',
    ])
  })

  it('after a push: every hosts.toml tries the pushed-to registry first, the site server stays the fallback', () => {
    const pullRegistry = { url: 'http://10.0.0.11:30002', prefix: 'library' }
    const mirrorOnly = parseToml(renderHostsToml('docker.io', { siteUrl, pullRegistry }))
    expect(mirrorOnly).toEqual({
      server: `${siteUrl}/v2/docker.io`,
      capabilities: ['pull', 'resolve'],
      override_path: true,
      ca: `${CONTAINERD_CERTS_DIR}/docker.io/${NODE_CA_FILE}`,
      host: {
        'http://10.0.0.11:30002/v2/library/docker.io': {
          capabilities: ['pull', 'resolve'],
          override_path: true,
        },
      },
    })
    // A port in an upstream host is written as the push writes it (registry.local_5000).
    const ported = parseToml(renderHostsToml('registry.local:5000', { siteUrl, pullRegistry }))
    expect(Object.keys(ported.host as object)).toEqual([
      'http://10.0.0.11:30002/v2/library/registry.local_5000',
    ])
    const fallback = parseToml(renderHostsToml('quay.io', { siteUrl, pullRegistry, upstreamFallback: true }))
    expect(fallback.server).toBe('https://quay.io')
    expect(Object.keys(fallback.host as object)).toEqual([
      'http://10.0.0.11:30002/v2/library/quay.io',
      `${siteUrl}/v2/quay.io`,
    ])

    const files = createNodeSetupFiles({ siteUrl, caPem, upstreams: ['docker.io', 'nvcr.io'], pullRegistry })
    // A plain-HTTP registry gets a hosts.toml of its own: relocated images name it as their registry.
    expect(parseToml(files.get('hosts/10.0.0.11:30002/hosts.toml')!)).toEqual({
      server: 'http://10.0.0.11:30002',
      capabilities: ['pull', 'resolve'],
    })
    expect(files.get('node-setup.sh')).toContain(files.get('hosts/10.0.0.11:30002/hosts.toml')!.trim())
    expect(files.get('README.txt')).toContain('http://10.0.0.11:30002/v2/library/<registry>/')
    // An https registry (its certificate trusted by the nodes' system store) needs no file of its own.
    const https = createNodeSetupFiles({
      siteUrl,
      caPem,
      upstreams: ['docker.io'],
      pullRegistry: { url: 'https://harbor.site:443' },
    })
    expect([...https.keys()].filter((k) => k.startsWith('hosts/'))).toEqual(['hosts/docker.io/hosts.toml'])
    expect(Object.keys(parseToml(https.get('hosts/docker.io/hosts.toml')!).host as object)).toEqual([
      'https://harbor.site:443/v2/docker.io',
    ])
    // Anything else in the record is refused rather than written into a node's files.
    for (const bad of [
      { url: 'ftp://x:1' },
      { url: 'http://x:1/path' },
      { url: 'http://x"y:1' },
      { url: 'http://x:1', prefix: 'Bad Prefix' },
    ])
      expect(() =>
        createNodeSetupFiles({ siteUrl, caPem, upstreams: ['docker.io'], pullRegistry: bad }),
      ).toThrow(AirgapError)
  })
})
