import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { lstat, mkdir, readFile, rm, rmdir, symlink } from 'node:fs/promises'
import * as http from 'node:http'
import * as https from 'node:https'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { AirgapError } from '../errors.js'
import { removeLeftTemporaries, replaceFile } from '../fs/replace-file.js'
import { defaultStateDir } from './serve-bundle.js'
import { renderServeUnit, SERVE_UNIT_NAME, UNIT_CA_PREFIX, UNIT_HEALTH_PREFIX } from './systemd-unit.js'

/**
 * `serve` as a systemd service on an admin node: install (write the unit, enable it, start it), uninstall (stop,
 * disable, remove), and its status (systemd's view and an HTTP(S) probe of the server's /v2/). Everything takes a
 * `root` so tests work in a temporary folder instead of /etc, and `systemctl: false` to leave the running systemd
 * alone (enabling is then the symlink `systemctl enable` makes).
 */
const run = promisify(execFile)

export interface ServeServiceFlags {
  /** The base of a delta bundle. */
  base?: string
  host?: string
  port?: number
  advertise?: string[]
  stateDir?: string
  insecure?: boolean
  tlsCert?: string
  tlsKey?: string
  htpasswd?: string
  users?: string[]
  anonymousPull?: boolean
  verifyFull?: boolean
  /** Worker processes (serve --workers); 1 or absent: none. */
  workers?: number
}

export interface InstallServeServiceOptions {
  bundle: string
  flags: ServeServiceFlags
  /** The executable and the arguments before `serve`: the installer alone, or node and this CLI's entry script. */
  program: string[]
  /** Default `/`. */
  root?: string
  /** Run systemctl (daemon-reload, enable --now). Default: when root is `/`. */
  systemctl?: boolean
}

export interface ServeServiceResult {
  unit: string
  unitFile: string
  /** The enable symlink (multi-user.target.wants). */
  wantedBy: string
  command: string[]
  healthUrl: string
  /** Whether systemctl was run (the service started or stopped). */
  systemctl: boolean
}

function paths(root: string) {
  const dir = join(root, 'etc/systemd/system')
  return {
    unitFile: join(dir, SERVE_UNIT_NAME),
    wantedBy: join(dir, 'multi-user.target.wants', SERVE_UNIT_NAME),
    target: `/etc/systemd/system/${SERVE_UNIT_NAME}`,
  }
}

/** The `serve` command line for the unit, with every path absolute (the unit does not run in this folder). */
export function serveCommandLine(
  bundle: string,
  flags: ServeServiceFlags,
): { args: string[]; stateDir: string; healthUrl: string; caFile?: string } {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(p))
  const stateDir = abs(flags.stateDir ?? defaultStateDir(bundle))
  const host = flags.host ?? '0.0.0.0'
  const port = flags.port ?? 8443
  if (port === 0)
    throw new AirgapError(
      'E_USAGE',
      'A service needs a fixed port: --port 0 picks a new one at every start.',
      {
        hints: ['Give --port, e.g. --port 8443.'],
      },
    )
  const args = ['serve', abs(bundle), '--host', host, '--port', String(port), '--state-dir', stateDir]
  if (flags.base) args.push('--base', abs(flags.base))
  for (const a of flags.advertise ?? []) args.push('--advertise', a)
  if (flags.insecure) args.push('--insecure')
  if (flags.tlsCert) args.push('--tls-cert', abs(flags.tlsCert))
  if (flags.tlsKey) args.push('--tls-key', abs(flags.tlsKey))
  if (flags.htpasswd) args.push('--htpasswd', abs(flags.htpasswd))
  for (const u of flags.users ?? []) args.push('--user', u)
  if (flags.anonymousPull === false) args.push('--no-anonymous-pull')
  if (flags.verifyFull) args.push('--verify-full')
  if (flags.workers && flags.workers > 1) args.push('--workers', String(flags.workers))
  const probeHost = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host
  const healthUrl = `${flags.insecure ? 'http' : 'https'}://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${port}/v2/`
  const caFile = flags.insecure || flags.tlsCert ? undefined : join(stateDir, 'ca', 'ca.crt')
  return { args, stateDir, healthUrl, ...(caFile ? { caFile } : {}) }
}

export async function installServeService(options: InstallServeServiceOptions): Promise<ServeServiceResult> {
  const root = options.root ?? '/'
  const useSystemctl = options.systemctl ?? root === '/'
  const bundle = resolve(options.bundle)
  if (!existsSync(bundle))
    throw new AirgapError('E_INPUT', `The bundle ${bundle} does not exist.`, {
      hints: [
        'Give the path the service will find the bundle at after a reboot (a local disk, not a removable medium).',
      ],
    })
  const base = options.flags.base ? resolve(options.flags.base) : undefined
  if (base && !existsSync(base))
    throw new AirgapError('E_INPUT', `The base bundle ${base} does not exist.`, {
      hints: ['Give the path the service will find the base bundle at after a reboot.'],
    })
  const line = serveCommandLine(bundle, options.flags)
  const command = [...options.program, ...line.args]
  const unit = renderServeUnit({
    command,
    bundle,
    ...(base ? { base } : {}),
    stateDir: line.stateDir,
    healthUrl: line.healthUrl,
    ...(line.caFile ? { caFile: line.caFile } : {}),
  })
  const p = paths(root)
  try {
    await mkdir(line.stateDir, { recursive: true })
    await mkdir(dirname(p.wantedBy), { recursive: true })
    await removeLeftTemporaries(p.unitFile)
    await replaceFile(p.unitFile, unit, { mode: 0o644, durable: true })
    await rm(p.wantedBy, { force: true })
    await symlink(p.target, p.wantedBy)
  } catch (error) {
    throw permissionError(error, p.unitFile)
  }
  if (useSystemctl) {
    await systemctl(['daemon-reload'])
    await systemctl(['enable', SERVE_UNIT_NAME])
    await systemctl(['restart', SERVE_UNIT_NAME])
  }
  return {
    unit: SERVE_UNIT_NAME,
    unitFile: p.unitFile,
    wantedBy: p.wantedBy,
    command,
    healthUrl: line.healthUrl,
    systemctl: useSystemctl,
  }
}

