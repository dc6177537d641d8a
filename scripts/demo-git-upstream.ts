/**
 * The git part of the demo's simulated upstream: the definition's charts from git repositories (`git:` entries) are
 * served over real git HTTP (`git http-backend`, test/support/git-server.ts) from STAND-IN repositories, each a folder
 * of scripts/demo-data committed as one commit with a fixed author and date (upstream.yaml, gitRepositories). For
 * each git chart it returns: the --mirror flag that sends `bundle` to the stand-in, the images the stand-in chart
 * renders with the definition's values (packaged and rendered the way `bundle` does), and, when the definition pins a
 * commit sha, the stand-in's commit to put in the demo copy of the definition instead (the real sha cannot be served).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { buildSourceChart } from '../src/charts/chart-source.js'
import { discoverImages } from '../src/charts/discover-images.js'
import { HttpClient } from '../src/net/http.js'
import { createGitRepository, type GitServer, startGitServer } from '../test/support/git-server.js'
import { findTool } from '../test/support/tools.js'

/** A `charts:` entry of the definition as written: `git: {url, ref, path}`, or `git: URL` with `ref:` and `path:`. */
export interface GitChartEntry {
  index: number
  url: string
  ref: string
  path: string
  values: Record<string, unknown>
}

export interface StandInGitRepository {
  /** Folder under scripts/demo-data holding the repository's files. */
  files: string
}

export interface StandInGitUpstream {
  server: GitServer
  /** --mirror flags: URL as the definition writes it = the stand-in. */
  mirrorFlags: string[]
  images: Set<string>
  /** Chart index in the definition → the stand-in commit for its `ref:` (only where the definition pins a sha). */
  refRewrites: Map<number, string>
  stop(): Promise<void>
}

/** The git chart entries of a parsed definition (its raw YAML). */
export function gitChartEntries(doc: unknown): GitChartEntry[] {
  const charts = (doc as { charts?: unknown })?.charts
  if (!Array.isArray(charts)) return []
  return charts.flatMap((raw, index) => {
    const chart = raw as Record<string, unknown>
    const git = chart.git
    if (!git) return []
    const nested = typeof git === 'object' ? (git as Record<string, unknown>) : {}
    const url = String(typeof git === 'string' ? git : nested.url)
    const ref = String(nested.ref ?? chart.ref ?? 'main')
    const path = String(nested.path ?? chart.path ?? '')
    const values = (chart.values as Record<string, unknown> | undefined) ?? {}
    return [{ index, url, ref, path, values }]
  })
}

function normalizeUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\.git$/, '')
}

export async function startStandInGitUpstream(
  entries: GitChartEntry[],
  catalog: Record<string, StandInGitRepository>,
  dataDir: string,
  workDir: string,
): Promise<StandInGitUpstream> {
  const root = join(workDir, 'git')
  const commits = new Map<string, { commit: string; servedPath: string }>()
  for (const entry of entries) {
    const key = normalizeUrl(entry.url)
    if (commits.has(key)) continue
    const standIn = Object.entries(catalog).find(([url]) => normalizeUrl(url) === key)?.[1]
    if (!standIn)
      throw new Error(`scripts/demo-data/upstream.yaml has no stand-in git repository for ${entry.url}`)
    const parsed = new URL(key)
    const servedPath = `${parsed.host}${parsed.pathname}.git`
    // A branch other than main, or a tag, named by the definition is made a tag of the stand-in's one commit.
    const tag = entries
      .filter((e) => normalizeUrl(e.url) === key)
      .map((e) => e.ref)
      .find(
        (ref) => !/^[0-9a-f]{40}$/i.test(ref) && ref !== 'main' && ref !== 'HEAD' && !ref.startsWith('refs/'),
      )
    const commit = await createGitRepository(
      join(root, servedPath),
      readFolder(join(dataDir, standIn.files)),
      {
        message: `DEMO STAND-IN of ${key}`,
        ...(tag ? { tag } : {}),
      },
    )
    commits.set(key, { commit, servedPath })
  }
  const server = await startGitServer(root)
  const mirrorFlags: string[] = []
  const images = new Set<string>()
  const refRewrites = new Map<number, string>()
  const http = new HttpClient()
  const helm = findTool('helm')
  for (const entry of entries) {
    const { commit, servedPath } = commits.get(normalizeUrl(entry.url))!
    const mirror = `${server.url}/${servedPath}`
    mirrorFlags.push('--mirror', `${entry.url}=${mirror}`)
    const pinned = /^[0-9a-f]{40}$/i.test(entry.ref)
    if (pinned) refRewrites.set(entry.index, commit)
    const chart = await buildSourceChart(
      { git: { url: entry.url, ref: pinned ? commit : entry.ref, path: entry.path } },
      { http, urlMirrors: { [entry.url]: mirror }, cacheDir: join(workDir, 'git-cache') },
    )
    const rendered = await discoverImages(chart.bytes, {
      helmBinary: helm,
      values: entry.values,
      releaseName: chart.metadata.name,
      namespace: chart.metadata.name,
    })
    for (const image of rendered.images) images.add(image.ref)
  }
  return { server, mirrorFlags, images, refRewrites, stop: () => server.stop() }
}

/** Every file under `dir`: path relative to it → content. */
function readFolder(dir: string): Record<string, string> {
  const files: Record<string, string> = {}
  const walk = (path: string) => {
    for (const name of readdirSync(path).sort()) {
      const full = join(path, name)
      if (statSync(full).isDirectory()) walk(full)
      else files[relative(dir, full)] = readFileSync(full, 'utf8')
    }
  }
  walk(dir)
  return files
}
