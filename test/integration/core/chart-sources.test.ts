import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildSourceChart, type ChartSource, type SourceChart } from '../../../src/charts/chart-source.js'
import { readChartMetadata } from '../../../src/charts/download.js'
import { AirgapError } from '../../../src/errors.js'
import type { ProgressEvent } from '../../../src/events/types.js'
import { HttpClient } from '../../../src/net/http.js'
import { buildChartArtifact, pullChartArtifact } from '../../../src/oci/chart-artifact.js'
import { createRegistryClient } from '../../../src/oci/create-registry-client.js'
import { MediaType } from '../../../src/oci/media-types.js'
import { createChart, helm } from '../../support/charts.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { commitFiles, createGitRepository, type GitServer, startGitServer } from '../../support/git-server.js'
import { pushBlob, pushManifest } from '../../support/images.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)

/**
 * Charts from git (served by the real `git http-backend` over HTTP) and from local folders: resolved, their
 * dependencies vendored from a real chart repository and from file://, packaged reproducibly, and rendered by the
 * real helm with no network at all. Every error a field engineer can meet has its code asserted.
 */
let work: string
let chartRepo: FileServer
let gitServer: GitServer
let privateServer: GitServer
let firstCommit: string
let mainCommit: string
let appFiles: Record<string, string>
const http = new HttpClient({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } })

function recorder(): { events: ProgressEvent[]; sink: { emit(e: ProgressEvent): void } } {
  const events: ProgressEvent[] = []
  return { events, sink: { emit: (e) => events.push(e) } }
}

function freshCache(): string {
  return mkdtempSync(join(work, 'cache-'))
}

async function build(source: ChartSource, extra: Partial<Parameters<typeof buildSourceChart>[1]> = {}) {
  return await buildSourceChart(source, { http, cacheDir: freshCache(), ...extra })
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<AirgapError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error, `expected ${code}`).toBeInstanceOf(AirgapError)
  expect((error as AirgapError).code, (error as AirgapError).message).toBe(code)
  expect((error as AirgapError).hints.length).toBeGreaterThan(0)
  return error as AirgapError
}

/** Renders a packaged chart with helm inside a network namespace with no interface up: no network whatsoever. */
async function templateOffline(chart: SourceChart): Promise<string> {
  const dir = mkdtempSync(join(work, 'offline-'))
  const tgz = join(dir, chart.fileName)
  writeFileSync(tgz, chart.bytes)
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(dir, 'cache'),
    HELM_CONFIG_HOME: join(dir, 'config'),
    HELM_DATA_HOME: join(dir, 'data'),
  }
  const { stdout } = await run(
    'unshare',
    ['--net', '--', findTool('helm'), 'template', 'demo', tgz, '--namespace', 'apps'],
    { env, maxBuffer: 16 << 20 },
  )
  return stdout
}