export interface UninstallServeServiceOptions {
  root?: string
  systemctl?: boolean
}

/** Stops, disables and removes the unit; removing one that is not there is not an error. */
export async function uninstallServeService(
  options: UninstallServeServiceOptions = {},
): Promise<{ unitFile: string; removed: boolean; systemctl: boolean }> {
  const root = options.root ?? '/'
  const useSystemctl = options.systemctl ?? root === '/'
  const p = paths(root)
  const present =
    existsSync(p.unitFile) ||
    (await lstat(p.wantedBy).then(
      () => true,
      () => false,
    ))
  if (useSystemctl && present) await systemctl(['disable', '--now', SERVE_UNIT_NAME]).catch(() => undefined)
  try {
    await rm(p.wantedBy, { force: true })
    await rm(p.unitFile, { force: true })
    // The wants folder goes too when nothing else is in it (rmdir refuses a folder that is not empty).
    await rmdir(dirname(p.wantedBy)).catch(() => undefined)
  } catch (error) {
    throw permissionError(error, p.unitFile)
  }
  if (useSystemctl && present) await systemctl(['daemon-reload'])
  return { unitFile: p.unitFile, removed: present, systemctl: useSystemctl }
}

export interface ServeServiceStatus {
  installed: boolean
  unitFile: string
  enabled: boolean
  /** systemd's ActiveState (`active`, `failed`, …), when systemctl can tell. */
  active?: string
  healthUrl?: string
  /** The server answered its registry endpoint (200, or 401 when pulls need credentials). */
  healthy?: boolean
  /** Why it is not healthy. */
  detail?: string
}

/** What `status` shows of the service: installed, enabled, running (systemctl), answering (a GET of /v2/). */
export async function serveServiceStatus(
  options: { root?: string; systemctl?: boolean; timeoutMs?: number } = {},
): Promise<ServeServiceStatus> {
  const root = options.root ?? '/'
  const p = paths(root)
  const text = await readFile(p.unitFile, 'utf8').catch(() => undefined)
  const enabled = await lstat(p.wantedBy).then(
    () => true,
    () => false,
  )
  if (text === undefined) return { installed: false, unitFile: p.unitFile, enabled }
  const comment = (prefix: string) =>
    text
      .split('\n')
      .find((l) => l.startsWith(prefix))
      ?.slice(prefix.length)
      .trim()
  const healthUrl = comment(UNIT_HEALTH_PREFIX)
  const caFile = comment(UNIT_CA_PREFIX)
  const status: ServeServiceStatus = { installed: true, unitFile: p.unitFile, enabled }
  if (options.systemctl ?? root === '/') {
    const active = await run('systemctl', ['is-active', SERVE_UNIT_NAME]).then(
      (r) => r.stdout.trim(),
      (e: { stdout?: string }) => (typeof e.stdout === 'string' ? e.stdout.trim() : undefined),
    )
    if (active) status.active = active
  }
  if (healthUrl) {
    status.healthUrl = healthUrl
    const probe = await probeHealth(healthUrl, caFile, options.timeoutMs ?? 5000)
    status.healthy = probe.ok
    if (!probe.ok) status.detail = probe.detail
  }
  return status
}

/** GET the registry endpoint; 200 or 401 (a registry asking for credentials) is healthy. */
export async function probeHealth(
  url: string,
  caFile: string | undefined,
  timeoutMs: number,
): Promise<{ ok: boolean; detail?: string }> {
  const ca = caFile ? await readFile(caFile).catch(() => undefined) : undefined
  return new Promise((done) => {
    const target = new URL(url)
    const onResponse = (res: http.IncomingMessage) => {
      res.resume()
      const ok = res.statusCode === 200 || res.statusCode === 401
      done(ok ? { ok } : { ok, detail: `${url} answered HTTP ${res.statusCode}` })
    }
    const request =
      target.protocol === 'https:'
        ? https.get(
            target,
            {
              timeout: timeoutMs,
              ...(ca ? { ca } : {}),
              // The probe goes to this machine's own address, which the certificate need not name; the chain is
              // still checked against the site CA.
              checkServerIdentity: () => undefined,
            },
            onResponse,
          )
        : http.get(target, { timeout: timeoutMs }, onResponse)
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    request.on('error', (error) => done({ ok: false, detail: `${url}: ${error.message}` }))
  })
}

async function systemctl(args: string[]): Promise<void> {
  try {
    await run('systemctl', args)
  } catch (error) {
    const e = error as { stderr?: string; code?: string | number }
    throw new AirgapError(
      'E_ENVIRONMENT',
      `systemctl ${args.join(' ')} failed: ${e.code === 'ENOENT' ? 'systemctl is not installed' : (e.stderr ?? String(error)).trim()}`,
      {
        cause: error,
        hints: [
          'A service needs systemd as the init system of this machine. Without it, run `serve` under your own supervisor, or use an in-cluster registry (install --push-to).',
        ],
      },
    )
  }
}

function permissionError(error: unknown, file: string): AirgapError {
  const code = (error as { code?: string }).code
  return new AirgapError('E_ENVIRONMENT', `Cannot write ${file}: ${(error as Error).message}`, {
    cause: error,
    hints:
      code === 'EACCES' || code === 'EPERM'
        ? ['Installing a system service needs root: run it with sudo.']
        : [],
  })
}
