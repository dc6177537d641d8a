/**
 * The site side of the no-egress proof, meant to run inside a network namespace that has only loopback
 * (test/integration/cli/no-egress.test.ts starts it under `unshare --net --pid --fork --kill-child`):
 *
 *   node --import tsx test/support/no-egress-site.ts <bundle> <work dir>
 *
 * It first checks that the namespace really has no route out (a TCP connection to the documentation addresses
 * 192.0.2.1 and 2001:db8::1, port 9, must fail at once with ENETUNREACH; nothing else is ever contacted), then starts
 * the Kubernetes control plane, installs the bundle through the built CLI (which serves it as the site registry and
 * ends with the air-gap audit), runs `serve` and `audit --registry` against it, and prints one JSON line with what
 * happened. Every process it starts is stopped before it exits; the test's PID namespace kills any it missed.
 */
import type { ChildProcess } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { connect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { runCli } from './cli.js'
import { startControlPlane } from './kube.js'
import { freePort, loopbackServe } from './net.js'
import { startServe, stopServe } from './serve-process.js'
import { findTool } from './tools.js'

interface Probe {
  address: string
  code?: string
  ms: number
}

/** One TCP connection attempt to a documentation address (RFC 5737 / RFC 3849), with a 5 s cap. */
function probe(address: string): Promise<Probe> {
  const started = Date.now()
  return new Promise((resolve) => {
    const socket = connect({ host: address, port: 9, timeout: 5_000 })
    const done = (code?: string) => {
      socket.destroy()
      resolve({ address, code, ms: Date.now() - started })
    }
    socket.once('connect', () => done('CONNECTED'))
    socket.once('timeout', () => done('TIMEOUT'))
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message))
  })
}

async function main(): Promise<Record<string, unknown>> {
  const [bundle, work] = process.argv.slice(2)
  if (!bundle || !work) throw new Error('usage: no-egress-site.ts <bundle> <work dir>')
  const result: Record<string, unknown> = {
    netns: readlinkSync('/proc/self/ns/net'),
    interfaces: Object.keys(networkInterfaces()),
    probes: [await probe('192.0.2.1'), await probe('2001:db8::1')],
  }
  const cp = await startControlPlane()
  let server: ChildProcess | undefined
  try {
    result.controlPlane = { version: cp.version, startupMs: cp.startupMs }
    const helm = findTool('helm')
    const port = await freePort()
    const started = Date.now()
    const install = await runCli([
      'install',
      bundle,
      '--kubeconfig',
      cp.kubeconfigPath,
      '--helm',
      helm,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--advertise',
      '127.0.0.1',
      '--state-dir',
      join(work, 'site'),
      '--json',
    ])
    result.install = {
      code: install.code,
      ms: Date.now() - started,
      result: install.result,
      error: install.error,
      stderr: install.code === 0 ? undefined : install.stderr.slice(-4000),
    }

    // The site server on its own (as a site keeps it running), and the audit asking it.
    const servePort = await freePort()
    const site = await startServe([bundle, ...loopbackServe(servePort), '--state-dir', join(work, 'site')])
    server = site.server
    const serving = site.serving
    const audit = await runCli([
      'audit',
      '--kubeconfig',
      cp.kubeconfigPath,
      '--registry',
      serving.url,
      '--ca-file',
      serving.caFile,
      '--json',
    ])
    result.audit = {
      code: audit.code,
      result: audit.result,
      error: audit.error,
      stderr: audit.code === 0 ? undefined : audit.stderr.slice(-4000),
    }
    return result
  } finally {
    await stopServe(server)
    await cp.stop()
  }
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify({ type: 'no-egress', result })}\n`)
  },
  (error: unknown) => {
    process.stdout.write(
      `${JSON.stringify({ type: 'no-egress', error: error instanceof Error ? (error.stack ?? error.message) : String(error) })}\n`,
    )
    process.exitCode = 1
  },
)
