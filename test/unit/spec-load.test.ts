import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { closestMatch } from '../../src/spec/closest-match.js'
import { checkImageReferenceSyntax } from '../../src/spec/image-reference-syntax.js'
import { loadBundleSpec, parseBundleSpec, type SpecProblem } from '../../src/spec/load.js'
import { BUNDLE_API_VERSION } from '../../src/spec/types.js'

const FILE = 'bundles/test.yaml'
const HEX = 'a'.repeat(64)
const HEX2 = 'b'.repeat(64)

/** Lines joined into a document, so that a test reads line numbers off the array (index + 1). */
const doc = (...lines: string[]): string => `${lines.join('\n')}\n`

const HEADER = [
  `apiVersion: ${BUNDLE_API_VERSION}`,
  'kind: Bundle',
  'metadata:',
  '  name: demo',
  '  version: 1.0.0',
]

/** Parses text expected to be invalid; returns the error. */
function invalid(text: string): AirgapError {
  try {
    parseBundleSpec(text, FILE)
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    const airgap = error as AirgapError
    expect(airgap.code).toBe('E_INPUT')
    return airgap
  }
  throw new Error('expected the definition to be rejected')
}

function problemsOf(error: AirgapError): SpecProblem[] {
  return error.data?.problems as SpecProblem[]
}

/** The one problem at `path`; also checks that the message shows it as file:line:col: path: … */
function problemAt(error: AirgapError, fieldPath: string): SpecProblem {
  const found = problemsOf(error).filter((p) => p.path === fieldPath)
  expect(found, `problems at ${fieldPath}: ${error.message}`).toHaveLength(1)
  const problem = found[0] as SpecProblem
  expect(error.message).toContain(
    `${FILE}:${problem.line}:${problem.column}: ${fieldPath}: ${problem.message}`,
  )
  return problem
}

