import cluster, { type Worker } from 'node:cluster'
import { AirgapError } from '../errors.js'
import { type EventSink, logEvent, type ProgressEvent } from '../events/types.js'
import { primarySink, type ServeWorkerSettings, startServeWorker } from './serve-worker.js'

/**
 * `serve --workers N`: N worker processes on the public port (node:cluster shares it among them), each answering the
 * anonymous pulls of bundle blobs on a core of its own and handing everything else to this process, the primary,
 * which runs the one full site server on a unix socket and owns all state (serve-worker.ts says which requests go
 * where). A worker that dies is started again a second later; stopping ends them all.
 *
 * The workers run the same command as the primary (`command`: for the CLI its script and arguments, for the
 * self-contained installer `serve` and the arguments after it, so that the child's command line is the same); the
 * command, seeing it runs as a cluster worker, calls runServeWorkerProcess instead of serving.
 */
export interface WorkerCommand {
  /** What node:cluster runs as the module: the CLI's script, or `serve` for the installer. */
  exec: string
  args: string[]
}

export interface ServeWorkers {
  pids(): number[]
  stop(): Promise<void>
}

type FromWorker =
  | { type: 'hello' }
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'event'; event: ProgressEvent }

export async function startServeWorkers(options: {
  count: number
  command: WorkerCommand
  settings: ServeWorkerSettings
  sink: EventSink
}): Promise<ServeWorkers> {
  const { sink, settings } = options
  cluster.setupPrimary({
    exec: options.command.exec,
    args: options.command.args,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  const workers = new Set<Worker>()
  let stopping = false

  const start = () =>
    new Promise<Worker>((resolve, reject) => {
      const worker = cluster.fork()
      workers.add(worker)
      let ready = false
      let failure = ''
      worker.on('message', (message: FromWorker) => {
        // A worker says hello once it listens for its settings (a message sent before would be lost).
        if (message.type === 'hello') worker.send({ type: 'settings', settings })
        else if (message.type === 'event') sink.emit(message.event)
        else if (message.type === 'failed') failure = message.message
        else if (message.type === 'ready') {
          ready = true
          resolve(worker)
        }
      })
      worker.on('exit', (code, signal) => {
        workers.delete(worker)
        if (!ready) {
          reject(
            new AirgapError(
              'E_ENVIRONMENT',
              `A worker of serve could not start: ${failure || `exit ${signal ?? code}`}.`,
              {
                hints: ['Run serve without --workers to see the error on its own.'],
              },
            ),
          )
          return
        }
        if (stopping) return
        sink.emit(
          logEvent(
            'W_SERVE_WORKER_EXITED',
            `A worker of serve (pid ${worker.process.pid}) ended (${signal ?? `exit ${code}`}); starting another.`,
            { pid: worker.process.pid ?? 0, reason: signal ?? `exit ${code}` },
          ),
        )
        setTimeout(() => {
          if (!stopping)
            start().catch((error: Error) =>
              sink.emit(
                logEvent(
                  'W_SERVE_WORKER_EXITED',
                  `A worker of serve could not be started again: ${error.message}`,
                  {
                    pid: 0,
                    reason: error.message,
                  },
                ),
              ),
            )
        }, 1000)
      })
    })

  const stop = async () => {
    stopping = true
    await Promise.all(
      [...workers].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve()
            worker.once('exit', () => resolve())
            worker.process.kill('SIGTERM')
          }),
      ),
    )
  }

  try {
    await Promise.all(Array.from({ length: options.count }, start))
  } catch (error) {
    await stop()
    throw error
  }
  return { pids: () => [...workers].map((w) => w.process.pid ?? 0), stop }
}

/**
 * The life of a worker process: its settings come from the primary, it serves until `signal` aborts (SIGTERM from the
 * primary) or the primary is gone, then closes.
 */
export async function runServeWorkerProcess(signal: AbortSignal): Promise<void> {
  const send = (message: FromWorker) => process.send?.(message)
  const settings = await new Promise<ServeWorkerSettings>((resolve) => {
    const onMessage = (message: { type?: string; settings?: ServeWorkerSettings }) => {
      if (message.type !== 'settings' || !message.settings) return
      process.off('message', onMessage)
      resolve(message.settings)
    }
    process.on('message', onMessage)
    send({ type: 'hello' })
  })
  let worker: Awaited<ReturnType<typeof startServeWorker>>
  try {
    worker = await startServeWorker(
      settings,
      primarySink((message) => send(message as FromWorker)),
    )
  } catch (error) {
    send({ type: 'failed', message: (error as Error).message })
    process.disconnect?.()
    process.exitCode = 1
    return
  }
  send({ type: 'ready' })
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve()
    signal.addEventListener('abort', () => resolve(), { once: true })
    process.once('disconnect', () => resolve())
  })
  await worker.close()
  process.disconnect?.()
}
