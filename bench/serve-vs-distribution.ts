/**
 * Benchmark (not a test): how fast `astrago-airgap serve` hands out blobs, against distribution v3 (`registry`) and
 * distribution 2.8 (Debian's `docker-registry`) serving the same blobs from their own storage, in one run.
 *
 * It seeds BENCH_IMAGES uncompressed images (about BENCH_GB GiB of unique layers) into a distribution v3 registry,
 * bundles them with the built CLI, then starts, side by side, for each transport (plain HTTP and TLS):
 *   serve      node bin/run.js serve <bundle> (--insecure for HTTP; the site CA for TLS)
 *   dist-v3    registry serve, on the seeding registry's storage folder
 *   dist-2.8   docker-registry serve, on the same storage folder
 * and downloads every unique blob (layers and configs) from each with curl: one curl with `--parallel-max 8`
 * (1 × 8 pullers) or three such curls at once (3 × 8 = 24 pullers), bodies dropped, HTTP/1.1 for every server (Go
 * would otherwise multiplex curl's transfers over one HTTP/2 connection under TLS, a different test). Every download
 * is checked for its status and its byte count.
 *
 * Page cache: in the `cold` mode every server's files (the bundle for serve, the storage folder for distribution)
 * are evicted from the page cache (posix_fadvise DONTNEED through `dd iflag=nocache`) right before its run, so each
 * tool pays for reading from disk; in the `warm` mode the files are read once beforehand and stay cached.
 *
 * Rounds (BENCH_ROUNDS, 3) rotate the tools' order; the script prints the median wall time per cell, the ratio of each
 * distribution to serve (above 1 means serve is faster) and serve's TLS/HTTP ratio, each the median over the rounds
 * of the ratio within one round (the servers of a round run seconds apart, so the load of a shared machine, which
 * swings between rounds, cancels out better than in a ratio of medians), the server's CPU per GiB and peak
 * RSS (from /proc), the CPU its curl clients used per GiB (each curl runs under /usr/bin/time: they share the cores
 * with the server, so a TLS run pays for decryption there too), and a summary against the issue's targets with every
 * server's own TLS/HTTP ratio beside serve's. Knobs: BENCH_GB (1), BENCH_IMAGES (20), BENCH_ROUNDS (3), BENCH_CACHE (warm,cold),
 * BENCH_CLIENTS (1,3), BENCH_TOOLS (serve,dist-v3,dist-2.8), BENCH_DIR (temp folder), and BENCH_SERVE_BASELINE: the
 * bin/run.js of another build of the CLI (an older commit, built), which then runs as `serve-base` in the same rounds,
 * with BENCH_SERVE_BASE_ENV (NAME=VALUE,…) added to its environment. BENCH_SERVE_AS=delta bundles the first half of the
 * images as a base 1.0.0 and all of them as a delta 1.1.0 on it, and serve reads the delta with --base (the site of a
 * delta install); distribution serves the same blobs from its storage as before. BENCH_SERVE_ARGS adds arguments to
 * serve only (`--workers 2`, with BENCH_SERVE_BASELINE=bin/run.js: the same build with and without workers).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../test/support/net.js'
import { startRegistry } from '../test/support/registry.js'
import { type BenchBlob, makeBenchSet, ROOT } from './bench-set.js'
import { describeMachine, fixed, formatSize, GiB, load, log, MiB, median, table } from './support.js'

const GB = Number(process.env.BENCH_GB ?? 1)
const IMAGES = Number(process.env.BENCH_IMAGES ?? 20)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CACHE = (process.env.BENCH_CACHE ?? 'warm,cold').split(',') as ('warm' | 'cold')[]
const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,3').split(',').map(Number)
const BASELINE = process.env.BENCH_SERVE_BASELINE
/** `delta`: serve reads a delta bundle together with its base (which holds half of the images) instead of one bundle. */
const SERVE_AS = process.env.BENCH_SERVE_AS ?? 'bundle'
/** Extra arguments of `serve` (not of serve-base), space-separated: e.g. `--workers 2` against the same build alone. */
const SERVE_ARGS = (process.env.BENCH_SERVE_ARGS ?? '').split(' ').filter(Boolean)
/** Extra environment of serve-base, as NAME=VALUE,NAME=VALUE (to compare a setting such as UV_THREADPOOL_SIZE). */
const BASE_ENV = Object.fromEntries(
  (process.env.BENCH_SERVE_BASE_ENV ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
)
const TOOLS = [
  ...(process.env.BENCH_TOOLS ?? 'serve,dist-v3,dist-2.8').split(','),
  ...(BASELINE ? ['serve-base'] : []),
]
const TRANSPORTS = ['http', 'tls'] as const
type Transport = (typeof TRANSPORTS)[number]

const cleanups: (() => Promise<void> | void)[] = []

type Blob = BenchBlob

/** One running server: where to reach it, its process, the files it serves from. */
interface Server {
  tool: string
  transport: Transport
  url: string
  caFile?: string
  pid: number
  files: string[]
  stop(): Promise<void>
}

function listFiles(path: string): string[] {
  const info = statSync(path)
  if (!info.isDirectory()) return [path]
  return readdirSync(path).flatMap((entry) => listFiles(join(path, entry)))
}

/** The pid listening on `port` (from ss), to read a registry's CPU time and RSS in /proc. */
function listenerPid(port: number): number {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' })
  const pid = /pid=(\d+)/.exec(out)?.[1]
  if (!pid) throw new Error(`no process listens on port ${port}: ${out}`)
  return Number(pid)
}

/** The fields of /proc/<pid>/stat after the command name. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** A server's process and its children (the workers of serve --workers), as they run now. */
function processTree(pid: number): number[] {
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return Number(statFields(Number(name))[1]) === pid
      } catch {
        return false
      }
    })
    .map(Number)
  return [pid, ...children]
}

