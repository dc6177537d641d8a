import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { loadBundleSpec, parseBundleSpec, type SpecProblem } from '../../src/spec/load.js'
import { BUNDLE_API_VERSION } from '../../src/spec/types.js'
import { checkGitRef, checkGitUrl } from '../../src/spec/value-checks.js'

/**
 * The `charts:` sources beyond chart repositories: `git: {url, ref, path}` and `path:` (a local folder). Every
 * problem has its file:line:col, like the rest of the definition.
 */
const FILE = 'bundles/test.yaml'
const SHA = '0123456789abcdef0123456789abcdef01234567'
const doc = (...lines: string[]): string => `${lines.join('\n')}\n`
const HEADER = [`apiVersion: ${BUNDLE_API_VERSION}`, 'kind: Bundle', 'metadata: {name: demo, version: 1.0.0}']

function invalid(text: string): AirgapError {
  try {
    parseBundleSpec(text, FILE)
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    return error as AirgapError
  }
  throw new Error('expected the definition to be rejected')
}

function problemAt(error: AirgapError, fieldPath: string): SpecProblem {
  const found = ((error.data?.problems ?? []) as SpecProblem[]).filter((p) => p.path === fieldPath)
  expect(found, `problems at ${fieldPath}: ${error.message}`).toHaveLength(1)
  const problem = found[0] as SpecProblem
  expect(error.message).toContain(
    `${FILE}:${problem.line}:${problem.column}: ${fieldPath}: ${problem.message}`,
  )
  return problem
}