describe('parseBundleSpec: valid definitions', () => {
  it('accepts a minimal definition and applies defaults', () => {
    const spec = parseBundleSpec(doc(...HEADER), FILE)
    expect(spec).toEqual({
      apiVersion: BUNDLE_API_VERSION,
      kind: 'Bundle',
      metadata: { name: 'demo', version: '1.0.0' },
      platforms: ['linux/amd64'],
      images: [],
      charts: [],
      files: [],
      packages: [],
      stages: [],
      source: path.resolve(FILE),
    })
    expect(path.isAbsolute(spec.source)).toBe(true)
  })

  it('reads a full definition, with string and mapping image items', () => {
    const spec = parseBundleSpec(
      doc(
        `apiVersion: ${BUNDLE_API_VERSION}`,
        'kind: Bundle',
        'metadata:',
        '  name: astrago',
        '  version: 2025.10.1-rc1',
        '  description: The whole platform',
        'platforms: [linux/amd64, linux/arm64/v8]',
        'images:',
        '  - nginx:1.27',
        `  - ref: localhost:5000/team/app@sha256:${HEX}`,
        '    platforms: [linux/arm64]',
        '  - ref: docker.io/xiilab/git-sync:v3.6.0',
        '    from: started by Astrago core at run time',
        'charts:',
        '  - name: gpu-operator',
        '    version: v25.3.0',
        '    repo: https://helm.ngc.nvidia.com/nvidia',
        '    values: {driver: {enabled: false}}',
        '    discoverImages: false',
        '    extraImages: [nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04]',
        '  - {name: minio, version: 14.0.0, repo: oci://registry-1.docker.io/bitnamicharts}',
        'files:',
        `  - {url: https://get.helm.sh/helm.tar.gz, sha256: ${HEX}, path: bin/linux-amd64/helm.tar.gz, size: 1234}`,
        `  - {url: http://example.com/a, sha256: "${HEX2}", path: a.txt}`,
        'packages:',
        '  - { name: nvidia, apt: { mirror: https://deb.example/debian, suite: bookworm, trusted: true }, packages: [nvidia-driver] }',
        'stages:',
        '  - name: base',
        '    path: ../manifests/base',
      ),
      FILE,
    )
    expect(spec.metadata).toEqual({
      name: 'astrago',
      version: '2025.10.1-rc1',
      description: 'The whole platform',
    })
    expect(spec.platforms).toEqual(['linux/amd64', 'linux/arm64/v8'])
    expect(spec.images).toEqual([
      { ref: 'nginx:1.27' },
      { ref: `localhost:5000/team/app@sha256:${HEX}`, platforms: ['linux/arm64'] },
      { ref: 'docker.io/xiilab/git-sync:v3.6.0', from: 'started by Astrago core at run time' },
    ])
    expect(spec.charts).toEqual([
      {
        name: 'gpu-operator',
        version: 'v25.3.0',
        repo: 'https://helm.ngc.nvidia.com/nvidia',
        values: { driver: { enabled: false } },
        discoverImages: false,
        extraImages: ['nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04'],
      },
      // Defaults: discoverImages true, extraImages [].
      {
        name: 'minio',
        version: '14.0.0',
        repo: 'oci://registry-1.docker.io/bitnamicharts',
        discoverImages: true,
        extraImages: [],
      },
    ])
    expect(spec.files).toEqual([
      {
        url: 'https://get.helm.sh/helm.tar.gz',
        sha256: HEX,
        path: 'bin/linux-amd64/helm.tar.gz',
        size: 1234,
      },
      { url: 'http://example.com/a', sha256: HEX2, path: 'a.txt' },
    ])
    expect(spec.packages.map((p) => p.name)).toEqual(['nvidia'])
    expect(spec.stages).toEqual([{ name: 'base', path: '../manifests/base' }])
  })

  it('treats an optional field with no value as not given', () => {
    const spec = parseBundleSpec(
      doc(...HEADER, 'platforms:', 'images:', 'charts:', 'files:', 'stages:'),
      FILE,
    )
    expect(spec.platforms).toEqual(['linux/amd64'])
    expect(spec.images).toEqual([])
  })

  it('reads apt and rpm package repositories with their defaults', () => {
    const spec = parseBundleSpec(
      doc(
        ...HEADER,
        'packages:',
        '  - name: ubuntu-jammy',
        '    apt:',
        '      mirror: http://archive.ubuntu.com/ubuntu',
        '      suite: jammy',
        '      keyrings: [keys/ubuntu-archive-keyring.gpg]',
        '    packages: [nfs-common, "socat (>= 1.7)", conntrack:amd64]',
        '    kernels: [5.15.0-91-generic]',
        '  - name: rhel9',
        '    rpm: { baseurl: https://mirror.example/rhel9/BaseOS/x86_64/os, trusted: true }',
        '    baseline: { packages: [glibc] }',
        '    packages: [nfs-utils, "iptables >= 1.8"]',
      ),
      FILE,
    )
    expect(spec.packages).toEqual([
      {
        name: 'ubuntu-jammy',
        apt: {
          mirror: 'http://archive.ubuntu.com/ubuntu',
          suites: ['jammy'],
          components: ['main'],
          architectures: ['amd64'],
          keyrings: ['keys/ubuntu-archive-keyring.gpg'],
          trusted: false,
        },
        packages: ['nfs-common', 'socat (>= 1.7)', 'conntrack:amd64'],
        kernels: ['5.15.0-91-generic'],
      },
      {
        name: 'rhel9',
        rpm: {
          baseurl: 'https://mirror.example/rhel9/BaseOS/x86_64/os',
          architectures: ['x86_64', 'noarch'],
          keyrings: [],
          trusted: true,
          signed: 'repomd',
        },
        baseline: { packages: ['glibc'] },
        packages: ['nfs-utils', 'iptables >= 1.8'],
        kernels: [],
      },
    ])
  })

  it('reads nodes: chosen, and refuses other values', () => {
    const repo = (nodes: string) =>
      doc(
        ...HEADER,
        'packages:',
        '  - name: nvidia',
        '    apt: { mirror: http://deb.example/ubuntu, suite: jammy, trusted: true }',
        '    packages: [nvidia-driver-550-server]',
        `    nodes: ${nodes}`,
      )
    expect(parseBundleSpec(repo('chosen'), FILE).packages[0]?.nodes).toBe('chosen')
    expect('nodes' in parseBundleSpec(repo('all'), FILE).packages[0]!).toBe(false)
    expect(problemsOf(invalid(repo('gpu'))).map((p) => `${p.path}: ${p.message.split(';')[0]}`)).toEqual([
      'packages[0].nodes: "gpu" is not all or chosen',
    ])
  })

  it('refuses package repositories that are not exactly one signed source', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'packages:',
        '  - name: a',
        '    apt: { mirror: http://deb.example/debian, suite: bookworm }',
        '    packages: [socat]',
        '  - name: b',
        '    packages: [socat]',
        '  - name: c',
        '    apt: { mirror: http://deb.example/debian, suite: bookworm, trusted: true }',
        '    rpm: { baseurl: http://rpm.example/os, trusted: true }',
        '    packages: []',
        '  - name: a',
        '    apt: { mirror: ftp://deb.example/debian, suite: bookworm, trusted: true }',
        '    baseline: { priorities: [required, essential] }',
        '    packages: [socat, socat, "bad name"]',
      ),
    )
    const lines = problemsOf(error).map((p) => `${p.line} ${p.path}: ${p.message.split(';')[0]}`)
    expect(lines).toEqual([
      '8 packages[0].apt.keyrings: is missing',
      '10 packages[1]: has neither apt nor rpm',
      '14 packages[2].rpm: has both apt and rpm',
      '15 packages[2].packages: is an empty list',
      '16 packages[3].name: the apt repository name "a" is used twice (here and at bundles/test.yaml:7:11)',
      '17 packages[3].apt.mirror: "ftp://deb.example/debian" has the scheme "ftp"',
      '18 packages[3].baseline.priorities: "essential" is not an apt priority',
      '19 packages[3].packages[1]: "socat" is listed twice (here and at bundles/test.yaml:19:16)',
      '19 packages[3].packages[2]: "bad name" is not a package request',
    ])
  })

  it('follows YAML anchors and aliases', () => {
    const spec = parseBundleSpec(
      doc(
        ...HEADER,
        'platforms: &both [linux/amd64, linux/arm64]',
        'images:',
        '  - ref: busybox:1.36',
        '    platforms: *both',
      ),
      FILE,
    )
    expect(spec.images).toEqual([{ ref: 'busybox:1.36', platforms: ['linux/amd64', 'linux/arm64'] }])
  })
})

