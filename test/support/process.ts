import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'

/**
 * A long-running child process for the harness (a registry, etcd, kube-apiserver...). Its output goes to a log file
 * whose tail is shown when it dies early, and `stop()` ends it and its children (it runs in its own process group)
 * so no process is left behind.
 */
export class ManagedProcess {
  private readonly child: ChildProcess
  private readonly log: WriteStream
  private readonly tail: string[] = []
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined
  private readonly exited: Promise<void>

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
  ) {
    this.log = createWriteStream(options.logFile, { flags: 'a' })
    this.child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const keep = (chunk: Buffer) => {
      this.log.write(chunk)
      this.tail.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      if (this.tail.length > 40) this.tail.splice(0, this.tail.length - 40)
    }
    this.child.stdout?.on('data', keep)
    this.child.stderr?.on('data', keep)
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        resolve()
      })
      this.child.once('error', (error) => {
        this.tail.push(`spawn failed: ${error.message}`)
        this.exitInfo = { code: -1, signal: null }
        resolve()
      })
    })
    processes.add(this)
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  get running(): boolean {
    return this.exitInfo === undefined
  }

  /** The last lines the process printed, for error messages. */
  describe(): string {
    const state = this.exitInfo
      ? `exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})`
      : 'running'
    return `${this.name} ${state}; last output:\n  ${this.tail.slice(-15).join('\n  ')}`
  }

  /** Throws with the process' last output if it has died. */
  assertRunning(): void {
    if (!this.running) throw new Error(this.describe())
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    processes.delete(this)
    if (this.running && this.child.pid) {
      signalGroup(this.child.pid, 'SIGTERM')
      const timer = setTimeout(() => this.child.pid && signalGroup(this.child.pid, 'SIGKILL'), timeoutMs)
      await this.exited
      clearTimeout(timer)
    }
    await new Promise<void>((resolve) => this.log.end(resolve))
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {}
  }
}

const processes = new Set<ManagedProcess>()

// A test run that dies or is interrupted still takes its servers with it.
process.once('exit', () => {
  for (const p of processes) if (p.pid) signalGroup(p.pid, 'SIGKILL')
})

/** The id of a process that has run and ended: what a run killed with -9 leaves in the names of its temporary files. */
export function endedProcessId(): number {
  const pid = spawnSync('true').pid
  if (!pid) throw new Error('could not start `true` to get an ended process id')
  return pid
}
