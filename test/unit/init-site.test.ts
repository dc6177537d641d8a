import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { fillGeneratedValues } from '../../src/stages/generated-values.js'
import { initSite, loadStagesFrom, renderSiteValues } from '../../src/stages/init-site.js'
import { isPlainObject } from '../../src/stages/objects.js'
import {
  parseSiteValues,
  resolveSiteValues,
  type StageSchema,
  type ValuesSchema,
} from '../../src/stages/site-values.js'

const schemas: StageSchema[] = [
  {
    stage: 'base',
    schema: {
      type: 'object',
      required: ['domain'],
      properties: {
        domain: {
          type: 'string',
          pattern: '^[a-z.]+$',
          description: 'The DNS name users reach the site at.',
        },
        replicas: { type: 'integer', minimum: 1, default: 2 },
        mode: { type: 'string', enum: ['driver', 'host'], default: 'driver', description: 'GPU driver mode' },
        tags: { type: 'array', items: { type: 'string' }, default: ['a', 'b'] },
        debug: { type: 'boolean', description: 'Optional, no default' },
        proxy: {
          type: 'object',
          description: 'Optional block: all of it commented out',
          required: ['url'],
          properties: { url: { type: 'string' } },
        },
      },
    },
  },
  {
    stage: 'data',
    schema: {
      type: 'object',
      required: ['db', 'nfs'],
      properties: {
        db: {
          type: 'object',
          required: ['password'],
          properties: { password: { type: 'string', generate: 'password', description: 'DB password' } },
        },
        nfs: {
          type: 'object',
          required: ['server', 'path'],
          additionalProperties: false,
          properties: {
            server: { type: 'string', description: 'NFS server' },
            path: { type: 'string', pattern: '^/' },
            size: { type: 'string', default: '50Gi' },
          },
        },
        domain: { type: 'string', description: 'The same value seen by a second stage' },
      },
    },
  },
]

function setPath(values: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let current = values
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(current[key])) current[key] = {}
    current = current[key] as Record<string, unknown>
  }
  current[keys.at(-1)!] = value
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    return ((error as AirgapError).data?.problems as string[]) ?? [(error as Error).message]
  }
  return []
}

