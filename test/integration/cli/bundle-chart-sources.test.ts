import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChart, helm } from '../../support/charts.js'
import { runCli } from '../../support/cli.js'
import { type FileServer, startFileServer } from '../../support/file-server.js'
import { commitFiles, createGitRepository, type GitServer, startGitServer } from '../../support/git-server.js'
import { pushImage } from '../../support/images.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'
import { freePort, loopbackServe } from '../../support/net.js'
import { startRegistry, type TestRegistry } from '../../support/registry.js'
import { findTool } from '../../support/tools.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/**
 * `bundle` with charts no chart repository publishes, through the built CLI against real servers: a chart from a git
 * repository served by the real `git http-backend` (reached through --mirror, as a corporate mirror of github.com
 * would be), and a chart from a local folder, each depending on a chart of a real chart repository. They bundle (the
 * dependency vendored, the images of both rendered), rebuild byte-identically, and install with helm from the bundle
 * on a real control plane after every upstream server is stopped. Every error names the definition's file:line:col.
 */
const GIT_UPSTREAM = 'https://git.example.org/org'
const CHARTS_UPSTREAM = 'https://charts.example.org/stable'
const APP_IMAGE = 'docker.io/library/app:1.0'
const TOOL_IMAGE = 'docker.io/library/tool:2.1'
const CACHE_IMAGE = 'quay.io/demo/cache:2.0'

/** A chart that runs `image` and depends on cache 1.2.0 from the (mirrored) chart repository. */
function chartFiles(name: string, image: string, dependency = '1.2.0'): Record<string, string> {
  return {
    'Chart.yaml': [
      'apiVersion: v2',
      `name: ${name}`,
      'version: 0.1.0',
      'dependencies:',
      '  - name: cache',
      `    version: ${dependency}`,
      `    repository: ${CHARTS_UPSTREAM}`,
      '',
    ].join('\n'),
    'values.yaml': `image: ${image}\n`,
    'templates/deployment.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      `  name: {{ .Release.Name }}-${name}`,
      'spec:',
      '  replicas: 1',
      `  selector: {matchLabels: {app: ${name}}}`,
      '  template:',
      `    metadata: {labels: {app: ${name}}}`,
      '    spec:',
      `      containers: [{name: ${name}, image: {{ .Values.image | quote }}}]`,
      '',
    ].join('\n'),
  }
}

const under = (prefix: string, files: Record<string, string>) =>
  Object.fromEntries(Object.entries(files).map(([path, text]) => [`${prefix}/${path}`, text]))

