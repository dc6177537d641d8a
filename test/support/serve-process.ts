import { type ChildProcess, spawn } from 'node:child_process'
import { CLI } from './cli.js'

/** What `serve --json` reports in its `serving` event (the fields the tests read). */
export interface Serving {
  url: string
  registryHost: string
  caFile: string
  nodeSetupUrl: string
  upstreams: string[]
  users: { name: string; passwordFile: string; created: boolean }[]
}

/**
 * `astrago-airgap serve <args> --json` as a child process of the built CLI, once it reports that it serves; fails with
 * its output if it exits first. The caller stops it (stopServe).
 */
export async function startServe(args: string[]): Promise<{ server: ChildProcess; serving: Serving }> {
  const server = spawn(process.execPath, [CLI, 'serve', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const serving = await new Promise<Serving>((resolve, reject) => {
    let out = ''
    server.stdout!.on('data', (d: Buffer) => {
      out += d
      for (const line of out.split('\n'))
        if (line.includes('"type":"serving"')) resolve(JSON.parse(line).serving)
    })
    server.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)))
  })
  return { server, serving }
}

/** Ends a serve started by startServe (SIGTERM) and waits for it; nothing when it has already ended. */
export async function stopServe(server: ChildProcess | undefined): Promise<void> {
  if (!server || server.exitCode !== null || server.signalCode !== null) return
  const exited = new Promise((resolve) => server.once('exit', resolve))
  server.kill('SIGTERM')
  await exited
}