describe('init-site: the site values file from the stages’ schemas', () => {
  const rendered = renderSiteValues(schemas, { title: 'demo 1.0.0', source: 'demo.tar' })

  it('documents every value, fills defaults, leaves placeholders for the required and generated values out', () => {
    expect(rendered.required).toEqual(['domain', 'nfs.server', 'nfs.path'])
    expect(rendered.generated).toEqual(['db.password'])
    const text = rendered.text
    expect(text).toContain(
      '# The DNS name users reach the site at.\n# (stages base, data)\n# text, matching ^[a-z.]+$.\ndomain: # REQUIRED',
    )
    expect(text).toContain('replicas: 2\n')
    expect(text).toContain('# text, one of "driver", "host".\nmode: driver\n')
    expect(text).toContain('tags: [a, b]\n')
    expect(text).toContain('# debug:\n')
    // An optional block is commented out whole; its required value says when it is needed.
    expect(text).toContain('# proxy:\n#   # url: # required when proxy is given\n')
    // A block of generated values only is commented out: the installer creates it.
    expect(text).toContain('# db:\n#   # DB password\n#   # text (a password).\n#   # Generated on the site')
    expect(text).toContain('nfs:\n  # NFS server\n  server: # REQUIRED')
    expect(text).toContain('  size: 50Gi\n')
  })

  it('round-trips: the file with its placeholders filled validates against every stage', async () => {
    const values = parseSiteValues(rendered.text, 'site.yaml')
    setPath(values, 'domain', 'astrago.site')
    setPath(values, 'nfs.server', '10.0.0.5')
    setPath(values, 'nfs.path', '/srv/nfs')
    const stages = schemas.map((s) => ({ name: s.stage, schema: s.schema }))
    const filled = await fillGeneratedValues({ stages: stages as never, siteValues: values, namespace: 'x' })
    expect(filled.generated.map((g) => g.path)).toEqual(['db.password'])
    const resolved = resolveSiteValues(filled.values, schemas)
    expect(resolved).toMatchObject({
      domain: 'astrago.site',
      replicas: 2,
      mode: 'driver',
      tags: ['a', 'b'],
      nfs: { server: '10.0.0.5', path: '/srv/nfs', size: '50Gi' },
    })
    expect(resolved).not.toHaveProperty('proxy')
  })

  it('an unfilled file is refused, naming each empty field', async () => {
    const values = parseSiteValues(rendered.text, 'site.yaml')
    const problems = problemsOf(() => resolveSiteValues(values, schemas))
    for (const path of rendered.required)
      expect(problems).toContain(`${path}: required (stage ${path === 'domain' ? 'base' : 'data'})`)
  })

  it('writes the Astrago file from the bundle definition, and does not overwrite it without --force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-site-'))
    try {
      const output = join(dir, 'site.yaml')
      const result = await initSite({ source: 'bundles/astrago.yaml', output })
      expect(result).toMatchObject({
        path: output,
        bundle: { name: 'astrago', version: '1.0.0' },
        from: 'definition',
        required: ['externalHost', 'nfs.server', 'nfs.path', 'keycloak.url', 'astrago.url'],
      })
      expect(result.generated.sort()).toEqual([
        'astrago.nextauthSecret',
        'astrago.userInitPassword',
        'grafana.adminPassword',
        'keycloak.adminPassword',
        'keycloak.clientSecret',
        'mariadb.password',
        'mariadb.rootPassword',
        'registry.adminPassword',
      ])
      expect(readFileSync(output, 'utf8')).toBe(result.text)

      // Every site value Astrago's own environments/<env>/values.yaml has a counterpart of is listed, documented:
      // each key is written (or, for generated secrets, commented out) right after its description.
      const values = parseSiteValues(result.text, output)
      const listed = [
        // initial user password, admin credentials handed to core, generated secrets
        'astrago.userInitPassword',
        'keycloak.adminUser',
        'keycloak.adminPassword',
        'astrago.nextauthSecret',
        // proxy and external Keycloak URLs
        'astrago.url',
        'keycloak.url',
        // registry, repository and tag of each service, and a pull secret
        ...['core', 'batch', 'monitor', 'frontend'].flatMap((s) =>
          ['registry', 'repository', 'tag'].map((k) => `astrago.${s}.${k}`),
        ),
        'imagePullSecrets',
        // Loki and Prometheus size and retention
        'loki.size',
        'loki.retention',
        'prometheus.size',
        'prometheus.retention',
        // NFS version and mount permissions
        'nfs.version',
        'nfs.mountPermissions',
        // GPU driver version and MIG strategy
        'gpu.driverVersion',
        'gpu.migStrategy',
        // MariaDB as Astrago's chart names it
        'mariadb.username',
        'mariadb.rootPassword',
        'mariadb.password',
      ]
      const lines = result.text.split('\n')
      for (const path of listed) {
        const key = path.split('.').at(-1)!
        const depth = path.split('.').length - 1
        const at = lines.findIndex((l) => new RegExp(`^ {${depth * 2}}(# )?${key}:`).test(l))
        expect(at, path).toBeGreaterThan(0)
        // The line before the key is its description or its type, both comments.
        expect(lines[at - 1], path).toMatch(/^\s*#/)
      }
      expect(values).toMatchObject({
        nfs: { version: '4.1', mountPermissions: '0777' },
        gpu: { driverVersion: '550.144.03', migStrategy: 'single' },
        loki: { size: '100Gi', retention: '2160h' },
        prometheus: { size: '50Gi', retention: '30d' },
        astrago: {
          core: { registry: 'docker.io', repository: 'xiilab/astrago-posco', tag: 'core-stage-c5ad' },
        },
        imagePullSecrets: [],
      })

      // Unfilled, it cannot install: the fields are named.
      const { stages } = await loadStagesFrom('bundles/astrago.yaml')
      const stageSchemas = stages
        .filter((s) => s.schema)
        .map((s) => ({ stage: s.name, schema: s.schema as ValuesSchema }))
      const unfilled = await fillGeneratedValues({
        stages,
        siteValues: parseSiteValues(result.text, output),
        namespace: 'x',
      })
      const problems = problemsOf(() => resolveSiteValues(unfilled.values, stageSchemas))
      expect(problems).toEqual(
        expect.arrayContaining([
          'externalHost: required (stage base)',
          'nfs.server: required (stage storage)',
        ]),
      )

      // Filled, it validates, with the demo's defaults (NodePorts 30080 and 30001, realm astrago).
      const filledText = result.text
        .replace(/^externalHost: .*$/m, 'externalHost: 192.0.2.10')
        .replace(/^ {2}server: .*$/m, '  server: 192.0.2.20')
        .replace(/^ {2}path: .*$/m, '  path: /srv/nfs/astrago')
        .replace(
          /^ {2}url: # REQUIRED.*\n(?=\n# \(stage astrago\)\nastrago:)/m,
          '  url: http://192.0.2.10:30080/auth\n',
        )
        .replace(/^(astrago:\n(?:.*\n)*?) {2}url: # REQUIRED.*$/m, '$1  url: http://192.0.2.10:30080')
      writeFileSync(output, filledText)
      const filled = await fillGeneratedValues({
        stages,
        siteValues: parseSiteValues(filledText, output),
        namespace: 'x',
      })
      expect(resolveSiteValues(filled.values, stageSchemas)).toMatchObject({
        externalHost: '192.0.2.10',
        nodePorts: { proxy: 30080, keycloak: 30001 },
        nfs: { server: '192.0.2.20', path: '/srv/nfs/astrago' },
        keycloak: { realm: 'astrago', clientId: 'astrago-client', url: 'http://192.0.2.10:30080/auth' },
        astrago: { url: 'http://192.0.2.10:30080' },
      })

      const refused = await initSite({ source: 'bundles/astrago.yaml', output }).catch((e: AirgapError) => e)
      expect(refused).toBeInstanceOf(AirgapError)
      expect((refused as AirgapError).code).toBe('E_USAGE')
      expect(readFileSync(output, 'utf8')).toBe(filledText)
      await initSite({ source: 'bundles/astrago.yaml', output, force: true })
      expect(readFileSync(output, 'utf8')).toBe(result.text)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