function appChart(repoUrl: string, values = 'greeting: hello\n'): Record<string, string> {
  return {
    'README.md': 'A repository that holds charts among other things.\n',
    'docs/guide.txt': 'not a chart\n',
    'charts/app/Chart.yaml': [
      'apiVersion: v2',
      'name: app',
      'description: A chart from git with a repository dependency and a file:// one',
      'version: 0.1.0',
      'dependencies:',
      '  - name: cache',
      '    version: 1.2.0',
      `    repository: ${repoUrl}`,
      '  - name: common',
      '    version: ~0.3.0',
      '    repository: file://../common',
      '',
    ].join('\n'),
    'charts/app/values.yaml': values,
    'charts/app/.helmignore': '*.md\nscratch/\n',
    'charts/app/NOTES.md': 'left out by .helmignore\n',
    'charts/app/scratch/tmp.txt': 'left out by .helmignore\n',
    'charts/app/templates/configmap.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-app',
      'data:',
      '  greeting: {{ .Values.greeting | quote }}',
      '',
    ].join('\n'),
    'charts/common/Chart.yaml': 'apiVersion: v2\nname: common\nversion: 0.3.1\n',
    'charts/common/templates/settings.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-common-settings',
      'data:',
      '  from: common',
      '',
    ].join('\n'),
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'chart-sources-'))
  // A real chart repository with the dependency in two versions.
  const repoDir = join(work, 'chart-repo')
  await mkdir(repoDir, { recursive: true })
  for (const version of ['1.1.0', '1.2.0'])
    await createChart(repoDir, {
      name: 'cache',
      version,
      images: [`docker.io/library/redis:7.${version[2]}`],
    })
  await helm(['repo', 'index', repoDir], { home: join(work, 'helm') })
  chartRepo = await startFileServer(repoDir)

  const gitRoot = join(work, 'git')
  appFiles = appChart(chartRepo.url)
  firstCommit = await createGitRepository(join(gitRoot, 'org', 'platform.git'), appFiles, { tag: 'v0.1.0' })
  mainCommit = await commitFiles(join(gitRoot, 'org', 'platform.git'), {
    'charts/app/values.yaml': 'greeting: hello again\n',
  })
  // Broken charts, one per dependency error.
  await createGitRepository(join(gitRoot, 'org', 'broken.git'), {
    'missing-version/Chart.yaml': `apiVersion: v2\nname: mv\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: 9.9.9\n    repository: ${chartRepo.url}\n`,
    'missing-range/Chart.yaml': `apiVersion: v2\nname: mr\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: ^4.0.0\n    repository: ${chartRepo.url}\n`,
    'unreachable-repo/Chart.yaml':
      'apiVersion: v2\nname: ur\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: 1.2.0\n    repository: http://127.0.0.1:9/charts\n',
    'no-repository/Chart.yaml':
      'apiVersion: v2\nname: nr\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: 1.2.0\n    repository: "@stable"\n',
  })
  // Version constraints: a range takes the newest match (with a warning); Chart.lock pins one.
  await createGitRepository(join(gitRoot, 'org', 'ranges.git'), {
    'range/Chart.yaml': `apiVersion: v2\nname: rg\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: ">=1.0.0 <2.0.0"\n    repository: ${chartRepo.url}\n`,
    'locked/Chart.yaml': `apiVersion: v2\nname: lk\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: ^1.0.0\n    repository: ${chartRepo.url}\n`,
    'locked/Chart.lock': `dependencies:\n- name: cache\n  repository: ${chartRepo.url}\n  version: 1.1.0\ndigest: sha256:0\ngenerated: "2026-01-01T00:00:00Z"\n`,
  })
  gitServer = await startGitServer(gitRoot)

  const privateRoot = join(work, 'private-git')
  await createGitRepository(join(privateRoot, 'team', 'secret.git'), {
    'chart/Chart.yaml': 'apiVersion: v2\nname: secret\nversion: 2.0.0\n',
    'chart/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: secret-chart\n',
  })
  privateServer = await startGitServer(privateRoot, { auth: { username: 'field', password: 's3cr3t-t0ken' } })
})

afterAll(async () => {
  await gitServer?.stop()
  await privateServer?.stop()
  await chartRepo?.stop()
  await http.close()
  if (work && !process.env.KEEP_HARNESS) rmSync(work, { recursive: true, force: true })
})