describe('parseBundleSpec: YAML syntax errors', () => {
  it('names file:line:col and the parser message', () => {
    const error = invalid(doc(...HEADER, 'images:', '  - nginx:1', ' - "unclosed'))
    const problems = problemsOf(error)
    expect(problems.length).toBeGreaterThan(0)
    const first = problems[0] as SpecProblem
    expect(first.line).toBeGreaterThanOrEqual(7)
    expect(first.message).toMatch(/YAML syntax error: /)
    expect(error.message).toContain(`${FILE}:${first.line}:${first.column}: YAML syntax error:`)
  })

  it('points at a repeated key', () => {
    const error = invalid(doc(...HEADER, 'images: []', 'images: []'))
    const problem = problemsOf(error)[0] as SpecProblem
    expect(problem).toMatchObject({ line: 7, column: 1 })
    expect(problem.message).toMatch(/unique/)
    expect(error.message).toContain(`${FILE}:7:1:`)
    expect(error.hints.join('\n')).toMatch(/once/)
  })

  it('rejects several documents in one file', () => {
    const error = invalid(doc(...HEADER, '---', 'kind: Bundle'))
    expect(problemsOf(error)[0]).toMatchObject({ line: 6, column: 1 })
  })

  it('rejects an alias without its anchor', () => {
    const error = invalid(doc(...HEADER, 'platforms: *nothing'))
    expect(problemsOf(error)[0]).toMatchObject({ line: 6, column: 12 })
    expect(error.message).toContain('*nothing')
  })
})