describe('charts from git and from folders', () => {
  it('reads git and path entries: version optional, the repository path normalized, a sha lowercased', () => {
    const spec = parseBundleSpec(
      doc(
        ...HEADER,
        'charts:',
        '  - name: app',
        '    git:',
        '      url: https://github.com/example/deploy',
        `      ref: ${SHA.toUpperCase()}`,
        '      path: ./charts/app/',
        '    values: {a: 1}',
        '  - name: tool',
        '    version: 0.2.0',
        '    git: {url: "git@github.com:example/tools.git", ref: v1.2.0}',
        '  - name: local',
        '    path: ../charts/local',
        '    discoverImages: false',
        '  - {name: web, version: 1.0.0, repo: https://charts.example.org}',
      ),
      FILE,
    )
    expect(spec.charts).toEqual([
      {
        name: 'app',
        git: { url: 'https://github.com/example/deploy', ref: SHA, path: 'charts/app' },
        values: { a: 1 },
        discoverImages: true,
        extraImages: [],
      },
      {
        name: 'tool',
        version: '0.2.0',
        git: { url: 'git@github.com:example/tools.git', ref: 'v1.2.0', path: '' },
        discoverImages: true,
        extraImages: [],
      },
      { name: 'local', path: '../charts/local', discoverImages: false, extraImages: [] },
      {
        name: 'web',
        version: '1.0.0',
        repo: 'https://charts.example.org',
        discoverImages: true,
        extraImages: [],
      },
    ])
  })

  it('wants exactly one source, and a version with repo', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'charts:',
        '  - name: a',
        '    repo: https://charts.example.org',
        `    git: {url: https://git.example.org/a, ref: ${SHA}}`,
        '  - name: b',
        '    version: 1.0.0',
        '  - name: c',
        '    repo: https://charts.example.org',
        '  - name: d',
        '    git: {url: https://git.example.org/d, ref: main}',
        '    path: ./d',
      ),
    )
    expect(problemAt(error, 'charts[0].git')).toMatchObject({ line: 7, column: 10 })
    expect(problemAt(error, 'charts[0].git').message).toMatch(
      /^is given with repo; expected exactly one source: repo .*, git .* or path/,
    )
    expect(problemAt(error, 'charts[1].repo')).toMatchObject({ line: 8, column: 5 })
    expect(problemAt(error, 'charts[1].repo').message).toMatch(/^is missing; expected exactly one source/)
    expect(problemAt(error, 'charts[2].version')).toMatchObject({ line: 10, column: 5 })
    expect(problemAt(error, 'charts[2].version').message).toMatch(/pinned to its version/)
    expect(problemAt(error, 'charts[3].path')).toMatchObject({ line: 14, column: 11 })
  })

  it('checks the git source field by field', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'charts:',
        '  - name: a',
        '    git:',
        '      url: https://user:s3cret@git.example.org/a',
        '      ref: abc1234',
        '      path: ../outside',
        '  - name: b',
        '    git: {url: ftp://git.example.org/b, ref: "feature/../x", path: /abs, depth: 1}',
        '  - name: c',
        '    git: {path: charts/c}',
        '  - name: d',
        '    git: https://git.example.org/d',
      ),
    )
    expect(problemAt(error, 'charts[0].git.url')).toMatchObject({ line: 7, column: 12 })
    expect(problemAt(error, 'charts[0].git.url').message).toMatch(/contains a password/)
    expect(error.message).not.toContain('s3cret')
    expect(problemAt(error, 'charts[0].git.ref').message).toMatch(
      /abbreviated commit sha.*expected a full 40-character/,
    )
    expect(problemAt(error, 'charts[0].git.path').message).toMatch(/"\.\." segment/)
    expect(problemAt(error, 'charts[1].git.url').message).toMatch(/scheme "ftp"/)
    expect(problemAt(error, 'charts[1].git.ref').message).toMatch(/not a git ref/)
    expect(problemAt(error, 'charts[1].git.path').message).toMatch(/absolute/)
    expect(problemAt(error, 'charts[1].git.depth').message).toMatch(
      /unknown field "depth"; expected one of url, ref, path/,
    )
    expect(problemAt(error, 'charts[2].git.url')).toMatchObject({ line: 13, column: 10 })
    expect(problemAt(error, 'charts[2].git.ref').message).toMatch(
      /^is missing; expected a full 40-character commit sha/,
    )
    expect(problemAt(error, 'charts[3].git').message).toMatch(
      /is the text .*; expected a git source \{url, ref, path\}/,
    )
  })

  it('rejects the same git chart twice', () => {
    const error = invalid(
      doc(
        ...HEADER,
        'charts:',
        `  - {name: a, git: {url: https://git.example.org/a, ref: ${SHA}, path: charts/a}}`,
        `  - {name: a, git: {url: https://git.example.org/a, ref: ${SHA}, path: ./charts/a/}}`,
      ),
    )
    expect(problemAt(error, 'charts[1]').message).toMatch(
      /listed twice \(here and at bundles\/test.yaml:5:5\)/,
    )
  })

  it('git URLs and refs as git takes them', () => {
    for (const url of [
      'https://github.com/xiilab/astrago-deployment',
      'http://127.0.0.1:8080/a.git',
      'ssh://git@github.com/xiilab/astrago-deployment.git',
      'git@github.com:xiilab/astrago-deployment.git',
      'file:///srv/git/a.git',
    ])
      expect(checkGitUrl(url), url).toBeUndefined()
    for (const url of [
      'github.com/x/y',
      'https://tok@github.com/x/y',
      'C:\\repo',
      'ssh://u:p@h/x',
      'https://',
    ])
      expect(checkGitUrl(url), url).toBeDefined()
    for (const ref of [SHA, 'main', 'v1.2.0', 'release/2.x', 'refs/tags/v1', 'HEAD'])
      expect(checkGitRef(ref), ref).toBeUndefined()
    for (const ref of ['abc1234', 'a b', 'x..y', '-x', 'x/', 'x.lock', 'a/.b', 'x@{1}', 'x~1', 'x^', 'a:b'])
      expect(checkGitRef(ref), ref).toBeDefined()
  })
})

describe('loadBundleSpec: local chart folders', () => {
  let dir: string | undefined
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
    dir = undefined
  })

  it('checks that a chart folder exists, relative to the definition', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'spec-chart-folder-'))
    await mkdir(path.join(dir, 'charts', 'here'), { recursive: true })
    const file = path.join(dir, 'bundles', 'b.yaml')
    await mkdir(path.dirname(file))
    await writeFile(
      file,
      doc(
        ...HEADER,
        'charts:',
        '  - {name: here, path: ../charts/here}',
        '  - {name: gone, path: ../charts/gone}',
      ),
    )
    const error = await loadBundleSpec(file).then(
      () => undefined,
      (e: unknown) => e as AirgapError,
    )
    expect(error?.code).toBe('E_INPUT')
    const problems = error?.data?.problems as SpecProblem[]
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatchObject({ path: 'charts[1].path', line: 6, column: 24 })
    expect(problems[0]?.message).toMatch(
      /does not exist .*expected a chart folder relative to the definition's folder/,
    )
  })
})