/**
 * User + system CPU seconds of a server so far: its process and its children (the children's own counters, plus
 * what ended children left in the parent's cutime and cstime).
 */
function cpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p, i) => {
    const f = statFields(p)
    return sum + (Number(f[11]) + Number(f[12]) + (i === 0 ? Number(f[13]) + Number(f[14]) : 0)) / 100
  }, 0)
}

/** The peak resident memory of a server: the sum over its process and its children. */
function peakRssMiB(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    const status = readFileSync(`/proc/${p}/status`, 'utf8')
    return sum + Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
  }, 0)
}

async function startServe(
  served: { bundle: string; base?: string },
  transport: Transport,
  work: string,
  tool = 'serve',
  cli = join(ROOT, 'bin', 'run.js'),
): Promise<Server> {
  const { bundle, base } = served
  const port = await freePort()
  const stateDir = join(work, `${tool}-state-${transport}`)
  const child: ChildProcess = spawn(
    process.execPath,
    [
      cli,
      'serve',
      bundle,
      ...(base ? ['--base', base] : []),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--advertise',
      '127.0.0.1',
      '--state-dir',
      stateDir,
      ...(transport === 'http' ? ['--insecure'] : []),
      ...(tool === 'serve' ? SERVE_ARGS : []),
      '--json',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(tool === 'serve-base' ? BASE_ENV : {}) },
    },
  )
  const serving = await new Promise<{ url: string; caFile?: string }>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d
      for (const line of out.split('\n')) {
        if (line.includes('"type":"serving"')) resolve(JSON.parse(line).serving)
      }
    })
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)))
  })
  const stop = async () => {
    if (child.exitCode !== null) return
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
  }
  return {
    tool,
    transport,
    url: serving.url,
    caFile: transport === 'tls' ? serving.caFile : undefined,
    pid: child.pid!,
    files: base ? [bundle, base] : [bundle],
    stop,
  }
}

async function startDistribution(tool: string, storageDir: string, transport: Transport): Promise<Server> {
  const registry = await startRegistry({
    flavor: tool === 'dist-v3' ? 'distribution-v3' : 'distribution-v2',
    storageDir,
    tls: transport === 'tls',
  })
  const port = Number(registry.host.split(':').pop())
  return {
    tool,
    transport,
    url: registry.url,
    caFile: registry.tls?.caFile,
    pid: listenerPid(port),
    files: listFiles(storageDir),
    stop: () => registry.stop(),
  }
}

function setCache(files: string[], mode: 'warm' | 'cold'): void {
  for (const file of files) {
    if (mode === 'cold')
      execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: 'ignore' })
    else execFileSync('cat', [file], { stdio: ['ignore', 'ignore', 'ignore'], maxBuffer: 0 })
  }
}