describe('parseBundleSpec: problems', () => {
  it('collects every problem, sorted, in one error with one line each', () => {
    const error = invalid(
      doc(
        `apiVersion: ${BUNDLE_API_VERSION}`,
        'kind: Bundel',
        'metadata:',
        '  name: Demo',
        '  version: 1.0.0',
        'images:',
        '  - nginx::1',
        '  - ref: UPPER/Case/x',
      ),
    )
    const problems = problemsOf(error)
    expect(problems.map((p) => p.path)).toEqual(['kind', 'metadata.name', 'images[0]', 'images[1].ref'])
    expect(problems.map((p) => [p.line, p.column])).toEqual([
      [2, 7],
      [4, 9],
      [7, 5],
      [8, 10],
    ])
    const lines = error.message.split('\n')
    expect(lines[0]).toContain(FILE)
    expect(lines[0]).toContain('4 problems')
    for (const [index, problem] of problems.entries()) {
      expect(lines[index + 1]).toBe(
        `${FILE}:${problem.line}:${problem.column}: ${problem.path}: ${problem.message}`,
      )
      expect(problem.message).toMatch(/; expected /)
    }
    expect(error.hints.at(-1)).toContain('docs/bundle-definition.md')
  })

  it('reports an empty document and a document that is not a mapping', () => {
    expect(problemsOf(invalid('# nothing\n'))[0]).toMatchObject({ line: 1, column: 1 })
    const list = invalid('- a\n- b\n')
    expect(problemsOf(list)).toHaveLength(1)
    expect(list.message).toMatch(/is a list; expected a mapping/)
  })

  it('rejects unknown fields at the top with a suggestion', () => {
    const error = invalid(doc(...HEADER, 'imgaes:', '  - nginx:1'))
    const problem = problemAt(error, 'imgaes')
    expect(problem).toMatchObject({ line: 6, column: 1 })
    expect(problem.message).toContain('did you mean "images"?')
    expect(error.hints).toContain('Unknown field "imgaes" — did you mean "images"?')
  })

  it('rejects unknown fields anywhere', () => {
    const error = invalid(
      doc(
        ...HEADER,
        '  descripton: x',
        'images:',
        '  - ref: nginx:1',
        '    platfroms: [linux/amd64]',
        'charts:',
        '  - {name: a, version: 1.0.0, repo: "https://x.io", discoverimages: false}',
        'stages:',
        '  - {name: a, path: x, wait: true}',
      ),
    )
    expect(problemAt(error, 'metadata.descripton')).toMatchObject({ line: 6, column: 3 })
    expect(problemAt(error, 'images[0].platfroms')).toMatchObject({ line: 9, column: 5 })
    expect(problemAt(error, 'charts[0].discoverimages')).toMatchObject({ line: 11, column: 53 })
    expect(problemAt(error, 'stages[0].wait').message).toMatch(
      /unknown field "wait".*expected one of name, path/,
    )
    expect(error.hints).toEqual(
      expect.arrayContaining([
        'Unknown field "descripton" — did you mean "description"?',
        'Unknown field "platfroms" — did you mean "platforms"?',
        'Unknown field "discoverimages" — did you mean "discoverImages"?',
      ]),
    )
  })

  it('suggests metadata fields written at the top', () => {
    const error = invalid(
      doc(`apiVersion: ${BUNDLE_API_VERSION}`, 'kind: Bundle', 'name: demo', 'metadata: {}'),
    )
    expect(problemAt(error, 'name').message).toContain('did you mean "metadata.name"?')
  })

  it('points missing required fields at the parent mapping', () => {
    const error = invalid(
      doc(
        'kind: Bundle',
        'metadata:',
        '  description: x',
        'charts:',
        '  - name: a',
        '    version: 1.0.0',
        'files:',
        '  - url: https://x.io/a',
      ),
    )
    expect(problemAt(error, 'apiVersion')).toMatchObject({ line: 1, column: 1 })
    expect(problemAt(error, 'metadata.name')).toMatchObject({ line: 3, column: 3 })
    expect(problemAt(error, 'metadata.version')).toMatchObject({ line: 3, column: 3 })
    expect(problemAt(error, 'charts[0].repo')).toMatchObject({ line: 5, column: 5 })
    expect(problemAt(error, 'files[0].sha256').message).toMatch(/^is missing; expected 64 lowercase hex/)
    expect(problemAt(error, 'files[0].path')).toMatchObject({ line: 8, column: 5 })
  })

  it('points an empty required field at its key', () => {
    const error = invalid(
      doc(`apiVersion: ${BUNDLE_API_VERSION}`, 'kind: Bundle', 'metadata:', '  name:', '  version: 1'),
    )
    expect(problemAt(error, 'metadata.name')).toMatchObject({ line: 4, column: 3 })
    expect(problemAt(error, 'metadata.name').message).toMatch(/^is empty; expected/)
  })

  it('checks apiVersion and kind', () => {
    const error = invalid(
      doc('apiVersion: airgap.astrago.io/v1', 'kind: bundle', 'metadata: {name: a, version: "1"}'),
    )
    expect(problemAt(error, 'apiVersion')).toMatchObject({ line: 1, column: 13 })
    expect(problemAt(error, 'apiVersion').message).toContain(`expected "${BUNDLE_API_VERSION}"`)
    expect(problemAt(error, 'kind').message).toContain('expected "Bundle"')
  })

  it('checks metadata name and version', () => {
    const long = 'a'.repeat(64)
    for (const [name, why] of [
      ['My-Bundle', /uppercase/],
      ['my_bundle', /characters other than/],
      ['-bundle', /starts or ends with "-"/],
      [long, /64 characters long/],
    ] as const) {
      const error = invalid(
        doc(`apiVersion: ${BUNDLE_API_VERSION}`, 'kind: Bundle', `metadata: {name: "${name}", version: "1"}`),
      )
      const problem = problemAt(error, 'metadata.name')
      expect(problem).toMatchObject({ line: 3, column: 18 })
      expect(problem.message).toMatch(why)
    }
    const error = invalid(
      doc(`apiVersion: ${BUNDLE_API_VERSION}`, 'kind: Bundle', 'metadata: {name: a, version: "1.0 beta"}'),
    )
    expect(problemAt(error, 'metadata.version').message).toMatch(/characters other than/)
  })

  it('explains a version YAML reads as a number, and hints to quote it', () => {
    const error = invalid(
      doc(`apiVersion: ${BUNDLE_API_VERSION}`, 'kind: Bundle', 'metadata:', '  name: a', '  version: 1.10'),
    )
    const problem = problemAt(error, 'metadata.version')
    expect(problem).toMatchObject({ line: 5, column: 12 })
    expect(problem.message).toMatch(/number 1\.10 \(YAML reads it as 1\.1\)/)
    expect(error.hints.join('\n')).toContain('"1.10"')
  })

  it('checks platforms', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'platforms: [linux/amd64, Linux/arm64, linux, linux/arm/v7/x, linux/amd64]',
        'images:',
        '  - ref: nginx:1',
        '    platforms: []',
      ),
    )
    expect(problemAt(error, 'platforms[1]')).toMatchObject({ line: 6, column: 26 })
    expect(problemAt(error, 'platforms[2]').message).toMatch(/expected os\/arch\[\/variant\]/)
    problemAt(error, 'platforms[3]')
    expect(problemAt(error, 'platforms[4]').message).toMatch(/listed twice .*test\.yaml:6:13/)
    expect(problemAt(error, 'images[0].platforms').message).toMatch(/empty list/)
  })

  it('checks image references in string and mapping items', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'images:',
        '  - nginx::1',
        '  - ref: "nginx:1.0@sha256:abc"',
        '  - 42',
        '  - ref:',
        '  - {platforms: [linux/amd64]}',
      ),
    )
    const stringItem = problemAt(error, 'images[0]')
    expect(stringItem).toMatchObject({ line: 7, column: 5 })
    expect(stringItem.message).toMatch(
      /^"nginx::1" is not a valid image reference.*; expected \[registry\/\]repository\[:tag\]\[@sha256:<64 hex>\]$/,
    )
    const mappingItem = problemAt(error, 'images[1].ref')
    expect(mappingItem).toMatchObject({ line: 8, column: 10 })
    expect(mappingItem.message).toMatch(/digest/)
    expect(problemAt(error, 'images[2]').message).toMatch(/number 42/)
    expect(problemAt(error, 'images[3].ref').message).toMatch(/^is empty/)
    expect(problemAt(error, 'images[4].ref')).toMatchObject({ line: 11, column: 5 })
  })

  it('rejects duplicate images, naming both positions', () => {
    const error = invalid(doc(...HEADER, 'images:', '  - nginx:1', '  - busybox:1', '  - ref: nginx:1'))
    const problem = problemAt(error, 'images[2].ref')
    expect(problem).toMatchObject({ line: 9, column: 10 })
    expect(problem.message).toContain(`${FILE}:7:5`)
    expect(problem.message).toContain('"nginx:1"')
    expect(problemsOf(error)).toHaveLength(1)
  })

  it('checks charts', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'charts:',
        '  - name: a/b',
        '    version: ^1.2.0',
        '    repo: ftp://charts.example.com',
        '    values: [1]',
        '    discoverImages: yes',
        '    extraImages: [nginx:1, "Nginx"]',
        '  - {name: c, version: 1.0.0, repo: "https://user:s3cret@charts.example.com"}',
        '  - {name: d, version: 1.0.0, repo: "oci://"}',
        '  - nginx',
      ),
    )
    expect(problemAt(error, 'charts[0].name')).toMatchObject({ line: 7, column: 11 })
    expect(problemAt(error, 'charts[0].version').message).toMatch(/version range/)
    expect(problemAt(error, 'charts[0].repo').message).toMatch(
      /"ftp".*expected an http:\/\/, https:\/\/ or oci:\/\/ URL/,
    )
    expect(problemAt(error, 'charts[0].values').message).toMatch(/is a list; expected a mapping/)
    expect(problemAt(error, 'charts[0].discoverImages')).toMatchObject({ line: 11, column: 21 })
    expect(problemAt(error, 'charts[0].discoverImages').message).toMatch(/expected true or false/)
    expect(problemAt(error, 'charts[0].extraImages[1]')).toMatchObject({ line: 12, column: 28 })
    const credentials = problemAt(error, 'charts[1].repo')
    expect(credentials.message).toMatch(/user name or password/)
    expect(error.message).not.toContain('s3cret')
    expect(problemAt(error, 'charts[2].repo').message).toMatch(/no host/)
    expect(problemAt(error, 'charts[3]').message).toMatch(/is the text "nginx"; expected a mapping/)
  })

  it('rejects a chart listed twice (same name, version and repo)', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'charts:',
        '  - {name: a, version: 1.0.0, repo: "https://x.io/charts"}',
        '  - {name: a, version: 1.0.1, repo: "https://x.io/charts"}',
        '  - {name: a, version: 1.0.0, repo: "https://x.io/charts"}',
      ),
    )
    const problem = problemAt(error, 'charts[2]')
    expect(problem).toMatchObject({ line: 9, column: 5 })
    expect(problem.message).toContain(`${FILE}:7:5`)
    expect(problemsOf(error)).toHaveLength(1)
  })

  it('checks files', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'files:',
        `  - {url: "oci://x.io/a", sha256: "sha256:${HEX}", path: /abs/a}`,
        `  - {url: "https://x.io/a", sha256: "${HEX.toUpperCase()}", path: "a\\\\b"}`,
        `  - {url: "https://x.io/a", sha256: abc, path: a/../b, size: -1}`,
        `  - {url: "https://x.io/a", sha256: ${HEX}, path: a//b, size: 1.5}`,
        `  - {url: "https://x.io/a", sha256: ${HEX}, path: ./a}`,
        `  - {url: "https://x.io/a", sha256: ${HEX}, path: a/, size: "12"}`,
      ),
    )
    expect(problemAt(error, 'files[0].url').message).toMatch(/"oci".*expected an http:\/\/ or https:\/\/ URL/)
    expect(problemAt(error, 'files[0].sha256').message).toMatch(/"sha256:"/)
    expect(problemAt(error, 'files[0].path').message).toMatch(/absolute/)
    expect(problemAt(error, 'files[1].sha256').message).toMatch(/uppercase/)
    expect(problemAt(error, 'files[1].path').message).toMatch(/"\\"/)
    expect(problemAt(error, 'files[2].sha256').message).toMatch(/3 hex digits/)
    expect(problemAt(error, 'files[2].path').message).toMatch(/"\.\."/)
    expect(problemAt(error, 'files[2].size').message).toMatch(/whole number/)
    expect(problemAt(error, 'files[3].path').message).toMatch(/empty segment/)
    expect(problemAt(error, 'files[3].size').message).toMatch(/whole number/)
    expect(problemAt(error, 'files[4].path').message).toMatch(/"\." segment/)
    expect(problemAt(error, 'files[5].path').message).toMatch(/empty segment/)
    expect(problemAt(error, 'files[5].size').message).toMatch(/is the text "12"/)
    const line7 = `  - {url: "oci://x.io/a", sha256: "sha256:${HEX}", path: /abs/a}`
    expect(problemAt(error, 'files[0].path')).toMatchObject({ line: 7, column: line7.indexOf('/abs/a') + 1 })
  })

  it('rejects two files with one path, and a file inside another', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'files:',
        `  - {url: "https://x.io/a", sha256: ${HEX}, path: bin/helm}`,
        `  - {url: "https://x.io/b", sha256: ${HEX}, path: bin}`,
        `  - url: "https://x.io/c"`,
        `    sha256: ${HEX}`,
        '    path: bin/helm',
      ),
    )
    const duplicate = problemAt(error, 'files[2].path')
    expect(duplicate).toMatchObject({ line: 11, column: 11 })
    expect(duplicate.message).toContain(`${FILE}:7:`)
    expect(problemAt(error, 'files[0].path').message).toMatch(/inside "bin".*files\[1\]\.path/)
  })

  it('checks stages', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'stages:',
        '  - name: base',
        '    path: ../manifests/base',
        '  - name: Base_2',
        '    path: /etc/x',
        '  - name: base',
        '    path: "..\\\\manifests"',
      ),
    )
    expect(problemAt(error, 'stages[1].name')).toMatchObject({ line: 9, column: 11 })
    expect(problemAt(error, 'stages[1].path').message).toMatch(/absolute/)
    const duplicate = problemAt(error, 'stages[2].name')
    expect(duplicate).toMatchObject({ line: 11, column: 11 })
    expect(duplicate.message).toContain(`${FILE}:7:11`)
    expect(problemAt(error, 'stages[2].path').message).toMatch(/"\\"/)
  })
})

