import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findTool } from './tools.js'

export interface TlsMaterial {
  caFile: string
  caPem: string
  certFile: string
  keyFile: string
  /** A directory holding only ca.crt, in the form skopeo's --cert-dir and containerd's certs.d expect. */
  certDir: string
}

/** A throwaway CA and a server certificate for the given IPs and DNS names, made with the real openssl. */
export function createTlsMaterial(dir: string, names: string[]): TlsMaterial {
  const tlsDir = join(dir, 'tls')
  const certDir = join(tlsDir, 'certs.d')
  mkdirSync(certDir, { recursive: true })
  const openssl = findTool('openssl')
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: tlsDir, stdio: 'pipe' })
  run(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
    ].concat(['-subj', '/CN=astrago-airgap test CA', '-keyout', 'ca.key', '-out', 'ca.crt']),
  )
  const san = names.map((n) => (/^[\d.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',')
  writeFileSync(join(tlsDir, 'ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`)
  run(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${names[0]}`,
    ].concat(['-keyout', 'server.key', '-out', 'server.csr']),
  )
  run(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
    ].concat(['-extfile', 'ext.cnf', '-out', 'server.crt']),
  )
  const caPem = readFileSync(join(tlsDir, 'ca.crt'), 'utf8')
  writeFileSync(join(certDir, 'ca.crt'), caPem)
  return {
    caFile: join(tlsDir, 'ca.crt'),
    caPem,
    certFile: join(tlsDir, 'server.crt'),
    keyFile: join(tlsDir, 'server.key'),
    certDir,
  }
}