describe('a chart from git', () => {
  it('packages byte-identically from a full commit sha, in fresh caches, with its dependencies vendored', async () => {
    const source: ChartSource = {
      git: { url: `${gitServer.url}/org/platform.git`, ref: mainCommit, path: 'charts/app' },
    }
    const first = recorder()
    const a = await build(source, { sink: first.sink })
    const b = await build(source)
    expect(a.sha256).toBe(b.sha256)
    expect(Buffer.compare(a.bytes, b.bytes)).toBe(0)
    expect(a.fileName).toBe('app-0.1.0.tgz')
    expect(a.origin).toEqual({
      git: {
        url: `${gitServer.url}/org/platform.git`,
        ref: mainCommit,
        path: 'charts/app',
        commit: mainCommit,
      },
    })
    expect(first.events.filter((e) => e.type === 'log' && e.level === 'warn')).toEqual([])
    expect(a.files).toEqual([
      '.helmignore',
      'Chart.yaml',
      'charts/cache-1.2.0.tgz',
      'charts/common-0.3.1.tgz',
      'templates/configmap.yaml',
      'values.yaml',
    ])
    expect(a.dependencies.map((d) => [d.name, d.version, d.from])).toEqual([
      ['cache', '1.2.0', 'repository'],
      ['common', '0.3.1', 'file'],
    ])
    // The archive: gzip with a fixed header (mtime 0, OS unknown), entries owned by 0:0 with mtime 0.
    expect(a.bytes.subarray(4, 8).readUInt32LE()).toBe(0)
    expect(a.bytes[9]).toBe(0xff)
    const tgz = join(mkdtempSync(join(work, 'list-')), a.fileName)
    writeFileSync(tgz, a.bytes)
    const { stdout } = await run('tar', ['--numeric-owner', '--utc', '-tvzf', tgz], {
      env: { ...process.env, TZ: 'UTC' },
    })
    const lines = stdout.trim().split('\n')
    expect(lines).toHaveLength(6)
    for (const line of lines) expect(line).toMatch(/^-rw-r--r-- 0\/0 +\d+ 1970-01-01 00:00 app\//)
  })

  it('resolves a branch or a tag to its commit, with a warning that a rebuild may differ', async () => {
    const url = `${gitServer.url}/org/platform.git`
    const branch = recorder()
    const onMain = await build({ git: { url, ref: 'main', path: 'charts/app' } }, { sink: branch.sink })
    expect(onMain.origin).toMatchObject({
      git: { ref: 'main', commit: mainCommit, refName: 'refs/heads/main' },
    })
    const warnings = branch.events.filter((e) => e.type === 'log' && e.level === 'warn')
    expect(warnings.map((e) => (e as { code?: string }).code)).toEqual(['CHART_GIT_REF_MOVABLE'])
    expect((warnings[0] as { data?: unknown }).data).toMatchObject({ ref: 'main', commit: mainCommit })

    const tag = recorder()
    const tagged = await build({ git: { url, ref: 'v0.1.0', path: '/charts/app/' } }, { sink: tag.sink })
    // An annotated tag is peeled to the commit it tags, not the tag object.
    expect(tagged.origin).toMatchObject({
      git: { commit: firstCommit, refName: 'refs/tags/v0.1.0', path: 'charts/app' },
    })
    expect(tag.events.some((e) => e.type === 'log' && e.code === 'CHART_GIT_REF_MOVABLE')).toBe(true)
    // The same commit by sha gives the same bytes as by tag.
    const bySha = await build({ git: { url, ref: firstCommit, path: 'charts/app' } })
    expect(bySha.sha256).toBe(tagged.sha256)
    expect(bySha.sha256).not.toBe(onMain.sha256)
  })

  it('reuses the cache: a second build of the same commit does not fetch again', async () => {
    const cacheDir = freshCache()
    const source: ChartSource = {
      git: { url: `${gitServer.url}/org/platform.git`, ref: firstCommit, path: 'charts/app' },
    }
    await buildSourceChart(source, { http, cacheDir })
    const before = gitServer.requests.length
    const again = recorder()
    await buildSourceChart(source, { http, cacheDir, sink: again.sink })
    expect(gitServer.requests.length).toBe(before)
    expect(again.events.some((e) => e.type === 'log' && e.code === 'CHART_GIT_CACHED')).toBe(true)
  })

  it('uses credentials given for the host of a private repository, and says E_AUTH without them', async () => {
    const url = `${privateServer.url}/team/secret.git`
    const host = new URL(privateServer.url).host
    const source: ChartSource = { git: { url, ref: 'main', path: 'chart' } }
    const error = await expectCode(build(source), 'E_AUTH')
    expect(error.data?.field).toBe('url')
    const wrong = await expectCode(
      build(source, { credentials: { [host]: { username: 'field', password: 'wrong-password' } } }),
      'E_AUTH',
    )
    expect(JSON.stringify({ m: wrong.message, d: wrong.data, h: wrong.hints })).not.toContain(
      'wrong-password',
    )
    // A wrapper records every command line git is started with: the secret must be on none of them.
    const argvLog = join(work, 'git-argv.log')
    const wrapper = join(work, 'git-wrapper.sh')
    writeFileSync(
      wrapper,
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${findTool('git')}' "$@"\n`,
      {
        mode: 0o755,
      },
    )
    const chart = await build(source, {
      credentials: { [host]: { username: 'field', password: 's3cr3t-t0ken' } },
      git: wrapper,
    })
    expect(chart.metadata).toMatchObject({ name: 'secret', version: '2.0.0' })
    const argv = readFileSync(argvLog, 'utf8')
    expect(argv).toContain('ls-remote')
    expect(argv).toContain('fetch')
    expect(argv).not.toContain('s3cr3t-t0ken')
  })
})

describe('dependency versions', () => {
  it('takes the newest version a range accepts, warning that a rebuild may differ; Chart.lock pins one', async () => {
    const url = `${gitServer.url}/org/ranges.git`
    const range = recorder()
    const ranged = await build({ git: { url, ref: 'main', path: 'range' } }, { sink: range.sink })
    expect(ranged.dependencies.map((d) => d.version)).toEqual(['1.2.0'])
    expect(range.events.some((e) => e.type === 'log' && e.code === 'CHART_DEPENDENCY_RANGE')).toBe(true)
    const lock = recorder()
    const locked = await build({ git: { url, ref: 'main', path: 'locked' } }, { sink: lock.sink })
    expect(locked.dependencies.map((d) => d.version)).toEqual(['1.1.0'])
    expect(locked.files).toContain('charts/cache-1.1.0.tgz')
    expect(lock.events.some((e) => e.type === 'log' && e.code === 'CHART_DEPENDENCY_RANGE')).toBe(false)
  })
})

describe('a dependency in an OCI registry', () => {
  let registry: TestRegistry
  beforeAll(async () => {
    registry = await startRegistry()
    const tgz = await createChart(join(work, 'oci-chart'), {
      name: 'cache',
      version: '1.2.0',
      images: ['docker.io/library/redis:7.4'],
    })
    const bytes = await import('node:fs/promises').then((fs) => fs.readFile(tgz))
    const artifact = buildChartArtifact(bytes, await readChartMetadata(bytes))
    for (const [digest, blob] of [
      [artifact.configDigest, artifact.config],
      [artifact.chartDigest, bytes],
    ] as const)
      await pushBlob(registry, 'charts/cache', { digest, chunks: () => [blob] })
    await pushManifest(registry, 'charts/cache', '1.2.0', MediaType.ociManifest, artifact.manifest)
    await commitFiles(join(work, 'git', 'org', 'ranges.git'), {
      'oci/Chart.yaml': `apiVersion: v2\nname: oc\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: 1.2.0\n    repository: oci://${registry.host}/charts\n`,
      'oci-range/Chart.yaml': `apiVersion: v2\nname: or\nversion: 1.0.0\ndependencies:\n  - name: cache\n    version: ~1.2.0\n    repository: oci://${registry.host}/charts\n`,
    })
  })
  afterAll(async () => {
    await registry?.stop()
  })

  it('is pulled through the OCI puller, vendored, and renders with no network', async () => {
    const { registry: client, http: registryHttp } = await createRegistryClient({
      insecureRegistries: [registry.host],
      toolVersion: 'test',
      sink: { emit() {} },
    })
    const ociPull = (ref: string, signal?: AbortSignal) => pullChartArtifact(client, ref, signal)
    const url = `${gitServer.url}/org/ranges.git`
    const chart = await build({ git: { url, ref: 'main', path: 'oci' } }, { http: registryHttp, ociPull })
    expect(chart.dependencies).toMatchObject([{ name: 'cache', version: '1.2.0', from: 'repository' }])
    expect(await templateOffline(chart)).toContain('image: "docker.io/library/redis:7.4"')
    // A range cannot be resolved in an OCI registry without listing its tags: the definition must pin it.
    const range = await expectCode(
      build({ git: { url, ref: 'main', path: 'oci-range' } }, { ociPull }),
      'E_INPUT',
    )
    expect(range.data).toMatchObject({ field: 'dependencies', dependency: 'cache' })
    await registryHttp.close()
  })
})

describe('a chart from a local folder', () => {
  it('packages to the same bytes as the same files from git, whatever their mtimes and modes', async () => {
    const dir = join(work, 'local-checkout')
    for (const [path, content] of Object.entries(appFiles)) {
      await mkdir(dirname(join(dir, path)), { recursive: true })
      await writeFile(join(dir, path), content, { mode: path.endsWith('.yaml') ? 0o664 : 0o600 })
    }
    const local = await build({ local: { dir: 'charts/app' } }, { baseDir: dir })
    const fromGit = await build({
      git: { url: `${gitServer.url}/org/platform.git`, ref: firstCommit, path: 'charts/app' },
    })
    expect(local.sha256).toBe(fromGit.sha256)
    expect(local.origin).toEqual({ local: { dir: 'charts/app' } })
    utimesSync(join(dir, 'charts/app/values.yaml'), new Date(2001, 1, 1), new Date(2001, 1, 1))
    const touched = await build({ local: { dir: join(dir, 'charts/app') } })
    expect(touched.sha256).toBe(local.sha256)
  })
})

describe('the files packaged', () => {
  it('are the ones `helm package` takes from the same folder (.helmignore, hidden files, nested folders)', async () => {
    const dir = join(work, 'oracle', 'tools')
    const files: Record<string, string> = {
      'Chart.yaml': 'apiVersion: v2\nname: tools\nversion: 3.1.4\n',
      'values.yaml': 'a: 1\n',
      '.helmignore': '# editor files\n*.swp\n*.md\n/ci/\nsecrets/*.key\n.git/\n',
      'README.md': 'ignored\n',
      LICENSE: 'kept\n',
      'ci/values-test.yaml': 'ignored\n',
      'docs/ci/kept.yaml': 'kept: a nested ci folder is not /ci/\n',
      'secrets/tls.key': 'ignored\n',
      'secrets/tls.crt': 'kept\n',
      'templates/.hidden.yaml': 'ignored by the default rule\n',
      'templates/a.swp': 'ignored\n',
      'templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n',
      'templates/sub/nested.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n',
      'files/.keep': 'hidden files outside templates/ are kept\n',
    }
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true })
      await writeFile(join(dir, path), content)
    }
    const ours = await build({ local: { dir } })
    const out = mkdtempSync(join(work, 'helm-package-'))
    await helm(['package', dir, '--destination', out], { home: join(work, 'helm') })
    const { stdout } = await run('tar', ['-tzf', join(out, 'tools-3.1.4.tgz')])
    const helmFiles = stdout
      .trim()
      .split('\n')
      .map((f) => f.replace(/^tools\//, ''))
      .sort()
    expect(ours.files.slice().sort()).toEqual(helmFiles)
    expect(ours.files).toContain('docs/ci/kept.yaml')
    expect(ours.files).not.toContain('secrets/tls.key')
  })
})