describe('checkImageReferenceSyntax', () => {
  it.each([
    'nginx',
    'nginx:1.27.0-alpine3.19',
    'library/nginx:latest',
    'docker.io/library/nginx:1.27',
    'registry.k8s.io/pause:3.9',
    'localhost/app',
    'localhost:5000/team/app:v1',
    '127.0.0.1:5000/app',
    '[::1]:5000/app:1',
    'my-registry.example.com:443/a/b/c',
    'nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5-3.4.1-ubuntu22.04',
    'a_b__c---d/e.f_g',
    `nginx@sha256:${HEX}`,
    `ghcr.io/org/app:1.0@sha256:${HEX}`,
    `x:${'t'.repeat(128)}`,
  ])('accepts %s', (ref) => {
    expect(checkImageReferenceSyntax(ref)).toBeUndefined()
  })

  it.each([
    ['', /empty/],
    ['nginx latest', /whitespace/],
    ['nginx::1', /more than one ":"/],
    ['nginx:', /tag .*empty/],
    ['nginx:-1', /must start/],
    ['nginx:1+2', /character "\+"/],
    [`x:${'t'.repeat(129)}`, /129 characters/],
    ['Nginx', /uppercase/],
    ['docker.io/Library/nginx', /uppercase/],
    ['a//b', /empty component/],
    ['a/', /empty component/],
    ['a__-b', /not valid/],
    ['a._b', /not valid/],
    ['-a', /not valid/],
    ['bad_host.io/a', /registry host/],
    ['host.io:port/a', /port/],
    ['nginx@sha256:abc', /3 hex digits/],
    [`nginx@sha256:${HEX.toUpperCase()}`, /uppercase/],
    [`nginx@sha512:${HEX}`, /must start with "sha256:"/],
    [`nginx@sha256:${'g'.repeat(64)}`, /other than hex/],
    [`@sha256:${HEX}`, /repository/],
    [`a@b@sha256:${HEX}`, /more than one "@"/],
    [HEX, /image ID/],
    [`${'a/'.repeat(128)}a`, /at most 255/],
  ])('rejects %s', (ref, why) => {
    const problem = checkImageReferenceSyntax(ref)
    expect(problem).toBeDefined()
    expect(problem).toMatch(why)
  })
})

