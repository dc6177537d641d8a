import { spawn } from 'node:child_process'
import { join } from 'node:path'

/** Runs the built CLI (bin/run.js, as a user would) and collects its exit code, stdout and stderr. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as NDJSON, for --json runs. */
  events: Record<string, unknown>[]
  /** The `result` of a --json run, if it succeeded. */
  // biome-ignore lint/suspicious/noExplicitAny: a --json result is whatever the command returns; tests assert on its fields
  result: any
  /** The `error` of a --json run, if it failed. */
  error: { code: string; message: string; hints: string[] } | undefined
}

export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'run.js')

export function runCli(
  args: string[],
  options: {
    input?: string
    env?: NodeJS.ProcessEnv
    cwd?: string
    onStdoutLine?: (line: string, kill: () => void) => void
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let pending = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d
      if (!options.onStdoutLine) return
      pending += d
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) options.onStdoutLine(line, () => child.kill('SIGKILL'))
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>
          } catch {
            return {}
          }
        })
      const last = events.at(-1) as
        | { type?: string; result?: unknown; error?: CliResult['error'] }
        | undefined
      resolve({
        code: code ?? (signal === 'SIGKILL' ? 137 : 1),
        stdout,
        stderr,
        events,
        result: last?.type === 'result' ? last.result : undefined,
        error: last?.type === 'error' ? last.error : undefined,
      })
    })
    child.stdin.end(options.input ?? '')
  })
}