/**
 * Runs `clients` curls at once, each fetching every blob 8 at a time, each under /usr/bin/time; checks every answer
 * and returns the wall ms and the CPU seconds the curls used (the clients share the machine's cores with the server).
 */
async function pull(
  server: Server,
  blobs: Blob[],
  clients: number,
  work: string,
): Promise<{ ms: number; clientCpu: number }> {
  const config = join(work, 'curl.cfg')
  writeFileSync(
    config,
    blobs
      .map((b) => `url = "${server.url}/v2/${b.repository}/blobs/${b.digest}"\noutput = "/dev/null"\n`)
      .join(''),
  )
  const expected = blobs.reduce((sum, b) => sum + b.size, 0)
  const args = [
    '--parallel',
    '--parallel-max',
    '8',
    '--http1.1',
    '--silent',
    '--show-error',
    '--fail',
    '--write-out',
    '%{http_code} %{size_download}\\n',
    ...(server.caFile ? ['--cacert', server.caFile] : []),
    '--config',
    config,
  ]
  const t0 = performance.now()
  const outputs = await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<{ out: string; err: string }>((resolve, reject) => {
          const child = spawn('/usr/bin/time', ['-f', 'cpu %U %S', 'curl', ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          })
          let out = ''
          let err = ''
          child.stdout.on('data', (d: Buffer) => {
            out += d
          })
          child.stderr.on('data', (d: Buffer) => {
            err += d
          })
          child.on('close', (code) =>
            code === 0 ? resolve({ out, err }) : reject(new Error(`curl exited ${code}: ${err.slice(-500)}`)),
          )
        }),
    ),
  )
  const ms = performance.now() - t0
  let clientCpu = 0
  for (const { out, err } of outputs) {
    const cpu = /cpu ([\d.]+) ([\d.]+)/.exec(err)
    clientCpu += cpu ? Number(cpu[1]) + Number(cpu[2]) : Number.NaN
    const lines = out.trim().split('\n')
    const bytes = lines.reduce((sum, l) => sum + Number(l.split(' ')[1]), 0)
    if (lines.length !== blobs.length || lines.some((l) => !l.startsWith('200 ')) || bytes !== expected)
      throw new Error(
        `${server.tool} ${server.transport}: ${lines.length} answers, ${bytes} of ${expected} bytes`,
      )
  }
  return { ms, clientCpu }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'astrago-bench-serve-'))
  cleanups.push(() => rmSync(work, { recursive: true, force: true }))
  if (SERVE_AS !== 'bundle' && SERVE_AS !== 'delta')
    throw new Error(`BENCH_SERVE_AS is bundle or delta, not ${SERVE_AS}`)
  const { bundle, base, storageDir, blobs, total } = await makeBenchSet(work, GB, IMAGES, {
    delta: SERVE_AS === 'delta',
  })

  const servers: Server[] = []
  cleanups.push(async () => {
    for (const s of servers) await s.stop()
  })
  for (const transport of TRANSPORTS) {
    for (const tool of TOOLS) {
      servers.push(
        tool === 'serve'
          ? await startServe({ bundle, base }, transport, work)
          : tool === 'serve-base'
            ? await startServe({ bundle, base }, transport, work, tool, BASELINE)
            : await startDistribution(tool, storageDir, transport),
      )
    }
  }
  // One warm-up pull from each server (JIT, TLS session set-up, the cache primed).
  for (const s of servers) await pull(s, blobs, 1, work)
  const cpuBefore = new Map(servers.map((s) => [s, cpuSeconds(s.pid)]))
  const bytesServed = new Map(servers.map((s) => [s, 0]))
  const clientCpu = new Map(servers.map((s) => [s, 0]))

  const times = new Map<string, number[]>()
  const key = (tool: string, transport: Transport, clients: number, cache: string) =>
    `${tool}|${transport}|${clients}|${cache}`
  for (let round = 0; round < ROUNDS; round++) {
    for (const cache of CACHE) {
      for (const clients of CLIENTS) {
        for (const transport of TRANSPORTS) {
          const group = servers.filter((s) => s.transport === transport)
          const order = group.map((_, i) => group[(i + round) % group.length]!)
          for (const s of order) {
            setCache(s.files, cache)
            const { ms, clientCpu: cpu } = await pull(s, blobs, clients, work)
            bytesServed.set(s, bytesServed.get(s)! + total * clients)
            clientCpu.set(s, clientCpu.get(s)! + cpu)
            const k = key(s.tool, transport, clients, cache)
            times.set(k, [...(times.get(k) ?? []), ms])
            log(
              `round ${round + 1} ${cache} ${clients}×8 ${transport} ${s.tool}: ${fixed(ms / 1000, 2)} s (load ${load()})`,
            )
          }
        }
      }
    }
  }

  console.log(`\n## serve vs distribution: ${blobs.length} blobs, ${formatSize(total)} per client\n`)
  for (const line of describeMachine(work)) console.log(`- ${line}`)
  if (base)
    console.log('- serve reads a delta bundle together with its base (the base holds half of the images)')
  console.log(
    `- rounds: ${ROUNDS}; wall s: median; ratios: the median over rounds of the two times' ratio in the same round, e.g. vs serve = distribution's time / serve's time (> 1: serve is faster)\n`,
  )
  const series = (tool: string, transport: Transport, clients: number, cache: string) =>
    times.get(key(tool, transport, clients, cache)) ?? []
  /** The median of a[i] / b[i] over the rounds: each pair ran in the same round, seconds apart. */
  const paired = (a: number[], b: number[]) => `${fixed(median(a.map((x, i) => x / b[i]!)), 2)}×`
  const rows: string[][] = []
  for (const cache of CACHE) {
    for (const clients of CLIENTS) {
      for (const transport of TRANSPORTS) {
        const ours = series('serve', transport, clients, cache)
        const httpOurs = series('serve', 'http', clients, cache)
        for (const tool of TOOLS) {
          const theirs = series(tool, transport, clients, cache)
          const t = median(theirs)
          rows.push([
            cache,
            `${clients}×8`,
            transport,
            tool,
            fixed(t / 1000, 2),
            fixed(((total * clients) / MiB) * (1000 / t), 0),
            tool === 'serve' ? '–' : paired(theirs, ours),
            tool === 'serve' && transport === 'tls' ? paired(theirs, httpOurs) : '–',
          ])
        }
      }
    }
  }
  console.log(
    table(['cache', 'pullers', 'transport', 'server', 'wall s', 'MiB/s', 'vs serve', 'TLS/HTTP'], rows),
  )
  console.log('\nServer cost over all measured pulls, and the CPU of its curl clients:\n')
  console.log(
    table(
      ['server', 'transport', 'CPU s/GiB', 'peak RSS MiB', 'clients CPU s/GiB'],
      servers.map((s) => [
        s.tool,
        s.transport,
        fixed((cpuSeconds(s.pid) - cpuBefore.get(s)!) / (bytesServed.get(s)! / GiB), 2),
        fixed(peakRssMiB(s.pid), 0),
        fixed(clientCpu.get(s)! / (bytesServed.get(s)! / GiB), 2),
      ]),
    ),
  )
  console.log('\nAgainst the targets (serve ≥ 1.2× each distribution over HTTP; serve TLS/HTTP ≤ 1.10):\n')
  const targetRows: string[][] = []
  for (const cache of CACHE) {
    for (const clients of CLIENTS) {
      const http = series('serve', 'http', clients, cache)
      const others = TOOLS.filter((t) => t !== 'serve')
      targetRows.push([
        cache,
        `${clients}×8`,
        others.map((t) => `${t} ${paired(series(t, 'http', clients, cache), http)}`).join(', '),
        paired(series('serve', 'tls', clients, cache), http),
        others
          .map((t) => `${t} ${paired(series(t, 'tls', clients, cache), series(t, 'http', clients, cache))}`)
          .join(', '),
      ])
    }
  }
  console.log(
    table(['cache', 'pullers', 'HTTP: other / serve', 'serve TLS/HTTP', 'the others’ TLS/HTTP'], targetRows),
  )
}

async function cleanup(): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c()
    } catch {}
  }
}

process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))
main()
  .then(cleanup)
  .catch(async (error) => {
    console.error(error)
    await cleanup()
    process.exit(1)
  })