describe('the packaged chart, with no network', () => {
  it('renders with helm from git: its own objects, the repository dependency and the file:// one', async () => {
    const chart = await build({
      git: { url: `${gitServer.url}/org/platform.git`, ref: mainCommit, path: 'charts/app' },
    })
    const out = await templateOffline(chart)
    expect(out).toContain('name: demo-app')
    expect(out).toContain('greeting: "hello again"')
    expect(out).toContain('name: demo-common-settings')
    // The dependency from the chart repository: its Deployment and image.
    expect(out).toMatch(/kind: Deployment[\s\S]*name: demo-cache/)
    expect(out).toContain('image: "docker.io/library/redis:7.2"')
  })

  it('renders with helm from a local folder', async () => {
    const dir = join(work, 'local-render')
    for (const [path, content] of Object.entries(appFiles)) {
      await mkdir(dirname(join(dir, path)), { recursive: true })
      await writeFile(join(dir, path), content)
    }
    const out = await templateOffline(await build({ local: { dir: join(dir, 'charts/app') } }))
    expect(out).toContain('greeting: "hello"')
    expect(out).toContain('name: demo-common-settings')
    expect(out).toContain('image: "docker.io/library/redis:7.2"')
  })
})

describe('errors say what is wrong and what to do', () => {
  it('an unreachable repository is E_REMOTE', async () => {
    const stopped = await startGitServer(join(work, 'git'))
    await stopped.stop()
    const error = await expectCode(
      build({ git: { url: `${stopped.url}/org/platform.git`, ref: 'main', path: 'charts/app' } }),
      'E_REMOTE',
    )
    expect(error.message).toContain(stopped.url)
    expect(error.data?.field).toBe('url')
    await expectCode(
      build({ git: { url: `${gitServer.url}/org/no-such.git`, ref: 'main', path: '.' } }),
      'E_REMOTE',
    )
  })

  it('an unknown ref is E_REMOTE, for a branch name and for a commit sha', async () => {
    const url = `${gitServer.url}/org/platform.git`
    const error = await expectCode(
      build({ git: { url, ref: 'no-such-branch', path: 'charts/app' } }),
      'E_REMOTE',
    )
    expect(error.data?.field).toBe('ref')
    const sha = await expectCode(build({ git: { url, ref: 'f'.repeat(40), path: 'charts/app' } }), 'E_REMOTE')
    expect(sha.message).toContain('f'.repeat(40))
    expect(sha.data?.field).toBe('ref')
    const short = await expectCode(
      build({ git: { url, ref: mainCommit.slice(0, 10), path: 'charts/app' } }),
      'E_REMOTE',
    )
    expect(short.hints.join(' ')).toContain('40')
  })

  it('a path with no Chart.yaml is E_INPUT and names the folders that have one', async () => {
    const url = `${gitServer.url}/org/platform.git`
    const noChart = await expectCode(build({ git: { url, ref: mainCommit, path: 'docs' } }), 'E_INPUT')
    expect(noChart.data?.field).toBe('path')
    expect(noChart.hints.join(' ')).toContain('charts/app')
    await expectCode(build({ git: { url, ref: mainCommit, path: 'no/such/folder' } }), 'E_INPUT')
    await expectCode(build({ git: { url, ref: mainCommit, path: '../outside' } }), 'E_INPUT')
    await expectCode(build({ local: { dir: join(work, 'chart-repo') } }), 'E_INPUT')
    await expectCode(build({ local: { dir: join(work, 'no-such-folder') } }), 'E_INPUT')
  })

  it('a missing dependency is an error naming it: no such version, an unreachable repository, no repository URL', async () => {
    const url = `${gitServer.url}/org/broken.git`
    const version = await expectCode(
      build({ git: { url, ref: 'main', path: 'missing-version' } }),
      'E_REMOTE',
    )
    expect(version.data).toMatchObject({ field: 'dependencies', dependency: 'cache' })
    expect(version.message).toContain('1.2.0')
    const range = await expectCode(build({ git: { url, ref: 'main', path: 'missing-range' } }), 'E_REMOTE')
    expect(range.data).toMatchObject({ field: 'dependencies', dependency: 'cache' })
    const unreachable = await expectCode(
      build({ git: { url, ref: 'main', path: 'unreachable-repo' } }),
      'E_REMOTE',
    )
    expect(unreachable.message).toContain('127.0.0.1:9')
    await expectCode(build({ git: { url, ref: 'main', path: 'no-repository' } }), 'E_INPUT')
  })
})