describe('closestMatch', () => {
  it('suggests near names and ignores far ones', () => {
    const fields = ['apiVersion', 'kind', 'metadata', 'images', 'charts', 'files', 'stages']
    expect(closestMatch('imgaes', fields)).toBe('images')
    expect(closestMatch('chart', fields)).toBe('charts')
    expect(closestMatch('ApiVersion', fields)).toBe('apiVersion')
    expect(closestMatch('banana', fields)).toBeUndefined()
    expect(closestMatch('x', fields)).toBeUndefined()
  })
})

describe('loadBundleSpec', () => {
  const temporary: string[] = []
  afterEach(async () => {
    for (const dir of temporary.splice(0)) await rm(dir, { recursive: true, force: true })
  })

  async function workspace(definition: string): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'spec-load-'))
    temporary.push(dir)
    await mkdir(path.join(dir, 'bundles'))
    await mkdir(path.join(dir, 'manifests', 'base'), { recursive: true })
    const file = path.join(dir, 'bundles', 'b.yaml')
    await writeFile(file, definition)
    return file
  }

  it('loads the demo definition', async () => {
    const spec = await loadBundleSpec('bundles/demo.yaml')
    expect(spec.metadata).toMatchObject({ name: 'demo', version: '0.1.0' })
    expect(spec.images.map((image) => image.ref)).toContain('registry.k8s.io/pause:3.9')
    expect(spec.charts).toHaveLength(1)
    expect(spec.files).toEqual([])
    expect(spec.stages).toEqual([{ name: 'demo', path: '../manifests/demo' }])
    expect(spec.source).toBe(path.resolve('bundles/demo.yaml'))
  })

  it('checks that stage paths exist, relative to the definition', async () => {
    const file = await workspace(
      doc(
        ...HEADER,
        'images: [nginx::1]',
        'stages:',
        '  - {name: base, path: ../manifests/base}',
        '  - name: missing',
        '    path: ../manifests/missing',
      ),
    )
    let caught: unknown
    try {
      await loadBundleSpec(file)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(AirgapError)
    const error = caught as AirgapError
    expect(error.code).toBe('E_INPUT')
    const problems = problemsOf(error)
    // Found together with the other problems, in one error.
    expect(problems.map((p) => p.path)).toEqual(['images[0]', 'stages[1].path'])
    expect(problems[1]).toMatchObject({ line: 10, column: 11 })
    expect(error.message).toContain(`${file}:10:11: stages[1].path: "../manifests/missing" does not exist`)
  })

  it('returns the absolute source when the stages exist', async () => {
    const file = await workspace(doc(...HEADER, 'stages:', '  - {name: base, path: ../manifests/base}'))
    const spec = await loadBundleSpec(file)
    expect(spec.source).toBe(file)
    expect(spec.stages).toEqual([{ name: 'base', path: '../manifests/base' }])
  })

  it('reports a missing file as an input error', async () => {
    await expect(loadBundleSpec('bundles/does-not-exist.yaml')).rejects.toMatchObject({
      code: 'E_INPUT',
      message: expect.stringContaining('bundles/does-not-exist.yaml'),
    })
  })
})