describe('bundle: charts from git and from local folders', () => {
  let work: string
  let registry: TestRegistry
  let chartRepo: FileServer
  let gitServer: GitServer
  let privateServer: GitServer
  let firstCommit: string
  let mainCommit: string
  let definition: string
  let bundle: string
  let cp: Promise<ControlPlane>
  const helmBin = findTool('helm')

  const mirrors = () => [
    '--helm',
    helmBin,
    '--mirror',
    `docker.io=${registry.url}/docker.io`,
    '--mirror',
    `quay.io=${registry.url}/quay.io`,
    '--mirror',
    `${CHARTS_UPSTREAM}=${chartRepo.url}`,
    '--mirror',
    `${GIT_UPSTREAM}=${gitServer.url}/org`,
  ]

  /** Runs `bundle` with its own git cache (a fresh one each time unless given). */
  const bundleCli = (file: string, extra: string[] = [], options: { cache?: string; input?: string } = {}) =>
    runCli(['bundle', file, '--json', '--no-installer', ...mirrors(), ...extra], {
      env: { XDG_CACHE_HOME: options.cache ?? mkdtempSync(join(work, 'cache-')) },
      ...(options.input !== undefined ? { input: options.input } : {}),
    })

  /** Writes a definition (YAML lines under the header) and returns its path. */
  const writeDefinition = (name: string, lines: string[]): string => {
    const file = join(work, 'bundles', `${name}.yaml`)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(
      file,
      [
        'apiVersion: airgap.astrago.io/v1alpha1',
        'kind: Bundle',
        `metadata: {name: ${name}, version: 1.0.0}`,
        ...lines,
        '',
      ].join('\n'),
    )
    return file
  }

  /** The file:line:col of the first line of `file` holding `text` (at that text). */
  const positionOf = (file: string, text: string): string => {
    const lines = readFileSync(file, 'utf8').split('\n')
    const line = lines.findIndex((l) => l.includes(text))
    expect(line, `${text} in ${file}`).toBeGreaterThanOrEqual(0)
    return `${file}:${line + 1}:${lines[line]!.indexOf(text) + 1}`
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'astrago-bundle-sources-'))
    // Started now, ready by the time the install test needs it.
    cp = startControlPlane()
    cp.catch(() => {})
    registry = await startRegistry({ flavor: 'distribution-v3' })
    for (const [repository, tag, seed] of [
      ['docker.io/library/app', '1.0', 'app'],
      ['docker.io/library/tool', '2.1', 'tool'],
      ['quay.io/demo/cache', '2.0', 'cache'],
    ] as const)
      await pushImage(registry, { repository, tag, layers: [{ seed, size: 50_000 }] })

    const repoDir = join(work, 'chart-repo')
    mkdirSync(repoDir, { recursive: true })
    await createChart(repoDir, { name: 'cache', version: '1.2.0', images: [CACHE_IMAGE] })
    rmSync(join(repoDir, 'cache'), { recursive: true })
    await helm(['repo', 'index', repoDir], { home: join(work, 'helm') })
    chartRepo = await startFileServer(repoDir)

    const gitRoot = join(work, 'git')
    const deploy = join(gitRoot, 'org', 'deploy.git')
    firstCommit = await createGitRepository(deploy, {
      'README.md': 'Deployment repository: charts among other things.\n',
      'docs/guide.txt': 'not a chart\n',
      ...under('charts/app', chartFiles('app', APP_IMAGE)),
      ...under('charts/needs-missing', chartFiles('needs-missing', APP_IMAGE, '9.9.9')),
    })
    mainCommit = await commitFiles(deploy, {
      'charts/app/values.yaml': `image: ${APP_IMAGE}\nnote: moved on\n`,
    })
    gitServer = await startGitServer(gitRoot)

    const privateRoot = join(work, 'private-git')
    await createGitRepository(
      join(privateRoot, 'team', 'secret.git'),
      under('chart', chartFiles('secret', APP_IMAGE)),
    )
    privateServer = await startGitServer(privateRoot, {
      auth: { username: 'field', password: 's3cr3t-t0ken' },
    })

    // The local folder chart, beside the definitions' folder.
    for (const [path, text] of Object.entries(
      under(join(work, 'charts', 'tool'), chartFiles('tool', TOOL_IMAGE)),
    )) {
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, text)
    }
    mkdirSync(join(work, 'manifests', 'apps'), { recursive: true })
    writeFileSync(
      join(work, 'manifests', 'apps', 'stage.yaml'),
      [
        'apiVersion: airgap.astrago.io/v1alpha1',
        'kind: Stage',
        'timeout: 2m',
        'charts:',
        '  - {chart: app, release: app, namespace: apps}',
        '  - {chart: tool, release: tool, namespace: tools}',
        '',
      ].join('\n'),
    )
    definition = writeDefinition('sources', [
      'charts:',
      '  - name: app',
      '    git:',
      `      url: ${GIT_UPSTREAM}/deploy.git`,
      `      ref: ${firstCommit}`,
      '      path: charts/app',
      '  - name: tool',
      '    path: ../charts/tool',
      'stages:',
      '  - {name: apps, path: ../manifests/apps}',
    ])
  })

  afterAll(async () => {
    await Promise.allSettled([
      gitServer?.stop(),
      privateServer?.stop(),
      chartRepo?.stop(),
      registry?.stop(),
      cp?.then((c) => c.stop()),
    ])
    if (work && !process.env.KEEP_HARNESS) rmSync(work, { recursive: true, force: true })
  })

  it('bundles a git chart at a full sha and a local folder chart, their dependency vendored and every image rendered', async () => {
    const res = await bundleCli(definition, ['--output-dir', join(work, 'out-1')])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    bundle = res.result.path
    // A full sha: no warning that a rebuild may differ.
    expect(res.events.filter((e) => e.code === 'CHART_GIT_REF_MOVABLE')).toEqual([])
    // The repository was fetched through the mirror.
    expect(gitServer.requests.some((r) => r.includes('/org/deploy.git/'))).toBe(true)

    const inspect = await runCli(['inspect', bundle, '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    const charts = inspect.result.metadata.charts as Record<string, unknown>[]
    const app = charts.find((c) => c.name === 'app')!
    const tool = charts.find((c) => c.name === 'tool')!
    expect(app).toMatchObject({
      version: '0.1.0',
      path: 'charts/app-0.1.0.tgz',
      git: { url: `${GIT_UPSTREAM}/deploy.git`, ref: firstCommit, commit: firstCommit, path: 'charts/app' },
      dependencies: [
        { name: 'cache', version: '1.2.0', repository: CHARTS_UPSTREAM, path: 'charts/cache-1.2.0.tgz' },
      ],
      oci: { repository: 'charts/app', tag: '0.1.0' },
    })
    expect(app.repo).toBeUndefined()
    expect(app.images).toEqual(expect.arrayContaining([APP_IMAGE, CACHE_IMAGE]))
    expect(tool).toMatchObject({ version: '0.1.0', local: { path: '../charts/tool' } })
    expect(tool.images).toEqual(expect.arrayContaining([TOOL_IMAGE, CACHE_IMAGE]))
    const names = (inspect.result.metadata.images as { name: string; tag: string }[]).map(
      (i) => `${i.name}:${i.tag}`,
    )
    expect(names).toEqual(expect.arrayContaining([APP_IMAGE, TOOL_IMAGE, CACHE_IMAGE]))

    // The packaged chart is in the bundle's chart repository with the sha256 bundle.json records, and holds the
    // vendored dependency.
    const extract = join(work, 'extract')
    mkdirSync(extract)
    await run('tar', [
      '-xf',
      bundle,
      '-C',
      extract,
      'charts/index.yaml',
      'charts/app-0.1.0.tgz',
      'charts/tool-0.1.0.tgz',
    ])
    expect(sha256(readFileSync(join(extract, 'charts', 'tool-0.1.0.tgz')))).toBe(tool.sha256)
    expect(sha256(readFileSync(join(extract, 'charts', 'app-0.1.0.tgz')))).toBe(app.sha256)
    expect(readFileSync(join(extract, 'charts', 'index.yaml'), 'utf8')).toContain(`digest: ${app.sha256}`)
    const { stdout: listing } = await run('tar', ['-tzf', join(extract, 'charts', 'app-0.1.0.tgz')])
    expect(listing.split('\n')).toContain('app/charts/cache-1.2.0.tgz')

    const text = await runCli(['inspect', bundle, '--section', 'charts'])
    expect(text.stdout).toContain(`git ${GIT_UPSTREAM}/deploy.git charts/app at commit ${firstCommit}`)
    expect(text.stdout).toContain(`folder ../charts/tool, packaged sha256:${tool.sha256}`)
  })

  it('rebuilds byte-identically from a full sha, with a fresh git cache', async () => {
    const res = await bundleCli(definition, ['--output-dir', join(work, 'out-2')])
    expect(res.error, res.stderr).toBeUndefined()
    expect(sha256(readFileSync(res.result.path))).toBe(sha256(readFileSync(bundle)))
  })

  it('a branch is resolved to its commit with a warning that a rebuild may differ', async () => {
    const file = writeDefinition('branch', [
      'charts:',
      `  - {name: app, git: {url: ${GIT_UPSTREAM}/deploy.git, ref: main, path: charts/app}}`,
    ])
    const res = await bundleCli(file, ['--output-dir', join(work, 'out-branch')])
    expect(res.error, res.stderr).toBeUndefined()
    const warning = res.events.find((e) => e.code === 'CHART_GIT_REF_MOVABLE')
    expect(warning).toMatchObject({ type: 'log', level: 'warn' })
    expect(String(warning?.message)).toContain(mainCommit)
    const inspect = await runCli(['inspect', res.result.path, '--json'])
    expect(inspect.result.metadata.charts[0].git).toEqual({
      url: `${GIT_UPSTREAM}/deploy.git`,
      ref: 'main',
      refName: 'refs/heads/main',
      commit: mainCommit,
      path: 'charts/app',
    })
  })

  describe('errors name the chart entry with file:line:col and say what to do', () => {
    const expectError = async (
      file: string,
      code: string,
      field: string,
      at: string,
      extra: string[] = [],
    ) => {
      const res = await bundleCli(file, ['--output-dir', join(work, 'out-errors'), ...extra])
      expect(res.code, res.stderr).not.toBe(0)
      expect(res.error?.code, res.error?.message).toBe(code)
      expect(res.error?.message).toContain(`${positionOf(file, at)}: ${field}: `)
      expect(res.error?.hints.length).toBeGreaterThan(0)
      return res
    }
    const gitEntry = (file: string, chart: string, url: string, ref: string, path: string) =>
      writeDefinition(file, [
        'charts:',
        `  - name: ${chart}`,
        '    git:',
        `      url: ${url}`,
        `      ref: ${ref}`,
        `      path: ${path}`,
      ])

    it('an unreachable repository', async () => {
      const port = await freePort()
      const file = gitEntry(
        'unreachable',
        'app',
        `http://127.0.0.1:${port}/org/deploy.git`,
        firstCommit,
        'charts/app',
      )
      await expectError(file, 'E_REMOTE', 'charts[0].git.url', 'http://127.0.0.1')
    })

    it('an unknown ref', async () => {
      const file = gitEntry(
        'unknown-ref',
        'app',
        `${GIT_UPSTREAM}/deploy.git`,
        'no-such-branch',
        'charts/app',
      )
      const res = await expectError(file, 'E_REMOTE', 'charts[0].git.ref', 'no-such-branch')
      expect(res.error?.message).toMatch(/no branch or tag "no-such-branch"/)
    })

    it('a commit the repository does not have', async () => {
      const file = gitEntry(
        'unknown-commit',
        'app',
        `${GIT_UPSTREAM}/deploy.git`,
        'f'.repeat(40),
        'charts/app',
      )
      await expectError(file, 'E_REMOTE', 'charts[0].git.ref', 'f'.repeat(40))
    })

    it('a path with no Chart.yaml, listing the chart folders there are', async () => {
      const file = gitEntry('no-chart', 'app', `${GIT_UPSTREAM}/deploy.git`, firstCommit, 'docs')
      const res = await expectError(file, 'E_INPUT', 'charts[0].git.path', 'docs')
      expect(res.error?.hints.join(' ')).toContain('charts/app')
    })

    it('a missing dependency', async () => {
      const file = gitEntry(
        'missing-dep',
        'needs-missing',
        `${GIT_UPSTREAM}/deploy.git`,
        firstCommit,
        'charts/needs-missing',
      )
      const res = await expectError(file, 'E_REMOTE', 'charts[0].git', 'url:')
      expect(res.error?.message).toMatch(
        /dependency cache 9\.9\.9 from https:\/\/charts\.example\.org\/stable: .*no version 9\.9\.9.*closest available: 1\.2\.0/,
      )
    })

    it('a local folder with no Chart.yaml, and a chart whose Chart.yaml has another name', async () => {
      mkdirSync(join(work, 'charts', 'empty'), { recursive: true })
      const empty = writeDefinition('empty-folder', ['charts:', '  - {name: empty, path: ../charts/empty}'])
      await expectError(empty, 'E_INPUT', 'charts[0].path', '../charts/empty')
      const renamed = writeDefinition('renamed', ['charts:', '  - {name: other, path: ../charts/tool}'])
      const res = await expectError(renamed, 'E_INPUT', 'charts[0].name', 'other')
      expect(res.error?.hints.join(' ')).toContain('name: tool')
    })

    it('a private repository: refused without credentials, fetched with --username HOST=USER and --password-stdin', async () => {
      const host = new URL(privateServer.url).host
      const file = gitEntry('private', 'secret', `${privateServer.url}/team/secret.git`, 'main', 'chart')
      await expectError(file, 'E_AUTH', 'charts[0].git.url', privateServer.url)
      const res = await bundleCli(
        file,
        ['--output-dir', join(work, 'out-private'), '--username', `${host}=field`, '--password-stdin'],
        {
          input: 's3cr3t-t0ken\n',
        },
      )
      expect(res.error, res.stderr).toBeUndefined()
      expect(res.code).toBe(0)
      expect(res.stdout + res.stderr).not.toContain('s3cr3t-t0ken')
      expect(readFileSync(res.result.path).includes('s3cr3t-t0ken')).toBe(false)
    })
  })

  it('installs from the bundle with helm on a real cluster, every upstream server stopped', async () => {
    await Promise.all([gitServer.stop(), privateServer.stop(), chartRepo.stop(), registry.stop()])
    const cluster = await cp
    const port = await freePort()
    const res = await runCli([
      'install',
      bundle,
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--helm',
      helmBin,
      '--json',
      ...loopbackServe(port),
    ])
    expect(res.error, res.stderr).toBeUndefined()
    expect(res.code).toBe(0)
    expect(
      res.result.install.stages.map((s: { name: string; action: string }) => `${s.name}:${s.action}`),
    ).toEqual(['apps:applied'])
    for (const [release, namespace] of [
      ['app', 'apps'],
      ['tool', 'tools'],
    ]) {
      const { stdout } = await run(helmBin, [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'list',
        '-n',
        namespace!,
        '-o',
        'json',
      ])
      expect(JSON.parse(stdout)[0]).toMatchObject({
        name: release,
        status: 'deployed',
        chart: `${release}-0.1.0`,
      })
      // The vendored dependency was installed with it.
      const { stdout: manifest } = await run(helmBin, [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'get',
        'manifest',
        release!,
        '-n',
        namespace!,
      ])
      expect(manifest).toContain(CACHE_IMAGE)
    }
  })
})
